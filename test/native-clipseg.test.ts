// Parity of the native CLIPSeg core with transformers (fixtures from
// models/clipseg/generate_fixtures.py: CLIPSegForImageSegmentation on random weights at a tiny
// configuration): CLIP text and image features, and segmentation logits conditioned on a text,
// a visual prompt and a weighted mix of both; then malformed inputs and checkpoints.
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native, type NativeClipSegConditioning, type NativeClipSegModel } from '../lib/native.js';
import { clipModelInput, preprocessClipImage, type ClipImageProcessorConfig } from '../lib/clip/image-processor.js';
import { CPU_MATMUL_BF16X3, relL2 } from './helpers/fixtures.js';
import { parseSafetensors, rewriteSafetensors, type ParsedSafetensors, type SafetensorsHeader } from './helpers/safetensors.js';
import { seededRandom } from './helpers/random.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'clipseg-tiny');
const MODEL_DIR = path.join(FIXTURES, 'model');

// Relative L2 error bound, fp32 throughout: only summation order and the exp approximation
// differ from PyTorch (measured: ~1e-6 on every output). (The default cpuMatmul, bf16x3, takes
// GEMMs of 64 rows or more: this tiny tower's 17-37 tokens stay fp32; models/clipseg/parity.py
// checks bf16x3 at the full configuration.)
const TOL = 1e-4;

interface Manifest {
  images: { name: string; file: string; size: number }[];
  texts: { name: string; ids: number[]; embedding: string }[];
  prompt: { image: string; embedding: string };
  labels: { logitScale: number };
  cases: {
    name: string;
    image: string;
    text: string | null;
    prompt: boolean;
    textWeight: number | null;
    logits: string;
    size: number;
  }[];
}
const manifest = JSON.parse(readFileSync(path.join(FIXTURES, 'cases.json'), 'utf8')) as Manifest;

