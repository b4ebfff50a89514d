// The HTML report of an evaluation (`omniseg eval --report report.html`): one self-contained file
// with the summary metrics, an inline SVG histogram of the per-sample IoU (target and no-target
// samples stacked) and, worst first, up to 100 samples with their thumbnails (image with prompts,
// ground truth, prediction) embedded as PNG data: URIs. No script, no external resource.
import { writeFile } from 'node:fs/promises';
import { decodeImage } from '../image.js';
import { decodeRLE } from '../rle.js';
import type { Box, Point } from '../types.js';
import { PRECISION_THRESHOLDS, type MaskMetrics } from './metrics.js';
import type { SampleId } from './samples.js';
import { sampleThumbnails, type SampleThumbnails } from './thumbnails.js';

/** Samples shown with thumbnails, worst first, unless told otherwise. */
export const DEFAULT_REPORT_SAMPLES = 100;
/** Histogram bins over [0, 1]: [0, 0.1), ..., [0.9, 1]. */
export const HISTOGRAM_BINS = 10;

/** One evaluated sample, as the report needs it. */
export interface ReportSample {
  id: SampleId;
  /** The sample's IoU as the metrics count it (no-target: 1 for an empty prediction, else 0). */
  iou: number;
  /** The ground truth has foreground. */
  target: boolean;
  height: number;
  width: number;
  /** The united ground truth and prediction as column-major run lengths (COCO counts). */
  gt: readonly number[];
  pred: readonly number[];
  /** The image file (dataset runs); without it the thumbnails show the masks only. */
  image?: string;
  points?: readonly Point[];
  boxes?: readonly Box[];
  text?: string;
  refImage?: string;
}

export interface ReportOptions {
  /** The page's heading, e.g. what was evaluated against what. */
  title: string;
  /** Samples shown with thumbnails (worst first). Default DEFAULT_REPORT_SAMPLES. */
  maxSamples?: number;
}

/** Counts of target and no-target samples per IoU bin ([i/10, (i+1)/10), the last one closed). */
export function iouHistogram(samples: ReadonlyArray<Pick<ReportSample, 'iou' | 'target'>>): { target: number[]; noTarget: number[] } {
  const target = new Array<number>(HISTOGRAM_BINS).fill(0);
  const noTarget = new Array<number>(HISTOGRAM_BINS).fill(0);
  for (const s of samples) {
    const bin = Math.min(HISTOGRAM_BINS - 1, Math.max(0, Math.floor(s.iou * HISTOGRAM_BINS)));
    (s.target ? target : noTarget)[bin]++;
  }
  return { target, noTarget };
}

/** The samples worst first: IoU ascending, ties in their original order. */
export function worstFirst<T extends { iou: number }>(samples: readonly T[]): T[] {
  return samples
    .map((s, i) => ({ s, i }))
    .sort((a, b) => a.s.iou - b.s.iou || a.i - b.i)
    .map(({ s }) => s);
}

/**
 * Writes the report: decodes the images and masks of the shown samples one at a time (so memory
 * stays that of one image), makes their thumbnails, and writes the HTML.
 */
export async function writeReport(file: string, metrics: MaskMetrics, samples: readonly ReportSample[], options: ReportOptions): Promise<void> {
  const shown = worstFirst(samples).slice(0, options.maxSamples ?? DEFAULT_REPORT_SAMPLES);
  const thumbnails: SampleThumbnails[] = [];
  for (const s of shown) {
    const gt = decodeRLE({ size: [s.height, s.width], counts: [...s.gt] });
    const pred = decodeRLE({ size: [s.height, s.width], counts: [...s.pred] });
    const image = s.image === undefined ? undefined : await decodeImage(s.image);
    thumbnails.push(await sampleThumbnails(gt, pred, s.width, s.height, image, { points: s.points, boxes: s.boxes }));
  }
  try {
    await writeFile(file, renderReport(metrics, samples, shown, thumbnails, options.title));
  } catch (error) {
    throw new Error(`Cannot write ${file}: ${(error as Error).message}`);
  }
}

