// Segment labels and ranking (lib/referring/labels.ts, Referrer.label / rank / embedSegments /
// labelEmbeddings) on the tiny CLIPSeg fixture: CLIP zero-shot scores against transformers
// (CLIPSegModel.forward's logits_per_image, and prompt ensembling computed in torch by
// models/clipseg/generate_fixtures.py), segment embeddings against the visual prompt path.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxAbs } from './helpers/arrays.js';
import { countingReferrer } from './helpers/counting-referrer.js';
import { preprocessClipImage } from '../lib/clip/image-processor.js';
import { decodeImage } from '../lib/image.js';
import { Mask } from '../lib/mask.js';
import { maskToCounts } from '../lib/rle.js';
import { Referrer, TEXT_EMBEDDING_CACHE_SIZE } from '../lib/referrer.js';
import {
  DEFAULT_LABEL_TEMPLATES,
  cosine,
  ensembleEmbedding,
  normalize,
  ownPixels,
  rankByQuery,
  topLabels,
  zeroShot,
} from '../lib/referring/labels.js';
import { visualPrompt } from '../lib/referring/visual-prompt.js';
import type { BinaryMask } from '../lib/types.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'clipseg-tiny');
const MODEL_DIR = path.join(FIXTURES, 'model');
const WIDE = path.join(FIXTURES, '..', 'sam-tiny', 'wide.png'); // 150 × 100

