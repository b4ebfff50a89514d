// Batched image encoding: NativeSamModel.encodeBatch and Segmenter.encodeBatch give each image the
// embedding encode() gives it alone, in order, for images of different sizes, and refuse bad
// batches with clear errors. The batch only stacks the GEMM rows: bit for bit the same where the
// GEMM kernels' results do not depend on how the rows are split (AMX, OpenBLAS on SKYLAKEX), within
// float rounding elsewhere (OpenBLAS's Zen kernels: a call on half the rows already differs in the
// last bits), so the bound is BATCH_TOL, far below what another image's embedding would give (~1).
import sharp from 'sharp';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, MAX_ENCODE_BATCH, Segmenter } from '../lib/index.js';
import { native, type NativeSamModel } from '../lib/native.js';
import { cases, CPU_MATMUL_BF16X3, f32, FIXTURES, MATMUL_TOL, MODEL_DIR, relL2 } from './helpers/fixtures.js';

const BATCH_TOL = 1e-6;

async function rgb(file: string) {
  const { data, info } = await sharp(path.join(FIXTURES, file)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

describe('NativeSamModel.encodeBatch', () => {
  let model: NativeSamModel;
  beforeAll(async () => {
    model = await native().loadSam(MODEL_DIR, { threads: 2 });
  });
  afterAll(() => model.dispose());

  it('encodes images of different sizes in one call, each as encode() does', async () => {
    const images = await Promise.all(cases.images.map((im) => rgb(im.file)));
    expect(new Set(images.map((im) => `${im.width}x${im.height}`)).size).toBeGreaterThan(1);
    // the first image again at the end: a batch may repeat an image
    const batch = [...images, images[0]!];
    const embeddings = await model.encodeBatch(batch.map((im) => ({ pixels: im.data, width: im.width, height: im.height })));
    expect(embeddings).toHaveLength(batch.length);
    for (const [i, im] of batch.entries()) {
      const single = await model.encode(im.data, im.width, im.height, 3);
      const e = embeddings[i]!;
      expect([e.width, e.height]).toEqual([im.width, im.height]);
      expect(relL2(e.toCHW(), single.toCHW())).toBeLessThan(BATCH_TOL);
      const ref = cases.images[i % cases.images.length]!;
      expect(relL2(e.toCHW(), f32(ref.embedding))).toBeLessThan(MATMUL_TOL[CPU_MATMUL_BF16X3]);
      single.dispose();
      e.dispose();
    }
  });

  it('rejects malformed batches before any work', () => {
    expect(() => model.encodeBatch([])).toThrow(TypeError);
    expect(() => model.encodeBatch([{ pixels: new Uint8Array(11), width: 2, height: 2 }])).toThrow(/images\[0\]/);
    expect(() => model.encodeBatch([{ pixels: new Float32Array(12) as unknown as Uint8Array, width: 2, height: 2 }])).toThrow(TypeError);
  });
});

describe('Segmenter.encodeBatch', () => {
  let segmenter: Segmenter;
  beforeAll(async () => {
    segmenter = await Segmenter.load({ model: MODEL_DIR, threads: 2 });
  });
  afterAll(() => segmenter.dispose());

  it('returns one embedding per image, in order, equal to encode()', async () => {
    const files = cases.images.map((im) => path.join(FIXTURES, im.file));
    const batch = await segmenter.encodeBatch([files[1]!, files[0]!]);
    const [a, b] = [await segmenter.encode(files[1]!), await segmenter.encode(files[0]!)];
    expect(batch.map((e) => [e.width, e.height])).toEqual([[a.width, a.height], [b.width, b.height]]);
    expect(relL2(batch[0]!.toFloat32Array(), a.toFloat32Array())).toBeLessThan(BATCH_TOL);
    expect(relL2(batch[1]!.toFloat32Array(), b.toFloat32Array())).toBeLessThan(BATCH_TOL);
    // the embeddings are ordinary: they segment and dispose
    const { masks } = await segmenter.segment(batch[0]!, { points: [{ x: 5, y: 5, label: 1 }] });
    expect(masks.length).toBeGreaterThan(0);
    for (const e of [...batch, a, b]) e.dispose();
  });

  it('refuses empty and oversized batches with a RangeError naming the limit, a non-array with a TypeError', async () => {
    await expect(segmenter.encodeBatch([])).rejects.toThrow(RangeError);
    const many = Array.from({ length: MAX_ENCODE_BATCH + 1 }, () => ({ data: new Uint8Array(3), width: 1, height: 1, channels: 3 as const }));
    await expect(segmenter.encodeBatch(many)).rejects.toThrow(RangeError);
    await expect(segmenter.encodeBatch(many)).rejects.toThrow(`an array of 1 to ${MAX_ENCODE_BATCH} images for images`);
    await expect(segmenter.encodeBatch('x.png' as unknown as string[])).rejects.toThrow(TypeError);
  });

  it('fails the whole batch on one bad image, and honours an aborted signal', async () => {
    const good = path.join(FIXTURES, cases.images[0]!.file);
    await expect(segmenter.encodeBatch([good, Buffer.from('not an image')])).rejects.toThrow();
    const signal = AbortSignal.abort();
    await expect(segmenter.encodeBatch([good], { signal })).rejects.toBeInstanceOf(AbortError);
  });
});
