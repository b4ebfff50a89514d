// The server's heat-map cache (lib/server/heatmap-cache.ts): LRU order within the byte budget,
// shared computations and their cancellation, and the query digest (which queries share an entry).
import { describe, expect, it, vi } from 'vitest';
import type { Heatmap } from '../lib/referrer.js';
import { querySpec } from '../lib/referring/prompts.js';
import { HeatmapCache, heatmapBytes, queryDigest } from '../lib/server/heatmap-cache.js';
import { sharedWorkCases } from './helpers/shared-cache.js';

/** A stand-in heat map of 4 × 4 data, 2 × 2 logits and a 4-value embedding: 24 float32 = 96 bytes. */
function fakeHeatmap(): Heatmap {
  const timings = { preprocessMs: 0, modelMs: 0, postprocessMs: 0, totalMs: 0 };
  return {
    width: 4,
    height: 4,
    data: new Float32Array(16),
    size: 2,
    logits: new Float32Array(4),
    conditional: new Float32Array(4),
    timings,
  };
}

const BYTES = 96;

async function put(cache: HeatmapCache, key: string): Promise<Heatmap> {
  const heat = fakeHeatmap();
  await cache.resolve(key, async () => heat);
  return heat;
}

describe('heatmapBytes', () => {
  it('counts the data, logits, embedding and token ids', () => {
    expect(heatmapBytes(fakeHeatmap())).toBe(BYTES);
    expect(heatmapBytes({ ...fakeHeatmap(), inputIds: new Int32Array(3) })).toBe(BYTES + 12);
  });
});

describe('HeatmapCache', () => {
  it('keeps heat maps within the byte budget, evicting the least recently used', async () => {
    const onEvict = vi.fn();
    const cache = new HeatmapCache(2 * BYTES, { onEvict });
    const a = await put(cache, 'a');
    await put(cache, 'b');
    expect(cache.get('a')).toBe(a); // a is now the most recently used
    await put(cache, 'c');
    expect([cache.has('a'), cache.has('b'), cache.has('c')]).toEqual([true, false, true]);
    expect(onEvict).toHaveBeenCalledWith('b', BYTES);
    expect([cache.size, cache.bytes]).toEqual([2, 2 * BYTES]);
    const hit = await cache.resolve('a', async () => fakeHeatmap());
    expect(hit).toEqual({ heatmap: a, cached: true });
  });

  it('does not cache a heat map over the budget (or anything with a budget of 0), but hands it over', async () => {
    for (const budget of [BYTES - 1, 0]) {
      const cache = new HeatmapCache(budget);
      const heat = fakeHeatmap();
      expect(await cache.resolve('x', async () => heat)).toEqual({ heatmap: heat, cached: false });
      expect([cache.has('x'), cache.bytes]).toEqual([false, 0]);
    }
    expect(() => new HeatmapCache(-1)).toThrow(RangeError);
  });

  sharedWorkCases('computation', {
    make: () => new HeatmapCache(10 * BYTES),
    value: fakeHeatmap,
    valueOf: (r) => r.heatmap,
    cached: (r) => r.cached,
  });

  it('clear() empties it', async () => {
    const cache = new HeatmapCache(10 * BYTES);
    await put(cache, 'a');
    cache.clear();
    expect([cache.size, cache.bytes, cache.has('a')]).toEqual([0, 0, false]);
  });
});

describe('queryDigest', () => {
  const ref = new Uint8Array([1, 2, 3]);
  const digest = (query: object, masks?: Map<number, Uint8Array>) => queryDigest(querySpec(query), masks);

  it('is equal for queries that querySpec makes equal', () => {
    expect(digest({ text: 'a', refImage: ref })).toBe(digest({ text: 'a', refImage: new Uint8Array([1, 2, 3]), textWeight: 0.5 }));
    const prompts = [{ text: 'a' }, { text: 'b' }];
    expect(digest({ prompts, weights: [1, 1] })).toBe(digest({ prompts, weights: [2, 2] }));
    expect(digest({ prompts })).toBe(digest({ prompts, weights: [5, 5] }));
  });

  it('differs with the text, reference bytes, region, text weight or weights', () => {
    const base = digest({ text: 'a', refImage: ref, refRegion: { box: [0, 0, 2, 2] } });
    const others = [
      digest({ text: 'b', refImage: ref, refRegion: { box: [0, 0, 2, 2] } }),
      digest({ text: 'a', refImage: new Uint8Array([1, 2, 4]), refRegion: { box: [0, 0, 2, 2] } }),
      digest({ text: 'a', refImage: ref, refRegion: { box: [0, 0, 2, 3] } }),
      digest({ text: 'a', refImage: ref }),
      digest({ text: 'a', refImage: ref, refRegion: { box: [0, 0, 2, 2] }, textWeight: 0.6 }),
      digest({ prompts: [{ text: 'a', refImage: ref, refRegion: { box: [0, 0, 2, 2] } }, { text: 'x' }], weights: [1, 2] }),
      digest({ prompts: [{ text: 'a', refImage: ref, refRegion: { box: [0, 0, 2, 2] } }, { text: 'x' }], weights: [2, 1] }),
    ];
    expect(new Set([base, ...others]).size).toBe(others.length + 1);
  });

  it('names a region mask by the bytes it was sent as', () => {
    const mask = { data: new Uint8Array(4), width: 2, height: 2 };
    const q = { refImage: ref, refRegion: { mask } };
    expect(digest(q, new Map([[0, new Uint8Array([9])]]))).toBe(digest(q, new Map([[0, new Uint8Array([9])]])));
    expect(digest(q, new Map([[0, new Uint8Array([9])]]))).not.toBe(digest(q, new Map([[0, new Uint8Array([8])]])));
    // without the sent bytes: by its pixels
    const other = { refImage: ref, refRegion: { mask: { ...mask, data: new Uint8Array([0, 1, 0, 0]) } } };
    expect(digest(q)).toBe(digest({ refImage: ref, refRegion: { mask: { ...mask, data: new Uint8Array(4) } } }));
    expect(digest(q)).not.toBe(digest(other));
  });
});
