// A heat map at image size from CLIPSeg's logits a caller holds (e.g. saved by `heatmap --save`):
// sigmoid, then bilinear as F.interpolate (align_corners=False). The Referrer's own heat maps are
// made by the native worker.
import { invalidRange, invalidType } from '../errors.js';
import { integerInRange } from '../validate.js';

/**
 * Most heat-map pixels one call makes, over all its queries (queries × width × height): 2^28
 * float32 values, 1 GiB, made in one native buffer. One heat map of an image at sharp's default
 * `limitInputPixels` fits.
 */
export const MAX_HEATMAP_PIXELS = 2 ** 28;
/** Longest side of a heat map made here (its taps are kept per column and row). */
const MAX_HEATMAP_SIDE = 2 ** 20;

/**
 * sigmoid(logits) [size, size] resized to width × height: bilinear with half-pixel centres,
 * source coordinate (o + 0.5) · size / out − 0.5 clamped at 0, the upper neighbour clamped at
 * size − 1 (PyTorch's align_corners=False, without antialiasing). Computed in float64.
 */
export function heatmapFromLogits(logits: Float32Array, size: number, width: number, height: number): Float32Array {
  integerInRange(size, 'size', 1);
  integerInRange(width, 'width', 1, MAX_HEATMAP_SIDE);
  integerInRange(height, 'height', 1, MAX_HEATMAP_SIDE);
  if (width * height > MAX_HEATMAP_PIXELS) {
    throw invalidRange(`a heat map of at most ${MAX_HEATMAP_PIXELS} pixels`, 'width × height', width * height);
  }
  const what = `a Float32Array of size × size = ${size * size} logits`;
  if (!(logits instanceof Float32Array)) throw invalidType(what, 'logits', logits);
  if (logits.length !== size * size) throw invalidRange(what, 'logits', logits);
  const prob = new Float64Array(size * size);
  for (let i = 0; i < prob.length; i++) prob[i] = 1 / (1 + Math.exp(-logits[i]));
  const tx = linearTaps(size, width);
  const ty = linearTaps(size, height);
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const { i0: y0, i1: y1, w1: wy } = ty[y];
    const r0 = y0 * size;
    const r1 = y1 * size;
    for (let x = 0; x < width; x++) {
      const { i0: x0, i1: x1, w1: wx } = tx[x];
      const top = prob[r0 + x0] * (1 - wx) + prob[r0 + x1] * wx;
      const bottom = prob[r1 + x0] * (1 - wx) + prob[r1 + x1] * wx;
      out[y * width + x] = top * (1 - wy) + bottom * wy;
    }
  }
  return out;
}

function linearTaps(inSize: number, outSize: number): { i0: number; i1: number; w1: number }[] {
  const scale = inSize / outSize;
  const taps = [];
  for (let o = 0; o < outSize; o++) {
    const src = Math.max(scale * (o + 0.5) - 0.5, 0);
    const i0 = Math.min(Math.floor(src), inSize - 1);
    const w1 = Math.min(Math.max(src - i0, 0), 1);
    taps.push({ i0, i1: Math.min(i0 + 1, inSize - 1), w1 });
  }
  return taps;
}
