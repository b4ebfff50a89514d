// NoC@85 / NoC@90: the interactive-segmentation protocol of RITM (Sofiiuk et al. 2022,
// isegm/inference/clicker.py), SimpleClick and SEEM. Clicks are simulated against a ground-truth
// mask:
//   - the first click, positive, at the interior point of the ground truth farthest from its
//     boundary;
//   - each next click at the point farthest from the boundary of the largest error region
//     (4-connected pixels that are all false negatives or all false positives), positive in a
//     false negative, negative in a false positive;
//   - the segmenter sees all clicks so far and the previous round's logits;
//   - up to 20 clicks. NoC@t is the number of clicks until IoU ≥ t (20 when never reached).
// "Farthest from the boundary" is the exact Euclidean distance to the nearest pixel outside the
// region, pixels outside the image counting as outside (RITM pads with zeros before
// cv2.distanceTransform). Ties go to the first pixel in row-major order (numpy's argmax), as do
// ties between equally large regions (the region whose first pixel comes first). A pixel already
// clicked is never clicked again (RITM's not_clicked_map). Clicks are pixel indices {x: column,
// y: row}, as RITM passes them to its models.
import type { ImageEmbedding } from '../embedding.js';
import type { Segmenter } from '../segmenter.js';
import type { Point } from '../types.js';
import { squaredDistanceTransform } from './distance.js';

/** The IoU thresholds NoC is reported at, with their key suffixes. */
export const NOC_THRESHOLDS = [
  { key: '85', iou: 0.85 },
  { key: '90', iou: 0.9 },
] as const;

/** The protocol's click budget. */
export const DEFAULT_MAX_CLICKS = 20;

/** What a segmenter returns for one round of clicks. */
export interface ClickPrediction<L = Float32Array> {
  /** Binary mask, height × width row-major, 0/1 (any non-zero byte is foreground). */
  mask: Uint8Array;
  /** State fed back with the next round (for SAM: the low-res logits of the chosen mask). Optional. */
  logits?: L;
}

/** Any interactive segmenter: all the clicks so far, the previous round's logits → a mask. */
export interface ClickSegmenter<L = Float32Array> {
  /**
   * @param clicks every click so far, oldest first (a copy the segmenter may keep)
   * @param previousLogits the previous round's `logits`; undefined in the first round
   */
  predict(clicks: readonly Point[], previousLogits: L | undefined): Promise<ClickPrediction<L>>;
}

export interface ClickOptions {
  /** The click budget. Default: 20. */
  maxClicks?: number;
  /** Stop once IoU ≥ this (later clicks cannot change NoC@85/90). Default: 0.9; `Infinity` runs every click. */
  stopAt?: number;
}

/** One simulated interaction. */
export interface ClickRun {
  /** The clicks, in order. */
  clicks: Point[];
  /** IoU with the ground truth after each click. */
  ious: number[];
  /** Clicks to reach IoU ≥ 0.85, or maxClicks. */
  noc85: number;
  /** Clicks to reach IoU ≥ 0.90, or maxClicks. */
  noc90: number;
}

/** IoU of two binary masks of the same length; 0 when both are empty. */
export function maskIoU(a: Uint8Array, b: Uint8Array): number {
  let intersection = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] !== 0;
    const y = b[i] !== 0;
    if (x && y) intersection++;
    if (x || y) union++;
  }
  return union === 0 ? 0 : intersection / union;
}

/** The first click: positive, at the ground truth's interior point farthest from its boundary; undefined when it is empty. */
export function firstClick(gt: Uint8Array, width: number, height: number): Point | undefined {
  const dt = squaredDistanceTransform(gt, width, height);
  const best = argmax(dt, (i) => dt[i] > 0);
  return best < 0 ? undefined : { x: best % width, y: Math.floor(best / width), label: 1 };
}

/**
 * The next click for a prediction: at the point farthest from the boundary of the largest error
 * region, skipping pixels in `clicked` (row-major indices); undefined when there is no error
 * (or every error pixel was clicked).
 */
