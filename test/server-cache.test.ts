// The server's embedding cache: LRU order, byte budget, pinning, shared encodes, cancellation.
import { describe, expect, it, vi } from 'vitest';
import type { ImageEmbedding } from '../lib/embedding.js';
import { EmbeddingCache, imageId } from '../lib/server/cache.js';
import { flush } from './helpers/fake-binding.js';
import { sharedWorkCases } from './helpers/shared-cache.js';

/** A stand-in embedding holding 256 bytes. */
function fakeEmbedding(): ImageEmbedding & { disposed: boolean } {
  const e = { shape: [4, 4, 4], byteLength: 256, width: 10, height: 8, encodeMs: 1, disposed: false, dispose: vi.fn(() => (e.disposed = true)) };
  return e as unknown as ImageEmbedding & { disposed: boolean };
}

const BYTES = 256;

async function put(cache: EmbeddingCache, id: string, embedding = fakeEmbedding()) {
  const { lease } = await cache.resolve(id, async () => embedding);
  lease.release();
  await flush();
  return embedding;
}

describe('imageId', () => {
  it('is the SHA-256 of the bytes, hex', () => {
    expect(imageId(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('EmbeddingCache', () => {
  it('keeps embeddings within the byte budget, evicting the least recently used', async () => {
    const onEvict = vi.fn();
    const cache = new EmbeddingCache(2 * BYTES, { onEvict });
    const a = await put(cache, 'a');
    const b = await put(cache, 'b');
    expect(cache.bytes).toBe(2 * BYTES);
    cache.acquire('a')?.release(); // a is now the most recently used
    const c = await put(cache, 'c');
    expect([cache.has('a'), cache.has('b'), cache.has('c')]).toEqual([true, false, true]);
    expect(b.disposed).toBe(true);
    expect(a.disposed || c.disposed).toBe(false);
    expect(onEvict).toHaveBeenCalledWith('b', BYTES);
    expect(cache.size).toBe(2);
    expect(cache.bytes).toBe(2 * BYTES);
  });

  it('frees an evicted embedding only when its last lease is released', async () => {
    const cache = new EmbeddingCache(BYTES);
    const a = await put(cache, 'a');
    const lease = cache.acquire('a');
    await put(cache, 'b');
    expect(cache.has('a')).toBe(false);
    expect(a.disposed).toBe(false);
    lease?.release();
    lease?.release(); // idempotent
    expect(a.disposed).toBe(true);
  });

  it('hands an embedding larger than the budget to its waiters, then frees it', async () => {
    const cache = new EmbeddingCache(BYTES / 2);
    const e = fakeEmbedding();
    const { lease, cached } = await cache.resolve('big', async () => e);
    expect(cached).toBe(false);
    expect(cache.has('big')).toBe(false);
    expect(e.disposed).toBe(false);
    lease.release();
    await flush();
    expect(e.disposed).toBe(true);
  });

  sharedWorkCases('encode', {
    make: () => new EmbeddingCache(10 * BYTES),
    value: fakeEmbedding,
    valueOf: (r) => r.lease.embedding,
    cached: (r) => r.cached,
    release: (r) => r.lease.release(),
  });

  it('clear() frees everything', async () => {
    const cache = new EmbeddingCache(10 * BYTES);
    const a = await put(cache, 'a');
    cache.clear();
    expect(a.disposed).toBe(true);
    expect(cache.bytes).toBe(0);
  });
});
