// The referrer's encoded images (Referrer.encode: the CLIPSeg vision tower's activations, ~4.5 MB
// for clipseg-rd64-refined) by image id, so that a new query on an image the server has seen
// runs only its prompt embeddings and the decoder (~20 ms instead of ~450 ms on 2 CPU threads).
// Least recently used first out when their bytes pass the budget; an entry in use is pinned (not
// evicted) until its users are done, then disposed when evicted. Concurrent requests for the same
// image share one encode.
import type { ReferrerImage } from '../referrer.js';

interface Entry {
  /** The encode in progress or done. */
  image: Promise<ReferrerImage>;
  /** Its bytes once encoded (0 before). */
  bytes: number;
  /** Requests using it now. */
  pins: number;
}

export interface ReferrerImageCacheEvents {
  onHit?(): void;
  onMiss?(): void;
  onEvict?(): void;
}

export class ReferrerImageCache {
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;

  constructor(
    readonly maxBytes: number,
    private readonly events: ReferrerImageCacheEvents = {},
  ) {}

  /** Bytes of the encoded images held. */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Runs `use` on the encoded image `id`, encoding it with `encode` when it is not cached (or
   * joining an encode in progress). With a budget of 0 nothing is kept: the image is encoded for
   * this call and disposed after it.
   */
  async with<T>(id: string, encode: () => Promise<ReferrerImage>, use: (image: ReferrerImage) => Promise<T>): Promise<T> {
    let entry = this.#entries.get(id);
    if (entry !== undefined) {
      this.events.onHit?.();
      this.#entries.delete(id); // most recently used last
      this.#entries.set(id, entry);
    } else {
      this.events.onMiss?.();
      const created: Entry = { image: encode(), bytes: 0, pins: 0 };
      entry = created;
      this.#entries.set(id, created);
      created.image.then(
        (image) => {
          if (this.#entries.get(id) !== created) return; // cleared meanwhile
          created.bytes = image.bytes;
          this.#bytes += image.bytes;
        },
        () => {
          if (this.#entries.get(id) === created) this.#entries.delete(id); // failed encodes are not kept
        },
      );
    }
    entry.pins++;
    try {
      return await use(await entry.image);
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

  #drop(id: string, entry: Entry): void {
    this.#entries.delete(id);
    this.#bytes -= entry.bytes;
    void entry.image.then((image) => image.dispose(), () => {});
  }
}
