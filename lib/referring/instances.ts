// Response map → candidate instances: a referring heat map (probabilities in [0, 1] at image
// size, e.g. `Referrer.heatmap().data`) is thresholded and split into connected components, each
// a candidate instance the referring expression may mean (TRIS: the text-to-image response map
// localises every instance it matches; one component per instance). Pure functions, no model.
import { invalidRange, invalidType } from '../errors.js';
import { box, finiteNumber, integerInRange, numberInRange, optionalObject, plainObject } from '../validate.js';
import { native, type NativeInstances } from '../native.js';
import type { MaskRuns } from '../prompt.js';
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
  /** The component as a binary mask at image size (width × height bytes, 1 inside), made on first use. */
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
    connectivity: opts.connectivity === undefined ? DEFAULT_CONNECTIVITY : connectivityOf(opts.connectivity, `${param}.connectivity`),
    maxInstances:
      opts.maxInstances === undefined ? DEFAULT_MAX_INSTANCES : integerInRange(opts.maxInstances, `${param}.maxInstances`, 1),
  };
}

function connectivityOf(value: unknown, param: string): 4 | 8 {
  if (typeof value !== 'number') throw invalidType('4 or 8', param, value);
  if (value !== 4 && value !== 8) throw invalidRange('4 or 8', param, value);
  return value;
}

/** Checked findInstances arguments. */
function instanceArgs(heat: Float32Array, width: number, height: number, options: InstanceOptions) {
  const w = integerInRange(width, 'width', 1);
  const h = integerInRange(height, 'height', 1);
  if (!(heat instanceof Float32Array)) throw invalidType(`a Float32Array of ${w * h} values`, 'heat', heat);
  if (heat.length !== w * h) throw invalidRange(`a Float32Array of width × height = ${w * h} values`, 'heat', heat);
  if (w * h > MAX_COMPONENT_PIXELS) throw invalidRange(`at most ${MAX_COMPONENT_PIXELS} pixels`, 'width × height', w * h);
  const settings = instanceSettings(optionalObject(options, 'options', INSTANCE_OPTIONS_WHAT));
  const minPixels = Math.max(1, Math.ceil(settings.minArea * w * h));
  // (more instances than pixels are never found: the count the native side takes stays within 2^53)
  return [heat, w, h, settings.threshold, settings.connectivity, minPixels, Math.min(settings.maxInstances, w * h)] as const;
}

const INSTANCE_OPTIONS_WHAT = 'an object {threshold?, minArea?, connectivity?, maxInstances?}';

/** The largest heat map findInstances and labelComponents take: 2^31 − 1 pixels (46341²). */
export const MAX_COMPONENT_PIXELS = 2 ** 31 - 1;

/** The runs of the instances findInstances made, while their mask is neither made nor assigned. */
const ownRuns = new WeakMap<Instance, () => MaskRuns | undefined>();

/**
 * @internal An instance's component as row runs of the heat map's width × height, so that its
 * mask prompt need not be made in JavaScript: only for instances findInstances made, until their
 * `mask` is read or assigned (then `undefined`: use `mask`).
 */
export function instanceRuns(instance: Instance): MaskRuns | undefined {
  return ownRuns.get(instance)?.();
}

/**
 * @internal `instance` with another box (a target box's clip), as `{ ...instance, box }` makes it:
 * its own fields and its mask as they are now. While findInstances' runs stand for that mask, the
 * copy keeps them and makes its mask from them only when read.
 */
export function withBox(instance: Instance, box: Box): Instance {
  const runs = ownRuns.get(instance)?.();
  if (runs === undefined) return { ...instance, box };
  let mask: Uint8Array | undefined;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(instance)) {
    if (key === 'mask') {
      Object.defineProperty(copy, 'mask', {
        get: () => (mask ??= runsMask(runs)),
        set: (value: Uint8Array) => {
          mask = value;
        },
        enumerable: true,
        configurable: true,
      });
    } else {
      copy[key] = key === 'box' ? box : (instance as unknown as Record<string, unknown>)[key];
    }
  }
  ownRuns.set(copy as unknown as Instance, () => (mask === undefined ? runs : undefined));
  return copy as unknown as Instance;
}

/** A width × height mask, 1 on the row runs. */
function runsMask({ runs, width, height }: MaskRuns): Uint8Array {
  const mask = new Uint8Array(width * height);
  for (let i = 0; i < runs.length; i += 2) mask.fill(1, runs[i], runs[i + 1]);
  return mask;
}

