// Work queues of the server, one per model stage, so that decodes on cached embeddings never wait
// behind encodes. Each is bounded: a request that would wait beyond `maxWaiting` is refused at
// once (QueueFullError: 429 with Retry-After). Waiting work is cancelled by its request's signal
// (client gone, timeout) without ever reaching the model.
//
// The encoder queue batches dynamically: work arriving while the encoder is idle waits up to
// `maxDelayMs` for up to `maxBatch` requests, and a batch runs as one unit. The native encoder
// takes one image per call today, so a batch's images are decoded concurrently (sharp, on libuv
// threads) and then encoded back to back; a batched native encoder can take over `runBatch`.
import { abortError } from '../errors.js';
import { WorkQueue } from '../queue.js';
import { QueueFullError } from './errors.js';

/** Mean of recent durations (exponentially weighted), for Retry-After estimates. */
class DurationEstimate {
  #mean = 0;
  #samples = 0;

  add(ms: number): void {
    this.#samples++;
    const alpha = Math.max(0.1, 1 / this.#samples);
    this.#mean += alpha * (ms - this.#mean);
  }

  /** Seconds (whole, at least 1) until `ahead` tasks have gone through `lanes` lanes. */
  retryAfter(ahead: number, lanes: number): number {
    return Math.max(1, Math.ceil((this.#mean * Math.ceil(ahead / lanes)) / 1000));
  }
}

export interface QueueStats {
  /** Tasks waiting for a slot. */
  readonly waiting: number;
  /** Tasks running. */
  readonly running: number;
}

/** A FIFO of tasks with a concurrency limit and at most `maxWaiting` waiting. */
export class BoundedQueue implements QueueStats {
  readonly name: string;
  readonly maxWaiting: number;
  readonly #queue: WorkQueue;
  readonly #estimate = new DurationEstimate();

  constructor(name: string, options: { concurrency: number; maxWaiting: number }) {
    this.name = name;
    this.maxWaiting = options.maxWaiting;
    this.#queue = new WorkQueue(options.concurrency);
  }

  get waiting(): number {
    return this.#queue.waiting;
  }

  get running(): number {
    return this.#queue.running;
  }

  /**
   * Runs `task` in its turn (see WorkQueue.run for `signal`).
   * @throws QueueFullError (rejection) when the task would have to wait and `maxWaiting` tasks
   *   wait already.
   */
  run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const mustWait = this.#queue.running >= this.#queue.concurrency || this.#queue.waiting > 0;
    if (mustWait && this.#queue.waiting >= this.maxWaiting) {
      return Promise.reject(
        new QueueFullError(this.name, this.#estimate.retryAfter(this.#queue.waiting + 1, this.#queue.concurrency)),
      );
    }
    return this.#queue.run(async () => {
      const start = performance.now();
      try {
        return await task();
      } finally {
        this.#estimate.add(performance.now() - start);
      }
    }, signal);
  }
}

export interface BatcherOptions<I, P, O> {
  /** Requests per batch, ≥ 1. */
  maxBatch: number;
  /** How long an idle encoder waits for a batch to fill, ms (0: only what is already queued). */
  maxDelayMs: number;
  /** Requests allowed to wait (not counting the running batch). */
  maxWaiting: number;
  /** Per-request preparation, run concurrently for the whole batch (e.g. image decoding). */
  prepare(input: I, signal: AbortSignal | undefined): Promise<P>;
  /** The model call, one request at a time in batch order. */
  run(prepared: P, signal: AbortSignal | undefined): Promise<O>;
  /** Called with the size of each batch as it starts. */
  onBatch?(size: number): void;
}

interface Job<I, O> {
  input: I;
  signal: AbortSignal | undefined;
  /** Settles the caller's promise (once). */
  settle(outcome: { value: O } | { error: unknown }): void;
  readonly settled: boolean;
}

/** The encoder queue: dynamic batches of up to `maxBatch` requests. */
export class Batcher<I, P, O> implements QueueStats {
  readonly name: string;
  readonly #options: BatcherOptions<I, P, O>;
  readonly #waiting: Array<Job<I, O>> = [];
  readonly #estimate = new DurationEstimate();
  /** Requests of the running batch not yet finished. */
  #running = 0;
  /** A batch is running. */
  #busy = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(name: string, options: BatcherOptions<I, P, O>) {
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1) throw new RangeError('maxBatch must be >= 1');
    this.name = name;
    this.#options = options;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /** Requests of the running batch not yet finished. */
  get running(): number {
    return this.#running;
  }

  /**
   * Queues one request. Aborting `signal` rejects at once with an AbortError; a request still
   * waiting leaves the queue, one already running has `signal` passed on to `prepare` / `run`.
   * @throws QueueFullError (rejection) when `maxWaiting` requests wait already.
   */
  submit(input: I, signal?: AbortSignal): Promise<O> {
    if (signal?.aborted === true) return Promise.reject(abortError(signal));
    if (this.#waiting.length >= this.#options.maxWaiting) {
      const ahead = this.#waiting.length + this.#running;
      return Promise.reject(new QueueFullError(this.name, this.#estimate.retryAfter(ahead + 1, 1)));
    }
    return new Promise<O>((resolve, reject) => {
      let settled = false;
      const onAbort = (): void => {
        const index = this.#waiting.indexOf(job);
        if (index >= 0) this.#waiting.splice(index, 1);
        if (signal !== undefined) job.settle({ error: abortError(signal) });
      };
      const job: Job<I, O> = {
        input,
        signal,
        settle: (outcome) => {
          if (settled) return;
          settled = true;
          signal?.removeEventListener('abort', onAbort);
          if ('value' in outcome) resolve(outcome.value);
          else reject(outcome.error);
        },
        get settled() {
          return settled;
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(job);
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#busy || this.#waiting.length === 0) return;
    if (this.#waiting.length >= this.#options.maxBatch) {
      this.#startBatch();
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#startBatch(), this.#options.maxDelayMs);
    }
  }

  #startBatch(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#waiting.splice(0, this.#options.maxBatch);
    if (batch.length === 0) return;
    this.#busy = true;
    this.#running = batch.length;
    this.#options.onBatch?.(batch.length);
    void this.#runBatch(batch).finally(() => {
      this.#busy = false;
      this.#running = 0;
      // Requests that arrived during the batch have waited long enough: no further delay.
      if (this.#waiting.length > 0) this.#startBatch();
    });
  }

  async #runBatch(batch: Array<Job<I, O>>): Promise<void> {
    const { prepare, run } = this.#options;
    const prepared = batch.map((job) =>
      job.settled ? undefined : prepare(job.input, job.signal).then((value) => ({ value }), (error: unknown) => ({ error })),
    );
    for (let i = 0; i < batch.length; i++) {
      const job = batch[i];
      const p = await prepared[i];
      if (p !== undefined && !job.settled) {
        if ('error' in p) {
          job.settle(p);
        } else {
          const start = performance.now();
          try {
            job.settle({ value: await run(p.value, job.signal) });
          } catch (error) {
            job.settle({ error });
          }
          this.#estimate.add(performance.now() - start);
        }
      }
      this.#running--;
    }
  }
}
