import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { Mask, masksFromDecode, type MaskInit } from '../lib/mask.js';
import type { NativeDecodeResult } from '../lib/native.js';
import { encodeRLE, maskToCounts } from '../lib/rle.js';
import { seededRandom } from './helpers/random.js';

/** A width × height mask with the given (x, y) pixels set, and 2 × 2 logits. */
function makeMask(width: number, height: number, pixels: Array<[number, number]>, extra: Partial<MaskInit> = {}): Mask {
  const data = new Uint8Array(width * height);
  for (const [x, y] of pixels) data[y * width + x] = 1;
  return new Mask({ data, width, height, score: 0.9, lowResLogits: new Float32Array(4), ...extra });
}

describe('Mask geometry', () => {
  it('box is the inclusive pixel bounds, area the pixel count', () => {
    const mask = makeMask(6, 5, [
      [1, 3],
      [4, 1],
      [2, 2],
    ]);
    expect(mask.box).toEqual([1, 1, 4, 3]);
    expect(mask.area).toBe(3);
  });

  it('a single pixel gives [x, y, x, y] (batched_mask_to_box)', () => {
    expect(makeMask(6, 5, [[5, 4]]).box).toEqual([5, 4, 5, 4]);
  });

  it('an empty mask gives [0, 0, 0, 0] and area 0', () => {
    const mask = makeMask(6, 5, []);
    expect(mask.box).toEqual([0, 0, 0, 0]);
    expect(mask.area).toBe(0);
  });

  it('a full mask spans the image', () => {
    const data = new Uint8Array(12).fill(1);
    const mask = new Mask({ data, width: 4, height: 3, score: 1, lowResLogits: new Float32Array(1) });
    expect(mask.box).toEqual([0, 0, 3, 2]);
    expect(mask.area).toBe(12);
  });

  it('random masks: box and area are the pixels\' (non-zero inside), from pixels and from runs', () => {
    let state = 5;
    const random = () => (state = (state * 48271) % 2147483647) / 2147483647;
    for (let trial = 0; trial < 200; trial++) {
      const [width, height] = [1 + Math.floor(random() * 50), 1 + Math.floor(random() * 50)];
      const density = random() ** 3; // mostly sparse: boxes well inside the image
      const data = Uint8Array.from({ length: width * height }, () => (random() < density ? Math.ceil(random() * 255) : 0));
      let [x0, y0, x1, y1, area] = [width, height, -1, -1, 0];
      data.forEach((v, i) => {
        if (v === 0) return;
        const [x, y] = [i % width, Math.floor(i / width)];
        [x0, y0, x1, y1, area] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y), area + 1];
      });
      const expected = { box: area === 0 ? [0, 0, 0, 0] : [x0, y0, x1, y1], area };
      const mask = new Mask({ data, width, height, score: 1, lowResLogits: new Float32Array(1) });
      expect({ box: mask.box, area: mask.area }, `${width}x${height}`).toEqual(expected);
      const runs = new Mask({ counts: Uint32Array.from(maskToCounts(data, height, width)), width, height, score: 1, lowResLogits: new Float32Array(1) });
      expect({ box: runs.box, area: runs.area }).toEqual(expected);
    }
  });

  it('box returns a copy', () => {
    const mask = makeMask(3, 3, [[1, 1]]);
    mask.box[0] = 99;
    expect(mask.box).toEqual([1, 1, 1, 1]);
  });

  it('keeps data and logits as given (no copy)', () => {
    const data = new Uint8Array(4);
    const lowResLogits = new Float32Array(16);
    const mask = new Mask({ data, width: 2, height: 2, score: 0.5, lowResLogits });
    expect(mask.data).toBe(data);
    expect(mask.lowResLogits).toBe(lowResLogits);
    expect(mask.lowResSize).toBe(4);
    expect(mask.score).toBe(0.5);
    expect(mask.threshold).toBe(0);
  });
});

