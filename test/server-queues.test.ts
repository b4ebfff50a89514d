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

/**
 * A batcher with the batched model call: it records each call's inputs, waits for `hold` when
 * set, and answers n → { n: n + 1 } (objects, so that discarded ones can be told apart).
 */
function manyBatcher(options: { maxBatch: number; maxDelayMs: number; prepare?: (n: number) => Promise<number> }) {
  const calls: number[][] = [];
  const signals: AbortSignal[] = [];
  const discarded: Array<{ n: number }> = [];
  const state = { hold: undefined as Promise<void> | undefined, error: undefined as Error | undefined };
  const b = new Batcher<number, number, { n: number }>('encoder', {
    maxBatch: options.maxBatch,
    maxDelayMs: options.maxDelayMs,
    maxWaiting: 10,
    prepare: options.prepare ?? (async (n) => n * 10),
    runMany: async (prepared, signal) => {
      calls.push(prepared);
      signals.push(signal);
      await state.hold;
      if (state.error !== undefined) throw state.error;
      return prepared.map((p) => ({ n: p + 1 }));
    },
    run: async () => {
      throw new Error('run must not be called when runMany is given');
    },
    discard: (output) => discarded.push(output),
  });
  return { b, calls, signals, discarded, state };
}

describe('Batcher with a batched model call (runMany)', () => {
  it('makes one call per batch with every prepared input in order, and answers each request with its output', async () => {
    const { b, calls } = manyBatcher({ maxBatch: 4, maxDelayMs: 20 });
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => b.submit(n)));
    expect(results).toEqual([{ n: 11 }, { n: 21 }, { n: 31 }, { n: 41 }, { n: 51 }]);
    expect(calls).toEqual([[10, 20, 30, 40], [50]]);
  });

  it('rejects a request whose preparation fails without failing the others of its batch', async () => {
    const { b, calls } = manyBatcher({
      maxBatch: 3,
      maxDelayMs: 5,
      prepare: async (n) => {
        if (n === 2) throw new RangeError('image too large');
        return n;
      },
    });
    const results = await Promise.allSettled([1, 2, 3].map((n) => b.submit(n)));
    expect(results).toEqual([
      { status: 'fulfilled', value: { n: 2 } },
      { status: 'rejected', reason: new RangeError('image too large') },
      { status: 'fulfilled', value: { n: 4 } },
    ]);
    expect(calls).toEqual([[1, 3]]);
  });

  it('makes no call for a batch whose every preparation failed', async () => {
    const { b, calls } = manyBatcher({
      maxBatch: 2,
      maxDelayMs: 5,
      prepare: async () => {
        throw new Error('bad image');
      },
    });
    const results = await Promise.allSettled([1, 2].map((n) => b.submit(n)));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await until(() => b.running === 0);
    expect(calls).toEqual([]);
  });

  it('rejects a request cancelled during the call at once, and discards its output when it comes', async () => {
    const { b, calls, signals, discarded, state } = manyBatcher({ maxBatch: 2, maxDelayMs: 5 });
    const g = gate();
    state.hold = g.promise;
    const controller = new AbortController();
    const cancelled = b.submit(1, controller.signal);
    const kept = b.submit(2);
    await until(() => calls.length === 1);
    controller.abort();
    await expect(cancelled).rejects.toMatchObject({ name: 'AbortError' });
    // The other request still wants its output: the call goes on.
    expect(signals[0].aborted).toBe(false);
    expect(b.running).toBe(2);
    g.open();
    expect(await kept).toEqual({ n: 21 });
    expect(discarded).toEqual([{ n: 11 }]);
  });

  it('aborts the call\'s signal once every request of the call is cancelled, and discards all its outputs', async () => {
    const { b, calls, signals, discarded, state } = manyBatcher({ maxBatch: 2, maxDelayMs: 5 });
    const g = gate();
    state.hold = g.promise;
    const controllers = [new AbortController(), new AbortController()];
    const requests = controllers.map((c, i) => b.submit(i + 1, c.signal));
    await until(() => calls.length === 1);
    controllers[0].abort();
    expect(signals[0].aborted).toBe(false);
    controllers[1].abort();
    expect(signals[0].aborted).toBe(true);
    for (const r of requests) await expect(r).rejects.toMatchObject({ name: 'AbortError' });
    g.open();
    await until(() => discarded.length === 2);
    expect(discarded).toEqual([{ n: 11 }, { n: 21 }]);
  });

  it('skips requests cancelled before their batch started', async () => {
    const { b, calls, state } = manyBatcher({ maxBatch: 2, maxDelayMs: 0 });
    const g = gate();
    state.hold = g.promise;
    const first = b.submit(1);
    await until(() => calls.length === 1);
    const controller = new AbortController();
    const cancelled = b.submit(2, controller.signal);
    const later = b.submit(3);
    controller.abort();
    await expect(cancelled).rejects.toMatchObject({ name: 'AbortError' });
    g.open();
    expect(await Promise.all([first, later])).toEqual([{ n: 11 }, { n: 31 }]);
    expect(calls).toEqual([[10], [30]]);
  });

  it('rejects every request of the batch when the call throws, and runs the next batch', async () => {
    const { b, calls, state } = manyBatcher({ maxBatch: 2, maxDelayMs: 5 });
    state.error = new Error('device lost');
    const results = await Promise.allSettled([1, 2].map((n) => b.submit(n)));
    expect(results).toEqual([
      { status: 'rejected', reason: state.error },
      { status: 'rejected', reason: state.error },
    ]);
    state.error = undefined;
    expect(await b.submit(3)).toEqual({ n: 31 });
    expect(calls).toEqual([[10, 20], [30]]);
  });

  it('rejects every request, and discards the outputs, when the call answers with the wrong count', async () => {
    const discarded: number[] = [];
    const b = new Batcher<number, number, number>('encoder', {
      maxBatch: 2,
      maxDelayMs: 5,
      maxWaiting: 10,
      prepare: async (n) => n,
      runMany: async (prepared) => prepared.slice(1),
      discard: (output) => discarded.push(output),
    });
    const results = await Promise.allSettled([1, 2].map((n) => b.submit(n)));
    const error = new Error('The encoder returned 1 outputs for 2 inputs');
    expect(results).toEqual([
      { status: 'rejected', reason: error },
      { status: 'rejected', reason: error },
    ]);
    expect(discarded).toEqual([2]);
  });

  it('needs a model call', () => {
    expect(() => new Batcher('encoder', { maxBatch: 1, maxDelayMs: 0, maxWaiting: 1, prepare: async () => 1 })).toThrow(
      new TypeError('Expected a run or runMany function for options'),
    );
  });
});

/** Waits until `condition()` holds, letting pending callbacks run; fails after 100 rounds. */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !condition(); i++) await flush();
  expect(condition()).toBe(true);
}
