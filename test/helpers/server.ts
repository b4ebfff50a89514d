// Helpers for the server tests: multipart bodies, Prometheus text parsing, test images.
import sharp from 'sharp';

/** A multipart/form-data body with one file field. */
export function multipartBody(field: string, file: Buffer, type = 'image/png'): { payload: Buffer; headers: Record<string, string> } {
  return multipartParts([{ name: field, file, type }]);
}

/** A multipart/form-data body of file parts (`file`) and plain fields (`value`), in order. */
export function multipartParts(
  parts: Array<{ name: string; file?: Buffer; type?: string; value?: string }>,
): { payload: Buffer; headers: Record<string, string> } {
  const boundary = '----omniseg-test-boundary';
  const chunks = parts.flatMap(({ name, file, type = 'image/png', value }) => [
    Buffer.from(
      file === undefined
        ? `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n`
        : `--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="image.png"\r\nContent-Type: ${type}\r\n\r\n`,
    ),
    file ?? Buffer.from(value ?? ''),
    Buffer.from('\r\n'),
  ]);
  const payload = Buffer.concat([...chunks, Buffer.from(`--${boundary}--\r\n`)]);
  return { payload, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses the Prometheus text format (values as Go's ParseFloat reads them: NaN in any case) strictly enough to catch a malformed exposition: every sample
 * line is `name{labels} value`, and every sample belongs to a metric declared by # HELP and # TYPE.
 * @throws Error naming the first bad line.
 */
export function parsePrometheus(text: string): Samples {
  const declared = new Map<string, string>();
  const samples: Samples = Object.assign([] as Sample[], { declared: new Set<string>() });
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta !== null) {
      if (meta[1] === 'TYPE') {
        declared.set(meta[2], meta[3]);
        samples.declared.add(meta[2]);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/i.exec(line);
    if (m === null) throw new Error(`Malformed metrics line: ${line}`);
    const name = m[1];
    const base = name.replace(/_(bucket|sum|count)$/, '');
    if (!declared.has(name) && !declared.has(base)) throw new Error(`Sample without # TYPE: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    samples.push({ name, labels, value: Number(m[4]) });
  }
  return samples;
}

/** Samples of a scrape, and the metrics it declares (# TYPE), with or without samples. */
export type Samples = Sample[] & { declared: Set<string> };

/**
 * The value of the sample `name` whose labels include `labels`: 0 when there is none (a labelled
 * counter not yet incremented), an Error when the scrape declares no such metric (a typo).
 */
export function metric(samples: Samples, name: string, labels: Record<string, string> = {}): number {
  if (!samples.declared.has(name) && !samples.declared.has(name.replace(/_(bucket|sum|count)$/, ''))) {
    throw new Error(`No metric ${name} in the scrape`);
  }
  const found = samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found?.value ?? 0;
}

/** A w × h PNG of one colour: distinct colours give distinct images (and imageIds). */
export async function solidPng(width: number, height: number, r: number, g = 0, b = 0): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r, g, b } } })
    .png()
    .toBuffer();
}
