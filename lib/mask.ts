// One predicted mask: the binary mask at image size plus the decoder's outputs for it.
import { sharp } from './sharp.js';
import { traceContours, traceContoursAsync, type MaskPolygon } from './contours.js';
import { invalidRange, invalidType } from './errors.js';
import { encodeRLE, maskPixels, validCountsString, validRunsToMask } from './rle.js';
import { finiteNumber, integerInRange } from './validate.js';
import { native, type NativeDecodeResult } from './native.js';
import type { RLE } from './types.js';

/** Inclusive pixel bounds `[x0, y0, x1, y1]` of a mask. */
export type MaskBox = [x0: number, y0: number, x1: number, y1: number];

/** Offset around the mask threshold used by the stability score (SAM's `stability_score_offset`). */
export const STABILITY_SCORE_OFFSET = 1.0;

export interface MaskInit {
  /** height × width bytes, row-major, 0 or 1. Kept as given (a view, not a copy). Give this or `counts`. */
  data?: Uint8Array;
  /**
   * The mask as COCO run lengths instead of `data`: column-major (down each column, then the
   * next), alternating zeros and ones from a run of zeros, summing to width × height. Kept as
   * given; `data` is decoded from them on first use.
   */
  counts?: Uint32Array;
  width: number;
  height: number;
  /** The decoder's predicted IoU for this mask. */
  score: number;
  /** lowResSize × lowResSize mask logits, row-major. Kept as given (a view, not a copy). */
  lowResLogits: Float32Array;
  /** Logit threshold that produced `data`. Default: 0 (SAM's `mask_threshold`). */
  threshold?: number;
}

interface Bounds {
  box: MaskBox;
  area: number;
}

let sourceOf: (mask: Mask) => Uint8Array | Uint32Array;
let knownBounds: (mask: Mask, bounds: Float64Array) => Mask;

/**
 * @internal A mask's pixels when they are decoded, else its COCO run lengths (column-major): for
 * native code that reads either, so that a mask from an `rle` decode is never decoded in JS.
 */
export function maskSource(mask: Mask): Uint8Array | Uint32Array {
  return sourceOf(mask);
}

/**
 * A binary mask at the size of the original image.
 *
 * `data` and `lowResLogits` are views into the buffers the native decoder returned (no copies);
 * `box` and `area` come with the mask from a CPU or `rle` decode (taken in the worker), else are
 * computed on first use, as `stabilityScore` is. A mask decoded with
 * `rle: true` arrives as its COCO run lengths: `toRLE()`, `area` and `box` read them, and `data`
 * is decoded from them on first use.
 */
export class Mask {
  readonly width: number;
  readonly height: number;
  /** Predicted IoU: the decoder's own estimate of this mask's quality, in about [0, 1]. */
  readonly score: number;
  /** The decoder's mask logits at low resolution, lowResSize × lowResSize row-major (before upscaling). */
  readonly lowResLogits: Float32Array;
  /** Side of `lowResLogits` (256 for SAM). */
  readonly lowResSize: number;
  /** Logit threshold that produced `data` (0 unless segment() was given another). */
  readonly threshold: number;

  #data: Uint8Array | undefined;
  #counts: Uint32Array | undefined;
  #bounds: Bounds | undefined;
  #stability: number | undefined;

  constructor(init: MaskInit) {
    if (typeof init !== 'object' || init === null) {
      throw invalidType('an object {data | counts, width, height, lowResLogits, score, threshold?}', 'init', init);
    }
    this.width = integerInRange(init.width, 'width', 0);
    this.height = integerInRange(init.height, 'height', 0);
    const pixels = this.width * this.height;
    if (init.counts === undefined) {
      if (!(init.data instanceof Uint8Array)) throw invalidType(`a Uint8Array of ${pixels} bytes`, 'data', init.data);
      if (init.data.length !== pixels) throw invalidRange(`a Uint8Array of ${pixels} bytes`, 'data', init.data);
      this.#data = init.data;
    } else {
      if (init.data !== undefined) throw invalidRange('either data or counts, not both', 'counts', init.counts);
      const what = `a Uint32Array of run lengths summing to ${pixels}`;
      if (!(init.counts instanceof Uint32Array)) throw invalidType(what, 'counts', init.counts);
      const counts = init.counts;
      let sum = 0;
      for (let i = 0; i < counts.length; i++) sum += counts[i]; // (indexed: for-of is several times slower cold)
      if (counts.length === 0 || sum !== pixels) throw invalidRange(what, 'counts', counts);
      this.#counts = counts;
    }
    const logits = init.lowResLogits;
    const side = logits instanceof Float32Array ? Math.round(Math.sqrt(logits.length)) : 0;
    if (!(logits instanceof Float32Array)) throw invalidType('a square Float32Array', 'lowResLogits', logits);
    if (side * side !== logits.length) throw invalidRange('a square Float32Array', 'lowResLogits', logits);
    if (typeof init.score !== 'number') throw invalidType('a number', 'score', init.score);
    this.score = init.score;
    this.lowResLogits = logits;
    this.lowResSize = side;
    this.threshold = init.threshold === undefined ? 0 : finiteNumber(init.threshold, 'threshold');
  }

