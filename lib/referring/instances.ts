// Response map → candidate instances: a referring heat map (probabilities in [0, 1] at image
// size, e.g. `Referrer.heatmap().data`) is thresholded and split into connected components, each
// a candidate instance the referring expression may mean (TRIS: the text-to-image response map
// localises every instance it matches; one component per instance). Pure functions, no model.
import { invalidRange, invalidType } from '../errors.js';
import { integerInRange, numberInRange } from '../validate.js';
import { componentRuns, labelImage, type Runs } from '../components.js';
import type { Box } from '../types.js';

/**
 * Heat-map threshold: a pixel belongs to a candidate instance when its response is strictly above
 * it. 0.5 is a logit of 0, CLIPSeg's own decision boundary (its training target is the binary
 * mask). With a threshold of 1 nothing is ever above it: no instances, no target.
 */
export const DEFAULT_HEAT_THRESHOLD = 0.5;

/**
 * Smallest instance kept, as a fraction of the image's pixels: components with fewer than
 * max(1, ceil(minArea · width · height)) pixels are dropped as noise (0.1 %: ~790 px on a
 * 1024 × 768 image, 15 px on 150 × 100).
 */
export const DEFAULT_MIN_AREA = 0.001;

/**
 * Pixels touching by an edge or a corner are one component (8-connectivity): a thin diagonal
 * part of an object stays whole. Use 4 to split blobs that touch only at corners.
 */
export const DEFAULT_CONNECTIVITY: 4 | 8 = 8;

/** At most this many instances (the strongest peaks) are kept; each costs a SAM decode. */
export const DEFAULT_MAX_INSTANCES = 16;

/** A candidate instance: one connected component of the thresholded heat map. */
export interface Instance {
  /**
   * The component's strongest pixel (x, y) in pixels of the image (pixel (x, y) is the point
   * (x, y), as SAM's clicks); the first in row-major order on ties.
   */
  peak: { x: number; y: number };
  /** Inclusive pixel bounds `[x0, y0, x1, y1]` of the component (as `Mask.box`). */
  box: Box;
  /** Pixels in the component (holes excluded). */
  area: number;
  /** Largest response in the component (the value at `peak`). */
  maxResponse: number;
  /** Mean response over the component's pixels. */
  meanResponse: number;
  /** The component as a binary mask at image size (width × height bytes, 1 inside). */
  mask: Uint8Array;
}

export interface InstanceOptions {
  /** Pixels with a response strictly above this are foreground. In [0, 1]; default 0.5 (`DEFAULT_HEAT_THRESHOLD`). */
  threshold?: number;
  /** Smallest component kept, as a fraction of width × height. In [0, 1]; default 0.001 (`DEFAULT_MIN_AREA`). */
  minArea?: number;
  /** 8 (edges and corners, default) or 4 (edges only). */
  connectivity?: 4 | 8;
  /** Keep at most this many instances, strongest peak first. ≥ 1; default 16 (`DEFAULT_MAX_INSTANCES`). */
  maxInstances?: number;
}

/** InstanceOptions validated, with defaults filled in. */
export interface InstanceSettings {
  threshold: number;
  minArea: number;
  connectivity: 4 | 8;
  maxInstances: number;
}

/** Validates InstanceOptions fields of `opts` (named `${param}.<field>` in errors) and fills in the defaults. */
export function instanceSettings(opts: Record<string, unknown>, param = 'options'): InstanceSettings {
  return {
    threshold: opts.threshold === undefined ? DEFAULT_HEAT_THRESHOLD : numberInRange(opts.threshold, `${param}.threshold`, 0, 1),
    minArea: opts.minArea === undefined ? DEFAULT_MIN_AREA : numberInRange(opts.minArea, `${param}.minArea`, 0, 1),
    connectivity: opts.connectivity === undefined ? DEFAULT_CONNECTIVITY : connectivity(opts.connectivity, `${param}.connectivity`),
    maxInstances:
      opts.maxInstances === undefined ? DEFAULT_MAX_INSTANCES : integerInRange(opts.maxInstances, `${param}.maxInstances`, 1),
  };
}

function connectivity(value: unknown, param: string): 4 | 8 {
  if (typeof value !== 'number') throw invalidType('4 or 8', param, value);
  if (value !== 4 && value !== 8) throw invalidRange('4 or 8', param, value);
  return value;
}

