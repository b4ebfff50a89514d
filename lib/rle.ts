// COCO run-length encoding, bit-compatible with pycocotools (common/maskApi.c: rleEncode,
// rleDecode, rleArea, rleToString, rleFrString).
//
// Counts are run lengths over the mask in column-major order (down each column, then the next
// column), alternating zeros and ones and always starting with a run of zeros (possibly 0).
// The compressed string stores each count (for i > 2, its difference from counts[i - 2]) as a
// signed little-endian base-32 number: 5 data bits per character, bit 0x20 set when another
// character follows, bit 0x10 of the last character the sign; characters are offset by 48 ('0').
import { invalidRange, invalidType } from './errors.js';
import { integerInRange, MAX_ARRAY_LENGTH } from './validate.js';
import type { RLE, RLEInput } from './types.js';
import { native } from './native.js';

const OFFSET = 48; // '0'
const MORE = 0x20;
const SIGN = 0x10;
const DATA = 0x1f;

/**
 * Encodes a row-major binary mask (any non-zero byte is foreground) as COCO RLE with compressed
 * string counts — the same string pycocotools' `mask.encode(np.asfortranarray(m))` returns.
 */
export function encodeRLE(mask: Uint8Array, height: number, width: number): RLE {
  const h = integerInRange(height, 'height', 0);
  const w = integerInRange(width, 'width', 0);
  const what = `a Uint8Array of height × width = ${h * w} bytes`;
  if (!(mask instanceof Uint8Array)) throw invalidType(what, 'mask', mask);
  if (mask.length !== h * w) throw invalidRange(what, 'mask', mask);
  return { size: [h, w], counts: validCountsString(countsOf(mask, h, w)) };
}

/** Decodes COCO RLE (compressed string or uncompressed number[] counts) to a row-major 0/1 mask. */
export function decodeRLE(rle: RLEInput): Uint8Array {
  const [height, width] = rleSize(rle, 'rle');
  return validRunsToMask(rleCounts(rle, height * width, 'rle'), height, width);
}

/**
 * Run lengths (non-negative integers summing to height × width: a RangeError otherwise) →
 * row-major 0/1 mask, decoded by the native core (native/masks/run_lengths.h countsToMask: each
 * run toggles its rows, a running XOR fills them; a 12 MP mask: a few ms, where walking down its
 * columns in JS took 40–70 ms).
 */
export function countsToMask(counts: ArrayLike<number>, height: number, width: number): Uint8Array {
  integerInRange(height, 'height', 0);
  integerInRange(width, 'width', 0);
  const total = runsTotal(counts, 'counts');
  if (total !== height * width) throw invalidRange(`run lengths summing to height × width = ${height * width}`, 'counts', counts);
  return validRunsToMask(counts, height, width);
}

/**
 * @internal countsToMask of run lengths already checked to sum to height × width (a Mask's: its
 * constructor checked them; checking again built a message per run, 3.5 ms for 74 k runs). The
 * native core still refuses runs that do not fit.
 */
export function validRunsToMask(counts: ArrayLike<number>, height: number, width: number): Uint8Array {
  if (height * width === 0) return new Uint8Array(0); // (whatever the sides, as encodeRLE makes for 0 × 10^12)
  maskPixels(height, width);
  return native().maskBytes(counts instanceof Uint32Array ? counts : Uint32Array.from(counts), width, height);
}

/** @internal A mask's height × width, checked to fit one buffer of bytes (at most 2^32 − 1). */
export function maskPixels(height: number, width: number): number {
  const pixels = height * width;
  if (pixels > MAX_ARRAY_LENGTH) throw invalidRange('a mask of at most 2^32 - 1 pixels', 'height × width', pixels);
  return pixels;
}

/** Foreground pixel count of an RLE: the sum of its odd-indexed (ones) runs. */
export function rleArea(rle: RLEInput): number {
  const [height, width] = rleSize(rle, 'rle');
  const counts = rleCounts(rle, height * width, 'rle');
  let area = 0;
  for (let i = 1; i < counts.length; i += 2) area += counts[i];
  return area;
}

/**
 * Column-major run lengths of a row-major mask (non-zero inside), starting with zeros (pycocotools
 * rleEncode), found by the native core row by row (masks/run_lengths.h: each column's boundaries
 * counted, then written where they go; a 12 MP mask: a few ms, where walking down its columns in
 * JS took ~100 ms).
 */
export function maskToCounts(mask: Uint8Array, height: number, width: number): number[] {
  return Array.from(countsOf(mask, height, width));
}

/** maskToCounts as the native Float64Array. */
function countsOf(mask: Uint8Array, height: number, width: number): Float64Array {
  // An empty mask is one empty run of zeros, whatever its sides (the JS walk of every column
  // once took an hour for encodeRLE(new Uint8Array(0), 0, 1e12)).
  if (height * width === 0) return Float64Array.of(0);
  return native().maskToCounts(mask, width, height);
}

