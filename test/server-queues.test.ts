// The server's work queues: bounded waiting (429 + Retry-After), dynamic encoder batches,
// cancellation of queued work.
import { describe, expect, it, vi } from 'vitest';
import { QueueFullError } from '../lib/server/errors.js';
import { Batcher, BoundedQueue } from '../lib/server/queues.js';
import { flush, gate } from './helpers/fake-binding.js';

describe('BoundedQueue', () => {
  it('refuses work beyond maxWaiting with a 429 QueueFullError carrying Retry-After', async () => {
    const q = new BoundedQueue('decoder', { concurrency: 1, maxWaiting: 1 });
    const g = gate();
    const running = q.run(() => g.promise.then(() => 1));
    const waiting = q.run(async () => 2);
    const refused = q.run(async () => 3);
    await expect(refused).rejects.toBeInstanceOf(QueueFullError);
    await expect(refused).rejects.toMatchObject({ statusCode: 429, code: 'queue_full', headers: { 'retry-after': '1' } });
    expect([q.running, q.waiting]).toEqual([1, 1]);
    g.open();
    expect(await Promise.all([running, waiting])).toEqual([1, 2]);
  });

  it('drops waiting work whose signal aborts', async () => {
    const q = new BoundedQueue('decoder', { concurrency: 1, maxWaiting: 4 });
    const g = gate();
    const running = q.run(() => g.promise);
    const task = vi.fn(async () => 'never');
    const controller = new AbortController();
    const waiting = q.run(task, controller.signal);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    g.open();
    await running;
    expect(task).not.toHaveBeenCalled();
  });
});

/** A batcher whose model call records its inputs and waits for `hold` when set. */
function batcher(options: { maxBatch: number; maxDelayMs: number; maxWaiting: number }) {
  const batches: number[] = [];
  const ran: number[] = [];
  const state = { hold: undefined as Promise<void> | undefined };
  const b = new Batcher<number, number, number>('encoder', {
    ...options,
    prepare: async (n) => n * 10,
    run: async (p) => {
      ran.push(p);
      await state.hold;
      return p + 1;
    },
    onBatch: (size) => batches.push(size),
  });
  return { b, batches, ran, state };
}

describe('Batcher', () => {
  it('collects requests that arrive within the delay into one batch, in order', async () => {
    const { b, batches, ran } = batcher({ maxBatch: 4, maxDelayMs: 20, maxWaiting: 10 });
    const results = await Promise.all([1, 2, 3].map((n) => b.submit(n)));
    expect(results).toEqual([11, 21, 31]);
    expect(batches).toEqual([3]);
    expect(ran).toEqual([10, 20, 30]);
  });

  it('starts a full batch at once and batches what arrived during it', async () => {
    const { b, batches, state } = batcher({ maxBatch: 2, maxDelayMs: 10_000, maxWaiting: 10 });
    const g = gate();
    state.hold = g.promise;
    const first = [b.submit(1), b.submit(2)]; // full: runs without waiting for the delay
    await flush();
    expect(batches).toEqual([2]);
    const later = [b.submit(3), b.submit(4), b.submit(5)];
    expect(b.waiting).toBe(3);
    g.open();
    await Promise.all([...first, ...later]);
    expect(batches).toEqual([2, 2, 1]);
  });

  it('refuses beyond maxWaiting, and cancels queued requests without running them', async () => {
    const { b, ran, state } = batcher({ maxBatch: 1, maxDelayMs: 0, maxWaiting: 1 });
    const g = gate();
    state.hold = g.promise;
    const running = b.submit(1);
    await flush();
    const controller = new AbortController();
    const queued = b.submit(2, controller.signal);
    await expect(b.submit(3)).rejects.toMatchObject({ statusCode: 429, headers: { 'retry-after': '1' } });
    controller.abort();
    await expect(queued).rejects.toMatchObject({ name: 'AbortError' });
    expect(b.waiting).toBe(0);
    g.open();
    expect(await running).toBe(11);
    await flush();
    expect(ran).toEqual([10]);
  });

  it('rejects a request whose preparation fails, and runs the rest of its batch', async () => {
    const b = new Batcher<number, number, number>('encoder', {
      maxBatch: 3,
      maxDelayMs: 5,
      maxWaiting: 10,
      prepare: async (n) => {
        if (n === 2) throw new Error('bad image');
        return n;
      },
      run: async (n) => n,
    });
    const results = await Promise.allSettled([1, 2, 3].map((n) => b.submit(n)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });
});
