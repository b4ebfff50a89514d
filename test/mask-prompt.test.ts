// Binary mask prompts (prompt.mask) and dense scribbles: the conversion to low-res logits on
// constructed cases, validation, and decodes on the sam-tiny checkpoint.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageEmbedding } from '../lib/embedding.js';
import { Mask, maskSource } from '../lib/mask.js';
import {
  MASK_PROMPT_LOGIT as L,
  MASK_PROMPT_LOGIT,
  maskCoverage,
  maskToLogits,
  maskToLogitsAsync,
  rasterizeScribbles,
  resizedSize,
  SCRIBBLE_BRUSH_DIVISOR,
  type MaskFrame,
} from '../lib/mask-prompt.js';
import { native } from '../lib/native.js';
import { maskToCounts } from '../lib/rle.js';
import { checkPrompt, toNativePrompt } from '../lib/prompt.js';
import { Segmenter } from '../lib/segmenter.js';
import type { Scribble, Vertex } from '../lib/types.js';
import { cases, FIXTURES, MODEL_DIR } from './helpers/fixtures.js';
import { seededRandom } from './helpers/random.js';

const settings = { multimask: false, threshold: 0 };

/** The foreground's row runs: [start, end) row-major index pairs, as findInstances returns them. */
function rowRuns(data: Uint8Array): Int32Array {
  const runs: number[] = [];
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== 0 && (i === 0 || data[i - 1] === 0)) runs.push(i);
    if (data[i] !== 0 && (i + 1 === data.length || data[i + 1] === 0)) runs.push(i + 1);
  }
  return Int32Array.from(runs);
}

/** A width × height mask with the pixels [x0, x1) × [y0, y1) set to `on`. */
function rect(width: number, height: number, [x0, y0, x1, y1]: number[], on = 1): Uint8Array {
  const data = new Uint8Array(width * height);
  for (let y = y0; y < y1; y++) data.fill(on, y * width + x0, y * width + x1);
  return data;
}

/** Cells of a side × side grid where `pick` holds, as "row,col" strings. */
function cells(grid: Float32Array, side: number, pick: (v: number) => boolean): Set<string> {
  const out = new Set<string>();
  grid.forEach((v, i) => {
    if (pick(v)) out.add(`${Math.floor(i / side)},${i % side}`);
  });
  return out;
}

function cellRange(r0: number, r1: number, c0: number, c1: number): Set<string> {
  const out = new Set<string>();
  for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out.add(`${r},${c}`);
  return out;
}

function iou(a: Uint8Array, b: Uint8Array): number {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    inter += a[i] & b[i];
    union += a[i] | b[i];
  }
  return union === 0 ? 1 : inter / union;
}

describe('resizedSize', () => {
  it('is the processor’s longest-edge resize (the fixtures’ sizes, from transformers)', () => {
    for (const image of cases.images) {
      const [w, h] = resizedSize(image.width, image.height, 128);
      expect([h, w]).toEqual(image.resized);
    }
  });
});

