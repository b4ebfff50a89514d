// Prompt validation and packing into the flat arrays the native decoder takes (NativePrompt).
import { invalidRange } from './errors.js';
import { Mask, maskSource } from './mask.js';
import { MASK_PROMPT_LOGIT, rasterizeScribbles, sourceToLogitsAsync, type MaskFrame } from './mask-prompt.js';
import type { NativeMaskSource, NativePrompt } from './native.js';
import { scribbleToPoints } from './scribble.js';
import { binaryMask, box, copyBytes, float32Array, MAX_ARRAY_LENGTH, maskSize, optionalArray, plainObject, point, scribble } from './validate.js';
import type { BinaryMask, Box, Point, Scribble } from './types.js';

/** What to segment. At least one of `points`, `scribbles`, `boxes`, `mask` or `maskInput` is required. */
export interface Prompt {
  /**
   * Clicks in pixels of the original image, label 1 positive / 0 negative. With several boxes,
   * every box is decoded with all these points. Default: none.
   */
  points?: Point[];
  /**
   * Polylines `{ path: [x, y][], label }` in pixels of the original image, label 1 positive /
   * 0 negative. Each becomes up to 8 clicks evenly spaced along its length, endpoints included
   * (one every max(width, height) / 32 pixels; see `scribbleToPoints`), decoded after `points`,
   * scribble by scribble. Default: none.
   */
  scribbles?: Scribble[];
  /**
   * Boxes `[x0, y0, x1, y1]` in pixels of the original image. Each box is decoded as its own
   * prompt set (one set of masks per box), all in one decoder call. Default: none.
   */
  boxes?: Box[];
  /**
   * Dense mask prompt: low-resolution logits, lowResSize × lowResSize row-major (256 × 256 for
   * SAM), usually a previous result's `Mask.lowResLogits`. Used for every box. Exclusive with
   * `mask` (giving both is a RangeError). Default: none.
   */
  maskInput?: Float32Array;
  /**
   * Dense mask prompt as a binary mask at image size `{ data, width, height }` (width × height
   * bytes, 0 outside, 1 or 255 inside; width and height must be the image's), e.g. a user's
   * selection or a previous result's `Mask` (one from an `rle` decode is read from its run
   * lengths, without decoding its pixels in JavaScript). It is converted here to the low-res logits that
   * `maskInput` takes, framed like SAM's preprocessing frames the image (see `maskToLogits`):
   * resized to the processor's longest-edge size, zero-padded to the square model input, area-
   * averaged down to lowResSize × lowResSize, and each cell's covered fraction f mapped to
   * clamp(ln(f / (1 − f)), −L, L) with L = MASK_PROMPT_LOGIT = ln 999 ≈ 6.9. Used for every box;
   * positive `dense` scribbles are OR-ed into it. Exclusive with `maskInput` (giving both is a
   * RangeError): pass a previous result's `lowResLogits` as `maskInput` when you have them, they
   * carry SAM's own confidence. Default: none.
   */
  mask?: BinaryMask;
}

/** Decoder settings for one segment() call. */
export interface DecodeSettings {
  /** Return SAM's 3 multimask outputs instead of the single-mask output. */
  multimask: boolean;
  /** Logit threshold for the binary masks. */
  threshold: number;
  /** The masks as COCO run lengths instead of bytes (SegmentOptions.rle). Default: false. */
  rle?: boolean;
}

/** The most points (clicks and the points scribbles turn into) one prompt may hold. */
export const MAX_PROMPT_POINTS = 4096;
/** The most boxes one prompt may hold (each is a prompt set of its own). */
export const MAX_PROMPT_BOXES = 4096;
/**
 * The most points one decode takes over all its prompt sets: boxes × points, as every box's set
 * holds every point (the decoder's work and memory grow with it: 1024 × 1024 took 6 s and 480 MB
 * on the tiny test model; 4096 × 4096 on sam-vit-base would take hours). 256 × 256, the server's
 * largest prompt, fits.
 */
export const MAX_PROMPT_SET_POINTS = 65536;
/** SAM's multimask outputs per prompt set (num_multimask_outputs, 3 in every published checkpoint). */
const MULTIMASK_OUTPUTS = 3;

/** The dense mask prompt of a checked prompt, still to be converted to logits (`denseMaskPrompt`). */
interface DensePrompt {
  mask: PromptMask | null;
  maskInput: Float32Array | null;
  /** The positive `dense` scribbles. */
  strokes: Scribble[];
  width: number;
  height: number;
  frame: MaskFrame;
}

/** A prompt checked against an image and packed, except for a dense mask prompt to convert. */
export interface CheckedPrompt {
  native: NativePrompt;
  dense: DensePrompt | null;
}

/**
 * Validates a prompt against a width × height image and packs it for the native decoder, as
 * `toNativePrompt`, but leaves a binary `mask` or `dense` scribbles unconverted (`dense`): every
 * error `toNativePrompt` throws, without its work over the mask's pixels.
 */
