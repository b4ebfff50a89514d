// Values made per image and kept by image id within a byte budget: the referrer's encoded images
// (Referrer.encode: the CLIPSeg vision tower's activations, ~4.5 MB for clipseg-rd64-refined), so
// that a new query on an image the server has seen runs only its prompt embeddings and the decoder
// (~20 ms instead of ~450 ms on 2 CPU threads), and decoded images, so that labelling the masks of
// an image the server has seen does not decode it again. Least recently used first out when their
// bytes pass the budget; an entry in use is pinned (not evicted) until its users are done, then
// disposed when evicted. Concurrent requests for the same image share one making, which is
// cancelled when every request waiting for it has given up.
import { abortError, untilAborted } from '../errors.js';
import { ByteLru } from './lru.js';

/** What the cache holds: its size, and how to free it. */
export interface Cacheable {
  readonly bytes: number;
  dispose(): void;
}

interface Entry<T> {
  /** The making in progress or done. */
  readonly value: Promise<T>;
  /** The making's signal: aborted when every request waiting for it has given up. */
  readonly controller: AbortController;
  /** Made (its bytes counted). */
  made: boolean;
  /** Requests waiting for it or using it now. */
  pins: number;
}

export interface PinnedCacheEvents {
  onHit?(): void;
  onMiss?(): void;
  onEvict?(): void;
}

export class PinnedCache<T extends Cacheable> {
  readonly #entries = new ByteLru<Entry<T>>();

  constructor(
    readonly maxBytes: number,
    private readonly events: PinnedCacheEvents = {},
  ) {}

  /** Bytes of the values held. */
  get bytes(): number {
    return this.#entries.bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Runs `use` on the value of image `id`, made with `make` when it is not cached (or joining a
   * making in progress). With a budget of 0 nothing is kept: the value is made for this call and
   * disposed after it. `signal` abandons this call's wait for the making (an AbortError at once);
   * when no call waits for it any more, the signal `make` was given aborts: a making that stops
   * then fails (and is not kept), one that goes on is kept as any other.
   */
  async with<R>(
    id: string,
    make: (signal: AbortSignal) => Promise<T>,
    use: (value: T) => Promise<R>,
    signal?: AbortSignal,
  ): Promise<R> {
    const aborted = (): boolean => signal?.aborted === true; // read anew after each await
    if (aborted()) throw abortError(signal as AbortSignal);
    let entry = this.#entries.use(id);
    if (entry !== undefined && entry.controller.signal.aborted && !entry.made) {
      // Given up by its waiters: cancelled if it had not started (it fails, and is dropped), else
      // running to its end (and kept). Which one is known once it settles; then this call joins
      // the value or makes it afresh.
      await untilAborted(
        entry.value.then(
          () => {},
          () => {},
        ),
        signal,
      );
      return this.with(id, make, use, signal);
    }
    if (entry !== undefined) {
      this.events.onHit?.();
    } else {
      this.events.onMiss?.();
      const controller = new AbortController();
      const created: Entry<T> = { value: make(controller.signal), controller, made: false, pins: 0 };
      entry = created;
      this.#entries.set(id, created, 0);
      created.value.then(
        (value) => {
          if (this.#entries.peek(id) !== created) return; // cleared meanwhile
          created.made = true;
          this.#entries.count(id, value.bytes);
        },
        () => {
          if (this.#entries.peek(id) === created) this.#entries.delete(id); // failed makings are not kept
        },
      );
    }
    entry.pins++;
    let value: T;
    try {
      value = await untilAborted(entry.value, signal);
    } catch (error) {
      entry.pins--;
      // Nobody waits for it any more: its making is told so (a queued encode is cancelled, and the
      // failure drops the entry; one already running goes on, and its value is kept).
      if (aborted() && !entry.made && entry.pins === 0) entry.controller.abort(signal?.reason);
      throw error;
    }
    try {
      return await use(value);
    } finally {
      entry.pins--;
      this.#evict();
    }
  }

  /** Drops every unpinned entry (and disposes it); pinned ones go when released. */
  clear(): void {
    for (const [id, entry] of this.#entries.entries()) {
      if (entry.pins > 0) continue;
      this.#entries.delete(id);
      dispose(entry);
    }
  }

  #evict(): void {
    for (const { value: entry } of this.#entries.evict(this.maxBytes, (e) => e.pins === 0 && e.made)) {
      dispose(entry);
      this.events.onEvict?.();
    }
  }
}

function dispose<T extends Cacheable>(entry: Entry<T>): void {
  void entry.value.then((value) => value.dispose(), () => {});
}