describe('maskToLogits', () => {
  // A 256 × 128 image on a 128-px model with 64 × 64 low-res logits: the resize halves it to
  // 128 × 64, so one low-res cell (2 × 2 frame pixels) is 4 × 4 image pixels, and rows 32-63
  // are padding.
  const frame: MaskFrame = { resizedWidth: 128, resizedHeight: 64, imageSize: 128, lowResSize: 64 };
  const W = 256;
  const H = 128;

  it('a filled rectangle lands on the low-res cells it covers: +L inside, −L elsewhere and in the padding', () => {
    const logits = maskToLogits({ data: rect(W, H, [40, 20, 80, 60]), width: W, height: H }, frame);
    expect(logits).toHaveLength(64 * 64);
    expect(cells(logits, 64, (v) => v === Math.fround(L))).toEqual(cellRange(5, 15, 10, 20));
    expect(cells(logits, 64, (v) => v === Math.fround(-L)).size).toBe(64 * 64 - 100);
  });

  it('a cell covered in part gets the log-odds of the covered fraction', () => {
    // x from 42: cell column 10 (x 40-44) is half covered; y from 21: cell row 5 (y 20-24) 3/4.
    const coverage = maskCoverage({ data: rect(W, H, [42, 21, 80, 60]), width: W, height: H }, frame);
    expect(coverage[6 * 64 + 10]).toBeCloseTo(0.5, 6);
    expect(coverage[5 * 64 + 11]).toBeCloseTo(0.75, 6);
    expect(coverage[5 * 64 + 10]).toBeCloseTo(0.375, 6);
    const logits = maskToLogits({ data: rect(W, H, [42, 21, 80, 60]), width: W, height: H }, frame);
    expect(logits[6 * 64 + 10]).toBeCloseTo(0, 6);
    expect(logits[5 * 64 + 11]).toBeCloseTo(Math.log(3), 5);
    expect(logits[5 * 64 + 10]).toBeCloseTo(Math.log(0.375 / 0.625), 5);
  });

  it('0/255 masks are the same as 0/1; an all-set mask stops at the resized image', () => {
    const ones = maskToLogits({ data: rect(W, H, [40, 20, 80, 60]), width: W, height: H }, frame);
    expect(maskToLogits({ data: rect(W, H, [40, 20, 80, 60], 255), width: W, height: H }, frame)).toEqual(ones);
    const full = maskToLogits({ data: new Uint8Array(W * H).fill(1), width: W, height: H }, frame);
    expect(cells(full, 64, (v) => v > 0)).toEqual(cellRange(0, 32, 0, 64));
  });

  it('non-integer scales: the coverage of a full image is 1 inside, the boundary fraction on the edge row', () => {
    // 150 × 100 → 128 × 85 on the 128-px model: low-res row 42 covers frame rows 84-86, half of it image.
    const full = maskCoverage(
      { data: new Uint8Array(150 * 100).fill(1), width: 150, height: 100 },
      { resizedWidth: 128, resizedHeight: 85, imageSize: 128, lowResSize: 64 },
    );
    expect(Array.from(full.subarray(41 * 64, 42 * 64)).every((v) => Math.abs(v - 1) < 1e-6)).toBe(true);
    expect(full[42 * 64]).toBeCloseTo(0.5, 5);
    expect(full[43 * 64]).toBe(0);
  });
});

