// Parity of the native SAM core with transformers (fixtures from models/sam/generate_fixtures.py):
// image embeddings, low-res logits, predicted IoU and post-processed masks, for every prompt kind.
import sharp from 'sharp';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { native, type NativeEmbedding, type NativeSamModel } from '../lib/native.js';
import { maskToCounts } from '../lib/rle.js';
import { cases, CPU_MATMUL_BF16X3, f32, FIXTURES, MATMUL_TOL, mismatches, MODEL_DIR, relL2, u8 } from './helpers/fixtures.js';

async function rgb(file: string) {
  const { data, info } = await sharp(path.join(FIXTURES, file)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

/** [x0, y0, x1, y1, area] of each [height, width] mask in `masks`, by definition (Mask.box / area). */
function boundsOf(masks: Uint8Array, width: number, height: number): number[] {
  const out: number[] = [];
  for (let at = 0; at < masks.length; at += width * height) {
    let [x0, y0, x1, y1, area] = [width, height, -1, -1, 0];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (masks[at + y * width + x] === 0) continue;
        [x0, y0, x1, y1, area] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y), area + 1];
      }
    }
    out.push(...(area === 0 ? [0, 0, 0, 0, 0] : [x0, y0, x1, y1, area]));
  }
  return out;
}

// fp32: differences come from summation order and erf/exp approximations only. bf16x3: the image
// encoder's matrix products in bf16 pairs (~4e-6 per GEMM); the decoder stays fp32.
describe.each(['fp32', 'bf16x3'] as const)('native SAM (sam-tiny fixtures), cpuMatmul %s', (cpuMatmul) => {
  const TOL = MATMUL_TOL[cpuMatmul];
  let model: NativeSamModel;
  const embeddings = new Map<string, NativeEmbedding>();

  beforeAll(async () => {
    model = await native().loadSam(MODEL_DIR, { threads: 2, cpuMatmul });
    for (const im of cases.images) {
      const { data, width, height } = await rgb(im.file);
      embeddings.set(im.file, await model.encode(data, width, height, 3));
    }
  });

  it('reads the configuration', () => {
    expect(model.config).toEqual({
      imageSize: 128, longestEdge: 128, embeddingSize: 16, embeddingDim: 32, lowResSize: 64, numMultimaskOutputs: 3,
      device: 'cpu', precision: 'fp32', cpuMatmul: cpuMatmul === 'fp32' ? 'fp32' : CPU_MATMUL_BF16X3,
    });
  });

  it("says what an embedding holds: [E², C] and the decoder's image-side cache [E², 3·I]", async () => {
    const cfg = JSON.parse(await readFile(path.join(MODEL_DIR, 'config.json'), 'utf8'));
    const E = cfg.vision_config.image_size / cfg.vision_config.patch_size;
    const I = cfg.mask_decoder_config.hidden_size / (cfg.mask_decoder_config.attention_downsample_rate ?? 2);
    for (const e of embeddings.values()) expect(e.bytes).toBe(E * E * (cfg.vision_config.output_channels + 3 * I) * 4);
  });

  for (const im of cases.images) {
    it(`encodes ${im.file} like the reference (resize, normalise, pad, ViT with windowed + global attention, neck)`, () => {
      const e = embeddings.get(im.file)!;
      expect([e.resizedHeight, e.resizedWidth]).toEqual(im.resized);
      expect(relL2(e.toCHW(), f32(im.embedding))).toBeLessThan(TOL);
    });
  }

  for (const c of cases.cases) {
    it(`decodes ${c.image} / ${c.name}`, async () => {
      const e = embeddings.get(c.image)!;
      const prompt = {
        promptCount: c.shape.P,
        pointsPerPrompt: c.points ? c.points[0].length : 0,
        points: c.points ? new Float32Array(c.points.flat(2)) : null,
        labels: c.labels ? new Int32Array(c.labels.flat()) : null,
        boxes: c.boxes ? new Float32Array(c.boxes.flat()) : null,
        maskInput: c.maskInput ? f32(c.maskInput) : null,
        multimask: c.multimask,
        threshold: 0,
      };
      const r = await model.decode(e, prompt);
      expect(r.masksPerPrompt).toBe(c.shape.M);
      expect(relL2(r.lowRes, f32(c.lowres))).toBeLessThan(TOL);
      const iou = f32(c.iou);
      expect(r.iou.length).toBe(iou.length);
      r.iou.forEach((v, i) => expect(Math.abs(v - iou[i])).toBeLessThan(TOL));
      // Binary masks at image size: identical but for pixels whose logit is within rounding of 0.
      const ref = u8(c.masks);
      expect(r.masks.length).toBe(ref.length);
      expect(mismatches(r.masks, ref)).toBeLessThanOrEqual(Math.ceil(ref.length * 1e-4));
      // each mask's box and area, taken by the worker as it thresholded the mask
      expect(Array.from(r.bounds ?? [])).toEqual(boundsOf(r.masks, e.width, e.height));

      // The same masks as COCO run lengths, computed by the native decode (rle).
      const runs = await model.decode(e, { ...prompt, rle: true });
      expect(runs.masks.length).toBe(0);
      expect(Array.from(runs.iou)).toEqual(Array.from(r.iou));
      const pixels = e.width * e.height;
      const perMask = Array.from(runs.runsPerMask ?? []);
      expect(perMask).toHaveLength(r.iou.length);
      let at = 0;
      perMask.forEach((n, i) => {
        const counts = Array.from(runs.runs?.subarray(at, (at += n)) ?? []);
        expect(counts).toEqual(maskToCounts(r.masks.subarray(i * pixels, (i + 1) * pixels), e.height, e.width));
      });
      expect(at).toBe(runs.runs?.length);
      expect(Array.from(runs.bounds ?? [])).toEqual(boundsOf(r.masks, e.width, e.height)); // (from the runs)
    });
  }

  it("gives each mask's box and area with the masks, empty and full masks and many blocks of rows included", async () => {
    // 700 × 300: the threshold pass runs in blocks of 93 rows over the 2 threads
    const e = model.embeddingFromCHW(f32(cases.images[0].embedding), 700, 300);
    const prompt = {
      promptCount: 2, pointsPerPrompt: 0, points: null, labels: null,
      boxes: new Float32Array([10, 20, 600, 280, 300, 100, 320, 290]),
      maskInput: null, multimask: true,
    };
    for (const threshold of [0, -1e30, 1e30, 0.3]) {
      const r = await model.decode(e, { ...prompt, threshold });
      const want = boundsOf(r.masks, 700, 300);
      expect(Array.from(r.bounds ?? []), `threshold ${threshold}`).toEqual(want);
      const runs = await model.decode(e, { ...prompt, threshold, rle: true });
      expect(Array.from(runs.bounds ?? []), `threshold ${threshold}, rle`).toEqual(want);
      if (threshold === -1e30) expect(want.slice(0, 5)).toEqual([0, 0, 699, 299, 700 * 300]);
      if (threshold === 1e30) expect(want.slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
    }
    e.dispose();
  });

  it('decodes rle past the share the worker keeps (kArenaRleBytes, 64 MiB) to the runs of the masks', async () => {
    // 3 boxes × 3 masks at 2000×1500: 27 M mask pixels, 135 MB of masks and boundaries
    const im = cases.images[0];
    const e = model.embeddingFromCHW(f32(im.embedding), 2000, 1500);
    const prompt = {
      promptCount: 3, pointsPerPrompt: 0, points: null, labels: null,
      boxes: new Float32Array([100, 100, 1500, 1200, 0, 0, 1999, 1499, 700, 300, 900, 1400]),
      maskInput: null, multimask: true, threshold: 0,
    };
    const r = await model.decode(e, prompt);
    const runs = await model.decode(e, { ...prompt, rle: true });
    const pixels = 2000 * 1500;
    let at = 0;
    Array.from(runs.runsPerMask ?? []).forEach((n, i) => {
      const counts = Array.from(runs.runs?.subarray(at, (at += n)) ?? []);
      expect(counts).toEqual(maskToCounts(r.masks.subarray(i * pixels, (i + 1) * pixels), 1500, 2000));
    });
    expect(runs.runsPerMask).toHaveLength(9);
    expect(at).toBe(runs.runs?.length);
  });

  it('refuses another native object as an embedding, and an accessor called on another class (type tags)', async () => {
    const e = embeddings.get(cases.images[0].file)!;
    const prompt = {
      promptCount: 1, pointsPerPrompt: 1, points: new Float32Array([10, 10]), labels: new Int32Array([1]),
      boxes: null, maskInput: null, multimask: false, threshold: 0,
    };
    const Embedding = e.constructor as { prototype: object; [Symbol.hasInstance]?: unknown };
    const other = await native().loadSam(MODEL_DIR, { threads: 1 });
    const message = /embedding must be a NativeEmbedding/;
    // each of these decoded a SamModel's memory as an embedding: a segfault
    expect(() => model.decode(Object.create(Embedding.prototype), prompt)).toThrow(message);
    Object.defineProperty(Embedding, Symbol.hasInstance, { value: () => true, configurable: true });
    try {
      expect(() => model.decode(other as never, prompt)).toThrow(message);
    } finally {
      delete Embedding[Symbol.hasInstance];
    }
    const posing = Object.setPrototypeOf(other, Embedding.prototype) as NativeEmbedding;
    expect(() => model.decode(posing, prompt)).toThrow(message);
    // accessors get no receiver check from V8: an embedding's read past a model's memory
    for (const key of ['width', 'height', 'resizedWidth', 'resizedHeight', 'encodeMs', 'bytes', 'disposed']) {
      const get = Object.getOwnPropertyDescriptor(Embedding.prototype, key)!.get!;
      expect(() => get.call(posing), key).toThrow(/the receiver must be an object of its class/);
    }
    const config = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(model), 'config')!.get!;
    expect(() => config.call(e)).toThrow(/the receiver must be an object of its class/);
    expect((await model.decode(e, prompt)).iou.length).toBe(1);
  });

  it('reuses the image-side decoder cache without changing results', async () => {
    const c = cases.cases.find((x) => x.name === 'point' && x.image === 'wide.png')!;
    const e = embeddings.get(c.image)!;
    const prompt = {
      promptCount: 1, pointsPerPrompt: 1, points: new Float32Array(c.points!.flat(2)), labels: new Int32Array(c.labels!.flat()),
      boxes: null, maskInput: null, multimask: true, threshold: 0,
    };
    const a = await model.decode(e, prompt);
    const b = await model.decode(e, prompt);
    expect(Array.from(b.lowRes)).toEqual(Array.from(a.lowRes));
  });

  it('round-trips an embedding through toCHW / embeddingFromCHW', async () => {
    const im = cases.images[0];
    const chw = f32(im.embedding);
    const e = model.embeddingFromCHW(chw, im.width, im.height);
    expect([e.resizedHeight, e.resizedWidth]).toEqual(im.resized);
    expect(Array.from(e.toCHW())).toEqual(Array.from(chw));
  });

  it('the async round trip is the sync one: from a copy of the data, disposal meanwhile safe', async () => {
    const im = cases.images[0];
    const chw = f32(im.embedding);
    const data = chw.slice();
    const pending = model.embeddingFromCHWAsync(data, im.width, im.height);
    data.fill(7); // the caller reuses its buffer at once
    const e = await pending;
    expect([e.width, e.height, e.resizedHeight, e.resizedWidth]).toEqual([im.width, im.height, ...im.resized]);
    const out = e.toCHWAsync();
    e.dispose(); // (the worker holds the embedding until it is done)
    expect(Array.from(await out)).toEqual(Array.from(chw));
    expect(() => e.toCHWAsync()).toThrow('The embedding has been disposed');
    expect(() => model.embeddingFromCHWAsync(chw.subarray(1), im.width, im.height)).toThrow(TypeError);
  });

  it('refuses typed arrays of the wrong element type (they were read past their bytes)', () => {
    const e = embeddings.get(cases.images[0].file)!;
    const L = model.config.lowResSize;
    const base = { promptCount: 1, pointsPerPrompt: 0, points: null, labels: null, boxes: null, maskInput: null, multimask: false, threshold: 0 };
    // L² bytes where L² floats are due; 4 bytes for a box
    expect(() => model.decode(e, { ...base, maskInput: new Uint8Array(L * L) as unknown as Float32Array })).toThrow(
      /invalid argument: maskInput/,
    );
    expect(() => model.decode(e, { ...base, boxes: new Uint8Array(4) as unknown as Float32Array })).toThrow(
      /invalid argument: boxes/,
    );
    const points = { ...base, pointsPerPrompt: 1, points: new Float32Array(2), labels: new Uint32Array(1) as unknown as Int32Array };
    expect(() => model.decode(e, points)).toThrow(/invalid argument: labels/);
  });

  it('encodeBatch queues what it checked (a getter that answers differently the second time)', async () => {
    let reads = 0;
    const image = {
      pixels: new Uint8Array(3),
      get width() {
        return reads++ === 0 ? 1 : 4000;
      },
      height: 1,
    };
    const [e] = await model.encodeBatch([image]);
    expect([e.width, e.height]).toEqual([1, 1]);
    e.dispose();
  });

  it('throws after dispose', () => {
    const e = model.embeddingFromCHW(f32(cases.images[0].embedding), 10, 10);
    e.dispose();
    expect(e.disposed).toBe(true);
    expect(() => e.toCHW()).toThrow('The embedding has been disposed');
  });
});

// The option reaches the kernels: on a CPU with AMX the two modes give different embeddings (a
// few 1e-6 apart), elsewhere both run fp32 and agree bit for bit.
describe('cpuMatmul switches the image encoder arithmetic', () => {
  it(`bf16x3 ${CPU_MATMUL_BF16X3 === 'bf16x3' ? 'differs from' : 'equals'} fp32 on this CPU`, async () => {
    const im = cases.images[0]!;
    const { data, width, height } = await rgb(im.file);
    const embed = async (cpuMatmul: 'fp32' | 'bf16x3') => {
      const m = await native().loadSam(MODEL_DIR, { threads: 2, cpuMatmul });
      try {
        const e = await m.encode(data, width, height, 3);
        const chw = e.toCHW();
        e.dispose();
        return chw;
      } finally {
        m.dispose();
      }
    };
    const [exact, fast] = [await embed('fp32'), await embed('bf16x3')];
    const diff = relL2(fast, exact);
    if (CPU_MATMUL_BF16X3 === 'bf16x3') {
      expect(diff).toBeGreaterThan(1e-7);
      expect(diff).toBeLessThan(MATMUL_TOL.bf16x3);
    } else {
      expect(diff).toBe(0);
    }
  });
});