/**
 * Splits a heat map into candidate instances: pixels strictly above `threshold`, grouped into
 * connected components (8- or 4-connectivity), components smaller than
 * max(1, ceil(minArea · width · height)) pixels dropped, the rest sorted by peak response
 * (descending; then larger area first, then the earlier peak in row-major order) and cut to
 * `maxInstances`.
 * @param heat height × width responses, row-major (values are not checked to lie in [0, 1]).
 * @throws TypeError / RangeError for a heat map of the wrong type or length, or invalid options.
 */
export function findInstances(heat: Float32Array, width: number, height: number, options: InstanceOptions = {}): Instance[] {
  const w = integerInRange(width, 'width', 1);
  const h = integerInRange(height, 'height', 1);
  if (!(heat instanceof Float32Array)) throw invalidType(`a Float32Array of ${w * h} values`, 'heat', heat);
  if (heat.length !== w * h) throw invalidRange(`a Float32Array of width × height = ${w * h} values`, 'heat', heat);
  const settings = instanceSettings(options as Record<string, unknown>);
  const minPixels = Math.max(1, Math.ceil(settings.minArea * w * h));

  const runs = componentRuns(heat, w, h, settings.threshold, settings.connectivity);
  const stats = componentStats(heat, runs, w);
  const kept = stats.filter((s) => s.area >= minPixels);
  kept.sort((a, b) => b.max - a.max || b.area - a.area || a.peak - b.peak);
  return kept.slice(0, settings.maxInstances).map((s) => {
    const mask = new Uint8Array(w * h);
    for (let r = s.firstRun; r <= s.lastRun; r++) {
      if (runs.label[r] === s.label) mask.fill(1, runs.start[r], runs.end[r]);
    }
    return {
      peak: { x: s.peak % w, y: Math.floor(s.peak / w) },
      box: [s.x0, s.y0, s.x1, s.y1],
      area: s.area,
      maxResponse: s.max,
      meanResponse: s.sum / s.area,
      mask,
    };
  });
}

/**
 * Connected components of the pixels above `threshold`: labels[i] = 1..count for foreground
 * pixels, 0 for background, numbered in the row-major order of each component's first pixel.
 */
export function labelComponents(
  heat: Float32Array,
  width: number,
  height: number,
  threshold: number,
  connectivity: 4 | 8,
): { labels: Int32Array; count: number } {
  const runs = componentRuns(heat, width, height, threshold, connectivity);
  return { labels: labelImage(runs, width * height), count: runs.components };
}

interface ComponentStats {
  label: number;
  area: number;
  sum: number;
  max: number;
  /** Row-major index of the first pixel with the maximum. */
  peak: number;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  /** The component's first and last run. */
  firstRun: number;
  lastRun: number;
}

/**
 * Area, response sum and maximum, peak, bounds of each component, in label order. Pixels are
 * visited in row-major order, as in a pass over the label image: the same sums, the same peaks.
 */
function componentStats(heat: Float32Array, runs: Runs, width: number): ComponentStats[] {
  const stats: ComponentStats[] = Array.from({ length: runs.components }, (_, k) => ({
    label: k + 1,
    area: 0,
    sum: 0,
    max: -Infinity,
    peak: -1,
    x0: Infinity,
    y0: Infinity,
    x1: -1,
    y1: -1,
    firstRun: -1,
    lastRun: -1,
  }));
  for (let r = 0; r < runs.count; r++) {
    const s = stats[runs.label[r] - 1];
    const a = runs.start[r];
    const b = runs.end[r];
    if (s.firstRun < 0) s.firstRun = r;
    s.lastRun = r;
    s.area += b - a;
    // (in locals: the same additions in the same order, without a property write per pixel)
    let { sum, max, peak } = s;
    for (let i = a; i < b; i++) {
      const v = heat[i];
      sum += v;
      if (v > max) {
        max = v;
        peak = i;
      }
    }
    s.sum = sum;
    s.max = max;
    s.peak = peak;
    const y = Math.floor(a / width);
    s.x0 = Math.min(s.x0, a - y * width);
    s.x1 = Math.max(s.x1, b - 1 - y * width);
    s.y0 = Math.min(s.y0, y);
    s.y1 = Math.max(s.y1, y);
  }
  return stats;
}