describe('maskCoverage (native) against its definition', () => {
  /**
   * The coverage as lib/mask-prompt.ts computed it in TypeScript before the native port: per
   * original row, each low-res column's covered length (a float64 sum over its pixels, left to
   * right), then each low-res row's float32 cell += (row weight · length) / cell area.
   */
  function reference(mask: Uint8Array, W: number, H: number, frame: MaskFrame): Float32Array {
    const L = frame.lowResSize;
    const cell = frame.imageSize / L;
    const overlaps = (pixels: number, span: number) => {
      const out = [];
      for (let c = 0; c < L; c++) {
        const a = c * span;
        const b = Math.min((c + 1) * span, pixels);
        if (a >= pixels) break;
        const from = Math.floor(a);
        const to = Math.min(pixels, Math.ceil(b));
        const weights = new Float64Array(to - from);
        for (let x = from; x < to; x++) weights[x - from] = Math.max(0, Math.min(b, x + 1) - Math.max(a, x));
        out.push({ index: c, from, to, weights });
      }
      return out;
    };
    const xs = overlaps(W, (cell * W) / frame.resizedWidth);
    const ys = overlaps(H, (cell * H) / frame.resizedHeight);
    const cellArea = ((cell * W) / frame.resizedWidth) * ((cell * H) / frame.resizedHeight);
    const out = new Float32Array(L * L);
    const rowSums = new Float64Array(L);
    for (let y = 0; y < H; y++) {
      rowSums.fill(0);
      let any = false;
      for (const { index: c, from, to, weights } of xs) {
        let s = 0;
        for (let x = from; x < to; x++) if (mask[y * W + x] !== 0) s += weights[x - from];
        rowSums[c] = s;
        any ||= s > 0;
      }
      if (!any) continue;
      for (const { index: r, from, to, weights } of ys) {
        if (y < from || y >= to) continue;
        for (let c = 0; c < L; c++) out[r * L + c] += (weights[y - from] * rowSums[c]) / cellArea;
      }
    }
    return out.map((v) => Math.min(1, v));
  }

  it('the same floats, bit for bit, on random masks and frames (landscape, portrait, odd scales)', async () => {
    let state = 3;
    const random = () => (state = (state * 48271) % 2147483647) / 2147483647;
    for (let trial = 0; trial < 80; trial++) {
      const [W, H] = [1 + Math.floor(random() * 300), 1 + Math.floor(random() * 300)];
      const imageSize = [64, 100, 128, 1024][trial % 4];
      const L = [16, 25, 32, 256][trial % 4];
      const scale = imageSize / Math.max(W, H);
      const frame: MaskFrame = {
        resizedWidth: Math.max(1, Math.min(imageSize, Math.floor(W * scale + 0.5))),
        resizedHeight: Math.max(1, Math.min(imageSize, Math.floor(H * scale + 0.5))),
        imageSize,
        lowResSize: L,
      };
      // blobs, noise and empty rows, non-zero bytes other than 1
      const [cx, cy, r] = [random() * W, random() * H, random() * Math.max(W, H)];
      const noise = random() * 0.3;
      const data = Uint8Array.from({ length: W * H }, (_, i) => {
        const [x, y] = [i % W, Math.floor(i / W)];
        return (x - cx) ** 2 + (y - cy) ** 2 < r * r || random() < noise ? 1 + Math.floor(random() * 255) : 0;
      });
      const expected = reference(data, W, H, frame);
      const mask = { data, width: W, height: H };
      expect(Buffer.from(maskCoverage(mask, frame).buffer).equals(Buffer.from(expected.buffer)), `${W}x${H} in ${JSON.stringify(frame)}`).toBe(true);
      // the logits, sync and in the worker: the definition's log-odds of the reference coverage, to the bit
      const logits = Float32Array.from(expected, (f) =>
        f <= 0 ? -MASK_PROMPT_LOGIT : f >= 1 ? MASK_PROMPT_LOGIT : Math.min(MASK_PROMPT_LOGIT, Math.max(-MASK_PROMPT_LOGIT, Math.log(f / (1 - f)))),
      );
      expect(Buffer.from(maskToLogits(mask, frame).buffer).equals(Buffer.from(logits.buffer))).toBe(true);
      const async = await maskToLogitsAsync(mask, frame);
      expect(Buffer.from(async.buffer).equals(Buffer.from(logits.buffer))).toBe(true);
      // the same mask as COCO run lengths and as row runs: the same floats
      const args = [W, H, frame.resizedWidth, frame.resizedHeight, frame.imageSize, frame.lowResSize] as const;
      for (const source of [Uint32Array.from(maskToCounts(data, H, W)), rowRuns(data)]) {
        const fromRuns = await native().maskCoverageAsync(source, ...args);
        expect(Buffer.from(fromRuns.buffer).equals(Buffer.from(expected.buffer)), `${source.constructor.name} ${W}x${H}`).toBe(true);
        expect(Buffer.from(native().maskCoverage(source, ...args).buffer).equals(Buffer.from(expected.buffer))).toBe(true);
      }
    }
  });

  it('row runs may come in any order and be empty; runs that do not fit are a RangeError', async () => {
    const data = rect(10, 6, [2, 1, 7, 5]);
    const args = [10, 6, 64, 38, 64, 16] as const;
    const expected = native().maskCoverage(data, ...args);
    const runs = rowRuns(data);
    const shuffled = Int32Array.from([...runs.subarray(4), 30, 30, ...runs.subarray(0, 4)]);
    expect(await native().maskCoverageAsync(shuffled, ...args)).toEqual(expected);
    for (const bad of [Int32Array.of(0), Int32Array.of(-1, 3), Int32Array.of(5, 4), Int32Array.of(0, 61)]) {
      expect(() => native().maskCoverage(bad, ...args), String(bad)).toThrow(RangeError);
      await expect(native().maskCoverageAsync(bad, ...args)).rejects.toThrow(RangeError);
    }
    expect(() => native().maskCoverage(Uint32Array.of(59), ...args)).toThrow(RangeError);
    await expect(native().maskCoverageAsync(Uint32Array.of(59, 2), ...args)).rejects.toThrow(RangeError);
  });

  it('reads masks in shared memory (SharedArrayBuffer) as any other', async () => {
    const data = rect(10, 6, [2, 1, 7, 5]);
    const shared = new Uint8Array(new SharedArrayBuffer(60));
    shared.set(data);
    const frame: MaskFrame = { resizedWidth: 64, resizedHeight: 38, imageSize: 64, lowResSize: 16 };
    expect(maskToLogits({ data: shared, width: 10, height: 6 }, frame)).toEqual(maskToLogits({ data, width: 10, height: 6 }, frame));
    const runs = new Int32Array(new SharedArrayBuffer(rowRuns(data).byteLength));
    runs.set(rowRuns(data));
    expect(await native().maskCoverageAsync(runs, 10, 6, 64, 38, 64, 16)).toEqual(native().maskCoverage(data, 10, 6, 64, 38, 64, 16));
    expect(native().tracePolygons(shared, 10, 6)).toEqual(native().tracePolygons(data, 10, 6));
  });

  it('the async conversion reads a copy of its runs: changing them after the call does not change the result', async () => {
    const data = rect(10, 6, [2, 1, 7, 5]);
    const args = [10, 6, 64, 38, 64, 16] as const;
    const runs = rowRuns(data);
    const pending = native().maskCoverageAsync(runs, ...args);
    runs.fill(0);
    expect(await pending).toEqual(native().maskCoverage(data, ...args));
  });

  it('malformed native calls throw a TypeError', () => {
    const call = (...args: unknown[]) => () => (native().maskCoverage as (...a: unknown[]) => unknown)(...args);
    expect(call(new Uint8Array(16), 4, 4, 8, 8, 8, 4)).not.toThrow();
    expect(call(new Uint8Array(15), 4, 4, 8, 8, 8, 4)).toThrow(TypeError);
    expect(call(new Int8Array(16), 4, 4, 8, 8, 8, 4)).toThrow(TypeError);
    expect(call(new Uint8Array(16), 4, 4, 9, 8, 8, 4)).toThrow(TypeError); // resized beyond the input
    expect(call(new Uint8Array(16), 4, 4, 8, 8, 8, 0)).toThrow(TypeError);
    expect(call(new Uint8Array(16), 4, 4, 8, 8, 8, 4097)).toThrow(TypeError);
    expect(call(new Uint8Array(16), 4, 4, 8, 8, 8)).toThrow(TypeError);
    expect(() => maskToLogits({ data: new Uint8Array(16), width: 4, height: 4 }, { resizedWidth: 8, resizedHeight: 8, imageSize: 8, lowResSize: 4097 })).toThrow(
      /between 1 and 4096 for frame\.lowResSize /,
    );
    expect(() => maskToLogits({ data: new Uint8Array(16), width: 4, height: 4 }, { resizedWidth: 8, resizedHeight: 8, imageSize: 2 ** 31, lowResSize: 4 })).toThrow(
      /between 1 and 2147483647 for frame\.imageSize /,
    );
  });
});