/** The HTML of the report; `shown[i]` has `thumbnails[i]`. */
export function renderReport(
  metrics: MaskMetrics,
  samples: readonly ReportSample[],
  shown: readonly ReportSample[],
  thumbnails: readonly SampleThumbnails[],
  title: string,
): string {
  const targets = samples.filter((s) => s.target).length;
  const rows = shown.map((s, i) => sampleRow(s, i + 1, thumbnails[i])).join('\n');
  const hasImages = shown.some((s) => s.image !== undefined);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escape(title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
th, td { padding: 4px 8px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: middle; }
table.metrics td { font-variant-numeric: tabular-nums; text-align: right; }
td.iou { font-variant-numeric: tabular-nums; }
img.thumb { display: block; image-rendering: pixelated; border: 1px solid #ccc; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; vertical-align: -1px; }
</style>
</head>
<body>
<h1>${escape(title)}</h1>
<p>${samples.length} sample${samples.length === 1 ? '' : 's'}: ${targets} with a target, ${samples.length - targets} without.</p>
<h2>Metrics</h2>
${metricsTable(metrics)}
<h2>IoU per sample</h2>
${histogramSvg(iouHistogram(samples))}
<p class="legend"><span style="background:#3b7dd8"></span>target samples<span style="background:#a0a0a8"></span>no-target samples (IoU 1: correctly empty, 0: false positive)</p>
<h2>Samples, worst first (${shown.length} of ${samples.length})</h2>
<p>${hasImages ? 'Image with its prompts, ' : ''}ground truth (green) and prediction (orange).</p>
<table class="samples">
<thead><tr><th>#</th><th>id</th><th>IoU</th><th>GT</th><th>prompt</th>${hasImages ? '<th>image</th>' : ''}<th>ground truth</th><th>prediction</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
</body>
</html>
`;
}

function metricsTable(m: MaskMetrics): string {
  const entries: Array<[string, string, number | null]> = [
    ['cIoU', 'cIoU', m.cIoU],
    ['gIoU', 'gIoU', m.gIoU],
    ['mIoU', 'mIoU', m.mIoU],
    ...PRECISION_THRESHOLDS.map((t): [string, string, number | null] => [`P@${t}`, `precision.${t}`, m.precision[t]]),
    ['nAcc', 'nAcc', m.nAcc],
    ['tAcc', 'tAcc', m.tAcc],
  ];
  const rows = entries.map(([label, key, v]) => `<tr><th>${label}</th><td data-metric="${key}">${v === null ? 'n/a' : v.toFixed(4)}</td></tr>`);
  rows.push(`<tr><th>count</th><td data-metric="count">${m.count}</td></tr>`);
  return `<table class="metrics">\n${rows.join('\n')}\n</table>`;
}

/** Stacked bars, one per IoU bin, with the counts above them. */
export function histogramSvg(h: { target: number[]; noTarget: number[] }): string {
  const [width, height, left, bottom, top] = [520, 220, 40, 36, 16];
  const barWidth = (width - left - 10) / HISTOGRAM_BINS;
  const max = Math.max(1, ...h.target.map((t, i) => t + h.noTarget[i]));
  const scale = (height - bottom - top) / max;
  const base = height - bottom;
  const parts: string[] = [];
  for (let i = 0; i < HISTOGRAM_BINS; i++) {
    const x = left + i * barWidth;
    const [t, n] = [h.target[i], h.noTarget[i]];
    const range = `${(i / HISTOGRAM_BINS).toFixed(1)}–${((i + 1) / HISTOGRAM_BINS).toFixed(1)}`;
    const bar = (y: number, hgt: number, fill: string, count: number, what: string): string =>
      hgt > 0
        ? `<rect x="${x + 2}" y="${y.toFixed(1)}" width="${(barWidth - 4).toFixed(1)}" height="${hgt.toFixed(1)}" fill="${fill}"><title>IoU ${range}: ${count} ${what}</title></rect>`
        : '';
    parts.push(bar(base - t * scale, t * scale, '#3b7dd8', t, 'target samples'));
    parts.push(bar(base - (t + n) * scale, n * scale, '#a0a0a8', n, 'no-target samples'));
    if (t + n > 0) parts.push(`<text x="${(x + barWidth / 2).toFixed(1)}" y="${(base - (t + n) * scale - 3).toFixed(1)}" text-anchor="middle">${t + n}</text>`);
    parts.push(`<text x="${x.toFixed(1)}" y="${base + 14}" text-anchor="middle">${(i / HISTOGRAM_BINS).toFixed(1)}</text>`);
  }
  parts.push(`<text x="${(left + HISTOGRAM_BINS * barWidth).toFixed(1)}" y="${base + 14}" text-anchor="middle">1.0</text>`);
  parts.push(`<text x="${(left + (HISTOGRAM_BINS * barWidth) / 2).toFixed(1)}" y="${height - 4}" text-anchor="middle">IoU</text>`);
  parts.push(`<line x1="${left}" y1="${base}" x2="${(left + HISTOGRAM_BINS * barWidth).toFixed(1)}" y2="${base}" stroke="#444"/>`);
  return `<svg class="histogram" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-size="11" font-family="system-ui, sans-serif">
${parts.filter((p) => p !== '').join('\n')}
</svg>`;
}

function sampleRow(s: ReportSample, rank: number, thumbs: SampleThumbnails): string {
  const img = (kind: string, src: string): string => `<td><img class="thumb" data-kind="${kind}" src="${src}" alt="${kind}"></td>`;
  const cells = [
    `<td>${rank}</td>`,
    `<td>${escape(String(s.id))}</td>`,
    `<td class="iou">${s.iou.toFixed(4)}</td>`,
    `<td>${s.target ? 'target' : 'no target'}</td>`,
    `<td>${escape(promptText(s))}</td>`,
    thumbs.image === undefined ? '' : img('image', thumbs.image),
    img('gt', thumbs.gt),
    img('pred', thumbs.pred),
  ];
  return `<tr class="sample" data-id="${escape(JSON.stringify(s.id))}" data-iou="${s.iou}">${cells.join('')}</tr>`;
}

/** The prompt in words: the text, the reference image, and how many points and boxes. */
function promptText(s: ReportSample): string {
  const parts: string[] = [];
  if (s.text !== undefined) parts.push(`"${s.text}"`);
  if (s.refImage !== undefined) parts.push(`reference ${s.refImage.split(/[\\/]/).pop() ?? s.refImage}`);
  const count = (n: number, one: string, many: string): void => {
    if (n > 0) parts.push(`${n} ${n === 1 ? one : many}`);
  };
  count(s.points?.length ?? 0, 'point', 'points');
  count(s.boxes?.length ?? 0, 'box', 'boxes');
  return parts.join(', ');
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