describe('Mask.stabilityScore', () => {
  it('is IoU(logits > +1, logits > -1)', () => {
    // > 1: {2}; > -1: {2, 0.5, -0.5} → 1/3.
    const mask = makeMask(2, 2, [], { lowResLogits: new Float32Array([2, 0.5, -0.5, -2]) });
    expect(mask.stabilityScore).toBeCloseTo(1 / 3, 12);
  });

  it('is taken around the mask threshold', () => {
    // threshold 0.5: > 1.5: {2}; > -0.5: {2, 0.5} (strict) → 1/2.
    const mask = makeMask(2, 2, [], { lowResLogits: new Float32Array([2, 0.5, -0.5, -2]), threshold: 0.5 });
    expect(mask.stabilityScore).toBe(0.5);
  });

  it('is 1 when every logit is far from the threshold, 0 when none exceeds threshold - 1', () => {
    expect(makeMask(2, 2, [], { lowResLogits: new Float32Array([5, -5, 3, -3]) }).stabilityScore).toBe(1);
    expect(makeMask(2, 2, [], { lowResLogits: new Float32Array([-1, -2, -3, -4]) }).stabilityScore).toBe(0);
  });
});

describe('Mask encodings', () => {
  it('toRLE is COCO RLE of the mask', () => {
    const mask = makeMask(3, 3, [[1, 1]]);
    expect(mask.toRLE()).toEqual({ size: [3, 3], counts: '414' });
    expect(mask.toRLE()).toEqual(encodeRLE(mask.data, 3, 3));
  });

  it('toPNG is a single-channel 0/255 PNG', async () => {
    const mask = makeMask(3, 2, [
      [0, 0],
      [2, 1],
    ]);
    const png = await mask.toPNG();
    const meta = await sharp(png).metadata();
    expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['png', 3, 2, 1]);
    const { data } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    expect(Array.from(data)).toEqual([255, 0, 0, 0, 0, 255]);
  });
});

describe('Mask from run lengths (segment() with rle)', () => {
  const shapes: Array<[number, number]> = [[1, 1], [1, 7], [7, 1], [5, 4], [13, 9], [32, 3]];
  // Random masks of every density, and the runs that cross from one column into the next.
  const random = seededRandom(1);
  const masks: Array<{ data: Uint8Array; width: number; height: number }> = [];
  for (const [width, height] of shapes) {
    for (const density of [0, 0.05, 0.5, 0.95, 1]) {
      masks.push({ data: Uint8Array.from({ length: width * height }, () => (random() < density ? 1 : 0)), width, height });
    }
  }

  it('decodes data, and reads box, area and RLE from the runs, as a mask of the same pixels', () => {
    for (const { data, width, height } of masks) {
      const counts = Uint32Array.from(maskToCounts(data, height, width));
      const fromBytes = new Mask({ data, width, height, score: 0.5, lowResLogits: new Float32Array(4) });
      const fromRuns = new Mask({ counts, width, height, score: 0.5, lowResLogits: new Float32Array(4) });
      // box and area before data: from the runs themselves
      expect([fromRuns.box, fromRuns.area], `${width}x${height}`).toEqual([fromBytes.box, fromBytes.area]);
      expect(fromRuns.toRLE()).toEqual(fromBytes.toRLE());
      expect(fromRuns.data).toEqual(data);
      expect(fromRuns.data).toBe(fromRuns.data); // decoded once
    }
  });

  it('makes the same PNG and polygons from the runs as from the pixels, on the JS thread or off it', async () => {
    const pixelsOf = async (png: Buffer) => (await sharp(png).extractChannel(0).raw().toBuffer()).toString('hex');
    for (const { data, width, height } of masks) {
      const counts = Uint32Array.from(maskToCounts(data, height, width));
      const fromBytes = new Mask({ data, width, height, score: 0.5, lowResLogits: new Float32Array(4) });
      const fromRuns = new Mask({ counts, width, height, score: 0.5, lowResLogits: new Float32Array(4) });
      const pngOfRuns = await fromRuns.toPNG(); // from the runs: data is not decoded yet
      const meta = await sharp(pngOfRuns).metadata();
      expect([meta.width, meta.height, meta.channels], `${width}x${height}`).toEqual([width, height, 1]);
      expect(await pixelsOf(pngOfRuns), `${width}x${height}`).toBe(await pixelsOf(await fromBytes.toPNG()));
      const polygons = fromBytes.toPolygons();
      expect(fromRuns.toPolygons(), `${width}x${height}`).toEqual(polygons);
      expect(await fromRuns.toPolygonsAsync(), `${width}x${height}`).toEqual(polygons);
      expect(await fromBytes.toPolygonsAsync(), `${width}x${height}`).toEqual(polygons);
    }
  });

  it('rejects runs that do not cover the mask, and data with counts', () => {
    const init = { width: 2, height: 2, score: 0, lowResLogits: new Float32Array(4) };
    expect(() => new Mask({ ...init, counts: Uint32Array.of(1, 2) })).toThrow(
      new RangeError('Expected a Uint32Array of run lengths summing to 4 for counts but received Uint32Array(2) of type Uint32Array'),
    );
    expect(() => new Mask({ ...init, counts: Uint32Array.of() })).toThrow(RangeError);
    expect(() => new Mask({ ...init, counts: [4] as unknown as Uint32Array })).toThrow(
      new TypeError('Expected a Uint32Array of run lengths summing to 4 for counts but received [4] of type array'),
    );
    expect(() => new Mask({ ...init, counts: Uint32Array.of(4), data: new Uint8Array(4) })).toThrow(
      new RangeError('Expected either data or counts, not both for counts but received Uint32Array(1) of type Uint32Array'),
    );
  });
});