describe('rasterizeScribbles', () => {
  it('draws a round brush max(width, height) / 64 wide along the path', () => {
    // 128 × 64 image: a 2-px brush (radius 1) around y = 10, x 10 → 20.
    const mask = rasterizeScribbles([{ path: [[10, 10], [20, 10]], label: 1 }], 128, 64);
    const set = new Set<string>();
    mask.forEach((v, i) => v && set.add(`${i % 128},${Math.floor(i / 128)}`));
    const expected = new Set<string>();
    for (let x = 10; x <= 20; x++) for (const y of [9, 10, 11]) expected.add(`${x},${y}`);
    expected.add('9,10');
    expected.add('21,10');
    expect(set).toEqual(expected);
  });

  it('sets exactly the pixels within half the brush of the path (brute force over every pixel, random strokes)', () => {
    // the rasteriser tests only each row's span of the brush; the reference, every pixel
    const brute = (scribbles: Scribble[], width: number, height: number): Uint8Array => {
      const out = new Uint8Array(width * height);
      const r = Math.max(1, Math.max(width, height) / SCRIBBLE_BRUSH_DIVISOR) / 2;
      for (const { path } of scribbles) {
        const segments = path.length === 1 ? [[path[0], path[0]]] : path.slice(1).map((b, i) => [path[i], b]);
        for (const [[ax, ay], [bx, by]] of segments) {
          const [dx, dy] = [bx - ax, by - ay];
          const len2 = dx * dx + dy * dy;
          for (let y = 0; y < height; y++) {
            for (let x = 0; x < width; x++) {
              const t = len2 === 0 ? 0 : Math.min(1, Math.max(0, ((x - ax) * dx + (y - ay) * dy) / len2));
              const [ex, ey] = [ax + t * dx - x, ay + t * dy - y];
              if (ex * ex + ey * ey <= r * r) out[y * width + x] = 1;
            }
          }
        }
      }
      return out;
    };
    const rand = seededRandom(7);
    for (let trial = 0; trial < 60; trial++) {
      const [width, height] = [1 + Math.floor(rand() * 300), 1 + Math.floor(rand() * 200)];
      // axis-aligned, diagonal, fractional, single-point and edge-hugging strokes
      const vertex = (): Vertex => {
        const k = rand();
        const x = k < 0.2 ? 0 : k < 0.4 ? width : rand() * width;
        return [trial % 3 === 0 ? Math.round(x) : x, trial % 4 === 0 ? Math.min(10, height) : rand() * height];
      };
      const path = Array.from({ length: 1 + Math.floor(rand() * 4) }, vertex);
      if (trial % 5 === 0) path.push([path[0][0], path[0][1]]);
      const scribbles = [{ path, label: 1 as const }];
      expect(Buffer.from(rasterizeScribbles(scribbles, width, height)).equals(Buffer.from(brute(scribbles, width, height))), `trial ${trial}`).toBe(true);
    }
  });

  it('checks its arguments', () => {
    expect(() => rasterizeScribbles([{ path: [[10, 10]], label: 7 as 1 }], 128, 64)).toThrow(
      /0 or 1 for scribbles\[0\]\.label /,
    );
    expect(() => rasterizeScribbles([{ path: [[1e9, 10]], label: 1 }], 128, 64)).toThrow(
      /between 0 and 128 for scribbles\[0\]\.path\[0\]\[0\] /,
    );
    expect(() => rasterizeScribbles([], 0, 64)).toThrow(/an integer >= 1 for width /);
    expect(() => rasterizeScribbles([], 4, 4, new Uint8Array(15))).toThrow(/16 bytes for into /);
    expect(rasterizeScribbles([], 4, 4, new Uint8Array(16)).length).toBe(16);
    // a mask larger than one typed array: named, where Node's "Invalid typed array length" was not
    expect(() => rasterizeScribbles([], 1e6, 1e6)).toThrow(
      new RangeError('Expected at most 2^32 - 1 pixels for width × height but received 1000000000000 of type number'),
    );
  });
});

