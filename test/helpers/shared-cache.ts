// The shared-work cases every SharedLruCache (lib/server/lru.ts) must pass, for the embedding and
// heat-map caches' tests: concurrent resolves share one computation, it is cancelled only when
// every waiter has given up, and a failure reaches every waiter without being cached.
import { expect, it, vi } from 'vitest';
import { gate } from './fake-binding.js';

/** What the cases need of a cache: resolve by key, and what a resolve returns. */
export interface SharedCacheUnderTest<V, R> {
  resolve(key: string, create: (signal: AbortSignal) => Promise<V>, signal?: AbortSignal): Promise<R>;
  has(key: string): boolean;
  readonly pending: number;
}

export interface SharedCacheCases<V, R> {
  /** A cache with room for several values. */
  make(): SharedCacheUnderTest<V, R>;
  /** A new value (an embedding, a heat map). */
  value(): V;
  /** The value a resolve handed over, and whether it came from the cache. */
  valueOf(result: R): V;
  cached(result: R): boolean;
  /** Gives a resolved value back (a lease), where the cache hands out leases. */
  release?(result: R): void;
}

export function sharedWorkCases<V, R>(what: string, c: SharedCacheCases<V, R>): void {
  it(`shares one ${what} among concurrent requests for the same key`, async () => {
    const cache = c.make();
    const g = gate();
    const create = vi.fn(async () => {
      await g.promise;
      return c.value();
    });
    const first = cache.resolve('x', create);
    const second = cache.resolve('x', create);
    expect(cache.pending).toBe(1);
    g.open();
    const [r1, r2] = await Promise.all([first, second]);
    expect(create).toHaveBeenCalledTimes(1);
    expect(c.valueOf(r1)).toBe(c.valueOf(r2));
    expect([c.cached(r1), c.cached(r2)]).toEqual([false, false]);
    const third = await cache.resolve('x', create);
    expect(c.cached(third)).toBe(true);
    expect(c.valueOf(third)).toBe(c.valueOf(r1));
    for (const r of [r1, r2, third]) c.release?.(r);
    expect(cache.pending).toBe(0);
  });

  it(`cancels the ${what} when every waiter has given up, and starts afresh after`, async () => {
    const cache = c.make();
    const signals: AbortSignal[] = [];
    const create = vi.fn((signal: AbortSignal) => {
      signals.push(signal);
      return new Promise<V>((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('cancelled'))));
    });
    const c1 = new AbortController();
    const c2 = new AbortController();
    const w1 = cache.resolve('x', create, c1.signal);
    const w2 = cache.resolve('x', create, c2.signal);
    c1.abort();
    await expect(w1).rejects.toMatchObject({ name: 'AbortError' });
    expect(signals[0].aborted).toBe(false); // w2 still waits
    c2.abort();
    await expect(w2).rejects.toMatchObject({ name: 'AbortError' });
    expect(signals[0].aborted).toBe(true);
    expect(cache.pending).toBe(0);
    const fresh = c.value();
    const again = await cache.resolve('x', async () => fresh);
    expect(c.valueOf(again)).toBe(fresh);
    c.release?.(again);
    // a waiter already aborted starts nothing
    const gone = new AbortController();
    gone.abort();
    await expect(cache.resolve('y', create, gone.signal)).rejects.toMatchObject({ name: 'AbortError' });
    expect(create).toHaveBeenCalledTimes(1);
  });

  it(`passes a failure of the ${what} to every waiter and caches nothing`, async () => {
    const cache = c.make();
    const create = async (): Promise<V> => {
      throw new Error('boom');
    };
    await expect(Promise.all([cache.resolve('x', create), cache.resolve('x', create)])).rejects.toThrow('boom');
    expect([cache.has('x'), cache.pending]).toEqual([false, 0]);
  });
}
