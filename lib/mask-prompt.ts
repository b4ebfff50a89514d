// Binary masks → SAM's dense mask prompt. The decoder takes a mask prompt as low-resolution
// logits framed like its input image: the image resized so that its longest edge is the
// processor's longest_edge, zero-padded at the right and bottom to imageSize × imageSize, and
// seen at lowResSize × lowResSize (256 × 256 for a 1024-px model). A binary mask at image size
// is brought into that frame here, checked in TypeScript; the pass over its pixels runs in the
// native core (native/masks/coverage.h), off the JS thread for segment() (maskToLogitsAsync).
import { invalidRange, invalidType } from './errors.js';
import type { BinaryMask, Scribble } from './types.js';
import { native, type NativeMaskSource } from './native.js';
import { arrayLength, integerInRange, plainObject, scribble, sizedMask } from './validate.js';

/**
 * Magnitude L of the logits a binary mask becomes: a low-res cell fully inside the mask is +L,
 * fully outside (or in the padding) −L, and a cell the mask covers in part is the log-odds of
 * the covered fraction clipped to ±L. L = ln(999) ≈ 6.9 is the log-odds of 0.999 (micro-sam's
 * choice for the same conversion): far enough from 0 to be decisive, within the range of the
 * logits SAM itself outputs (mostly |logit| < 20), so that the decoder reads it like its own.
 */
export const MASK_PROMPT_LOGIT = Math.log(999);

/**
 * Brush width of a dense scribble (`Scribble.dense`), as a fraction of the image's longest side:
 * max(width, height) / 64 pixels (16 px on a 1024-px image, 4 cells of SAM's 256 × 256 low-res
 * grid), at least 1 pixel.
 */
export const SCRIBBLE_BRUSH_DIVISOR = 64;

/** The largest `MaskFrame.lowResSize` (4096² logits: 64 MiB); SAM's is 256. */
export const MAX_LOW_RES_SIZE = 4096;

/** Where the original image lies in the model's input frame. */
export interface MaskFrame {
  /** Size of the image after the processor's longest-edge resize (before padding). */
  resizedWidth: number;
  resizedHeight: number;
  /** Side of the square, zero-padded model input (e.g. 1024). */
  imageSize: number;
  /** Side of the low-res logits grid (e.g. 256). */
  lowResSize: number;
}

/** A MaskFrame with integer sides ≥ 1 and the resized image inside the model input. */
function maskFrame(value: unknown, param: string): MaskFrame {
  const obj = plainObject(value, param, 'an object {resizedWidth, resizedHeight, imageSize, lowResSize}');
  const imageSize = integerInRange(obj.imageSize, `${param}.imageSize`, 1, 2 ** 31 - 1);
  return {
    resizedWidth: integerInRange(obj.resizedWidth, `${param}.resizedWidth`, 1, imageSize),
    resizedHeight: integerInRange(obj.resizedHeight, `${param}.resizedHeight`, 1, imageSize),
    imageSize,
    lowResSize: integerInRange(obj.lowResSize, `${param}.lowResSize`, 1, MAX_LOW_RES_SIZE),
  };
}


/**
 * The processor's longest-edge resize of a width × height image: the same arithmetic as the
 * native preprocessing (ref: transformers' SamImageProcessor._get_preprocess_shape,
 * `int(x * longest_edge / max(h, w) + 0.5)` in float64).
 */
export function resizedSize(width: number, height: number, longestEdge: number): [width: number, height: number] {
  const scale = longestEdge / Math.max(width, height);
  return [Math.floor(width * scale + 0.5), Math.floor(height * scale + 0.5)];
}

/**
 * Refuses (RangeError naming `param`) an image whose shorter side the longest-edge resize would
 * round to 0 pixels: a 2049 × 1 image for a 1024-px model.
 */
export function checkResizable(width: number, height: number, longestEdge: number, param: string): void {
  const [w, h] = resizedSize(width, height, longestEdge);
  if (w < 1 || h < 1) {
    throw invalidRange(
      `an image whose longest side is at most ${2 * longestEdge} times its shortest (it is resized to ${longestEdge} px)`,
      param,
      `${width}x${height}`,
    );
  }
}