describe('maskToLogits argument checks', () => {
  const frame: MaskFrame = { resizedWidth: 8, resizedHeight: 8, imageSize: 8, lowResSize: 4 };
  it('refuses a mask whose data is not width × height bytes, and a bad frame', () => {
    expect(() => maskToLogits({ data: new Uint8Array(1), width: 4, height: 4 }, frame)).toThrow(
      /a Uint8Array of 16 bytes \(4x4, 0 outside the mask\) for mask\.data /,
    );
    expect(() => maskToLogits({ data: new Uint8Array(0), width: 0, height: 0 }, frame)).toThrow(/for mask\.width /);
    const mask = { data: new Uint8Array(16), width: 4, height: 4 };
    expect(() => maskToLogits(mask, { ...frame, resizedWidth: 9 })).toThrow(/between 1 and 8 for frame\.resizedWidth /);
    expect(() => maskToLogits(mask, { ...frame, lowResSize: 0 })).toThrow(/for frame\.lowResSize /);
    expect(maskToLogits(mask, frame)).toHaveLength(16);
  });
});

describe('prompt.mask validation', () => {
  const frame: MaskFrame = { resizedWidth: 100, resizedHeight: 80, imageSize: 100, lowResSize: 4 };
  const pack = (prompt: unknown) => checkPrompt(prompt, 100, 80, 4, settings, frame);
  const mask = { data: new Uint8Array(100 * 80), width: 100, height: 80 };

  it('converts a valid mask into maskInput', async () => {
    const p = await toNativePrompt({ mask }, 100, 80, 4, settings, frame);
    expect(p.maskInput).toEqual(new Float32Array(16).fill(-L));
    expect(p.points).toBeNull();
  });

  it.each([
    [{ mask: null }, new TypeError('Expected an object {data, width, height} for prompt.mask but received null of type null')],
    [
      { mask: { ...mask, width: 50 } },
      new RangeError("Expected the image's width (100) for prompt.mask.width but received 50 of type number"),
    ],
    [
      { mask: { ...mask, height: '80' } },
      new TypeError('Expected the image\'s height (80) for prompt.mask.height but received "80" of type string'),
    ],
    [
      { mask: { ...mask, data: new Float32Array(8000) } },
      new TypeError(
        'Expected a Uint8Array of 8000 bytes (100x80, 0 outside the mask) for prompt.mask.data but received Float32Array(8000) of type Float32Array',
      ),
    ],
    [
      { mask: { ...mask, data: new Uint8Array(10) } },
      new RangeError(
        'Expected a Uint8Array of 8000 bytes (100x80, 0 outside the mask) for prompt.mask.data but received Uint8Array(10) of type Uint8Array',
      ),
    ],
    [
      { scribbles: [{ path: [[1, 1]], label: 1, dense: 1 }] },
      new TypeError('Expected a boolean for prompt.scribbles[0].dense but received 1 of type number'),
    ],
  ])('invalid case %#', (prompt, error) => {
    expect(() => pack(prompt)).toThrow(error);
    try {
      pack(prompt);
    } catch (e) {
      expect((e as Error).constructor).toBe(error.constructor);
    }
  });

  it('mask and maskInput together are a RangeError', () => {
    expect(() => pack({ mask, maskInput: new Float32Array(16) })).toThrow(
      /^Expected either mask or maskInput, not both for prompt but received/,
    );
    expect(() => pack({ mask, maskInput: new Float32Array(16) })).toThrow(RangeError);
  });

  it('without the model input frame (an internal caller) a mask is refused', () => {
    expect(() => checkPrompt({ mask }, 100, 80, 4, settings)).toThrow(
      'prompt.mask and dense scribbles need the model input frame; use Segmenter.segment()',
    );
  });
});