export function checkPrompt(
  prompt: unknown,
  width: number,
  height: number,
  lowResSize: number,
  settings: DecodeSettings,
  frame?: MaskFrame,
): CheckedPrompt {
  const obj = plainObject(prompt, 'prompt', 'an object {points?, scribbles?, boxes?, mask?, maskInput?}');
  // Array.from, not map: it visits the holes of a sparse array too (as undefined, refused by name).
  const clicks = Array.from(optionalArray(obj.points, 'prompt.points', 'an array of points {x, y, label}') ?? [], (p, i) =>
    point(p, `prompt.points[${i}]`, width, height),
  );
  const scribbles = Array.from(
    optionalArray(obj.scribbles, 'prompt.scribbles', 'an array of scribbles {path, label}') ?? [],
    (s, i) => scribble(s, `prompt.scribbles[${i}]`, width, height),
  );
  const points = [...clicks, ...scribbles.flatMap((s) => scribbleToPoints(s, width, height))];
  const boxes = Array.from(optionalArray(obj.boxes, 'prompt.boxes', 'an array of boxes [x0, y0, x1, y1]') ?? [], (b, i) =>
    box(b, `prompt.boxes[${i}]`, width, height),
  );
  if (points.length > MAX_PROMPT_POINTS) {
    throw invalidRange(
      `at most ${MAX_PROMPT_POINTS} points, scribble points included (got ${points.length})`,
      scribbles.length > 0 ? 'prompt.points and prompt.scribbles' : 'prompt.points',
      obj.points,
    );
  }
  if (boxes.length > MAX_PROMPT_BOXES) {
    throw invalidRange(`at most ${MAX_PROMPT_BOXES} boxes`, 'prompt.boxes', obj.boxes);
  }
  if (boxes.length * points.length > MAX_PROMPT_SET_POINTS) {
    const what = `at most ${MAX_PROMPT_SET_POINTS} points over all boxes (each box takes every point: ${boxes.length} × ${points.length})`;
    throw invalidRange(what, 'prompt', prompt);
  }
  const logits = lowResSize * lowResSize;
  const maskInput =
    obj.maskInput === undefined
      ? null
      : float32Array(
          obj.maskInput,
          'prompt.maskInput',
          logits,
          `a Float32Array of ${logits} finite values (${lowResSize}x${lowResSize} logits)`,
        );
  const mask = obj.mask === undefined ? null : promptMask(obj.mask, width, height);
  if (mask !== null && maskInput !== null) {
    throw invalidRange('either mask or maskInput, not both', 'prompt', prompt);
  }
  const strokes = scribbles.filter((s) => s.dense === true && s.label === 1);
  const convert = mask !== null || strokes.length > 0;
  if (points.length === 0 && boxes.length === 0 && maskInput === null && !convert) {
    throw invalidRange('at least one of points, scribbles, boxes, mask or maskInput', 'prompt', prompt);
  }
  if (convert && frame === undefined) {
    throw new Error('prompt.mask and dense scribbles need the model input frame; use Segmenter.segment()');
  }

  const promptCount = Math.max(1, boxes.length);
  const n = points.length;
  return {
    native: {
      promptCount,
      ...packPoints(points, promptCount),
      pointsPerPrompt: n,
      boxes: boxes.length === 0 ? null : Float32Array.from(boxes.flat()),
      // (a copy: the caller may change its array while the decode waits in the queue)
      maskInput: convert ? null : (maskInput?.slice() ?? null),
      multimask: settings.multimask,
      threshold: settings.threshold,
      rle: settings.rle === true,
    },
    dense: convert ? { mask, maskInput, strokes, width, height, frame: frame as MaskFrame } : null,
  };
}

/**
 * Validates a prompt against a width × height image and packs it for the native decoder:
 * P = max(1, boxes.length) prompt sets, each with all N points (SAM's padding point is added by
 * the native side, not here). A binary `mask` and `dense` scribbles become the dense prompt's
 * logits off the JS thread (`maskToLogitsAsync`); the mask's bytes are read before the first await.
 * @param frame where the image lies in the model input, needed to convert `mask` and `dense`
 *   scribbles (without it, they are refused).
 */
export async function toNativePrompt(
  prompt: unknown,
  width: number,
  height: number,
  lowResSize: number,
  settings: DecodeSettings,
  frame?: MaskFrame,
): Promise<NativePrompt> {
  const { native, dense } = checkPrompt(prompt, width, height, lowResSize, settings, frame);
  // (the masks of one decode are one array: at most 2^32 − 1 bytes, or run lengths of as many
  // pixels; checked here, at the image's size, as checkPrompt also runs before it is known)
  const maskPixels = native.promptCount * (settings.multimask ? MULTIMASK_OUTPUTS : 1) * width * height;
  if (maskPixels > MAX_ARRAY_LENGTH) {
    const what = `boxes whose masks total at most 2^32 - 1 pixels (boxes × masks per box × width × height = ${maskPixels}; decode fewer boxes per call)`;
    throw invalidRange(what, 'prompt.boxes', (prompt as { boxes?: unknown }).boxes);
  }
  if (dense !== null) native.maskInput = await denseMaskPrompt(dense);
  return native;
}

