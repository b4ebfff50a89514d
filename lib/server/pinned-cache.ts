// Values made per image and kept by image id within a byte budget: the referrer's encoded images
// (Referrer.encode: the CLIPSeg vision tower's activations, ~4.5 MB for clipseg-rd64-refined), so
// that a new query on an image the server has seen runs only its prompt embeddings and the decoder
// (~20 ms instead of ~450 ms on 2 CPU threads), and decoded images, so that labelling the masks of
// an image the server has seen does not decode it again. Least recently used first out when their
// bytes pass the budget; an entry in use is pinned (not evicted) until its users are done, then
// disposed when evicted. Concurrent requests for the same image share one making.

/** What the cache holds: its size, and how to free it. */
export interface Cacheable {
  readonly bytes: number;
  dispose(): void;
}

interface Entry<T> {
  /** The making in progress or done. */
  value: Promise<T>;
  /** Its bytes once made (0 before). */
  bytes: number;
  /** Requests using it now. */
  pins: number;
}

export interface PinnedCacheEvents {
  onHit?(): void;
  onMiss?(): void;
  onEvict?(): void;
}

export class PinnedCache<T extends Cacheable> {
  readonly #entries = new Map<string, Entry<T>>();
  #bytes = 0;

  constructor(
    readonly maxBytes: number,
    private readonly events: PinnedCacheEvents = {},
  ) {}

  /** Bytes of the values held. */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Runs `use` on the value of image `id`, made with `make` when it is not cached (or joining a
   * making in progress). With a budget of 0 nothing is kept: the value is made for this call and
   * disposed after it.
   */
  async with<R>(id: string, make: () => Promise<T>, use: (value: T) => Promise<R>): Promise<R> {
    let entry = this.#entries.get(id);
    if (entry !== undefined) {
      this.events.onHit?.();
      this.#entries.delete(id); // most recently used last
      this.#entries.set(id, entry);
    } else {
      this.events.onMiss?.();
      const created: Entry<T> = { value: make(), bytes: 0, pins: 0 };
      entry = created;
      this.#entries.set(id, created);
      created.value.then(
        (value) => {
          if (this.#entries.get(id) !== created) return; // cleared meanwhile
          created.bytes = value.bytes;
          this.#bytes += value.bytes;
        },
        () => {
          if (this.#entries.get(id) === created) this.#entries.delete(id); // failed makings are not kept
        },
      );
    }
    entry.pins++;
    try {
      return await use(await entry.value);
    } finally {
      entry.pins--;
      this.#evict();
    }
  }

  /** Drops every unpinned entry (and disposes it); pinned ones go when released. */
  clear(): void {
    for (const [id, entry] of this.#entries) {
      if (entry.pins === 0) this.#drop(id, entry);
    }
  }

  #evict(): void {
    for (const [id, entry] of this.#entries) {
      if (this.#bytes <= this.maxBytes && this.maxBytes > 0) return;
      if (entry.pins > 0 || entry.bytes === 0) continue;
      this.#drop(id, entry);
      this.events.onEvict?.();
    }
  }

  #drop(id: string, entry: Entry<T>): void {
    this.#entries.delete(id);
    this.#bytes -= entry.bytes;
    void entry.value.then((value) => value.dispose(), () => {});
  }
}
