// A first-in, first-out queue of native calls with a concurrency limit. Work waits here, in
// JavaScript, until it may start: that is what lets an AbortSignal cancel it (a call that has
// reached the addon's worker thread cannot be interrupted).
import { abortError, onAbort } from './errors.js';

/** Runs tasks in the order given, at most `concurrency` at a time. */
export class WorkQueue {
  readonly concurrency: number;
  #running = 0;
  /** The waiting tasks' starts, in order (a Set: a cancelled one leaves in O(1), not by a splice). */
  readonly #waiting = new Set<() => void>();

  /** @param concurrency tasks allowed to run at once, ≥ 1. Default: 1. */
  constructor(concurrency = 1) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be >= 1, got ${concurrency}`);
    this.concurrency = concurrency;
  }

  /** Tasks started and not yet settled. */
  get running(): number {
    return this.#running;
  }

  /** Tasks waiting for their turn. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /**
   * Runs `task` when its turn comes and settles with its outcome.
   *
   * With a `signal`: already aborted, the promise rejects with an AbortError and `task` is never
   * called; aborted while waiting, the task leaves the queue unstarted and the promise rejects at
   * once; aborted while running, the promise rejects at once, the task keeps its slot until it
   * settles, and its value, if any, goes to `discard` (e.g. to free native memory nobody will
   * receive).
   */
  run<T>(task: () => Promise<T>, signal?: AbortSignal, discard?: (value: T) => void): Promise<T> {
    if (signal?.aborted === true) return Promise.reject(abortError(signal));
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      let started = false;
      // (one listener on the signal for all the library's calls: onAbort)
      const off =
        signal === undefined
          ? () => {}
          : onAbort(signal, () => {
              if (settled) return;
              settled = true;
              if (!started) this.#waiting.delete(start);
              reject(abortError(signal));
            });
      const finish = (): void => {
        settled = true;
        off();
      };
      const start = (): void => {
        started = true;
        this.#running++;
        let promise: Promise<T>;
        try {
          promise = task();
        } catch (error) {
          promise = Promise.reject(error);
        }
        // The slot is released before the caller hears of the outcome, so that code after an
        // `await` sees the queue idle.
        promise.then(
          (value) => {
            this.#release();
            if (!settled) {
              finish();
              resolve(value);
            } else if (discard !== undefined) {
              try {
                discard(value);
              } catch {
                // The caller has its AbortError already; there is nobody to report this to.
              }
            }
          },
          (error: unknown) => {
            this.#release();
            if (!settled) {
              finish();
              reject(error);
            }
          },
        );
      };
      this.#waiting.add(start);
      this.#next();
    });
  }

  #release(): void {
    this.#running--;
    queueMicrotask(() => this.#next());
  }

  #next(): void {
    while (this.#running < this.concurrency && this.#waiting.size > 0) {
      const start = this.#waiting.values().next().value as () => void;
      this.#waiting.delete(start);
      start();
    }
  }
}