describe('dense scribbles', () => {
  // 100 × 80 image at 100 px with 4 × 4 low-res cells of 25 px; brush 100 / 64 ≈ 1.6 px wide.
  const frame: MaskFrame = { resizedWidth: 100, resizedHeight: 80, imageSize: 100, lowResSize: 4 };
  const pack = (prompt: unknown) => toNativePrompt(prompt, 100, 80, 4, settings, frame);
  const stroke = { path: [[5, 5], [45, 5]] as [number, number][], label: 1 as const };

  it('positive dense scribbles become clicks and the mask of their strokes', async () => {
    const p = await pack({ scribbles: [{ ...stroke, dense: true }] });
    const strokes = maskToLogits({ data: rasterizeScribbles([stroke], 100, 80), width: 100, height: 80 }, frame);
    expect(p.maskInput).toEqual(strokes);
    expect(cells(p.maskInput!, 4, (v) => v > -L)).toEqual(cellRange(0, 1, 0, 2));
    expect(p.pointsPerPrompt).toBe((await pack({ scribbles: [stroke] })).pointsPerPrompt);
    // Not dense, or negative: clicks only.
    expect((await pack({ scribbles: [stroke] })).maskInput).toBeNull();
    expect((await pack({ scribbles: [{ ...stroke, label: 0, dense: true }] })).maskInput).toBeNull();
  });

  it('with prompt.mask the strokes are OR-ed into it; with maskInput they raise the logits they touch', async () => {
    const data = rect(100, 80, [50, 50, 100, 80], 255);
    const p = await pack({ mask: { data, width: 100, height: 80 }, scribbles: [{ ...stroke, dense: true }] });
    const union = rasterizeScribbles([stroke], 100, 80, Uint8Array.from(data, (v) => (v ? 1 : 0)));
    expect(p.maskInput).toEqual(maskToLogits({ data: union, width: 100, height: 80 }, frame));
    expect(data[0]).toBe(0); // the caller's mask is not drawn on
    // nor one in a Buffer, whose slice() is a view of the same memory, not a copy
    const buffer = Buffer.from(data);
    const b = await pack({ mask: { data: buffer, width: 100, height: 80 }, scribbles: [{ ...stroke, dense: true }] });
    expect(b.maskInput).toEqual(p.maskInput);
    expect(buffer.equals(Buffer.from(data))).toBe(true);

    const maskInput = new Float32Array(16).fill(-20);
    maskInput[15] = 3;
    const q = await pack({ maskInput, scribbles: [{ ...stroke, dense: true }] });
    const strokes = maskToLogits({ data: rasterizeScribbles([stroke], 100, 80), width: 100, height: 80 }, frame);
    const expected = maskInput.slice();
    expected[0] = strokes[0];
    expected[1] = strokes[1];
    expect(q.maskInput).toEqual(expected);
    expect(maskInput[0]).toBe(-20);
  });
});

