// Referrer (lib/referrer.ts) and CLIPSeg preprocessing (lib/clip/image-processor.ts) on the tiny
// CLIPSeg fixture (models/clipseg/generate_fixtures.py): the processor's pixel values and the
// tokenizer's ids against transformers, end-to-end logits against CLIPSegForImageSegmentation,
// the heat map against sigmoid + bilinear resize of the native logits, the conditioning that
// reaches the native model for text / reference image / both, validation and dispose.
import { readFileSync } from 'node:fs';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { maxAbs } from './helpers/arrays.js';
import {
  preprocessClipImage,
  readClipImageProcessorConfig,
  resizeBilinearPil,
} from '../lib/clip/image-processor.js';
import { decodeImage } from '../lib/image.js';
import { native, type NativeClipSegModel } from '../lib/native.js';
import { DEFAULT_TEXT_WEIGHT, Referrer } from '../lib/referrer.js';
import { visualPrompt } from '../lib/referring/visual-prompt.js';
import { relL2 } from './helpers/fixtures.js';
import { countingReferrer } from './helpers/counting-referrer.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'clipseg-tiny');
const MODEL_DIR = path.join(FIXTURES, 'model');
const WIDE = path.join(FIXTURES, '..', 'sam-tiny', 'wide.png');
const SMALL = path.join(FIXTURES, '..', 'sam-tiny', 'small.png');

interface Manifest {
  processor: { size: number; images: { name: string; source: string; width: number; height: number; pixelValues: string }[] };
  tokens: { text: string; ids: number[] }[];
  e2e: { name: string; image: string; text: string | null; refImage: string | null; logits: string; size: number }[];
}
const manifest = JSON.parse(readFileSync(path.join(FIXTURES, 'cases.json'), 'utf8')) as Manifest;