interface Labels {
  logitScale: number;
  classes: string[];
  zeroShot: { template: string; logitsPerImage: number[]; probs: number[] };
  ensemble: { templates: string[]; logits: number[]; probs: number[] };
}
const labels = (JSON.parse(readFileSync(path.join(FIXTURES, 'cases.json'), 'utf8')) as { labels: Labels }).labels;
function f32(file: string): Float32Array {
  const b = readFileSync(path.join(FIXTURES, file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** A width × height mask set inside [x0, x1) × [y0, y1). */
function rect(x0: number, y0: number, x1: number, y1: number, width = 150, height = 100): BinaryMask {
  const data = new Uint8Array(width * height);
  for (let y = y0; y < y1; y++) data.fill(1, y * width + x0, y * width + x1);
  return { data, width, height };
}

describe('ownPixels (embedSegments\' copies of the masks, made when called)', () => {
  it('copies the pixels, also from a Buffer (whose slice() is a view of the same memory)', () => {
    for (const data of [new Uint8Array([0, 1, 1, 0]), Buffer.from([0, 1, 1, 0])]) {
      const own = ownPixels({ data, width: 2, height: 2 }) as { data: Uint8Array };
      data[0] = 1;
      expect(Array.from(own.data)).toEqual([0, 1, 1, 0]);
    }
    const buffer = Buffer.from([0, 1, 1, 0]);
    const mask = new Mask({ data: buffer, width: 2, height: 2, score: 1, lowResLogits: new Float32Array(1) });
    const own = ownPixels(mask) as { data: Uint8Array };
    buffer[0] = 1;
    expect(Array.from(own.data)).toEqual([0, 1, 1, 0]);
  });
});

describe('label arithmetic', () => {
  it('normalize, cosine, ensembleEmbedding', () => {
    expect(Array.from(normalize(Float32Array.from([3, 4])))).toEqual([0.6000000238418579, 0.800000011920929]);
    expect(Array.from(normalize(new Float32Array(2)))).toEqual([0, 0]);
    expect(cosine(Float32Array.from([1, 0]), Float32Array.from([0, 2]))).toBe(0);
    expect(cosine(Float32Array.from([1, 1]), Float32Array.from([2, 2]))).toBeCloseTo(1, 12);
    expect(cosine(Float32Array.from([1, 1]), new Float32Array(2))).toBe(0);
    const e = ensembleEmbedding([Float32Array.from([10, 0]), Float32Array.from([0, 1])]);
    expect(e[0]).toBeCloseTo(Math.SQRT1_2, 6);
    expect(e[1]).toBeCloseTo(Math.SQRT1_2, 6);
  });

  it('zeroShot is a softmax of logitScale · cosine; topLabels sorts and cuts', () => {
    const seg = Float32Array.from([1, 0]);
    const { logits, probabilities } = zeroShot(seg, [Float32Array.from([1, 0]), Float32Array.from([0, 1])], 10);
    expect(logits).toEqual([10, 0]);
    expect(probabilities[0]).toBeCloseTo(1 / (1 + Math.exp(-10)), 12);
    expect(probabilities[0] + probabilities[1]).toBeCloseTo(1, 12);
    expect(topLabels([0.2, 0.5, 0.2, 0.1], ['a', 'b', 'c', 'd'], 3)).toEqual([
      { label: 'b', probability: 0.5 },
      { label: 'a', probability: 0.2 },
      { label: 'c', probability: 0.2 },
    ]);
    expect(rankByQuery([Float32Array.from([0, 1]), Float32Array.from([1, 0]), Float32Array.from([1, 1])], Float32Array.from([1, 0]))).toEqual([
      { index: 1, score: 1 },
      { index: 2, score: expect.closeTo(Math.SQRT1_2, 12) as number },
      { index: 0, score: 0 },
    ]);
  });
});

describe('Referrer labels (clipseg-tiny)', () => {
  let referrer: Referrer;
  beforeAll(async () => {
    referrer = await Referrer.load({ model: MODEL_DIR, device: 'cpu', threads: 2 });
  });
  afterAll(() => referrer?.dispose());

  it("one template: zero-shot logits equal transformers' logits_per_image", async () => {
    const image = f32('prompt.embedding.f32'); // get_image_features of prompt.pixels.f32
    const text = await referrer.labelEmbeddings(labels.classes, { templates: [labels.zeroShot.template] });
    const { logits, probabilities } = zeroShot(image, text, referrer.config.logitScale);
    expect(maxAbs(logits, labels.zeroShot.logitsPerImage)).toBeLessThan(1e-4);
    expect(maxAbs(probabilities, labels.zeroShot.probs)).toBeLessThan(1e-5);
  });

  it('prompt ensembling equals the torch computation over the same templates', async () => {
    const image = f32('prompt.embedding.f32');
    const text = await referrer.labelEmbeddings(labels.classes, { templates: labels.ensemble.templates });
    const { logits, probabilities } = zeroShot(image, text, referrer.config.logitScale);
    expect(maxAbs(logits, labels.ensemble.logits)).toBeLessThan(1e-4);
    expect(maxAbs(probabilities, labels.ensemble.probs)).toBeLessThan(1e-5);
    // the ensemble differs from a single template (or ensembling would not be exercised)
    expect(maxAbs(labels.ensemble.logits, labels.zeroShot.logitsPerImage)).toBeGreaterThan(1e-2);
  });

  it("embedSegments: each mask's embedding is the image features of its visual prompt", async () => {
    const masks = [rect(10, 10, 60, 50), rect(80, 30, 140, 90)];
    const segs = await referrer.embedSegments(WIDE, masks);
    expect(segs).toHaveLength(2);
    const decoded = await decodeImage(WIDE);
    for (const [i, mask] of masks.entries()) {
      const prompt = await visualPrompt({ ...decoded, channels: 3 }, { mask });
      const p = preprocessClipImage(prompt, referrer.processor);
      const direct = await referrer.embed({ refImage: { data: prompt.data, width: prompt.width, height: prompt.height, channels: 3 } });
      expect(p.width).toBe(96);
      expect(maxAbs(segs[i], direct)).toBeLessThan(1e-6);
    }
    expect(maxAbs(segs[0], segs[1])).toBeGreaterThan(1e-3);
  });

  it('embedSegments: a Mask (its crop from its box, pixels or runs) gives what its pixels give; an empty one is refused', async () => {
    const plain = [rect(10, 10, 60, 50), rect(80, 30, 140, 90)];
    const masks = plain.map((m) => new Mask({ ...m, score: 1, lowResLogits: new Float32Array(4) }));
    // as from an rle decode: run lengths only
    const runs = plain.map(
      (m) => new Mask({ counts: Uint32Array.from(maskToCounts(m.data, 100, 150)), width: 150, height: 100, score: 1, lowResLogits: new Float32Array(4) }),
    );
    const fromPixels = await referrer.embedSegments(WIDE, plain);
    for (const list of [masks, runs]) {
      const segs = await referrer.embedSegments(WIDE, list);
      for (const [i, seg] of segs.entries()) expect(Buffer.from(seg.buffer).equals(Buffer.from(fromPixels[i].buffer))).toBe(true);
    }
    const empty = new Mask({ data: new Uint8Array(150 * 100), width: 150, height: 100, score: 1, lowResLogits: new Float32Array(4) });
    await expect(referrer.embedSegments(WIDE, [masks[0], empty])).rejects.toThrow(/for masks\[1\] /);
  });

  it("embedSegments reads the masks' pixels when called; a Mask's pixels as they are now, not its cached box", async () => {
    const plain = [rect(10, 10, 60, 50), rect(80, 30, 140, 90)];
    const expected = await referrer.embedSegments(WIDE, plain.map((m) => ({ ...m, data: m.data.slice() })));
    const pending = referrer.embedSegments(WIDE, plain);
    for (const m of plain) m.data.fill(0); // the caller reuses its masks at once
    const got = await pending;
    for (const [i, seg] of got.entries()) expect(Buffer.from(seg.buffer).equals(Buffer.from(expected[i].buffer))).toBe(true);
    // a Mask read (box, area) and then drawn on: its pixels count, as for a plain mask
    const drawn = rect(10, 10, 60, 50);
    const mask = new Mask({ ...drawn, score: 1, lowResLogits: new Float32Array(4) });
    expect(mask.box).toEqual([10, 10, 59, 49]);
    mask.data.fill(0);
    mask.data.fill(1, 70 * 150 + 100, 70 * 150 + 120);
    const [fromMask] = await referrer.embedSegments(WIDE, [mask]);
    const [fromPixels] = await referrer.embedSegments(WIDE, [{ data: mask.data.slice(), width: 150, height: 100 }]);
    expect(Buffer.from(fromMask.buffer).equals(Buffer.from(fromPixels.buffer))).toBe(true);
  });

  it('label: top-k labels per mask with probabilities over the vocabulary', async () => {
    const masks = [rect(10, 10, 60, 50), rect(80, 30, 140, 90)];
    const vocabulary = labels.classes;
    const templates = labels.ensemble.templates;
    const result = await referrer.label(WIDE, masks, vocabulary, { topK: 2, templates });
    expect(result).toHaveLength(2);
    const segs = await referrer.embedSegments(WIDE, masks);
    const text = await referrer.labelEmbeddings(vocabulary, { templates });
    for (const [i, top] of result.entries()) {
      const { probabilities } = zeroShot(segs[i], text, referrer.config.logitScale);
      expect(top).toEqual(topLabels(probabilities, vocabulary, 2));
      expect(top[0].probability).toBeGreaterThanOrEqual(top[1].probability);
    }
    // topK is capped at the vocabulary's size; the default templates are CLIP's seven
    const all = await referrer.label(WIDE, masks.slice(0, 1), ['cat', 'dog'], { topK: 10 });
    expect(all[0]).toHaveLength(2);
    expect(all[0][0].probability + all[0][1].probability).toBeCloseTo(1, 6);
    expect(DEFAULT_LABEL_TEMPLATES).toHaveLength(7);
  });

  it('rank orders masks by cosine similarity with a text or an image query', async () => {
    const masks = [rect(10, 10, 60, 50), rect(80, 30, 140, 90), rect(0, 0, 150, 100)];
    const segs = await referrer.embedSegments(WIDE, masks);
    const byText = await referrer.rank(WIDE, masks, 'the red cat');
    expect(byText).toEqual(rankByQuery(segs, await referrer.embedText('the red cat')));
    expect(byText.map((r) => r.index).sort()).toEqual([0, 1, 2]);
    const byImage = await referrer.rank(WIDE, masks, { refImage: WIDE, refRegion: { mask: masks[1] } });
    // the second mask's own visual prompt is the query: it ranks first with cosine 1
    expect(byImage[0].index).toBe(1);
    expect(byImage[0].score).toBeCloseTo(1, 5);
  });

  it('keeps a whole vocabulary: its texts outnumber the text cache, yet a second call runs no text pass', async () => {
    // (200 labels × 7 templates = 1400 texts, past the 1024 the text cache holds: a scan through
    // it in order never hit, and every call ran the text tower 1400 times again)
    const { referrer: own, passes } = await countingReferrer();
    try {
      // (texts the tiny tokenizer keeps apart: two-letter labels in short templates, 16 tokens at most)
      const letters = 'abcdefghijklmnopqrstuvwxyz';
      const vocabulary = Array.from({ length: 200 }, (_, i) => `${letters[i % 26]}${letters[Math.floor(i / 26)]}`);
      const templates = ['{}', 'a {}', 'the {}', '{} a', 'x {}', '{} x', 'y {}'];
      const first = await own.labelEmbeddings(vocabulary, { templates });
      expect(passes.textEmbedding).toBe(1400);
      expect(passes.textEmbedding).toBeGreaterThan(TEXT_EMBEDDING_CACHE_SIZE);
      const second = await own.labelEmbeddings(vocabulary, { templates });
      expect(passes.textEmbedding).toBe(1400);
      expect(second).toEqual(first);
      // each call's arrays are its own
      second[0].fill(0);
      expect((await own.labelEmbeddings(vocabulary.slice(0, 1), { templates }))[0]).toEqual(first[0]);
      // other templates are other embeddings
      await own.labelEmbeddings(vocabulary.slice(0, 2), { templates: ['z {}'] });
      expect(passes.textEmbedding).toBe(1402);
    } finally {
      own.dispose();
    }
  });

  it('stops between model calls when its signal aborts', async () => {
    const controller = new AbortController();
    controller.abort();
    const m = [rect(10, 10, 60, 50)];
    await expect(referrer.label(WIDE, m, ['never seen label'], { signal: controller.signal })).rejects.toThrow(
      expect.objectContaining({ name: 'AbortError' }) as Error,
    );
    await expect(referrer.embedSegments(WIDE, m, { signal: controller.signal })).rejects.toThrow(
      expect.objectContaining({ name: 'AbortError' }) as Error,
    );
    await expect(referrer.label(WIDE, m, ['cat'], { signal: 'soon' as never })).rejects.toThrow(
      new TypeError('Expected an AbortSignal for options.signal but received "soon" of type string'),
    );
  });

  it('rejects bad vocabularies, templates and masks, naming the parameter', async () => {
    const m = [rect(10, 10, 60, 50)];
    await expect(referrer.label(WIDE, m, [])).rejects.toThrow(
      new RangeError('Expected an array of 1 to 4096 distinct non-empty strings for vocabulary but received [] of type array'),
    );
    await expect(referrer.label(WIDE, m, ['cat', 'cat'])).rejects.toThrow(
      new RangeError('Expected an array of 1 to 4096 distinct non-empty strings for vocabulary[1] but received "cat" of type string'),
    );
    await expect(referrer.label(WIDE, m, 'cat' as never)).rejects.toThrow(TypeError);
    await expect(referrer.label(WIDE, m, ['cat'], { templates: ['a photo'] })).rejects.toThrow(
      new RangeError('Expected a string with exactly one {} for options.templates[0] but received "a photo" of type string'),
    );
    await expect(referrer.label(WIDE, m, ['cat'], { topK: 0 })).rejects.toThrow(
      new RangeError('Expected an integer >= 1 for options.topK but received 0 of type number'),
    );
    await expect(referrer.label(WIDE, [rect(0, 0, 10, 10, 20, 20)], ['cat'])).rejects.toThrow(
      new RangeError("Expected the image's width (150) for masks[0].width but received 20 of type number"),
    );
    await expect(referrer.embedSegments(WIDE, [rect(0, 0, 0, 0)])).rejects.toThrow(
      /^Expected a region that covers at least one pixel of the reference image for masks\[0\] /,
    );
    await expect(referrer.rank(WIDE, m, '')).rejects.toThrow(
      new RangeError('Expected a non-empty string for query but received "" of type string'),
    );
    await expect(referrer.embedSegments(WIDE, {} as never)).rejects.toThrow(TypeError);
  });
});