/**
 * Run lengths → COCO compressed string (pycocotools rleToString).
 * @param counts integers ≥ 0 (an array or typed array; any size, as the format stores deltas).
 */
export function countsToString(counts: ArrayLike<number>): string {
  // (a Uint32Array holds nothing else)
  if (!(counts instanceof Uint32Array)) runLengths(counts, 'counts');
  return validCountsString(counts);
}

/** @internal countsToString of run lengths already valid (the library's own), unchecked. */
export function validCountsString(counts: ArrayLike<number>): string {
  // (written by the native core: 1.4 M runs ~5 ms, 41–60 ms in JS)
  return native().countsString(counts instanceof Uint32Array || counts instanceof Float64Array ? counts : Float64Array.from(counts));
}

/** COCO compressed string → run lengths (pycocotools rleFrString). */
export function countsFromString(s: string, param = 'rle.counts'): number[] {
  if (typeof s !== 'string') throw invalidType('a COCO compressed RLE string', param, s);
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let scale = 1;
    let more = true;
    while (more) {
      if (p >= s.length) throw invalidRange('a COCO compressed RLE string', param, s);
      const c = s.charCodeAt(p) - OFFSET;
      if (c < 0 || c > 63) throw invalidRange('a COCO compressed RLE string (characters 0 to o)', param, s);
      more = (c & MORE) !== 0;
      // The last character's sign bit makes its 5 bits a negative digit (value − 32), added as
      // such: adding the bits and then subtracting 32 · scale went through partial sums past
      // 2^53 and came out off by one for deltas around −2^49.
      x += (!more && c & SIGN ? (c & DATA) - 32 : c & DATA) * scale;
      scale *= 32;
      p++;
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

/**
 * The size and validated run lengths of an RLE, whichever form its counts take (compressed string
 * or uncompressed list): non-negative integers summing to height × width.
 * @param param the RLE's name in errors (`rles[2]` names `rles[2].size`, ...).
 */
export function rleRuns(rle: RLEInput, param = 'rle'): { height: number; width: number; counts: readonly number[] } {
  const [height, width] = rleSize(rle, param);
  return { height, width, counts: rleCounts(rle, height * width, param) };
}

/**
 * Run lengths of the union (or the intersection) of two masks of the same size, given as run
 * lengths (pycocotools rleMerge for two masks). The result starts with a run of zeros and has no
 * zero-length runs after the first.
 */
export function mergeRuns(a: readonly number[], b: readonly number[], intersect = false): number[] {
  checkRunPair(a, b);
  return mergeValidRuns(a, b, intersect);
}

/** @internal mergeRuns of run lengths already valid (rleRuns, maskToCounts, polygonRuns), unchecked. */
export function mergeValidRuns(a: readonly number[], b: readonly number[], intersect = false): number[] {
  const out: number[] = [];
  let value = 0;
  let run = 0;
  sweepRuns(a, b, (va, vb, length) => {
    const v = intersect ? va & vb : va | vb;
    if (v !== value) {
      out.push(run);
      run = 0;
      value = v;
    }
    run += length;
  });
  out.push(run);
  return out;
}

/** Intersection and union areas of two masks of the same size, given as run lengths. */
export function overlapRuns(a: ArrayLike<number>, b: ArrayLike<number>): { intersection: number; union: number } {
  checkRunPair(a, b);
  return overlapValidRuns(a, b);
}

/** @internal overlapRuns of run lengths already valid (maskToCounts, rleRuns), unchecked. */
export function overlapValidRuns(a: ArrayLike<number>, b: ArrayLike<number>): { intersection: number; union: number } {
  let intersection = 0;
  let union = 0;
  sweepRuns(a, b, (va, vb, length) => {
    if (va & vb) intersection += length;
    if (va | vb) union += length;
  });
  return { intersection, union };
}

/** Foreground pixel count of run lengths: the sum of the odd-indexed (ones) runs. */
export function runsArea(counts: ArrayLike<number>): number {
  let area = 0;
  for (let i = 1; i < counts.length; i += 2) area += counts[i];
  return area;
}

/**
 * The union (or intersection) of masks of one size as an RLE with compressed string counts —
 * pycocotools `mask.merge(rles, intersect)`. An empty list gives an all-zero mask of `size`.
 */
export function rleMerge(rles: readonly RLEInput[], intersect = false, size?: readonly [number, number]): RLE {
  if (!Array.isArray(rles)) throw invalidType('an array of RLEs', 'rles', rles);
  const runs = Array.from(rles, (rle, i) => rleRuns(rle, `rles[${i}]`));
  const [height, width] = runs.length > 0 ? [runs[0].height, runs[0].width] : (size ?? [0, 0]);
  runs.forEach((r, i) => {
    if (r.height !== height || r.width !== width) {
      throw invalidRange(`an RLE of size [${height}, ${width}]`, `rles[${i}].size`, [r.height, r.width]);
    }
  });
  let counts: readonly number[] = [height * width];
  if (runs.length > 0) {
    counts = runs[0].counts;
    for (let i = 1; i < runs.length; i++) counts = mergeValidRuns(counts, runs[i].counts, intersect);
  }
  return { size: [height, width], counts: validCountsString(counts) };
}

/**
 * Intersection over union of two RLEs of the same size (pycocotools `mask.iou(dt, gt, [0])`);
 * 0 when both masks are empty.
 */
export function rleIoU(a: RLEInput, b: RLEInput): number {
  const ra = rleRuns(a, 'a');
  const rb = rleRuns(b, 'b');
  if (ra.height !== rb.height || ra.width !== rb.width) {
    throw invalidRange(`an RLE of size [${ra.height}, ${ra.width}]`, 'b.size', [rb.height, rb.width]);
  }
  const { intersection, union } = overlapValidRuns(ra.counts, rb.counts);
  return union === 0 ? 0 : intersection / union;
}

/** Run lengths: an array of integers ≥ 0 summing to less than 2^53; their sum. */
function runsTotal(runs: ArrayLike<number>, param: string): number {
  const total = runLengths(runs, param);
  if (!Number.isSafeInteger(total)) throw invalidRange('run lengths summing to less than 2^53', param, runs);
  return total;
}

/** An array (or array-like) of integers ≥ 0; their sum, as a double. */
function runLengths(runs: ArrayLike<number>, param: string): number {
  if (typeof runs !== 'object' || runs === null || typeof runs.length !== 'number') {
    throw invalidType('an array of run lengths', param, runs);
  }
  let total = 0;
  // A for loop, not forEach: the holes of a sparse array are refused too.
  for (let i = 0; i < runs.length; i++) total += integerInRange(runs[i], `${param}[${i}]`, 0);
  return total;
}

/** Two run-length lists of one mask size (equal totals), as the sweeps need them. */
function checkRunPair(a: ArrayLike<number>, b: ArrayLike<number>): void {
  const total = runsTotal(a, 'a');
  if (runsTotal(b, 'b') !== total) throw invalidRange(`run lengths summing to ${total}, as a's do`, 'b', b);
}

/**
 * Walks two run-length lists of equal total in step, calling `visit(valueA, valueB, length)` for
 * each stretch where neither changes (values 0 or 1).
 */
function sweepRuns(a: ArrayLike<number>, b: ArrayLike<number>, visit: (va: number, vb: number, length: number) => void): void {
  let ia = 0;
  let ib = 0;
  let ra = a[0] ?? 0;
  let rb = b[0] ?? 0;
  for (;;) {
    while (ra === 0 && ia < a.length - 1) ra = a[++ia];
    while (rb === 0 && ib < b.length - 1) rb = b[++ib];
    if (ra === 0 || rb === 0) return;
    const length = Math.min(ra, rb);
    visit(ia & 1, ib & 1, length);
    ra -= length;
    rb -= length;
  }
}

function rleSize(rle: RLEInput, param: string): [number, number] {
  if (typeof rle !== 'object' || rle === null) throw invalidType('an object {size, counts}', param, rle);
  const size: unknown = rle.size;
  if (!Array.isArray(size)) throw invalidType('an array [height, width]', `${param}.size`, size);
  if (size.length !== 2) throw invalidRange('an array [height, width]', `${param}.size`, size);
  const height = integerInRange(size[0], `${param}.size[0]`, 0) + 0; // + 0: -0 is 0
  const width = integerInRange(size[1], `${param}.size[1]`, 0) + 0;
  // Run lengths are summed in floating point: beyond 2^53 pixels, a sum that is off by one could
  // still compare equal to height × width.
  if (!Number.isSafeInteger(height * width)) {
    throw invalidRange('an array [height, width] with height × width < 2^53', `${param}.size`, size);
  }
  return [height, width];
}

/** The run lengths of an RLE, checked to be non-negative integers that sum to height × width. */
function rleCounts(rle: RLEInput, pixels: number, param: string): readonly number[] {
  const raw: unknown = rle.counts;
  let counts: readonly number[];
  if (typeof raw === 'string') {
    counts = countsFromString(raw, `${param}.counts`);
    if (counts.some((c) => c < 0)) throw invalidRange('a COCO compressed RLE string', `${param}.counts`, raw);
  } else if (Array.isArray(raw)) {
    runsTotal(raw as number[], `${param}.counts`);
    counts = raw as readonly number[];
  } else {
    throw invalidType('a string or an array of run lengths', `${param}.counts`, raw);
  }
  const total = counts.reduce((sum, c) => sum + c, 0);
  if (total !== pixels) {
    throw invalidRange(`run lengths summing to height × width = ${pixels} (they sum to ${total})`, `${param}.counts`, raw);
  }
  return counts;
}
