// The recency order and byte count shared by the server's caches (embeddings, heat maps, pinned
// per-image values): entries by key, least recently used first, with the bytes each one counts.
// What an entry's removal means (disposing it now or when its users are done, skipping pinned
// ones) stays with each cache.
import { invalidRange } from '../errors.js';
import { SharedWork } from './shared-work.js';

export class ByteLru<V> {
  /** Insertion order = recency order: the first key is the least recently used. */
  readonly #entries = new Map<string, { value: V; bytes: number }>();
  #bytes = 0;

  /** Bytes of the entries held. */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** The value of `key` without touching its recency; undefined when absent. */
  peek(key: string): V | undefined {
    return this.#entries.get(key)?.value;
  }

  /** The value of `key`, made the most recently used; undefined when absent. */
  use(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.value;
  }

  /** Adds `key` as the most recently used, counting `bytes`; returns the value it replaced. */
  set(key: string, value: V, bytes: number): V | undefined {
    const previous = this.delete(key);
    this.#entries.set(key, { value, bytes });
    this.#bytes += bytes;
    return previous;
  }

  /** Counts `bytes` for `key` from now on (a value whose size is known after it was added). */
  count(key: string, bytes: number): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#bytes += bytes - entry.bytes;
    entry.bytes = bytes;
  }

  /** Removes `key`; returns its value (undefined when absent). */
  delete(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
    return entry.value;
  }

  /**
   * Removes the least recently used entries that `evictable` allows until the bytes are at most
   * `maxBytes`; returns them, oldest first.
   */
  evict(maxBytes: number, evictable: (value: V) => boolean = () => true): Array<{ key: string; value: V; bytes: number }> {
    const victims: Array<{ key: string; value: V; bytes: number }> = [];
    for (const [key, entry] of this.#entries) {
      if (this.#bytes <= maxBytes) break;
      if (!evictable(entry.value)) continue;
      this.delete(key);
      victims.push({ key, value: entry.value, bytes: entry.bytes });
    }
    return victims;
  }

  /** Removes every entry; returns their values, least recently used first. */
  clear(): V[] {
    const values = [...this.#entries.values()].map((entry) => entry.value);
    this.#entries.clear();
    this.#bytes = 0;
    return values;
  }

  /** The entries, least recently used first (a snapshot: the caller may delete while iterating). */
  entries(): Array<[string, V]> {
    return [...this.#entries].map(([key, entry]) => [key, entry.value]);
  }
}

export interface CacheEvents {
  /** An entry left the cache to make room (not on clear()). */
  onEvict?(key: string, bytes: number): void;
}

/**
 * A byte-budgeted cache whose values are made once for concurrent requests (the embedding and
 * heat-map caches): its budget, entries and makings in progress, and what they count.
 */
export abstract class SharedLruCache<E, V> {
  /** Byte budget of the cached values. */
  readonly maxBytes: number;
  protected readonly entries = new ByteLru<E>();
  protected readonly work = new SharedWork<V>();

  constructor(
    maxBytes: number,
    protected readonly events: CacheEvents = {},
  ) {
    if (!(maxBytes >= 0)) throw invalidRange('a number >= 0', 'maxBytes', maxBytes);
    this.maxBytes = maxBytes;
  }

  /** Bytes of the cached values. */
  get bytes(): number {
    return this.entries.bytes;
  }

  /** Values in the cache. */
  get size(): number {
    return this.entries.size;
  }

  /** Makings in progress (shared by their waiters). */
  get pending(): number {
    return this.work.size;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }
}