describe('mask prompts on the sam-tiny checkpoint', () => {
  let segmenter: Segmenter;
  let embedding: ImageEmbedding;
  beforeAll(async () => {
    segmenter = await Segmenter.load({ model: MODEL_DIR, threads: 2 });
    embedding = await segmenter.encode(path.join(FIXTURES, 'wide.png'));
  });
  afterAll(() => {
    embedding.dispose();
    segmenter.dispose();
  });
  const best = (masks: Mask[]): Mask => masks.reduce((a, m) => (m.score > a.score ? m : a));

  it('a previous mask as prompt.mask decodes close to its lowResLogits as maskInput', async () => {
    // Measure: IoU of the image-size masks. The checkpoint has random weights, so "close" is
    // relative: the binary mask must land much nearer the logits' result than no mask prompt,
    // or the inverted mask, do. (Measured: IoU 0.60 and 0.46 for the two
    // clicks, vs 0.19-0.30 for no mask prompt or the inverted mask.)
    const { width, height } = embedding;
    for (const click of [
      { x: 75, y: 50, label: 1 as const },
      { x: 20, y: 30, label: 1 as const },
    ]) {
      const previous = best((await segmenter.segment(embedding, { points: [click] }, { multimask: true })).masks);
      const fromLogits = (await segmenter.segment(embedding, { points: [click], maskInput: previous.lowResLogits })).masks[0];
      const fromMask = (
        await segmenter.segment(embedding, { points: [click], mask: { data: previous.data, width, height } })
      ).masks[0];
      const inverted = Uint8Array.from(previous.data, (v) => 1 - v);
      const fromInverted = (await segmenter.segment(embedding, { points: [click], mask: { data: inverted, width, height } }))
        .masks[0];
      const noMask = (await segmenter.segment(embedding, { points: [click] })).masks[0];

      const close = iou(fromMask.data, fromLogits.data);
      expect(close).toBeGreaterThan(0.4);
      expect(close).toBeGreaterThan(iou(noMask.data, fromLogits.data) + 0.1);
      expect(close).toBeGreaterThan(iou(fromInverted.data, fromLogits.data) + 0.1);
    }
  });

  it('a mask prompt is the same decode as its converted logits given as maskInput (image or embedding)', async () => {
    const { width, height } = embedding;
    const data = rect(width, height, [30, 20, 110, 80]);
    const frame: MaskFrame = { resizedWidth: 128, resizedHeight: 85, imageSize: 128, lowResSize: 64 };
    const viaMask = await segmenter.segment(embedding, { mask: { data, width, height } });
    const viaLogits = await segmenter.segment(embedding, { maskInput: maskToLogits({ data, width, height }, frame) });
    expect(viaMask.masks[0].lowResLogits).toEqual(viaLogits.masks[0].lowResLogits);
    const fromImage = await segmenter.segment(path.join(FIXTURES, 'wide.png'), { mask: { data, width, height } });
    expect(fromImage.masks[0].lowResLogits).toEqual(viaMask.masks[0].lowResLogits);
  });

  it('a previous Mask is a mask prompt as it is; one from an rle decode is read from its runs, not decoded', async () => {
    const { width, height } = embedding;
    const click = { points: [{ x: 75, y: 50, label: 1 as const }] };
    const dense = (await segmenter.segment(embedding, click)).masks[0];
    const runs = (await segmenter.segment(embedding, click, { rle: true })).masks[0];
    expect(maskSource(runs)).toBeInstanceOf(Uint32Array);
    const viaData = (await segmenter.segment(embedding, { mask: { data: dense.data.slice(), width, height } })).masks[0];
    const viaMask = (await segmenter.segment(embedding, { mask: dense })).masks[0];
    const viaRuns = (await segmenter.segment(embedding, { mask: runs })).masks[0];
    expect(viaMask.lowResLogits).toEqual(viaData.lowResLogits);
    expect(viaRuns.lowResLogits).toEqual(viaData.lowResLogits);
    expect(maskSource(runs)).toBeInstanceOf(Uint32Array); // (its pixels were never made)
    // with a dense scribble the strokes are drawn into a copy of its pixels
    const scribble = { path: [[5, 5], [30, 5]] as [number, number][], label: 1 as const };
    const drawn = rasterizeScribbles([scribble], width, height, dense.data.slice());
    const stroked = (await segmenter.segment(embedding, { mask: runs, scribbles: [{ ...scribble, dense: true }] })).masks[0];
    const explicit = (await segmenter.segment(embedding, { mask: { data: drawn, width, height }, scribbles: [scribble] })).masks[0];
    expect(stroked.lowResLogits).toEqual(explicit.lowResLogits);
    expect(runs.data).toEqual(dense.data);
    // a Mask of another size is refused by name
    const other = new Mask({ data: new Uint8Array(4), width: 2, height: 2, score: 1, lowResLogits: new Float32Array(1) });
    await expect(segmenter.segment(embedding, { mask: other })).rejects.toThrow(
      new RangeError(`Expected the image's width (${width}) for prompt.mask.width but received 2 of type number`),
    );
  });

  it('a dense scribble decodes as its clicks plus the mask of its stroke', async () => {
    const { width, height } = embedding;
    const scribble = { path: [[40, 50], [110, 50]] as [number, number][], label: 1 as const };
    const dense = await segmenter.segment(embedding, { scribbles: [{ ...scribble, dense: true }] });
    const explicit = await segmenter.segment(embedding, {
      scribbles: [scribble],
      mask: { data: rasterizeScribbles([scribble], width, height), width, height },
    });
    expect(dense.masks[0].lowResLogits).toEqual(explicit.masks[0].lowResLogits);
    const clicksOnly = await segmenter.segment(embedding, { scribbles: [scribble] });
    expect(dense.masks[0].lowResLogits).not.toEqual(clicksOnly.masks[0].lowResLogits);
  });

  it('sessions refuse prompt.mask (they set the mask prompt themselves)', async () => {
    const session = await segmenter.session(embedding);
    const mask = { data: new Uint8Array(embedding.width * embedding.height), width: embedding.width, height: embedding.height };
    await expect(session.add({ mask } as never)).rejects.toThrow(RangeError);
  });
});