/**
 * The fraction of each low-res cell covered by a binary mask (any non-zero byte is inside),
 * lowResSize × lowResSize row-major, computed by the native core on the calling thread
 * (native/masks/coverage.h).
 *
 * This is the mask resized to the model's input frame and downsampled to lowResSize by area
 * averaging (a box filter, exact: no sampling): original pixel (i, j) covers [j, j + 1) × [i, i + 1),
 * which the resize stretches by resizedWidth / width and resizedHeight / height; low-res cell
 * (r, c) covers [c, c + 1) × [r, r + 1) · imageSize / lowResSize of the frame. The padding is
 * outside the mask (fraction 0). `mask` and `frame` must be valid (see `maskToLogits`).
 */
export function maskCoverage(mask: BinaryMask, frame: MaskFrame): Float32Array {
  return native().maskCoverage(...coverageArgs(mask, frame));
}

function coverageArgs({ data, width, height }: BinaryMask, f: MaskFrame) {
  return [data, width, height, f.resizedWidth, f.resizedHeight, f.imageSize, f.lowResSize] as const;
}

/**
 * A binary mask as SAM mask-prompt logits (lowResSize × lowResSize row-major): the covered
 * fraction f of each low-res cell (see `maskCoverage`) becomes clamp(ln(f / (1 − f)), −L, L) with
 * L = MASK_PROMPT_LOGIT: +L inside, −L outside and in the padding, log-odds on the boundary.
 */
export function maskToLogits(mask: BinaryMask, frame: MaskFrame): Float32Array {
  // (the coverage made into logits where it is measured: native masks::coverageToLogits)
  return native().maskCoverage(...coverageArgs(sizedMask(mask, 'mask'), maskFrame(frame, 'frame')), MASK_PROMPT_LOGIT);
}

/**
 * maskToLogits with the pass over the mask's pixels in a worker thread (a 12 MP mask: ~60 ms of
 * JS-thread work before); the mask's bytes are copied before it returns.
 */
export async function maskToLogitsAsync(mask: BinaryMask, frame: MaskFrame): Promise<Float32Array> {
  const { data, width, height } = sizedMask(mask, 'mask');
  return sourceToLogitsAsync(data, width, height, frame);
}

/**
 * @internal maskToLogitsAsync of a width × height mask given as any `NativeMaskSource` (run
 * lengths are checked, and decoded, in the worker thread); the source is copied before it returns.
 */
export async function sourceToLogitsAsync(source: NativeMaskSource, width: number, height: number, frame: MaskFrame): Promise<Float32Array> {
  const f = maskFrame(frame, 'frame');
  // (the logits made in the worker too: 65 536 logarithms at lowResSize 256 were 0.6 ms of the JS thread)
  return native().maskCoverageAsync(source, width, height, f.resizedWidth, f.resizedHeight, f.imageSize, f.lowResSize, MASK_PROMPT_LOGIT);
}

/**
 * The x-range [lo, hi] of row y within distance r of the segment from (ax, ay) to (ax + dx,
 * ay + dy) (len2 = dx² + dy²): a capsule, convex, so its row is one interval, the union of those of
 * its end disks and of its band. Empty: lo > hi.
 */