/**
 * `instances` as instanceMasks and instancePrompts take them (findInstances' or the caller's own)
 * for a width × height image: each one's box, peak and mean response checked, and with `withMask`
 * its mask unless it is still findInstances' runs of that size. The array is returned as it is:
 * instanceRuns and the results know instances by identity.
 */
export function instanceList(value: unknown, param: string, width: number, height: number, withMask: boolean): readonly Instance[] {
  const what = 'an instance {peak, box, meanResponse, mask} (findInstances)';
  if (!Array.isArray(value)) throw invalidType('an array of instances (findInstances)', param, value);
  for (let i = 0; i < value.length; i++) {
    const inst = plainObject(value[i], `${param}[${i}]`, what);
    box(inst.box, `${param}[${i}].box`, width, height);
    const peak = plainObject(inst.peak, `${param}[${i}].peak`, 'an object {x, y}');
    numberInRange(peak.x, `${param}[${i}].peak.x`, 0, width);
    numberInRange(peak.y, `${param}[${i}].peak.y`, 0, height);
    finiteNumber(inst.meanResponse, `${param}[${i}].meanResponse`);
    const runs = withMask ? instanceRuns(value[i] as Instance) : undefined;
    if (withMask && (runs === undefined || runs.width !== width || runs.height !== height)) {
      const mask = inst.mask;
      const bytes = `a Uint8Array of width × height = ${width * height} bytes`;
      if (!(mask instanceof Uint8Array)) throw invalidType(bytes, `${param}[${i}].mask`, mask);
      if (mask.length !== width * height) throw invalidRange(bytes, `${param}[${i}].mask`, mask);
    }
  }
  return value as readonly Instance[];
}

/** Instances from the native result: statistics as they are, each mask made from its runs on first use. */
function instancesOf(found: NativeInstances, width: number, height: number): Instance[] {
  const { stats, runs, runCounts } = found;
  let run = 0;
  return Array.from(runCounts, (count, k) => {
    const [peak, x0, y0, x1, y1, area, max, sum] = stats.subarray(8 * k, 8 * k + 8);
    const own = runs.subarray(2 * run, 2 * (run += count));
    let mask: Uint8Array | undefined;
    const instance: Instance = {
      peak: { x: peak % width, y: Math.floor(peak / width) },
      box: [x0, y0, x1, y1] as Box,
      area,
      maxResponse: max,
      meanResponse: sum / area,
      get mask(): Uint8Array {
        return (mask ??= runsMask({ runs: own, width, height }));
      },
      set mask(value: Uint8Array) {
        mask = value;
      },
    };
    ownRuns.set(instance, () => (mask === undefined ? { runs: own, width, height } : undefined));
    return instance;
  });
}

/**
 * Splits a heat map into candidate instances: pixels strictly above `threshold`, grouped into
 * connected components (8- or 4-connectivity), components smaller than
 * max(1, ceil(minArea · width · height)) pixels dropped, the rest sorted by peak response
 * (descending; then larger area first, then the earlier peak in row-major order) and cut to
 * `maxInstances`. Runs in the native core (native/masks/components.h) on the calling thread;
 * each instance's `mask` is made on first use.
 * @param heat height × width responses, row-major (values are not checked to lie in [0, 1]).
 * @throws TypeError / RangeError for a heat map of the wrong type or length, or invalid options.
 */
export function findInstances(heat: Float32Array, width: number, height: number, options: InstanceOptions = {}): Instance[] {
  const args = instanceArgs(heat, width, height, options);
  return instancesOf(native().findInstances(...args), args[1], args[2]);
}

/**
 * findInstances in a worker thread. @internal It reads `heat` in place: for heat maps nobody
 * else holds (a Referrer's, the server's cache), which must stay as they are until it settles.
 */
export async function findInstancesAsync(
  heat: Float32Array,
  width: number,
  height: number,
  options: InstanceOptions = {},
): Promise<Instance[]> {
  const args = instanceArgs(heat, width, height, options);
  return instancesOf(await native().findInstancesAsync(...args), args[1], args[2]);
}

/**
 * Connected components of the pixels above `threshold`: labels[i] = 1..count for foreground
 * pixels, 0 for background, numbered in the row-major order of each component's first pixel.
 * @throws TypeError / RangeError for a heat map of the wrong type or length, a threshold that is
 *   not a finite number, or a connectivity other than 4 and 8.
 */
export function labelComponents(
  heat: Float32Array,
  width: number,
  height: number,
  threshold: number,
  connectivity: 4 | 8,
): { labels: Int32Array; count: number } {
  const [, w, h] = instanceArgs(heat, width, height, {});
  return native().componentLabels(heat, w, h, finiteNumber(threshold, 'threshold'), connectivityOf(connectivity, 'connectivity'));
}