  /** height × width bytes, row-major: 1 inside the mask, 0 outside. */
  get data(): Uint8Array {
    // Exactly one of #data and #counts is set by the constructor.
    this.#data ??= validRunsToMask(this.#counts as Uint32Array, this.height, this.width);
    return this.#data;
  }

  /**
   * Stability score: the IoU between the mask thresholded at `threshold + 1` and at
   * `threshold - 1` (SAM's `calculate_stability_score` with `stability_score_offset = 1.0`),
   * computed on the low-resolution logits. A mask whose logits are far from the threshold
   * everywhere scores close to 1. SAM's automatic mask generator computes the same ratio on the
   * upscaled logits, so values differ slightly. 0 when no logit exceeds `threshold - 1`
   * (SAM gives NaN there, which every `>=` filter rejects too).
   */
  get stabilityScore(): number {
    if (this.#stability === undefined) {
      const high = this.threshold + STABILITY_SCORE_OFFSET;
      const low = this.threshold - STABILITY_SCORE_OFFSET;
      let intersection = 0;
      let union = 0;
      const logits = this.lowResLogits;
      for (let i = 0; i < logits.length; i++) {
        const logit = logits[i];
        if (logit > high) intersection++;
        if (logit > low) union++;
      }
      this.#stability = union === 0 ? 0 : intersection / union;
    }
    return this.#stability;
  }