describe('Mask constructor errors', () => {
  it('rejects data of the wrong size', () => {
    expect(
      () => new Mask({ data: new Uint8Array(5), width: 2, height: 2, score: 0, lowResLogits: new Float32Array(4) }),
    ).toThrow(new RangeError('Expected a Uint8Array of 4 bytes for data but received Uint8Array(5) of type Uint8Array'));
  });

  it('rejects an init that is not an object; takes a Mask as its init', () => {
    expect(() => new Mask(null as never)).toThrow(
      new TypeError('Expected an object {data | counts, width, height, lowResLogits, score, threshold?} for init but received null of type null'),
    );
    const m = new Mask({ data: Uint8Array.of(0, 1, 1, 0), width: 2, height: 2, score: 0.5, lowResLogits: new Float32Array(4) });
    const copy = new Mask(m);
    expect([copy.area, copy.score, copy.width]).toEqual([2, 0.5, 2]);
  });

  it('refuses sides toPolygons and toPNG cannot take, by name, where the native core and sharp gave usage strings', async () => {
    const runs = (w: number, h: number, counts: number[]) =>
      new Mask({ counts: Uint32Array.from(counts), width: w, height: h, score: 0, lowResLogits: new Float32Array(1) });
    const wide = runs(2 ** 31, 2, [2 ** 32 - 1, 1]);
    expect(() => wide.toPolygons()).toThrow(
      new RangeError('Expected a mask side below 2^31 - 1 (to trace its polygons) for width but received 2147483648 of type number'),
    );
    await expect(wide.toPolygonsAsync()).rejects.toThrow(RangeError);
    await expect(wide.toPNG()).rejects.toThrow(
      new RangeError('Expected a mask side between 1 and 10^8 (to write a PNG) for width but received 2147483648 of type number'),
    );
    expect(wide.box).toEqual([2 ** 31 - 1, 1, 2 ** 31 - 1, 1]); // (read from the runs: fine at any size)
    await expect(runs(0, 3, [0]).toPNG()).rejects.toThrow(/for width but received 0/);
    // 65536 × 65536 sides are fine for sharp, but not one buffer of 2^32 pixels
    await expect(runs(2 ** 16, 2 ** 16, [2 ** 32 - 1, 1]).toPNG()).rejects.toThrow(
      new RangeError('Expected a mask of at most 2^32 - 1 pixels for height × width but received 4294967296 of type number'),
    );
  });

  it('rejects non-square logits', () => {
    expect(
      () => new Mask({ data: new Uint8Array(4), width: 2, height: 2, score: 0, lowResLogits: new Float32Array(6) }),
    ).toThrow(new RangeError('Expected a square Float32Array for lowResLogits but received Float32Array(6) of type Float32Array'));
  });
});

