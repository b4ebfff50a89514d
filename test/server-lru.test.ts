// The recency order and byte count the server's caches share, and the budget check of the two
// that share their makings (lib/server/lru.ts).
import { describe, expect, it } from 'vitest';
import { EmbeddingCache } from '../lib/server/cache.js';
import { HeatmapCache } from '../lib/server/heatmap-cache.js';
import { ByteLru } from '../lib/server/lru.js';

function filled(): ByteLru<string> {
  const lru = new ByteLru<string>();
  lru.set('a', 'A', 10);
  lru.set('b', 'B', 20);
  lru.set('c', 'C', 30);
  return lru;
}

describe('ByteLru', () => {
  it('counts the bytes of what it holds', () => {
    const lru = filled();
    expect(lru.size).toBe(3);
    expect(lru.bytes).toBe(60);
    expect(lru.delete('b')).toBe('B');
    expect(lru.delete('b')).toBeUndefined();
    expect(lru.bytes).toBe(40);
    expect(lru.has('b')).toBe(false);
  });

  it('replaces a key in place of its bytes and returns the value it replaced', () => {
    const lru = filled();
    expect(lru.set('a', 'A2', 5)).toBe('A');
    expect(lru.bytes).toBe(55);
    expect(lru.size).toBe(3);
    expect(lru.entries().map(([key]) => key)).toEqual(['b', 'c', 'a']);
  });

  it('use() makes an entry the most recently used; peek() does not', () => {
    const lru = filled();
    expect(lru.peek('a')).toBe('A');
    expect(lru.entries().map(([key]) => key)).toEqual(['a', 'b', 'c']);
    expect(lru.use('a')).toBe('A');
    expect(lru.entries().map(([key]) => key)).toEqual(['b', 'c', 'a']);
    expect(lru.use('z')).toBeUndefined();
  });

  it('evicts the least recently used until within the budget, skipping what it may not evict', () => {
    const lru = filled();
    lru.use('a');
    expect(lru.evict(35)).toEqual([{ key: 'b', value: 'B', bytes: 20 }, { key: 'c', value: 'C', bytes: 30 }]);
    expect(lru.bytes).toBe(10);
    expect(lru.evict(10)).toEqual([]);

    const pinned = filled();
    expect(pinned.evict(0, (value) => value !== 'A').map((v) => v.key)).toEqual(['b', 'c']);
    expect(pinned.entries()).toEqual([['a', 'A']]);
    expect(pinned.bytes).toBe(10);
  });

  it('recounts an entry whose size is known later', () => {
    const lru = new ByteLru<string>();
    lru.set('a', 'A', 0);
    lru.count('a', 64);
    expect(lru.bytes).toBe(64);
    lru.count('a', 16);
    expect(lru.bytes).toBe(16);
    lru.count('missing', 99);
    expect(lru.bytes).toBe(16);
  });

  it('clear() empties it and returns the values, oldest first', () => {
    const lru = filled();
    lru.use('a');
    expect(lru.clear()).toEqual(['B', 'C', 'A']);
    expect(lru.size).toBe(0);
    expect(lru.bytes).toBe(0);
  });
});

describe('SharedLruCache', () => {
  it('rejects a byte budget that is not a number >= 0, for either cache', () => {
    for (const make of [(n: number) => new EmbeddingCache(n), (n: number) => new HeatmapCache(n)]) {
      for (const bad of [-1, Number.NaN]) {
        expect(() => make(bad)).toThrow(new RangeError(`Expected a number >= 0 for maxBytes but received ${bad} of type number`));
      }
      expect(make(0).maxBytes).toBe(0);
    }
  });
});