export function nextClick(
  gt: Uint8Array,
  pred: Uint8Array,
  width: number,
  height: number,
  clicked: ReadonlySet<number> = new Set(),
): Point | undefined {
  // 1 false negative, 2 false positive.
  const error = new Uint8Array(width * height);
  for (let i = 0; i < error.length; i++) {
    const g = gt[i] !== 0;
    const p = pred[i] !== 0;
    if (g !== p) error[i] = g ? 1 : 2;
  }
  const regions = labelRegions(error, width, height);
  const order = regions.list.slice().sort((a, b) => b.area - a.area || a.first - b.first);
  for (const region of order) {
    const point = farthestInRegion(regions.labels, region, width, clicked);
    if (point !== undefined) return { ...point, label: region.value === 1 ? 1 : 0 };
  }
  return undefined;
}

/** Clicks until the IoU reaches `threshold` (the 1-based index of the first IoU ≥ it), else maxClicks. */
export function numberOfClicks(ious: readonly number[], threshold: number, maxClicks = DEFAULT_MAX_CLICKS): number {
  const i = ious.findIndex((iou) => iou >= threshold);
  return i < 0 || i >= maxClicks ? maxClicks : i + 1;
}

/**
 * Runs the click protocol for one ground-truth mask (height × width row-major, not empty).
 * @throws RangeError for an empty ground truth or a prediction of the wrong size
 */
export async function simulateClicks<L>(
  segmenter: ClickSegmenter<L>,
  gt: Uint8Array,
  width: number,
  height: number,
  options: ClickOptions = {},
): Promise<ClickRun> {
  const maxClicks = options.maxClicks ?? DEFAULT_MAX_CLICKS;
  const stopAt = options.stopAt ?? NOC_THRESHOLDS[NOC_THRESHOLDS.length - 1].iou;
  if (gt.length !== width * height) {
    throw new RangeError(`The ground truth has ${gt.length} pixels but width × height is ${width * height}`);
  }
  const first = firstClick(gt, width, height);
  if (first === undefined) throw new RangeError('The ground truth is empty: there is nothing to click on');
  const clicks: Point[] = [];
  const ious: number[] = [];
  const clicked = new Set<number>();
  let logits: L | undefined;
  let click: Point | undefined = first;
  while (click !== undefined && clicks.length < maxClicks) {
    clicks.push(click);
    clicked.add(click.y * width + click.x);
    const prediction = await segmenter.predict(clicks.slice(), logits);
    if (!(prediction.mask instanceof Uint8Array) || prediction.mask.length !== gt.length) {
      throw new RangeError(`The segmenter returned a mask of ${prediction.mask?.length} pixels for a ${width}x${height} image`);
    }
    logits = prediction.logits;
    const iou = maskIoU(gt, prediction.mask);
    ious.push(iou);
    if (iou >= stopAt) break;
    click = nextClick(gt, prediction.mask, width, height, clicked);
  }
  return {
    clicks,
    ious,
    noc85: numberOfClicks(ious, NOC_THRESHOLDS[0].iou, maxClicks),
    noc90: numberOfClicks(ious, NOC_THRESHOLDS[1].iou, maxClicks),
  };
}

/** Mean NoC and the failures (never reaching the IoU within the budget), what `omniseg eval --clicks --json` prints. */
export interface ClickMetrics {
  'NoC@85': number | null;
  'NoC@90': number | null;
  'NoF@85': number;
  'NoF@90': number;
  count: number;
}

/** NoC@85 / NoC@90 (means over the runs) and NoF@85 / NoF@90 (runs that never reached the IoU). */
export function summarizeClicks(runs: readonly ClickRun[]): ClickMetrics {
  const n = runs.length;
  const mean = (values: number[]) => (n === 0 ? null : values.reduce((s, v) => s + v, 0) / n);
  const failures = (threshold: number) => runs.filter((r) => !r.ious.some((iou) => iou >= threshold)).length;
  return {
    'NoC@85': mean(runs.map((r) => r.noc85)),
    'NoC@90': mean(runs.map((r) => r.noc90)),
    'NoF@85': failures(NOC_THRESHOLDS[0].iou),
    'NoF@90': failures(NOC_THRESHOLDS[1].iou),
    count: n,
  };
}

