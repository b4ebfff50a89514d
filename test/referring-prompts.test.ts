// Referring prompts (lib/referring/prompts.ts) and what Referrer does with them: many-to-one
// fusion of several prompts into one conditional embedding, many-to-many heat maps over one
// vision pass (Referrer.heatmaps), and the per-text embedding cache, on the tiny CLIPSeg fixture.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { maxAbs } from './helpers/arrays.js';
import { native, type NativeClipSegModel } from '../lib/native.js';
import { MAX_HEATMAP_PIXELS, Referrer } from '../lib/referrer.js';
import { fuseEmbeddings, fusionWeights, querySpec } from '../lib/referring/prompts.js';
import { relL2 } from './helpers/fixtures.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'clipseg-tiny');
const MODEL_DIR = path.join(FIXTURES, 'model');
const WIDE = path.join(FIXTURES, '..', 'sam-tiny', 'wide.png');
const SMALL = path.join(FIXTURES, '..', 'sam-tiny', 'small.png');

describe('querySpec / fusionWeights / fuseEmbeddings', () => {
  it('one prompt, or prompts with weights normalised to sum 1 (default equal)', () => {
    expect(querySpec({ text: 'cat' })).toEqual({ prompts: [{ text: 'cat' }], weights: [1] });
    expect(querySpec({ text: 'cat', refImage: SMALL })).toEqual({
      prompts: [{ text: 'cat', refImage: SMALL, textWeight: 0.5 }],
      weights: [1],
    });
    expect(querySpec({ prompts: [{ text: 'cat' }, { refImage: SMALL }] }).weights).toEqual([0.5, 0.5]);
    expect(querySpec({ prompts: [{ text: 'a' }, { text: 'b' }], weights: [3, 1] }).weights).toEqual([0.75, 0.25]);
    expect(fusionWeights([0, 2], 2, 'w')).toEqual([0, 1]);
    // weights whose sum overflows (to Infinity: every weight normalised to 0 before)
    expect(fusionWeights([1e308, 1e308], 2, 'w')).toEqual([0.5, 0.5]);
    expect(fusionWeights([Number.MAX_VALUE, 0, Number.MAX_VALUE / 2], 3, 'w')).toEqual([2 / 3, 0, 1 / 3]);
  });

  it('rejects malformed queries, naming the field', () => {
    expect(() => querySpec({ prompts: [{ text: 'a' }], text: 'b' })).toThrow(
      new TypeError('Expected undefined (text goes inside prompts[i] when prompts is given) for options.text but received "b" of type string'),
    );
    expect(() => querySpec({ prompts: [] })).toThrow(
      new RangeError('Expected an array of 1 to 64 prompts for options.prompts but received [] of type array'),
    );
    expect(() => querySpec({ prompts: 'cat' })).toThrow(new TypeError('Expected an array of prompts for options.prompts but received "cat" of type string'));
    expect(() => querySpec({ prompts: [{ text: 'a' }, {}] })).toThrow(
      new TypeError('Expected an object with text and/or refImage for options.prompts[1] but received {} of type object'),
    );
    expect(() => querySpec({ prompts: [{ text: 'a' }, { text: '' }] })).toThrow(
      new RangeError('Expected a non-empty string for options.prompts[1].text but received "" of type string'),
    );
    expect(() => querySpec({ text: 'a', weights: [1] })).toThrow(
      new TypeError('Expected undefined (weights needs prompts) for options.weights but received [1] of type array'),
    );
    expect(() => querySpec({ prompts: [{ text: 'a' }, { text: 'b' }], weights: [1] })).toThrow(
      new TypeError('Expected an array of 2 weights for options.weights but received [1] of type array'),
    );
    expect(() => querySpec({ prompts: [{ text: 'a' }, { text: 'b' }], weights: [1, -1] })).toThrow(
      new RangeError('Expected a number ≥ 0 for options.weights[1] but received -1 of type number'),
    );
    expect(() => querySpec({ prompts: [{ text: 'a' }, { text: 'b' }], weights: [0, 0] })).toThrow(
      new RangeError('Expected weights that are not all 0 for options.weights but received [0, 0] of type array'),
    );
    expect(() => querySpec({ prompts: [{ text: 'a' }], weights: [NaN] })).toThrow(RangeError);
    expect(() => querySpec({ prompts: [{ text: 'a' }], weights: ['1'] })).toThrow(TypeError);
  });

  it('fuses in float32 as PyTorch: each weight and product rounded, summed left to right', () => {
    const a = Float32Array.from([1, -2, 0.1]);
    const b = Float32Array.from([0.3, 4, 1e-8]);
    const f = fuseEmbeddings([a, b], [0.3, 0.7]);
    const w0 = Math.fround(0.3);
    const w1 = Math.fround(0.7);
    for (let i = 0; i < 3; i++) expect(f[i]).toBe(Math.fround(Math.fround(w0 * a[i]) + Math.fround(w1 * b[i])));
    expect(Array.from(fuseEmbeddings([a], [1]))).toEqual(Array.from(a));
    expect(() => fuseEmbeddings([a, b], [1])).toThrow(RangeError);
    expect(() => fuseEmbeddings([a, Float32Array.from([1])], [0.5, 0.5])).toThrow(RangeError);
  });
});

