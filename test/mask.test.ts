import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { Mask, masksFromDecode, type MaskInit } from '../lib/mask.js';
import type { NativeDecodeResult } from '../lib/native.js';
import { encodeRLE } from '../lib/rle.js';

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

describe('Mask constructor errors', () => {
  it('rejects data of the wrong size', () => {
    expect(
      () => new Mask({ data: new Uint8Array(5), width: 2, height: 2, score: 0, lowResLogits: new Float32Array(4) }),
    ).toThrow(new RangeError('Expected a Uint8Array of 4 bytes for data but received Uint8Array(5) of type Uint8Array'));
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

  it('rejects inconsistent native output', () => {
    expect(() => masksFromDecode({ ...result, iou: new Float32Array(5) }, layout)).toThrow(
      new Error('Native decode returned inconsistent sizes for 6 masks of 3x2: iou 5, masks 36, lowRes 24'),
    );
  });
});
