// Shows a pull's progress: on a terminal, one line per file redrawn in place (a bar, bytes and
// rate, at most 10 times a second); elsewhere (logs, pipes), plain lines: a file's start, each
// quarter, and its end.
import type { PullEvent } from './pull.js';
import type { RegistryModel } from './registry.js';

export interface ProgressSink {
  write(text: string): void;
  /** Whether the sink is a terminal (redraw in place) or not (plain lines). */
  tty: boolean;
}

const BAR_WIDTH = 24;
const REDRAW_MS = 100;

/** A PullOptions.onEvent that writes the progress of pulls to `sink`. */
export function progressReporter(sink: ProgressSink): (model: RegistryModel, event: PullEvent) => void {
  let file: { name: string; total: number | null; startedAt: number; from: number; drawnAt: number; quarter: number } | undefined;
  let lineOpen = false;
  const endLine = () => {
    if (lineOpen) sink.write('\n');
    lineOpen = false;
  };
  const line = (text: string) => {
    endLine();
    sink.write(`${text}\n`);
  };

  return (model, event) => {
    const label = `${model.id}/`;
    switch (event.type) {
      case 'cached':
        return line(`${model.id}: already in the cache`);
      case 'wait':
        return line(`${model.id}: waiting for another pull of this model (pid ${event.pid})`);
      case 'warning':
        return line(`warning: ${event.message}`);
      case 'retry':
        return line(`${label}${event.file}: ${event.error.message}; retrying (${event.attempt})`);
      case 'start': {
        file = { name: event.file, total: event.total, startedAt: Date.now(), from: event.from, drawnAt: 0, quarter: 0 };
        if (sink.tty) return;
        const resumed = event.from > 0 ? `, resuming at ${formatBytes(event.from)}` : '';
        const size = event.total === null ? '' : ` (${formatBytes(event.total)}${resumed})`;
        return line(`${model.id}: downloading ${event.file}${size}`);
      }
      case 'progress': {
        if (file === undefined || file.name !== event.file) return;
        if (sink.tty) {
          const now = Date.now();
          if (now - file.drawnAt < REDRAW_MS) return;
          file.drawnAt = now;
          sink.write(`\r${label}${event.file} ${meter(event.received, event.total, file)}\x1b[K`);
          lineOpen = true;
          return;
        }
        if (event.total === null || event.total === 0) return;
        const quarter = Math.floor((4 * event.received) / event.total);
        if (quarter > file.quarter && quarter < 4) {
          file.quarter = quarter;
          line(`${model.id}: ${event.file} ${quarter * 25}% (${formatBytes(event.received)} of ${formatBytes(event.total)})`);
        }
        return;
      }
      case 'done': {
        const how = event.verified ? 'SHA-256 verified' : 'unverified';
        if (sink.tty && file !== undefined) {
          sink.write(`\r${label}${event.file} ${meter(event.size, event.size, file)} ${how}\x1b[K\n`);
          lineOpen = false;
        } else {
          line(`${model.id}: ${event.file} done (${formatBytes(event.size)}, ${how})`);
        }
        file = undefined;
        return;
      }
    }
  };
}

/** "[#######.........]  45%  170.2 MB/375.0 MB  12.3 MB/s" (no bar when the size is unknown). */
function meter(received: number, total: number | null, file: { startedAt: number; from: number }): string {
  const seconds = (Date.now() - file.startedAt) / 1000;
  const rate = seconds > 0 ? `  ${formatBytes((received - file.from) / seconds)}/s` : '';
  if (total === null || total === 0) return `${formatBytes(received)}${rate}`;
  const fraction = Math.min(1, received / total);
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  return `${bar} ${percent}  ${formatBytes(received)}/${formatBytes(total)}${rate}`;
}

/** Decimal units, as the Hugging Face Hub shows sizes: "466 B", "38.9 MB", "2.56 GB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${Math.round(bytes)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit]}`;
}