describe('Referrer: many-to-one, many-to-many, the text cache', () => {
  let referrer: Referrer;
  let model: NativeClipSegModel;
  // Calls that reach the Referrer's native model (a counting proxy around the real one).
  const calls = { forward: 0, textEmbedding: 0, imageEmbedding: 0 };

  beforeAll(async () => {
    const binding = native();
    const load = binding.loadClipSeg!.bind(binding);
    const spy = vi.spyOn(binding, 'loadClipSeg').mockImplementation(async (dir, options) => {
      const real = await load(dir, options);
      return new Proxy(real, {
        get(target, key) {
          const value: unknown = Reflect.get(target, key);
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) => {
            if (key in calls) calls[key as keyof typeof calls]++;
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
    });
    referrer = await Referrer.load({ model: MODEL_DIR, device: 'cpu', threads: 2 });
    spy.mockRestore();
    model = await native().loadClipSeg!(MODEL_DIR, { threads: 2 });
  });
  afterAll(() => {
    referrer?.dispose();
    model?.dispose();
  });

  it('many-to-one: the fused embedding is the weighted mean of the prompts\' embeddings', async () => {
    const cat = await referrer.embed({ text: 'the cat' });
    const dog = await referrer.embed({ text: 'the dog' });
    const ref = await referrer.embed({ refImage: SMALL, refRegion: { box: [10, 10, 60, 60] } });
    const fused = await referrer.heatmap(WIDE, {
      prompts: [{ text: 'the cat' }, { text: 'the dog' }, { refImage: SMALL, refRegion: { box: [10, 10, 60, 60] } }],
      weights: [2, 1, 1],
    });
    const expected = fuseEmbeddings([cat, dog, ref], [0.5, 0.25, 0.25]);
    expect(Array.from(fused.conditional)).toEqual(Array.from(expected));
    expect(fused.inputIds).toBeUndefined();
    // the fused heat map differs from each prompt's own
    const own = await referrer.heatmap(WIDE, { text: 'the cat' });
    expect(relL2(fused.logits, own.logits)).toBeGreaterThan(1e-3);
    // a text + reference image prompt is the two-prompt fusion with weights textWeight, 1 − textWeight
    const mixed = await referrer.embed({ text: 'the cat', refImage: SMALL, textWeight: 0.3 });
    const asPrompts = await referrer.embed({ prompts: [{ text: 'the cat' }, { refImage: SMALL }], weights: [0.3, 0.7] });
    expect(Array.from(mixed)).toEqual(Array.from(asPrompts));
  });

  it('many-to-many: heatmaps() equals one heatmap() per query, with one vision pass', async () => {
    const queries = [{ text: 'the cat' }, { refImage: SMALL }, { prompts: [{ text: 'red' }, { text: 'the dog' }] }];
    const before = calls.forward;
    const maps = await referrer.heatmaps(WIDE, queries);
    expect(calls.forward - before).toBe(1);
    expect(maps).toHaveLength(3);
    for (const [i, q] of queries.entries()) {
      const one = await referrer.heatmap(WIDE, q);
      expect(maxAbs(maps[i].logits, one.logits)).toBeLessThan(1e-5);
      expect(maxAbs(maps[i].data, one.data)).toBeLessThan(1e-6);
      expect([maps[i].width, maps[i].height]).toEqual([150, 100]);
    }
    expect(maps[0].inputIds).toEqual(referrer.tokenizer.encode('the cat').inputIds);
    await expect(referrer.heatmaps(WIDE, [])).rejects.toThrow(
      new RangeError('Expected a non-empty array for queries but received [] of type array'),
    );
    await expect(referrer.heatmaps(WIDE, [{ text: 'a' }, { text: '' }])).rejects.toThrow(
      new RangeError('Expected a non-empty string for queries[1].text but received "" of type string'),
    );
    await expect(referrer.heatmaps(WIDE, 'cat' as never)).rejects.toThrow(TypeError);
  });

  it('refuses more than MAX_HEATMAP_PIXELS heat-map pixels in one call, before any model work', async () => {
    const fit = Math.floor(MAX_HEATMAP_PIXELS / (150 * 100)); // WIDE is 150 × 100
    const before = { ...calls };
    const queries = Array.from({ length: fit + 1 }, () => ({ text: 'a cat' }));
    const error = await referrer.heatmaps(WIDE, queries).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toMatch(
      new RegExp(`^Expected at most ${MAX_HEATMAP_PIXELS} heat-map pixels in all \\(here ${fit + 1} × 150 × 100\\) for queries but received \\[`),
    );
    await referrer.heatmaps(WIDE, queries.slice(0, 2)); // within the limit
    expect(calls.forward - before.forward).toBe(1); // the two-query call only
  });

  it('caches text embeddings per distinct text (the tokenised ids)', async () => {
    const before = calls.textEmbedding;
    const first = await referrer.embedText('a zebra');
    const again = await referrer.embedText('a zebra');
    const sameIds = await referrer.embedText('A  ZEBRA'); // lower-cased, whitespace collapsed: the same ids
    expect(calls.textEmbedding - before).toBe(1);
    await referrer.heatmap(WIDE, { text: 'a zebra' });
    await referrer.heatmap(WIDE, { prompts: [{ text: 'a zebra' }, { text: 'red zebra' }] });
    expect(calls.textEmbedding - before).toBe(2);
    expect(Array.from(again)).toEqual(Array.from(first));
    expect(Array.from(sameIds)).toEqual(Array.from(first));
    // callers get copies: changing one does not change the cache
    first.fill(0);
    expect(Array.from(await referrer.embedText('a zebra'))).toEqual(Array.from(again));
    const direct = await model.textEmbedding(referrer.tokenizer.encode('a zebra', { maxLength: 16 }).inputIds);
    expect(Array.from(again)).toEqual(Array.from(direct));
  });
});