  /**
   * Inclusive pixel bounds `[x0, y0, x1, y1]` of the foreground, as SAM's `batched_mask_to_box`
   * (a single-pixel mask at (x, y) gives [x, y, x, y]); `[0, 0, 0, 0]` for an empty mask.
   */
  get box(): MaskBox {
    return [...this.#computeBounds().box];
  }

  /** Number of foreground pixels. */
  get area(): number {
    return this.#computeBounds().area;
  }

  /** COCO RLE of the mask (compressed string counts, as pycocotools). */
  toRLE(): RLE {
    if (this.#counts !== undefined) return { size: [this.height, this.width], counts: validCountsString(this.#counts) };
    return encodeRLE(this.data, this.height, this.width);
  }

  /** The mask as a single-channel 8-bit PNG: 255 inside, 0 outside. Encoded off the JS thread. */
  async toPNG(): Promise<Buffer> {
    const { width, height } = this;
    // (sharp takes raw pixels of sides up to 10^8; the grey bytes must fit one buffer)
    for (const [side, name] of [[width, 'width'], [height, 'height']] as const) {
      if (side < 1 || side > 1e8) throw invalidRange('a mask side between 1 and 10^8 (to write a PNG)', name, side);
    }
    maskPixels(height, width);
    // 0/255 bytes made by the native core in a worker thread, from the pixels or straight from
    // the run lengths; sharp only writes them (12 MP: ~12 ms, where scaling or transposing the
    // mask in sharp took 40–55 ms).
    const grey = await native().maskGreyAsync(this.#source(), width, height);
    return sharp(grey, { raw: { width, height, channels: 1 } }).toColourspace('b-w').png().toBuffer();
  }

  /**
   * The mask as polygons with holes, one per 4-connected region of foreground pixels, in raster
   * order of each region's first pixel (top row first, then leftmost).
   *
   * Vertices `[x, y]` are pixel corners (integers): pixel (x, y) is the square [x, x+1] × [y, y+1],
   * so the polygons follow pixel edges exactly, and the shoelace area of `outer` minus those of
   * `holes` equals the region's pixel count. Rings are closed implicitly (the first vertex is not
   * repeated) and keep only their corners. `outer` runs clockwise on screen (positive shoelace sum
   * in image coordinates, y down) from the top-left corner of the region's first pixel; holes run
   * counter-clockwise. Pixels touching only at a corner belong to different polygons, which then
   * share that vertex; background touching the outside only at a corner is not a hole. `[]` for an
   * empty mask. Computed on each call.
   */
  toPolygons(): MaskPolygon[] {
    return traceContours(this.#source(), this.width, this.height);
  }

  /**
   * toPolygons() in a worker thread: the same polygons, for servers, where tracing a large mask
   * on the JS thread would hold up every other request (a 12 MP mask: ~20–40 ms).
   */
  async toPolygonsAsync(): Promise<MaskPolygon[]> {
    return traceContoursAsync(this.#source(), this.width, this.height);
  }

  /** The pixels when decoded, else the run lengths (the native tracer decodes them faster). */
  #source(): Uint8Array | Uint32Array {
    return this.#data ?? (this.#counts as Uint32Array);
  }

  static {
    sourceOf = (mask) => mask.#source();
    knownBounds = (mask, [x0, y0, x1, y1, area]) => {
      mask.#bounds = { box: [x0, y0, x1, y1], area };
      return mask;
    };
  }

  #computeBounds(): Bounds {
    if (this.#bounds === undefined && this.#counts !== undefined) {
      this.#bounds = boundsOfRuns(this.#counts, this.width, this.height);
    }
    if (this.#bounds === undefined && this.width * this.height === 0) this.#bounds = { box: [0, 0, 0, 0], area: 0 };
    if (this.#bounds === undefined) {
      // (the native core's pass over the pixels, vectorised: a 12 MP mask ~2 ms, 18–29 in JS)
      const [x0, y0, x1, y1, area] = native().maskBounds(this.data, this.width, this.height);
      this.#bounds = { box: [x0, y0, x1, y1], area };
    }
    return this.#bounds;
  }
}

/** @internal Box and area of a mask from its COCO run lengths, without decoding its pixels. */
export function boundsOfRuns(counts: Uint32Array, width: number, height: number): Bounds {
  const [x0, y0, x1, y1, area] = native().runsBounds(counts, width, height);
  return { box: [x0, y0, x1, y1], area };
}

/** Shapes of one native decode call, to slice its flat outputs into masks. */
export interface DecodeLayout {
  /** P, the number of prompt sets decoded. */
  promptCount: number;
  width: number;
  height: number;
  lowResSize: number;
  threshold: number;
}

/**
 * Splits a native decode result ([P, M, H, W] masks, [P, M] IoU, [P, M, L, L] logits) into
 * P × M masks in prompt order, then output order. The masks are views: nothing is copied.
 * @throws Error if the native arrays do not have the sizes the layout implies.
 */
export function masksFromDecode(result: NativeDecodeResult, layout: DecodeLayout): Mask[] {
  const { promptCount, width, height, lowResSize, threshold } = layout;
  const count = promptCount * result.masksPerPrompt;
  const pixels = width * height;
  const logits = lowResSize * lowResSize;
  // With rle, the masks come as run lengths: runsPerMask[i] of them for mask i, in `runs`.
  const runs = result.runs === undefined ? undefined : { all: result.runs, per: result.runsPerMask ?? new Uint32Array(0) };
  const runTotal = runs === undefined ? 0 : runs.per.reduce((sum, n) => sum + n, 0);
  const masksFit =
    runs === undefined
      ? result.masks.length === count * pixels
      : result.masks.length === 0 && runs.per.length === count && runs.all.length === runTotal;
  const { bounds } = result;
  const boundsFit = bounds === undefined || bounds.length === count * 5;
  if (result.iou.length !== count || !masksFit || result.lowRes.length !== count * logits || !boundsFit) {
    throw new Error(
      `Native decode returned inconsistent sizes for ${count} masks of ${width}x${height}: ` +
        `iou ${result.iou.length}, masks ${result.masks.length}, lowRes ${result.lowRes.length}` +
        (runs === undefined ? '' : `, runs ${runs.all.length}, runsPerMask ${runs.per.length}`) +
        (bounds === undefined ? '' : `, bounds ${bounds.length}`),
    );
  }
  const masks: Mask[] = [];
  let run = 0;
  for (let i = 0; i < count; i++) {
    const pixelsOrRuns =
      runs === undefined
        ? { data: result.masks.subarray(i * pixels, (i + 1) * pixels) }
        : { counts: runs.all.subarray(run, (run += runs.per[i])) };
    const mask = new Mask({
      ...pixelsOrRuns,
      width,
      height,
      score: result.iou[i],
      lowResLogits: result.lowRes.subarray(i * logits, (i + 1) * logits),
      threshold,
    });
    // (box and area from the worker: a pass over a 4K mask costs the JS thread ~1–2 ms)
    masks.push(bounds === undefined ? mask : knownBounds(mask, bounds.subarray(i * 5, i * 5 + 5)));
  }
  return masks;
}