describe('masksFromDecode', () => {
  // P = 2 prompt sets × M = 3 outputs of 2 × 3 pixels, 2 × 2 logits.
  const P = 2;
  const M = 3;
  const result: NativeDecodeResult = {
    masksPerPrompt: M,
    iou: Float32Array.from({ length: P * M }, (_, i) => i / 10),
    lowRes: Float32Array.from({ length: P * M * 4 }, (_, i) => i),
    masks: Uint8Array.from({ length: P * M * 6 }, (_, i) => (i % 6 === Math.floor(i / 6) % 6 ? 1 : 0)),
    decodeMs: 1.5,
  };
  const layout = { promptCount: P, width: 3, height: 2, lowResSize: 2, threshold: 0 };

  it('returns P × M masks in prompt order, then output order, as views', () => {
    const masks = masksFromDecode(result, layout);
    expect(masks).toHaveLength(6);
    masks.forEach((mask, i) => {
      expect(mask.score).toBeCloseTo(i / 10, 6);
      expect(mask.data.buffer).toBe(result.masks.buffer);
      expect(mask.data.byteOffset).toBe(i * 6);
      expect(mask.lowResLogits.buffer).toBe(result.lowRes.buffer);
      expect(Array.from(mask.lowResLogits)).toEqual([i * 4, i * 4 + 1, i * 4 + 2, i * 4 + 3]);
      expect(mask.area).toBe(1);
    });
  });

  it("takes each mask's box and area from the worker's bounds when the decode gives them", () => {
    // (made-up bounds, unlike the pixels: the masks report what the native pass took)
    const bounds = Float64Array.from({ length: P * M * 5 }, (_, i) => 100 + i);
    const masks = masksFromDecode({ ...result, bounds }, layout);
    masks.forEach((mask, i) => {
      expect(mask.box).toEqual([100 + 5 * i, 101 + 5 * i, 102 + 5 * i, 103 + 5 * i]);
      expect(mask.area).toBe(104 + 5 * i);
    });
    // without them, the pixels'
    expect(masksFromDecode(result, layout).map((m) => m.box)).toEqual([
      [0, 0, 0, 0], [1, 0, 1, 0], [2, 0, 2, 0], [0, 1, 0, 1], [1, 1, 1, 1], [2, 1, 2, 1],
    ]);
  });

  it('rejects inconsistent native output', () => {
    expect(() => masksFromDecode({ ...result, iou: new Float32Array(5) }, layout)).toThrow(
      new Error('Native decode returned inconsistent sizes for 6 masks of 3x2: iou 5, masks 36, lowRes 24'),
    );
    expect(() => masksFromDecode({ ...result, bounds: new Float64Array(29) }, layout)).toThrow(
      new Error('Native decode returned inconsistent sizes for 6 masks of 3x2: iou 6, masks 36, lowRes 24, bounds 29'),
    );
  });

  // The same masks as run lengths: each mask's counts, back to back, and how many each has.
  const perMask = Array.from({ length: P * M }, (_, i) => maskToCounts(result.masks.subarray(i * 6, (i + 1) * 6), 2, 3));
  const rle: NativeDecodeResult = {
    ...result,
    masks: new Uint8Array(0),
    runs: Uint32Array.from(perMask.flat()),
    runsPerMask: Uint32Array.from(perMask, (c) => c.length),
  };

  it('slices run lengths into masks, each mask its own runs', () => {
    const masks = masksFromDecode(rle, layout);
    expect(masks).toHaveLength(6);
    masks.forEach((mask, i) => {
      expect(mask.toRLE()).toEqual(encodeRLE(result.masks.subarray(i * 6, (i + 1) * 6), 2, 3));
      expect(mask.data).toEqual(result.masks.subarray(i * 6, (i + 1) * 6));
    });
  });

  it('rejects run lengths that do not add up', () => {
    expect(() => masksFromDecode({ ...rle, runsPerMask: rle.runsPerMask?.subarray(1) }, layout)).toThrow(
      new Error('Native decode returned inconsistent sizes for 6 masks of 3x2: iou 6, masks 0, lowRes 24, runs 17, runsPerMask 5'),
    );
    expect(() => masksFromDecode({ ...rle, runs: rle.runs?.subarray(1) }, layout)).toThrow(/runs 16, runsPerMask 6/);
    // a mask whose runs do not cover its pixels is the Mask constructor's RangeError
    const short = Uint32Array.from(rle.runs ?? []);
    short[0] += 1;
    expect(() => masksFromDecode({ ...rle, runs: short }, layout)).toThrow(RangeError);
  });
});
