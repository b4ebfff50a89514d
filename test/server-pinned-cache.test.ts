// PinnedCache (lib/server/pinned-cache.ts) with stand-in encoded images: LRU order,
// byte budget, pinning while in use, shared encodes and their cancellation, failed encodes not
// kept, budget 0.
import { describe, expect, it } from 'vitest';
import type { ReferrerImage } from '../lib/referrer.js';
import { PinnedCache } from '../lib/server/pinned-cache.js';

function fake(bytes: number): ReferrerImage & { disposedCount: number } {
  const image = { bytes, disposedCount: 0, dispose: () => void image.disposedCount++ };
  return image as unknown as ReferrerImage & { disposedCount: number };
}

describe('PinnedCache', () => {
  it('encodes once per id, keeps the most recently used within the budget and disposes the evicted', async () => {
    const events = { hit: 0, miss: 0, evict: 0 };
    const cache = new PinnedCache<ReferrerImage>(250, {
      onHit: () => void events.hit++,
      onMiss: () => void events.miss++,
      onEvict: () => void events.evict++,
    });
    const images = { a: fake(100), b: fake(100), c: fake(100) };
    const encodes: string[] = [];
    const use = (id: keyof typeof images) =>
      cache.with(id, async () => (encodes.push(id), images[id]), async (img) => img.bytes);
    expect(await use('a')).toBe(100);
    await use('b');
    await use('a'); // a is now the most recently used
    await use('c'); // 300 > 250: b goes
    expect(encodes).toEqual(['a', 'b', 'c']);
    expect([images.a.disposedCount, images.b.disposedCount, images.c.disposedCount]).toEqual([0, 1, 0]);
    expect([cache.size, cache.bytes]).toEqual([2, 200]);
    expect(events).toEqual({ hit: 1, miss: 3, evict: 1 });
    cache.clear();
    await new Promise((resolve) => setImmediate(resolve)); // disposal follows the encode's promise
    expect([cache.size, cache.bytes, images.a.disposedCount, images.c.disposedCount]).toEqual([0, 0, 1, 1]);
  });

  it('never evicts an image in use; concurrent users share one encode', async () => {
    const cache = new PinnedCache<ReferrerImage>(50);
    const big = fake(100);
    let encodes = 0;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const encode = async () => (encodes++, big);
    const first = cache.with('x', encode, async () => held);
    const second = cache.with('x', encode, async (img) => img.bytes);
    expect(await second).toBe(100);
    expect(big.disposedCount).toBe(0); // still pinned by the first user
    release();
    await first;
    expect(encodes).toBe(1);
    expect(big.disposedCount).toBe(1); // over budget once unpinned
    expect(cache.size).toBe(0);
  });

  it('does not keep a failed encode, and with a budget of 0 keeps nothing', async () => {
    const cache = new PinnedCache<ReferrerImage>(1000);
    await expect(cache.with('bad', async () => Promise.reject(new Error('undecodable')), async () => 1)).rejects.toThrow('undecodable');
    expect(cache.size).toBe(0);
    const none = new PinnedCache<ReferrerImage>(0);
    const img = fake(10);
    expect(await none.with('y', async () => img, async () => 'used')).toBe('used');
    await new Promise((resolve) => setImmediate(resolve));
    expect([none.size, img.disposedCount]).toEqual([0, 1]);
  });

  it('cancels an encode when every request waiting for it has given up, and makes it afresh after', async () => {
    const cache = new PinnedCache<ReferrerImage>(1000);
    const signals: AbortSignal[] = [];
    // an encode that waits (in the referrer queue) until it is cancelled
    const waiting = (signal: AbortSignal) => {
      signals.push(signal);
      return new Promise<ReferrerImage>((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('cancelled'))));
    };
    const c1 = new AbortController();
    const c2 = new AbortController();
    const w1 = cache.with('x', waiting, async () => 1, c1.signal);
    const w2 = cache.with('x', waiting, async () => 2, c2.signal);
    c1.abort();
    await expect(w1).rejects.toMatchObject({ name: 'AbortError' });
    expect(signals.map((s) => s.aborted)).toEqual([false]); // w2 still waits
    c2.abort();
    await expect(w2).rejects.toMatchObject({ name: 'AbortError' });
    expect(signals[0].aborted).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(cache.size).toBe(0); // the cancelled encode failed, and is not kept
    const img = fake(10);
    expect(await cache.with('x', async () => img, async (i) => i)).toBe(img);
    // a request already gone starts nothing
    const gone = new AbortController();
    gone.abort();
    await expect(cache.with('y', waiting, async () => 0, gone.signal)).rejects.toMatchObject({ name: 'AbortError' });
    expect(signals).toHaveLength(1);
  });

  it('an encode already running when its last waiter leaves goes on, is kept (and freed when evicted), and is joined, not made again', async () => {
    const cache = new PinnedCache<ReferrerImage>(15);
    const img = fake(10);
    let finish!: () => void;
    let makes = 0;
    // an encode that has started: it goes on whatever its signal says
    const running = () => {
      makes++;
      return new Promise<ReferrerImage>((resolve) => (finish = () => resolve(img)));
    };
    const c1 = new AbortController();
    const w1 = cache.with('x', running, async () => 1, c1.signal);
    c1.abort();
    await expect(w1).rejects.toMatchObject({ name: 'AbortError' });
    // a request arriving meanwhile waits for it to settle, then takes its value
    const w2 = cache.with('x', running, async (i) => i);
    finish();
    expect(await w2).toBe(img);
    expect(makes).toBe(1);
    expect([cache.size, cache.bytes]).toEqual([1, 10]);
    // kept and counted: evicted (and freed) as any other
    await cache.with('y', async () => fake(10), async () => 0);
    expect(img.disposedCount).toBe(1);
  });
});
