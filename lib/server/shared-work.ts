// Shared computations by key (the server caches' "concurrent requests share one encode / one
// heat map"): a caller joins the computation of its key in progress or starts it; a caller that
// gives up (its signal aborts) stops waiting at once, and when the last one gives up the
// computation's own signal aborts and the key is forgotten, so a later call starts afresh. A
// settled computation is forgotten too (its result is the caller's to keep).
import { abortError, untilAborted } from '../errors.js';

interface Pending<T> {
  readonly controller: AbortController;
  readonly promise: Promise<T>;
  waiters: number;
}

export class SharedWork<T> {
  readonly #pending = new Map<string, Pending<T>>();

  /** Computations in progress. */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * The result of `key`'s computation: the one in progress, or `run(signal)` started now
   * (`signal` aborts when every caller has given up). `signal` abandons this caller's wait,
   * rejecting with an AbortError at once.
   */
  async join(key: string, run: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const aborted = (): boolean => signal?.aborted === true; // read anew after each await
    if (aborted()) throw abortError(signal as AbortSignal);
    const shared = this.#pending.get(key) ?? this.#start(key, run);
    shared.waiters++;
    try {
      return await untilAborted(shared.promise, signal);
    } catch (error) {
      if (aborted() && shared.waiters === 1 && this.#pending.get(key) === shared) {
        // Nobody wants it any more: cancel it, and let a later call start afresh.
        this.#pending.delete(key);
        shared.controller.abort(signal?.reason);
      }
      throw error;
    } finally {
      shared.waiters--;
    }
  }

  #start(key: string, run: (signal: AbortSignal) => Promise<T>): Pending<T> {
    const controller = new AbortController();
    const forget = (): void => {
      if (this.#pending.get(key) === pending) this.#pending.delete(key);
    };
    const promise = run(controller.signal).then(
      (value) => {
        forget();
        return value;
      },
      (error: unknown) => {
        forget();
        throw error;
      },
    );
    promise.catch(() => {}); // the waiters see it; with none left, nobody does
    const pending: Pending<T> = { controller, promise, waiters: 0 };
    this.#pending.set(key, pending);
    return pending;
  }
}