function f32(file: string): Float32Array {
  const b = readFileSync(path.join(FIXTURES, file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
const image = (name: string) => manifest.images.find((i) => i.name === name)!;
const text = (name: string) => manifest.texts.find((t) => t.name === name)!;
const sub = (a: Float32Array, b: Float32Array) => a.map((v, i) => v - b[i]);

function conditioning(c: Manifest['cases'][number]): NativeClipSegConditioning {
  const out: NativeClipSegConditioning = {};
  if (c.text) out.inputIds = new Int32Array(text(c.text).ids);
  if (c.prompt) {
    const p = image(manifest.prompt.image);
    Object.assign(out, { promptPixels: f32(p.file), promptWidth: p.size, promptHeight: p.size });
  }
  if (c.textWeight !== null) out.textWeight = c.textWeight;
  return out;
}

describe('native CLIPSeg (clipseg-tiny fixtures)', () => {
  let model: NativeClipSegModel;
  const logits = new Map<string, Float32Array>();

  beforeAll(async () => {
    model = await native().loadClipSeg!(MODEL_DIR, { threads: 2 });
    for (const c of manifest.cases) {
      const im = image(c.image);
      const r = await model.forward(f32(im.file), im.size, im.size, conditioning(c));
      expect(r.size).toBe(c.size);
      logits.set(c.name, r.logits);
    }
  });

  it('reads the configuration', () => {
    expect(model.config).toEqual({
      imageSize: 64, patchSize: 16, projectionDim: 24, vocabSize: 64, maxPositions: 16, device: 'cpu',
      cpuMatmul: CPU_MATMUL_BF16X3,
      logitScale: expect.closeTo(manifest.labels.logitScale, 5),
    });
  });

  for (const t of manifest.texts) {
    it(`text features of "${t.name}" (causal text tower, pooled at the argmax id, projection)`, async () => {
      const e = await model.textEmbedding(new Int32Array(t.ids));
      expect(relL2(e, f32(t.embedding))).toBeLessThan(TOL);
    });
  }

  it('image features of the visual prompt (80×80: position embeddings interpolated 4×4 → 5×5)', async () => {
    const p = image(manifest.prompt.image);
    const e = await model.imageEmbedding(f32(p.file), p.size, p.size);
    expect(relL2(e, f32(manifest.prompt.embedding))).toBeLessThan(TOL);
  });

  for (const c of manifest.cases) {
    const by = c.text && c.prompt ? `${c.textWeight}·text + ${1 - c.textWeight!}·visual prompt` : c.text ? `text "${c.text}"` : 'the visual prompt';
    it(`logits of ${c.image} (${image(c.image).size}²) conditioned on ${by}`, () => {
      expect(relL2(logits.get(c.name)!, f32(c.logits))).toBeLessThan(TOL);
    });
  }

  it('the text path itself: the difference between two texts\' logits matches', () => {
    // At random init the image path dominates the logits; the difference isolates the text path.
    const ours = sub(logits.get('query_cat')!, logits.get('query_dog')!);
    const ref = sub(f32('query_cat.logits.f32'), f32('query_dog.logits.f32'));
    expect(relL2(ours, ref)).toBeLessThan(TOL);
    const mix = sub(logits.get('query_mix')!, logits.get('query_prompt')!);
    expect(relL2(mix, sub(f32('query_mix.logits.f32'), f32('query_prompt.logits.f32')))).toBeLessThan(TOL);
  });

  it('a conditional embedding given directly equals the text conditioning', async () => {
    const im = image('query');
    const cat = await model.textEmbedding(new Int32Array(text('cat').ids));
    const r = await model.forward(f32(im.file), im.size, im.size, { embedding: cat });
    expect(Array.from(r.conditional)).toEqual(Array.from(cat));
    expect(relL2(r.logits, f32('query_cat.logits.f32'))).toBeLessThan(TOL);
  });

  it('N conditional embeddings: one vision pass, N logits maps, each equal to its own forward', async () => {
    const im = image('query');
    const [cat, dog] = [await model.textEmbedding(new Int32Array(text('cat').ids)), await model.textEmbedding(new Int32Array(text('dog').ids))];
    const batch = new Float32Array(3 * 24);
    [cat, dog, cat].forEach((e, i) => batch.set(e, i * 24));
    const r = await model.forward(f32(im.file), im.size, im.size, { embedding: batch });
    expect(r.size).toBe(96);
    expect(r.logits.length).toBe(3 * 96 * 96);
    expect(Array.from(r.conditional)).toEqual(Array.from(batch));
    const map = (i: number): Float32Array => r.logits.subarray(i * 96 * 96, (i + 1) * 96 * 96);
    expect(relL2(map(0), f32('query_cat.logits.f32'))).toBeLessThan(TOL);
    expect(relL2(map(1), f32('query_dog.logits.f32'))).toBeLessThan(TOL);
    expect(Array.from(map(2))).toEqual(Array.from(map(0)));
    expect(() => model.forward(f32(im.file), 96, 96, { embedding: new Float32Array(30) })).toThrow(
      /embedding must hold N · projectionDim values/,
    );
    expect(() => model.forward(f32(im.file), 96, 96, { embedding: cat, inputIds: new Int32Array([62, 63]) })).toThrow(
      /embedding excludes inputIds and promptPixels/,
    );
  });

  it('encodeImage + decode: the vision tower once, then the decoder alone, as forward computes it', async () => {
    const im = image('query');
    const cat = await model.textEmbedding(new Int32Array(text('cat').ids));
    const encoded = await model.encodeImage(f32(im.file), im.size, im.size);
    expect(encoded.grid).toBe(6);
    const r = await model.decode(encoded, cat);
    expect(relL2(r.logits, f32('query_cat.logits.f32'))).toBeLessThan(TOL);
    expect(() => model.decode({} as never, cat)).toThrow(/image must be a NativeClipSegImage/);
    // another native object posing as an image (its prototype, or instanceof made true): the
    // class's type tag refuses it; it was read as image features
    const other = await native().loadClipSeg!(MODEL_DIR, { threads: 1 });
    const posing = Object.setPrototypeOf(other, Object.getPrototypeOf(encoded)) as typeof encoded;
    expect(() => model.decode(posing, cat)).toThrow(/image must be a NativeClipSegImage/);
    const grid = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(encoded), 'grid')!.get!;
    expect(() => grid.call(other)).toThrow(/the receiver must be an object of its class/);
    expect(() => model.decode(encoded, new Float32Array(5))).toThrow(/embedding must hold N · projectionDim values/);
    encoded.dispose();
    expect(encoded.disposed).toBe(true);
    expect(() => model.decode(encoded, cat)).toThrow(/The encoded image has been disposed/);
  });

  it('8-bit RGB input: the worker resizes and normalises exactly as preprocessClipImage does', async () => {
    const config: ClipImageProcessorConfig = {
      doResize: true, width: 64, height: 64, doRescale: true, rescaleFactor: 1 / 255, doNormalize: true,
      imageMean: [0.485, 0.456, 0.406], imageStd: [0.229, 0.224, 0.225],
    };
    const random = seededRandom(7);
    const rand = () => Math.floor(random() * 256);
    for (const [w, h] of [[150, 90], [64, 64], [40, 70]]) {
      const img = { data: Uint8Array.from({ length: w * h * 3 }, rand), width: w, height: h };
      const js = preprocessClipImage(img, config);
      const input = clipModelInput(img, config);
      expect(input.pixels).not.toBeInstanceOf(Float32Array);  // the native path
      const [a, b] = [await model.imageEmbedding(js.pixels, 64, 64), await model.imageEmbedding(input.pixels, 64, 64)];
      expect(Array.from(b)).toEqual(Array.from(a));
      const cond = { inputIds: new Int32Array(text('cat').ids) };
      const [fa, fb] = [await model.forward(js.pixels, 64, 64, cond), await model.forward(input.pixels, 64, 64, cond)];
      expect(Array.from(fb.logits)).toEqual(Array.from(fa.logits));
      // read in place (the library's own prompts): the same, and the worker keeps the buffer alive
      const inPlace = clipModelInput({ ...img, data: img.data.slice() }, config, true);
      expect(inPlace.pixels).toMatchObject({ inPlace: true });
      const pending = model.imageEmbedding(inPlace.pixels, 64, 64);
      (inPlace as { pixels: unknown }).pixels = undefined; // (only the worker holds it now)
      expect(Array.from(await pending)).toEqual(Array.from(a));
    }
    const rgb = { rgb: new Uint8Array(10 * 10 * 3), width: 10, height: 10, lut: new Float32Array(768) };
    await expect(model.imageEmbedding(rgb, 64, 48)).rejects.toThrow(/must be square/);
    expect(() => model.imageEmbedding({ ...rgb, lut: new Float32Array(10) }, 64, 64)).toThrow(/rgb, width, height, lut/);
    expect(() => model.imageEmbedding({ ...rgb, width: 11 }, 64, 64)).toThrow(/rgb, width, height, lut/);
    expect(() => model.imageEmbedding({ ...rgb, width: 11, inPlace: true }, 64, 64)).toThrow(/rgb, width, height, lut/);
    expect(() => model.imageEmbedding({ ...rgb, rgb: new Int8Array(300), inPlace: true } as never, 64, 64)).toThrow(/rgb, width, height, lut/);
  });

  it('rejects bad inputs with the reason', async () => {
    const im = image('query');
    const px = f32(im.file);
    await expect(model.textEmbedding(new Int32Array([62, 64, 63]))).rejects.toThrow(
      /token 64 at index 1 is outside the vocabulary \[0, 64\)/,
    );
    await expect(model.textEmbedding(new Int32Array(17).fill(5))).rejects.toThrow(/17 tokens, expected 1 to 16/);
    await expect(model.forward(px, 96, 96, {})).rejects.toThrow(/give input ids, a visual prompt or a conditional embedding/);
    await expect(model.forward(px, 48, 192, { inputIds: new Int32Array([62, 63]) })).rejects.toThrow(/must be square/);
    const odd = new Float32Array(3 * 72 * 72);
    await expect(model.forward(odd, 72, 72, { inputIds: new Int32Array([62, 63]) })).rejects.toThrow(
      /multiples of the patch size 16/,
    );
    const p = image('prompt');
    const mixed = { inputIds: new Int32Array([62, 63]), promptPixels: f32(p.file), promptWidth: p.size, promptHeight: p.size };
    await expect(model.forward(px, 96, 96, { ...mixed, textWeight: 1.5 })).rejects.toThrow(/textWeight must be in \[0, 1\]/);
    expect(() => model.forward(px, 95, 96, { inputIds: new Int32Array([1]) })).toThrow(TypeError);
  });
});

describe('malformed CLIPSeg checkpoints', () => {
  let root: string;
  let fixture: ParsedSafetensors;

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'omniseg-clipseg-'));
    fixture = parseSafetensors(await readFile(path.join(MODEL_DIR, 'model.safetensors')));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** The fixture's tensors re-serialised after `edit` (entries deleted or reshaped). */
  function rewrite(edit: (h: SafetensorsHeader) => void): Buffer {
    return rewriteSafetensors(fixture, edit);
  }

  async function loadError(name: string, bytes: Buffer, config?: string): Promise<Error> {
    const dir = path.join(root, name);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'model.safetensors'), bytes);
    if (config === undefined) await copyFile(path.join(MODEL_DIR, 'config.json'), path.join(dir, 'config.json'));
    else await writeFile(path.join(dir, 'config.json'), config);
    try {
      (await native().loadClipSeg!(dir, { threads: 1 })).dispose();
    } catch (e) {
      return e as Error;
    }
    throw new Error('expected loadClipSeg to fail');
  }

  it('the rewrite helper is faithful', async () => {
    const dir = path.join(root, 'ok');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'model.safetensors'), rewrite(() => {}));
    await copyFile(path.join(MODEL_DIR, 'config.json'), path.join(dir, 'config.json'));
    const m = await native().loadClipSeg!(dir, { threads: 1 });
    expect(m.config.projectionDim).toBe(24);
    m.dispose();
    expect(() => m.config).toThrow('The model has been disposed');
  });

  it('a missing tensor is named', async () => {
    const e = await loadError('missing', rewrite((h) => delete h['decoder.film_mul.weight']));
    expect(e.message).toMatch(/missing tensor "decoder\.film_mul\.weight" in .*model\.safetensors/);
    const e2 = await loadError('missing-text', rewrite((h) => delete h['clip.text_model.encoder.layers.1.mlp.fc2.bias']));
    expect(e2.message).toMatch(/missing tensor "clip\.text_model\.encoder\.layers\.1\.mlp\.fc2\.bias"/);
  });

  it('a tensor of the wrong shape is named with both shapes', async () => {
    const e = await loadError('shape', rewrite((h) => {
      h['clip.visual_projection.weight'].shape = [32, 24];
    }));
    expect(e.message).toMatch(/tensor "clip\.visual_projection\.weight" has shape \[32, ?24\] but the model configuration expects \[24, ?32\]/);
  });

  it('an unexpected tensor is named', async () => {
    const e = await loadError('extra', rewrite((h) => {
      h['decoder.extra.weight'] = { ...h['decoder.film_mul.bias'] };
    }));
    expect(e.message).toMatch(/unexpected tensor\(s\) in .*"decoder\.extra\.weight"/);
  });

  it('a SAM config or an unsupported activation is rejected', async () => {
    const cfg = JSON.parse(await readFile(path.join(MODEL_DIR, 'config.json'), 'utf8')) as Record<string, unknown>;
    const e = await loadError('sam', fixture.bytes, JSON.stringify({ ...cfg, model_type: 'sam' }));
    expect(e.message).toMatch(/model_type "sam" is not a CLIPSeg checkpoint/);
    const vision = { ...(cfg.vision_config as object), hidden_act: 'silu' };
    const e2 = await loadError('act', fixture.bytes, JSON.stringify({ ...cfg, vision_config: vision }));
    expect(e2.message).toMatch(/vision_config: hidden_act "silu" is not supported/);
  });
});