function f32(file: string): Float32Array {
  const b = readFileSync(path.join(FIXTURES, file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
// Native vs transformers, fp32 throughout (as test/native-clipseg.test.ts; measured ~1e-6).
const TOL = 1e-4;

describe('CLIPSeg image processor', () => {
  it('reads preprocessor_config.json', async () => {
    expect(await readClipImageProcessorConfig(MODEL_DIR)).toEqual({
      width: 96,
      height: 96,
      doResize: true,
      doRescale: true,
      rescaleFactor: 1 / 255,
      doNormalize: true,
      imageMean: [0.485, 0.456, 0.406],
      imageStd: [0.229, 0.224, 0.225],
    });
  });

  for (const im of manifest.processor.images) {
    it(`pixel values of ${im.name}.png (${im.width}x${im.height} → 96x96) equal transformers' ViTImageProcessorPil`, async () => {
      const config = await readClipImageProcessorConfig(MODEL_DIR);
      const decoded = await decodeImage(path.join(FIXTURES, im.source));
      const { pixels, width, height } = preprocessClipImage(decoded, config);
      expect([width, height]).toEqual([96, 96]);
      // Pillow's resize is reproduced bit for bit and the float32 steps as numpy runs them: the
      // values are identical (one uint8 step would be ~0.017).
      expect(maxAbs(pixels, f32(im.pixelValues))).toBe(0);
    });
  }

  it('resizeBilinearPil: identity, width only, height only', () => {
    const px = Uint8Array.from({ length: 4 * 3 * 3 }, (_, i) => (i * 37) % 256);
    expect(resizeBilinearPil(px, 4, 3, 3, 4, 3)).toEqual(px);
    // 4 → 2 in width: scale 2 widens the triangle filter to support 2, so output 0 (centre 1)
    // takes inputs 0..2 with weights .75, .75, .25 and output 1 (centre 3) inputs 1..3 with .25,
    // .75, .75, each normalised by 1.75 (Pillow gives [71, 117]).
    const row = Uint8Array.from([0, 100, 200, 40]);
    expect(Array.from(resizeBilinearPil(row, 4, 1, 1, 2, 1))).toEqual([71, 117]);
    expect(Array.from(resizeBilinearPil(row, 1, 4, 1, 1, 2))).toEqual(Array.from(resizeBilinearPil(row, 4, 1, 1, 2, 1)));
  });

  it('resizeBilinearPil and preprocessClipImage refuse bad arguments by name (they read and allocated whatever they were given)', async () => {
    const px = new Uint8Array(12);
    expect(() => resizeBilinearPil(px, 2, 2, 3, 1e6, 1e6)).toThrow(
      new RangeError('Expected at most 2^32 - 1 bytes for max(ih, oh) × ow × channels but received 3000000000000 of type number'),
    );
    expect(() => resizeBilinearPil(px, 2, 2, 2, 1, 1)).toThrow(
      new RangeError('Expected a Uint8Array of iw × ih × channels = 8 bytes for data but received Uint8Array(12) of type Uint8Array'),
    );
    expect(() => resizeBilinearPil([1, 2] as never, 2, 1, 1, 1, 1)).toThrow(TypeError);
    expect(() => resizeBilinearPil(px, 2, 2, 5, 1, 1)).toThrow(/integer between 1 and 4 for channels/);
    expect(() => resizeBilinearPil(px, 2, 2, 3, 0, 1)).toThrow(/integer >= 1 for ow/);
    const config = await readClipImageProcessorConfig(MODEL_DIR);
    const image = { data: px, width: 2, height: 2 };
    expect(preprocessClipImage(image, config).pixels).toHaveLength(3 * config.width * config.height);
    expect(() => preprocessClipImage({ ...image, width: 3 }, config)).toThrow(/for image\.data but received Uint8Array\(12\)/);
    expect(() => preprocessClipImage(null as never, config)).toThrow(/for image but received null/);
    expect(() => preprocessClipImage(image, { ...config, width: 1e6 })).toThrow(
      new RangeError('Expected an integer between 1 and 2048 for config.width but received 1000000 of type number'),
    );
    expect(() => preprocessClipImage(image, { ...config, imageStd: [1, 0, 1] })).toThrow(
      new RangeError('Expected an array of 3 positive numbers for config.imageStd[1] but received 0 of type number'),
    );
    expect(() => preprocessClipImage(image, { ...config, doResize: 'yes' } as never)).toThrow(/a boolean for config\.doResize/);
  });

  it('rejects unsupported or malformed configs, naming the file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'omniseg-clipproc-'));
    const file = path.join(dir, 'preprocessor_config.json');
    try {
      await expect(readClipImageProcessorConfig(dir)).rejects.toThrow(`${file}: file not found`);
      await writeFile(file, '{"size": {"height": 352, "width": 352}, "resample": 3}');
      await expect(readClipImageProcessorConfig(dir)).rejects.toThrow(`${file}: resample 3 is not supported (only 2, bilinear)`);
      await writeFile(file, '{"size": {"shortest_edge": 224}}');
      await expect(readClipImageProcessorConfig(dir)).rejects.toThrow(`${file}: size must be {"height": H, "width": W}`);
      await writeFile(file, '{"image_std": [0.2, 0, 0.2]}');
      await expect(readClipImageProcessorConfig(dir)).rejects.toThrow(`${file}: image_std must be a number or 3 positive numbers`);
      await writeFile(file, '{');
      await expect(readClipImageProcessorConfig(dir)).rejects.toThrow(`${file}: not valid JSON`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Referrer cancellation and shared text passes (clipseg-tiny)', () => {
  it('a signal cancels heatmap, heatmaps and encode while they wait: their model passes never run', async () => {
    const { referrer, passes } = await countingReferrer();
    try {
      const image = await decodeImage(WIDE);
      const raw = { ...image, channels: 3 as const };
      // already aborted: nothing runs
      const gone = AbortSignal.abort();
      await expect(referrer.heatmap(raw, { text: 'a cat' }, { signal: gone })).rejects.toMatchObject({ name: 'AbortError' });
      await expect(referrer.encode(raw, { signal: gone })).rejects.toMatchObject({ name: 'AbortError' });
      expect(passes).toEqual({});
      // queued behind another call: cancelled where it waits
      const running = referrer.heatmaps(raw, [{ text: 'a dog' }, { text: 'a cat' }]);
      const controller = new AbortController();
      const queued = [
        referrer.heatmap(raw, { text: 'red' }, { signal: controller.signal }),
        referrer.heatmaps(raw, [{ text: 'the' }], { signal: controller.signal }),
        referrer.encode(raw, { signal: controller.signal }),
      ];
      controller.abort();
      for (const call of queued) await expect(call).rejects.toMatchObject({ name: 'AbortError' });
      await running;
      expect([passes.forward, passes.encodeImage ?? 0]).toEqual([1, 0]);
      await expect(referrer.heatmap(raw, { text: 'x' }, { signal: 'soon' as never })).rejects.toThrow(
        new TypeError('Expected an AbortSignal for settings.signal but received "soon" of type string'),
      );
    } finally {
      referrer.dispose();
    }
  });

  it('heatmaps hands each heat map in its own buffer, made off the JS thread (no copy, no view of the others)', async () => {
    const { referrer } = await countingReferrer();
    try {
      const maps = await referrer.heatmaps(WIDE, [{ text: 'a cat' }, { text: 'a dog' }, { text: 'red' }]);
      const buffers = new Set(maps.map((m) => m.data.buffer));
      expect(buffers.size).toBe(3);
      for (const m of maps) expect(m.data.buffer.byteLength).toBe(m.width * m.height * 4);
      // each equals the query's heat map alone
      expect(maxAbs(maps[1].data, (await referrer.heatmap(WIDE, { text: 'a dog' })).data)).toBe(0);
    } finally {
      referrer.dispose();
    }
  });

  it('concurrent calls for a new text share one text pass', async () => {
    const { referrer, passes } = await countingReferrer();
    try {
      const all = await Promise.all(Array.from({ length: 20 }, () => referrer.embedText('a red dog')));
      expect(passes.textEmbedding).toBe(1);
      for (const e of all) expect(e).toEqual(all[0]);
      await referrer.embedText('a red dog');
      expect(passes.textEmbedding).toBe(1);
    } finally {
      referrer.dispose();
    }
  });
});

describe('Referrer (clipseg-tiny)', () => {
  let referrer: Referrer;
  let model: NativeClipSegModel;
  let wide: Float32Array;
  let small: Float32Array;

  beforeAll(async () => {
    referrer = await Referrer.load({ model: MODEL_DIR, device: 'cpu', threads: 2 });
    model = await native().loadClipSeg!(MODEL_DIR, { threads: 2 });
    wide = f32('wide.pixel_values.f32');
    small = f32('small.pixel_values.f32');
  });
  afterAll(() => {
    referrer?.dispose();
    model?.dispose();
  });

  it('loads the config, processor and tokenizer', () => {
    expect(referrer.config).toMatchObject({ imageSize: 64, patchSize: 16, projectionDim: 24, vocabSize: 64, maxPositions: 16 });
    expect(referrer.processor.width).toBe(96);
    expect(referrer.device).toBe('cpu');
    expect(referrer.threads).toBe(2);
  });

  for (const t of manifest.tokens) {
    it(`tokenises ${JSON.stringify(t.text)} as transformers' CLIPTokenizer on the tiny vocabulary`, () => {
      expect(Array.from(referrer.tokenizer.encode(t.text).inputIds)).toEqual(t.ids);
    });
  }

  for (const c of manifest.e2e) {
    const by = c.text !== null ? `the text ${JSON.stringify(c.text)}` : `${c.refImage}.png as the reference image`;
    it(`end to end: logits of wide.png conditioned on ${by} equal transformers'`, async () => {
      const h = await referrer.heatmap(WIDE, c.text !== null ? { text: c.text } : { refImage: SMALL });
      expect(h.size).toBe(c.size);
      expect(relL2(h.logits, f32(c.logits))).toBeLessThan(TOL);
    });
  }

  it('the heat map is sigmoid(native logits) resized to the image, bilinear (align_corners=False)', async () => {
    const h = await referrer.heatmap(WIDE, { text: 'a red cat' });
    const ids = Array.from(h.inputIds!);
    expect(ids).toEqual(manifest.tokens[0].ids);
    const direct = await model.forward(wide, 96, 96, { inputIds: new Int32Array(ids) });
    expect(Array.from(h.logits)).toEqual(Array.from(direct.logits));
    expect([h.width, h.height, h.data.length]).toEqual([150, 100, 150 * 100]);
    // Independent reference: per pixel, PyTorch's source coordinate and the four neighbours.
    const S = h.size;
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const src = (o: number, out: number) => {
      const p = Math.max((o + 0.5) * (S / out) - 0.5, 0);
      const i0 = Math.min(Math.floor(p), S - 1);
      return [i0, Math.min(i0 + 1, S - 1), p - i0] as const;
    };
    let worst = 0;
    for (let y = 0; y < h.height; y++) {
      const [y0, y1, ty] = src(y, h.height);
      for (let x = 0; x < h.width; x++) {
        const [x0, x1, tx] = src(x, h.width);
        const at = (yy: number, xx: number) => sig(direct.logits[yy * S + xx]);
        const v =
          (at(y0, x0) * (1 - tx) + at(y0, x1) * tx) * (1 - ty) + (at(y1, x0) * (1 - tx) + at(y1, x1) * tx) * ty;
        worst = Math.max(worst, Math.abs(v - h.data[y * h.width + x]));
      }
    }
    // The native worker computes it in float32, as F.interpolate on torch.sigmoid does (source
    // coordinates and weights rounded to float32): a few 1e-6 from this float64 reference.
    expect(worst).toBeLessThan(1e-5);
    for (const v of h.data) expect(v >= 0 && v <= 1).toBe(true);
    expect(h.timings.totalMs).toBeGreaterThanOrEqual(h.timings.modelMs);
  });

  it('the native model reads the decoded image where it is (no copy on the JS thread), heat map and encode', async () => {
    // a Referrer whose native model records the pixels its forward and encodeImage are given
    const binding = native();
    const load = binding.loadClipSeg!.bind(binding);
    const seen: Array<[string, unknown]> = [];
    vi.spyOn(binding, 'loadClipSeg').mockImplementation(async (dir, options) => {
      const loaded = await load(dir, options);
      return new Proxy(loaded, {
        get(target, key) {
          const value = Reflect.get(target, key, target) as unknown;
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) => {
            if (key === 'forward' || key === 'encodeImage') seen.push([key, args[0]]);
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
    });
    const spied = await Referrer.load({ model: MODEL_DIR, device: 'cpu', threads: 2 });
    try {
      const h = await spied.heatmap(WIDE, { text: 'a red cat' });
      const image = await spied.encode(WIDE);
      const again = await spied.heatmap(image, { text: 'a red cat' });
      image.dispose();
      expect(seen.map(([key]) => key)).toEqual(['forward', 'encodeImage']);
      for (const [, pixels] of seen) expect(pixels).toMatchObject({ inPlace: true, width: 150, height: 100 });
      expect(again.logits).toEqual(h.logits);
      expect(h.logits).toEqual((await referrer.heatmap(WIDE, { text: 'a red cat' })).logits);
    } finally {
      vi.restoreAllMocks();
      spied.dispose();
    }
  });

  it('text conditioning reaches the native model as the text embedding of the tokenised ids', async () => {
    const h = await referrer.heatmap(WIDE, { text: 'The dog.' });
    const t = await model.textEmbedding(new Int32Array(manifest.tokens[1].ids));
    expect(maxAbs(h.conditional, t)).toBeLessThan(1e-6);
  });

  it('a reference image reaches it as the image embedding of its pixel values', async () => {
    const h = await referrer.heatmap(WIDE, { refImage: SMALL });
    expect(h.inputIds).toBeUndefined();
    const v = await model.imageEmbedding(small, 96, 96);
    expect(maxAbs(h.conditional, v)).toBeLessThan(1e-6);
  });

  it('a reference region reaches it as the image embedding of the visual prompt (crop, blur, darken)', async () => {
    const region = { box: [20, 10, 60, 50] as [number, number, number, number] };
    const h = await referrer.heatmap(WIDE, { refImage: SMALL, refRegion: region });
    const ref = await decodeImage(SMALL);
    const prompt = await visualPrompt({ ...ref, channels: 3 }, region);
    expect([prompt.width, prompt.height]).toEqual([48, 48]);
    const p = preprocessClipImage(prompt, referrer.processor);
    const v = await model.imageEmbedding(p.pixels, p.width, p.height);
    expect(maxAbs(h.conditional, v)).toBeLessThan(1e-6);
    const whole = await referrer.heatmap(WIDE, { refImage: SMALL });
    expect(maxAbs(h.conditional, whole.conditional)).toBeGreaterThan(1e-4);

    await expect(referrer.heatmap(WIDE, { text: 'cat', refRegion: region })).rejects.toThrow(
      new TypeError('Expected undefined (refRegion needs refImage) for options.refRegion but received {box: [20, 10, 60, 50]} of type object'),
    );
    await expect(referrer.heatmap(WIDE, { refImage: SMALL, refRegion: { box: [0, 0, 91, 70] } })).rejects.toThrow(
      new RangeError('Expected a number between 0 and 90 for options.refRegion.box[2] but received 91 of type number'),
    );
    await expect(
      referrer.heatmap(WIDE, { refImage: SMALL, refRegion: { mask: { data: new Uint8Array(90 * 70), width: 90, height: 70 } } }),
    ).rejects.toThrow(/^Expected a region that covers at least one pixel of the reference image for options\.refRegion /);
  });

  it('text and reference image mix as textWeight · text + (1 − textWeight) · image (default 0.5)', async () => {
    const t = await model.textEmbedding(new Int32Array(manifest.tokens[0].ids));
    const v = await model.imageEmbedding(small, 96, 96);
    for (const w of [undefined, 0.3, 0, 1]) {
      const h = await referrer.heatmap(WIDE, { text: 'a red cat', refImage: SMALL, ...(w === undefined ? {} : { textWeight: w }) });
      const weight = w ?? DEFAULT_TEXT_WEIGHT;
      const mix = t.map((x, i) => weight * x + (1 - weight) * v[i]);
      expect(maxAbs(h.conditional, mix)).toBeLessThan(1e-6);
      const direct = await model.forward(wide, 96, 96, { embedding: mix });
      expect(relL2(h.logits, direct.logits)).toBeLessThan(1e-5);
    }
    expect(DEFAULT_TEXT_WEIGHT).toBe(0.5);
  });

  it('takes raw pixels and encoded bytes as well as paths', async () => {
    const decoded = await decodeImage(WIDE);
    const a = await referrer.heatmap(WIDE, { text: 'cat' });
    const b = await referrer.heatmap({ data: decoded.data, width: 150, height: 100, channels: 3 }, { text: 'cat' });
    const c = await referrer.heatmap(readFileSync(WIDE), { refImage: readFileSync(SMALL), text: 'cat', textWeight: 1 });
    expect(Array.from(b.data)).toEqual(Array.from(a.data));
    expect(Array.from(c.logits)).toEqual(Array.from(a.logits));
  });

  it('embed() returns a copy: changing it leaves the text cache alone', async () => {
    const before = await referrer.embedText('a cat');
    (await referrer.embed({ text: 'a cat' })).fill(0);
    expect(Array.from(await referrer.embedText('a cat'))).toEqual(Array.from(before));
  });

  it('takes images wider (or taller) than 32768 and 65536 pixels', async () => {
    // 70000 × 1: the native resize takes any side up to 2^31 − 1; the addon refused the image over
    // 32768 px and the heat map over 65536 px a side as "invalid argument"
    const strip = { data: new Uint8Array(70000 * 3).fill(128), width: 70000, height: 1, channels: 3 as const };
    const map = await referrer.heatmap(strip, { text: 'a cat' });
    expect([map.width, map.height]).toEqual([70000, 1]);
    expect(map.data.every(Number.isFinite)).toBe(true);
  });

  it('rejects invalid arguments with the shared message template', async () => {
    await expect(referrer.heatmap(WIDE, {})).rejects.toThrow(
      new TypeError('Expected an object with text and/or refImage for options but received {} of type object'),
    );
    await expect(referrer.heatmap(WIDE, undefined as never)).rejects.toThrow(
      new TypeError('Expected an object {text?, refImage?, ...} or {prompts, weights?} for options but received undefined of type undefined'),
    );
    await expect(referrer.heatmap(WIDE, { text: '' })).rejects.toThrow(
      new RangeError('Expected a non-empty string for options.text but received "" of type string'),
    );
    await expect(referrer.heatmap(WIDE, { text: 5 as never })).rejects.toThrow(
      new TypeError('Expected a non-empty string for options.text but received 5 of type number'),
    );
    await expect(referrer.heatmap(WIDE, { text: 'cat', textWeight: 0.5 })).rejects.toThrow(
      new TypeError('Expected undefined (textWeight needs both text and refImage) for options.textWeight but received 0.5 of type number'),
    );
    await expect(referrer.heatmap(WIDE, { text: 'cat', refImage: SMALL, textWeight: 1.5 })).rejects.toThrow(
      new RangeError('Expected a number between 0 and 1 for options.textWeight but received 1.5 of type number'),
    );
    await expect(referrer.heatmap(WIDE, { refImage: 42 as never })).rejects.toThrow(TypeError);
    await expect(referrer.heatmap(WIDE, { refImage: 42 as never })).rejects.toThrow(/for options\.refImage but received 42 of type number/);
    await expect(referrer.heatmap(42 as never, { text: 'cat' })).rejects.toThrow(/for image but received 42 of type number/);
    await expect(Referrer.load({ model: '' })).rejects.toThrow(
      new RangeError('Expected a non-empty string for model but received "" of type string'),
    );
    await expect(Referrer.load({ model: MODEL_DIR, threads: 0 })).rejects.toThrow(
      new RangeError('Expected an integer between 1 and 1024 for threads but received 0 of type number'),
    );
    await expect(Referrer.load({ model: MODEL_DIR, device: 'tpu' as never })).rejects.toThrow(
      new RangeError("Expected one of 'cpu', 'cuda', 'auto' for device but received \"tpu\" of type string"),
    );
    await expect(Referrer.load({ model: path.join(FIXTURES, 'nope') })).rejects.toThrow(/^Model directory not found: /);
  });

  it('refuses a checkpoint whose processor size does not suit the model, naming the file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'omniseg-referrer-'));
    try {
      for (const f of ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt']) {
        await copyFile(path.join(MODEL_DIR, f), path.join(dir, f));
      }
      await expect(Referrer.load({ model: dir, device: 'cpu', threads: 1 })).rejects.toThrow(
        `${path.join(dir, 'preprocessor_config.json')}: file not found`,
      );
      await writeFile(path.join(dir, 'preprocessor_config.json'), '{"size": {"height": 90, "width": 90}}');
      await expect(Referrer.load({ model: dir, device: 'cpu', threads: 1 })).rejects.toThrow(
        `${dir}/preprocessor_config.json: size 90x90 must be square and a multiple of the patch size 16`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('dispose frees the model; later calls throw; idempotent', async () => {
    const r = await Referrer.load({ model: MODEL_DIR, device: 'cpu', threads: 1 });
    expect(r.disposed).toBe(false);
    r.dispose();
    r.dispose();
    expect(r.disposed).toBe(true);
    await expect(r.heatmap(WIDE, { text: 'cat' })).rejects.toThrow('The Referrer has been disposed; call Referrer.load() again');
  });
});
