// Exact Euclidean distance transform (Felzenszwalb & Huttenlocher, "Distance Transforms of Sampled
// Functions", Theory of Computing 8, 2012): the squared distance of every pixel to the nearest
// background pixel, as two passes of the 1-D lower envelope of parabolas (columns, then rows).
//
// This is what OpenCV's cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) computes,
// the transform RITM / SimpleClick use to place simulated clicks. Pixels outside the image count
// as background (RITM pads the error masks with a zero border before the transform), so a region
// touching the image edge has its boundary there too.
import { invalidRange, invalidType } from '../errors.js';
import { integerInRange } from '../validate.js';

/**
 * Squared Euclidean distance (pixel centre to pixel centre) from each pixel of a row-major
 * `height × width` mask to the nearest pixel where the mask is 0, pixels outside the image
 * counting as 0. Background pixels get 0, a foreground pixel on the image edge at most 1.
 * Exact: the values are integers.
 */
export function squaredDistanceTransform(mask: Uint8Array, width: number, height: number): Float64Array {
  integerInRange(width, 'width', 0);
  integerInRange(height, 'height', 0);
  const what = `a Uint8Array of width × height = ${width * height} bytes`;
  if (!(mask instanceof Uint8Array)) throw invalidType(what, 'mask', mask);
  if (mask.length !== width * height) throw invalidRange(what, 'mask', mask);
  const out = new Float64Array(width * height);
  if (width === 0 || height === 0) return out;
  // Padded grid (width + 2) × (height + 2) with a background border; the first pass (columns)
  // on a binary image is the distance to the nearest background pixel of the column, found by a
  // scan down and a scan up, so every value the second pass sees is finite.
  const pw = width + 2;
  const ph = height + 2;
  const grid = new Float64Array(pw * ph);
  for (let x = 1; x <= width; x++) {
    let run = 0;
    for (let y = 1; y <= height; y++) {
      run = mask[(y - 1) * width + x - 1] !== 0 ? run + 1 : 0;
      grid[y * pw + x] = run;
    }
    run = 0;
    for (let y = height; y >= 1; y--) {
      run = grid[y * pw + x] === 0 ? 0 : run + 1;
      const g = Math.min(grid[y * pw + x], run);
      grid[y * pw + x] = g * g;
    }
  }
  const n = pw;
  const f = new Float64Array(n);
  const d = new Float64Array(n);
  const v = new Int32Array(n);
  const z = new Float64Array(n + 1);
  // Rows: the 1-D transform of the squared column distances.
  for (let y = 1; y <= height; y++) {
    const row = y * pw;
    for (let x = 0; x < pw; x++) f[x] = grid[row + x];
    lowerEnvelope(f, pw, d, v, z);
    for (let x = 0; x < width; x++) out[(y - 1) * width + x] = d[x + 1];
  }
  return out;
}

/**
 * 1-D squared distance transform of the sampled function f[0..n): d[q] = min_p (q − p)² + f[p]
 * (Felzenszwalb & Huttenlocher, Algorithm DT(f)). v holds the parabolas of the lower envelope,
 * z the boundaries between them.
 */
function lowerEnvelope(f: Float64Array, n: number, d: Float64Array, v: Int32Array, z: Float64Array): void {
  let k = 0;
  v[0] = 0;
  z[0] = -Infinity;
  z[1] = Infinity;
  for (let q = 1; q < n; q++) {
    let s = intersection(f, q, v[k]);
    while (s <= z[k]) {
      k--;
      s = intersection(f, q, v[k]);
    }
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = Infinity;
  }
  k = 0;
  for (let q = 0; q < n; q++) {
    while (z[k + 1] < q) k++;
    const dq = q - v[k];
    d[q] = dq * dq + f[v[k]];
  }
}

/** Abscissa where the parabolas rooted at q and p intersect. */
function intersection(f: Float64Array, q: number, p: number): number {
  return (f[q] + q * q - (f[p] + p * p)) / (2 * q - 2 * p);
}