function capsuleRow(ax: number, ay: number, dx: number, dy: number, len2: number, y: number, r: number): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const [cx, cy] of [[ax, ay], [ax + dx, ay + dy]]) {
    const d = y - cy;
    if (d * d > r * r) continue;
    const s = Math.sqrt(r * r - d * d);
    lo = Math.min(lo, cx - s);
    hi = Math.max(hi, cx + s);
  }
  if (len2 === 0) return [lo, hi];
  const len = Math.sqrt(len2);
  const v = y - ay;
  // the band: 0 <= t <= 1 (t = ((x - ax)·dx + v·dy) / len2) and |(x - ax)·dy - v·dx| <= r·len
  let bandLo = -Infinity;
  let bandHi = Infinity;
  if (dx !== 0) {
    const [p, q] = [ax - (v * dy) / dx, ax + (len2 - v * dy) / dx];
    [bandLo, bandHi] = [Math.min(p, q), Math.max(p, q)];
  } else if (v * dy < 0 || v * dy > len2) {
    return [lo, hi];
  }
  if (dy !== 0) {
    const [p, q] = [ax + (v * dx - r * len) / dy, ax + (v * dx + r * len) / dy];
    bandLo = Math.max(bandLo, Math.min(p, q));
    bandHi = Math.min(bandHi, Math.max(p, q));
  } else if (Math.abs(v) > r) {
    return [lo, hi];
  }
  if (bandLo <= bandHi) {
    lo = Math.min(lo, bandLo);
    hi = Math.max(hi, bandHi);
  }
  return [lo, hi];
}

/**
 * Rasterises scribbles into a width × height binary mask (0/1), drawn with a round brush of
 * width max(width, height) / SCRIBBLE_BRUSH_DIVISOR (at least 1 px): pixel (x, y) is set when its
 * distance to the polyline is at most half the brush width. Pixels are addressed like SAM's
 * points: pixel (x, y) is the point (x, y).
 * @param into a mask to draw into (its bytes are OR-ed with 1), or a new one.
 */
export function rasterizeScribbles(
  scribbles: readonly Scribble[],
  width: number,
  height: number,
  into?: Uint8Array,
): Uint8Array {
  integerInRange(width, 'width', 1);
  integerInRange(height, 'height', 1);
  const list: unknown = scribbles;
  if (!Array.isArray(list)) throw invalidType('an array of scribbles {path, label}', 'scribbles', list);
  // Array.from, not map: holes are refused by name too.
  const checked = Array.from(list as unknown[], (s, i) => scribble(s, `scribbles[${i}]`, width, height));
  const what = `a Uint8Array of width × height = ${width * height} bytes`;
  if (into !== undefined && !(into instanceof Uint8Array)) throw invalidType(what, 'into', into);
  if (into !== undefined && into.length !== width * height) throw invalidRange(what, 'into', into);
  into ??= new Uint8Array(arrayLength(width * height, 'width × height', 'pixels'));
  const radius = Math.max(1, Math.max(width, height) / SCRIBBLE_BRUSH_DIVISOR) / 2;
  for (const { path } of checked) {
    const segments = path.length === 1 ? [[path[0], path[0]]] : path.slice(1).map((b, i) => [path[i], b]);
    for (const [[ax, ay], [bx, by]] of segments) {
      const x0 = Math.max(0, Math.ceil(Math.min(ax, bx) - radius));
      const x1 = Math.min(width - 1, Math.floor(Math.max(ax, bx) + radius));
      const y0 = Math.max(0, Math.ceil(Math.min(ay, by) - radius));
      const y1 = Math.min(height - 1, Math.floor(Math.max(ay, by) + radius));
      const dx = bx - ax;
      const dy = by - ay;
      const len2 = dx * dx + dy * dy;
      for (let y = y0; y <= y1; y++) {
        // (only the row's span of the brush's capsule, widened by a pixel, is tested: the box of a
        // diagonal stroke across a 4000² image is all of it, 16 M pixels for ~0.5 M set)
        const [lo, hi] = capsuleRow(ax, ay, dx, dy, len2, y, radius + 1);
        for (let x = Math.max(x0, Math.ceil(lo)); x <= Math.min(x1, Math.floor(hi)); x++) {
          // distance from (x, y) to the segment a → b
          const t = len2 === 0 ? 0 : Math.min(1, Math.max(0, ((x - ax) * dx + (y - ay) * dy) / len2));
          const ex = ax + t * dx - x;
          const ey = ay + t * dy - y;
          if (ex * ex + ey * ey <= radius * radius) into[y * width + x] = 1;
        }
      }
    }
  }
  return into;
}