/**
 * @internal The low-res logits of a prompt's dense part (its `mask`, its `dense` scribbles, with
 * `maskInput` when they are drawn into it) for a width × height image at `frame`, as
 * toNativePrompt converts it; undefined for a prompt without one. With `maskInput` set to them
 * and the mask and dense scribbles left out, the prompt decodes as it did (segmentStream converts
 * its prompt once per frame size).
 */
export async function denseLogits(
  prompt: Prompt,
  width: number,
  height: number,
  lowResSize: number,
  settings: DecodeSettings,
  frame: MaskFrame,
): Promise<Float32Array | undefined> {
  const { dense } = checkPrompt(prompt, width, height, lowResSize, settings, frame);
  return dense === null ? undefined : denseMaskPrompt(dense);
}

/**
 * The low-res logits of the dense prompt: `mask` converted, with the positive `dense` scribbles
 * drawn in. With `mask` (or neither), the strokes are OR-ed into the binary mask before the
 * conversion; with `maskInput`, each cell the strokes touch takes the larger of its logit and the
 * strokes' own logit there.
 */
async function denseMaskPrompt({ mask, maskInput, strokes, width, height, frame }: DensePrompt): Promise<Float32Array> {
  if (maskInput === null) {
    // the coverage reads any non-zero byte as inside: the mask as given, or a copy to draw into
    if (strokes.length === 0 && mask !== null) return sourceToLogitsAsync(mask.source, width, height, frame);
    const bits = mask === null ? new Uint8Array(width * height) : copyBytes(mask.mask.data);
    return sourceToLogitsAsync(rasterizeScribbles(strokes, width, height, bits), width, height, frame);
  }
  const out = maskInput.slice(); // (copied before the await, as the caller gave it)
  const stroked = await sourceToLogitsAsync(rasterizeScribbles(strokes, width, height), width, height, frame);
  for (let i = 0; i < out.length; i++) {
    if (stroked[i] > -MASK_PROMPT_LOGIT) out[i] = Math.max(out[i], stroked[i]);
  }
  return out;
}

/** `prompt.mask` checked: the mask as given (whose `data` dense scribbles are drawn into a copy of) and what the conversion reads. */
interface PromptMask {
  mask: BinaryMask;
  source: NativeMaskSource;
}

/** A mask the library holds as row runs (an Instance's component), and the size they cover. */
export interface MaskRuns {
  runs: Int32Array;
  width: number;
  height: number;
}

/** Prompt masks the library made (`lazyPromptMask`), and where their runs are. */
const lazyRuns = new WeakMap<object, () => MaskRuns | undefined>();

/**
 * @internal A prompt mask for one of the library's masks held as runs (a referring `Instance`'s
 * component): its `data` is `decode()`d on first use, and a prompt given it is converted from the
 * runs `runs()` returns, in the native core, without that decode, when they cover the image's
 * size; otherwise (`undefined`: the mask was made or replaced since) its `data` is checked and
 * converted as any `{ data, width, height }`.
 */
export function lazyPromptMask(width: number, height: number, decode: () => Uint8Array, runs: () => MaskRuns | undefined): BinaryMask {
  const mask = {
    width,
    height,
    get data(): Uint8Array {
      return decode();
    },
  };
  lazyRuns.set(mask, runs);
  return mask;
}

/** `prompt.mask`: `{ data, width, height }`, a `Mask`, or a lazyPromptMask, at the image's size. */
function promptMask(value: unknown, width: number, height: number): PromptMask {
  if (value instanceof Mask) {
    maskSize(value, 'prompt.mask', width, height);
    // (its run lengths were checked to sum to its size when it was made; its bytes are checked
    // again here, as a buffer can be detached since)
    const source = maskSource(value);
    return { mask: value, source: source instanceof Uint8Array ? binaryMask({ data: source, width, height }, 'prompt.mask', width, height).data : source };
  }
  const lazy = typeof value === 'object' && value !== null ? lazyRuns.get(value) : undefined;
  const own = lazy?.();
  if (own !== undefined && own.width === width && own.height === height) {
    maskSize(value as BinaryMask, 'prompt.mask', width, height);
    return { mask: value as BinaryMask, source: own.runs };
  }
  const mask = binaryMask(value, 'prompt.mask', width, height);
  return { mask, source: mask.data };
}

/** points [P, N, 2] and labels [P, N]: the same N points repeated for each of the P sets. */
function packPoints(points: Point[], promptCount: number): Pick<NativePrompt, 'points' | 'labels'> {
  const n = points.length;
  if (n === 0) return { points: null, labels: null };
  const coords = new Float32Array(promptCount * n * 2);
  const labels = new Int32Array(promptCount * n);
  for (let p = 0; p < promptCount; p++) {
    points.forEach((pt, i) => {
      coords[(p * n + i) * 2] = pt.x;
      coords[(p * n + i) * 2 + 1] = pt.y;
      labels[p * n + i] = pt.label;
    });
  }
  return { points: coords, labels };
}
