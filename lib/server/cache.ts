// Embedding cache: the server's image embeddings, keyed by a content hash of the image (its
// imageId), least recently used first out when their bytes pass the budget. Entries in use (a
// decode running on them) are pinned: evicted, they leave the index at once but their native
// memory is freed when the last user releases them. Concurrent requests for an image being
// encoded share one encode.
import { createHash } from 'node:crypto';
import type { ImageEmbedding } from '../embedding.js';
import { SharedLruCache } from './lru.js';

/** The imageId of an encoded image: the SHA-256 of its bytes, hex. */
export function imageId(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A pinned embedding: valid until `release()` (idempotent). */
export interface Lease {
  readonly id: string;
  readonly embedding: ImageEmbedding;
  /** The encoded image, when it was kept with the embedding (a server with a referrer keeps it). */
  readonly source: Uint8Array | undefined;
  release(): void;
}

interface Entry {
  readonly id: string;
  readonly embedding: ImageEmbedding;
  readonly source: Uint8Array | undefined;
  readonly bytes: number;
  refs: number;
  evicted: boolean;
}

/** Result of `EmbeddingCache.resolve`: the pinned embedding and whether it was cached already. */
export interface Resolved {
  lease: Lease;
  cached: boolean;
}

export class EmbeddingCache extends SharedLruCache<Entry, Entry> {
  /** Pins a cached embedding and makes it the most recently used; undefined when not cached. */
  acquire(id: string): Lease | undefined {
    const entry = this.entries.use(id);
    return entry === undefined ? undefined : this.#lease(entry);
  }

  /**
   * The embedding of `id`: from the cache, from an encode of the same image already in progress,
   * or from `create` (called with a signal that aborts when every waiter has given up).
   * `signal` abandons this caller's wait (rejecting with an AbortError at once). `source` (the
   * encoded image) is kept with a new entry, its bytes counted in the budget.
   */
  async resolve(
    id: string,
    create: (signal: AbortSignal) => Promise<ImageEmbedding>,
    signal?: AbortSignal,
    source?: Uint8Array,
  ): Promise<Resolved> {
    const cached = this.acquire(id);
    if (cached !== undefined) return { lease: cached, cached: true };
    const entry = await this.work.join(id, (encodeSignal) => this.#encode(id, create, encodeSignal, source), signal);
    return { lease: this.#lease(entry), cached: false };
  }

  /** Disposes every embedding (pinned ones when released). */
  clear(): void {
    for (const entry of this.entries.clear()) this.#evicted(entry);
  }

  async #encode(
    id: string,
    create: (signal: AbortSignal) => Promise<ImageEmbedding>,
    signal: AbortSignal,
    source: Uint8Array | undefined,
  ): Promise<Entry> {
    const embedding = await create(signal);
    const bytes = embedding.byteLength + (source?.byteLength ?? 0); // (what it holds natively, its decoder cache included)
    const entry: Entry = { id, embedding, source, bytes, refs: 1, evicted: false };
    // Pinned for the waiters until they have resumed (continuations run before setImmediate).
    setImmediate(() => this.#unpin(entry));
    this.#insert(entry);
    return entry;
  }

  #insert(entry: Entry): void {
    const previous = this.entries.set(entry.id, entry, entry.bytes);
    if (previous !== undefined) this.#evicted(previous);
    for (const { value: victim } of this.entries.evict(this.maxBytes)) {
      this.#evicted(victim);
      this.events.onEvict?.(victim.id, victim.bytes);
    }
  }

  /** An entry out of the index: disposed now, or by its last user. */
  #evicted(entry: Entry): void {
    entry.evicted = true;
    if (entry.refs === 0) entry.embedding.dispose();
  }

  #lease(entry: Entry): Lease {
    entry.refs++;
    let released = false;
    return {
      id: entry.id,
      embedding: entry.embedding,
      source: entry.source,
      release: () => {
        if (released) return;
        released = true;
        this.#unpin(entry);
      },
    };
  }

  #unpin(entry: Entry): void {
    entry.refs--;
    if (entry.refs === 0 && entry.evicted) entry.embedding.dispose();
  }
}
