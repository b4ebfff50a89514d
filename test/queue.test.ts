// WorkQueue: order, concurrency and cancellation of work that has not started.
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { AbortError } from '../lib/errors.js';
import { WorkQueue } from '../lib/queue.js';
import { flush, gate } from './helpers/fake-binding.js';

/** A task that logs its start and resolves with `value` once `g` opens. */
function task<T>(log: string[], name: string, value: T, g = gate()) {
  const run = async (): Promise<T> => {
    log.push(`start ${name}`);
    await g.promise;
    log.push(`end ${name}`);
    return value;
  };
  return { run, gate: g };
}

describe('WorkQueue', () => {
  it('runs tasks one at a time, in order', async () => {
    const queue = new WorkQueue(1);
    const log: string[] = [];
    const a = task(log, 'a', 1);
    const b = task(log, 'b', 2);
    const pa = queue.run(a.run);
    const pb = queue.run(b.run);
    await flush();
    expect(log).toEqual(['start a']);
    expect([queue.running, queue.waiting]).toEqual([1, 1]);
    b.gate.open(); // b may finish early, but has not started
    await flush();
    expect(log).toEqual(['start a']);
    a.gate.open();
    expect(await Promise.all([pa, pb])).toEqual([1, 2]);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b']);
    expect([queue.running, queue.waiting]).toEqual([0, 0]);
  });

  it('honours a higher concurrency', async () => {
    const queue = new WorkQueue(2);
    const log: string[] = [];
    const tasks = ['a', 'b', 'c'].map((name) => task(log, name, name));
    const results = tasks.map((t) => queue.run(t.run));
    await flush();
    expect(log).toEqual(['start a', 'start b']);
    tasks[1].gate.open();
    await flush();
    expect(log).toEqual(['start a', 'start b', 'end b', 'start c']);
    tasks[0].gate.open();
    tasks[2].gate.open();
    expect(await Promise.all(results)).toEqual(['a', 'b', 'c']);
  });

  it('a failing task rejects its own call only', async () => {
    const queue = new WorkQueue(1);
    const failing = queue.run(async () => {
      throw new Error('boom');
    });
    const sync = queue.run(() => {
      throw new Error('sync boom');
    });
    const ok = queue.run(async () => 'ok');
    await expect(failing).rejects.toThrow('boom');
    await expect(sync).rejects.toThrow('sync boom');
    await expect(ok).resolves.toBe('ok');
  });

  it('an already-aborted signal rejects at once and never starts the task', async () => {
    const queue = new WorkQueue(1);
    const log: string[] = [];
    const reason = new Error('user left');
    const promise = queue.run(task(log, 'a', 1).run, AbortSignal.abort(reason));
    const error = await promise.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortError);
    expect(error).toMatchObject({ name: 'AbortError', message: 'The operation was aborted', code: 'ABORT_ERR', cause: reason });
    await flush();
    expect(log).toEqual([]);
    expect([queue.running, queue.waiting]).toEqual([0, 0]);
  });

  it('aborting a waiting task removes it: it rejects at once and never starts', async () => {
    const queue = new WorkQueue(1);
    const log: string[] = [];
    const a = task(log, 'a', 1);
    const b = task(log, 'b', 2);
    const c = task(log, 'c', 3);
    const controller = new AbortController();
    const pa = queue.run(a.run);
    const pb = queue.run(b.run, controller.signal);
    const pc = queue.run(c.run);
    await flush();
    controller.abort();
    await expect(pb).rejects.toMatchObject({ name: 'AbortError' });
    expect(queue.waiting).toBe(1);
    a.gate.open();
    b.gate.open();
    c.gate.open();
    expect(await Promise.all([pa, pc])).toEqual([1, 3]);
    expect(log).toEqual(['start a', 'end a', 'start c', 'end c']);
  });

  it('aborting a running task rejects at once; its slot is held until it ends and its value is discarded', async () => {
    const queue = new WorkQueue(1);
    const log: string[] = [];
    const discarded: string[] = [];
    const a = task(log, 'a', 'late value');
    const b = task(log, 'b', 'b');
    const controller = new AbortController();
    const pa = queue.run(a.run, controller.signal, (value) => discarded.push(value));
    const pb = queue.run(b.run);
    await flush();
    controller.abort();
    await expect(pa).rejects.toMatchObject({ name: 'AbortError' });
    expect(log).toEqual(['start a']); // b waits for a's native work to end
    b.gate.open();
    a.gate.open();
    expect(await pb).toBe('b');
    expect(discarded).toEqual(['late value']);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b']);
  });

  it('removes its abort listener once the call settles', async () => {
    const queue = new WorkQueue(1);
    const controller = new AbortController();
    for (let i = 0; i < 20; i++) await queue.run(async () => i, controller.signal);
    await expect(queue.run(async () => Promise.reject(new Error('x')), controller.signal)).rejects.toThrow('x');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('calls sharing one signal add one listener to it, and its abort cancels all of them in order', async () => {
    // (a listener each made Node warn past 10 calls: MaxListenersExceededWarning)
    const queue = new WorkQueue(1);
    const log: string[] = [];
    const first = task(log, 'first', 0);
    const controller = new AbortController();
    const running = queue.run(first.run, controller.signal, () => log.push('discarded first'));
    const waiting = Array.from({ length: 50 }, (_, i) => queue.run(task(log, `t${i}`, i).run, controller.signal));
    const other = queue.run(async () => 'other');
    await flush();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    expect(queue.waiting).toBe(51);
    controller.abort();
    for (const p of [running, ...waiting]) await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    expect(queue.waiting).toBe(1);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    first.gate.open();
    expect(await other).toBe('other');
    expect(log).toEqual(['start first', 'end first', 'discarded first']);
  });

  it('rejects a concurrency below 1', () => {
    expect(() => new WorkQueue(0)).toThrow(RangeError);
  });
});
