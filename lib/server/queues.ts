// Work queues of the server, one per model stage, so that decodes on cached embeddings never wait
// behind encodes. Each is bounded: a request that would wait beyond `maxWaiting` is refused at
// once (QueueFullError: 429 with Retry-After). Waiting work is cancelled by its request's signal
// (client gone, timeout) without ever reaching the model.
//
// The encoder queue batches dynamically: work arriving while the encoder is idle waits up to
// `maxDelayMs` for up to `maxBatch` requests, and a batch runs as one unit. A batch's images are
// decoded concurrently (sharp, on libuv threads), then go to the model in one batched call
// (`runMany`: Segmenter.encodeBatch, one native encoder pass whose matrix products cover every
// image), or one request at a time (`run`). Each request keeps its own outcome: a failed decode
// or a cancellation touches no other request of its batch.
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
  /**
   * The batched model call: once per batch, with the prepared inputs of its requests still
   * waiting for an answer, in batch order; resolves with one output per input, in that order.
   * `signal` aborts when every one of those requests has been cancelled. Used when given;
   * otherwise `run`.
   */
  runMany?(prepared: P[], signal: AbortSignal): Promise<O[]>;
  /** The model call, one request at a time in batch order (when there is no `runMany`). */
  run?(prepared: P, signal: AbortSignal | undefined): Promise<O>;
  /** Frees an output nobody will receive (its request was cancelled while the model ran). */
  discard?(output: O): void;
  /** Called with the size of each batch as it starts. */
  onBatch?(size: number): void;
}

type RunOne<P, O> = (prepared: P, signal: AbortSignal | undefined) => Promise<O>;
type RunMany<P, O> = (prepared: P[], signal: AbortSignal) => Promise<O[]>;

interface Job<I, O> {
  input: I;
  signal: AbortSignal | undefined;
  /** Settles the caller's promise (once). */
  settle(outcome: { value: O } | { error: unknown }): void;
  readonly settled: boolean;
}

/** A request of a running batch whose input is prepared. */
interface Ready<I, P, O> {
  job: Job<I, O>;
  prepared: P;
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
    if (options.run === undefined && options.runMany === undefined) {
      throw new TypeError('Expected a run or runMany function for options');
    }
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
   * waiting leaves the queue, one already running has `signal` passed on to `prepare` (and to
   * `run`), and its output, when it comes, goes to `discard`.
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
    // A failed preparation settles its own request at once; requests settled before (cancelled)
    // are not prepared.
    const prepared = batch.map((job) =>
      job.settled
        ? undefined
        : this.#options.prepare(job.input, job.signal).then(
            (value): Ready<I, P, O> => ({ job, prepared: value }),
            (error: unknown) => {
              job.settle({ error });
              return undefined;
            },
          ),
    );
    const options = this.#options;
    if (options.runMany !== undefined) {
      const ready = (await Promise.all(prepared)).filter((r): r is Ready<I, P, O> => r !== undefined && !r.job.settled);
      this.#running = ready.length;
      if (ready.length > 0) await this.#runMany(options.runMany.bind(options), ready);
      return;
    }
    const run = (options.run as RunOne<P, O>).bind(options);
    for (const pending of prepared) {
      const r = await pending;
      if (r !== undefined && !r.job.settled) await this.#runOne(run, r);
      this.#running--;
    }
  }

  async #runOne(run: RunOne<P, O>, { job, prepared }: Ready<I, P, O>): Promise<void> {
    const start = performance.now();
    try {
      this.#deliver(job, await run(prepared, job.signal));
    } catch (error) {
      job.settle({ error });
    }
    this.#estimate.add(performance.now() - start);
  }

  async #runMany(runMany: RunMany<P, O>, ready: Array<Ready<I, P, O>>): Promise<void> {
    // The call's signal aborts once nobody is left to answer (each request's own abort listener,
    // added first, has settled it by then).
    const controller = new AbortController();
    const signals = [...new Set(ready.map((r) => r.job.signal))];
    const check = (): void => {
      if (ready.every((r) => r.job.settled)) controller.abort();
    };
    for (const signal of signals) signal?.addEventListener('abort', check);
    const start = performance.now();
    try {
      const outputs = await runMany(ready.map((r) => r.prepared), controller.signal);
      if (outputs.length !== ready.length) {
        outputs.forEach((output) => this.#discard(output));
        throw new Error(`The ${this.name} returned ${outputs.length} outputs for ${ready.length} inputs`);
      }
      ready.forEach((r, i) => this.#deliver(r.job, outputs[i]));
    } catch (error) {
      for (const r of ready) r.job.settle({ error });
    } finally {
      for (const signal of signals) signal?.removeEventListener('abort', check);
    }
    this.#estimate.add((performance.now() - start) / ready.length);
  }

  /** Settles `job` with `output`, or discards `output` when the job was cancelled meanwhile. */
  #deliver(job: Job<I, O>, output: O): void {
    if (job.settled) this.#discard(output);
    else job.settle({ value: output });
  }

  #discard(output: O): void {
    try {
      this.#options.discard?.(output);
    } catch {
      // The request has its AbortError already; there is nobody to report this to.
    }
  }
}