/** Options of `samClickSegmenter`. */
export interface SamClickOptions {
  /** Decode SAM's 3 multimask outputs and keep the highest-scoring one. Default: `false` (the single-mask output). */
  multimask?: boolean;
}

/**
 * SAM as a ClickSegmenter on one encoded image: each round decodes all the clicks with the previous
 * round's low-res logits as the mask prompt (as `SegmentSession` does) and returns the
 * highest-scoring mask.
 */
export function samClickSegmenter(
  segmenter: Segmenter,
  embedding: ImageEmbedding,
  options: SamClickOptions = {},
): ClickSegmenter<Float32Array> {
  return {
    async predict(clicks, previousLogits) {
      const { masks } = await segmenter.segment(
        embedding,
        { points: [...clicks], ...(previousLogits !== undefined ? { maskInput: previousLogits } : {}) },
        { multimask: options.multimask ?? false },
      );
      const best = masks.reduce((a, m) => (m.score > a.score ? m : a));
      return { mask: best.data, logits: best.lowResLogits };
    },
  };
}

interface Region {
  /** 1 false negative, 2 false positive. */
  value: number;
  /** Label in `labels` (1-based). */
  label: number;
  area: number;
  /** Row-major index of its first pixel. */
  first: number;
  /** Bounding box, inclusive. */
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** 4-connected regions of equal non-zero value, labelled 1.. in row-major order of their first pixel. */
function labelRegions(values: Uint8Array, width: number, height: number): { labels: Int32Array; list: Region[] } {
  const labels = new Int32Array(values.length);
  const list: Region[] = [];
  const stack: number[] = [];
  for (let start = 0; start < values.length; start++) {
    const value = values[start];
    if (value === 0 || labels[start] !== 0) continue;
    const region: Region = { value, label: list.length + 1, area: 0, first: start, x0: width, y0: height, x1: -1, y1: -1 };
    list.push(region);
    labels[start] = region.label;
    stack.push(start);
    while (stack.length > 0) {
      const i = stack.pop() as number;
      const x = i % width;
      const y = (i - x) / width;
      region.area++;
      region.x0 = Math.min(region.x0, x);
      region.x1 = Math.max(region.x1, x);
      region.y0 = Math.min(region.y0, y);
      region.y1 = Math.max(region.y1, y);
      const visit = (j: number) => {
        if (values[j] === value && labels[j] === 0) {
          labels[j] = region.label;
          stack.push(j);
        }
      };
      if (x > 0) visit(i - 1);
      if (x < width - 1) visit(i + 1);
      if (y > 0) visit(i - width);
      if (y < height - 1) visit(i + width);
    }
  }
  return { labels, list };
}

/**
 * The region's unclicked pixel farthest from its boundary (first in row-major order on ties). The
 * transform runs on the region's bounding box: the box's padding is outside the region, so
 * distances are the same as over the whole image.
 */
function farthestInRegion(
  labels: Int32Array,
  region: Region,
  width: number,
  clicked: ReadonlySet<number>,
): { x: number; y: number } | undefined {
  const bw = region.x1 - region.x0 + 1;
  const bh = region.y1 - region.y0 + 1;
  const crop = new Uint8Array(bw * bh);
  for (let y = 0; y < bh; y++) {
    for (let x = 0; x < bw; x++) {
      if (labels[(y + region.y0) * width + x + region.x0] === region.label) crop[y * bw + x] = 1;
    }
  }
  const dt = squaredDistanceTransform(crop, bw, bh);
  const best = argmax(dt, (i) => {
    if (crop[i] === 0) return false;
    const x = (i % bw) + region.x0;
    const y = Math.floor(i / bw) + region.y0;
    return !clicked.has(y * width + x);
  });
  return best < 0 ? undefined : { x: (best % bw) + region.x0, y: Math.floor(best / bw) + region.y0 };
}

/** Index of the largest value among the indices `eligible` accepts (the first on ties); -1 when none. */
function argmax(values: Float64Array, eligible: (i: number) => boolean): number {
  let best = -1;
  for (let i = 0; i < values.length; i++) {
    if ((best < 0 || values[i] > values[best]) && eligible(i)) best = i;
  }
  return best;
}
