// Heat-map cache: the referrer's heat maps, keyed by the image's id (the SHA-256 of its bytes, as
// the embedding cache) and a digest of the query (`queryDigest`), least recently used first out
// when their bytes pass the budget. Heat maps are plain JS memory (no pinning: an evicted one is
// collected once no response uses it). Concurrent requests for the same heat map share one
// computation, which is cancelled when every one of them has given up.
import { createHash } from 'node:crypto';
import { SharedLruCache } from './lru.js';
import type { Heatmap } from '../referrer.js';
import type { QuerySpec } from '../referring/prompts.js';

/** Bytes a heat map holds: its [H, W] probabilities, [S, S] logits and conditional embedding. */
export function heatmapBytes(heat: Heatmap): number {
  return heat.data.byteLength + heat.logits.byteLength + heat.conditional.byteLength + (heat.inputIds?.byteLength ?? 0);
}

/**
 * A digest (SHA-256, hex) of what a validated query refers to: per prompt its text, the SHA-256
 * of its reference image's bytes, its region and text weight (the default filled in), and the
 * normalised weights. Queries that `querySpec` makes equal (weights [1, 1] and [2, 2], a missing
 * textWeight and 0.5) share a digest. A region's mask counts by the bytes it was sent as (when
 * given) or by its pixels.
 * @param spec `querySpec()` of the query, whose refImages are encoded bytes.
 * @param regionBytes the encoded bytes of each prompt's region mask (by prompt index), if any.
 */
export function queryDigest(spec: QuerySpec, regionBytes: ReadonlyMap<number, Uint8Array> = new Map()): string {
  const prompts = spec.prompts.map((p, i) => {
    const ref = p.refImage === undefined ? null : createHash('sha256').update(p.refImage as Uint8Array).digest('hex');
    return [p.text ?? null, ref, regionKey(p.refRegion, regionBytes.get(i)), p.textWeight ?? null];
  });
  return createHash('sha256').update(JSON.stringify([prompts, spec.weights])).digest('hex');
}

/** A region as it goes into a digest: a mask by the SHA-256 of its sent bytes (or of its pixels and size). */
function regionKey(region: unknown, sent: Uint8Array | undefined): unknown {
  if (region === undefined) return null;
  const mask = (region as { mask?: { data?: unknown; width?: unknown; height?: unknown } }).mask;
  if (mask === undefined) return region;
  const hash = createHash('sha256');
  if (sent !== undefined) hash.update(sent);
  else if (mask.data instanceof Uint8Array) hash.update(`${String(mask.width)}x${String(mask.height)}:`).update(mask.data);
  else return region;
  return { mask: hash.digest('hex') };
}

/** Result of `HeatmapCache.resolve`: the heat map and whether it came from the cache. */
export interface ResolvedHeatmap {
  heatmap: Heatmap;
  cached: boolean;
}

/** A byte budget of 0 caches nothing (concurrent requests still share a computation). */
export class HeatmapCache extends SharedLruCache<Heatmap, Heatmap> {
  /** The cached heat map of `key`, made the most recently used; undefined when not cached. */
  get(key: string): Heatmap | undefined {
    return this.entries.use(key);
  }

  /**
   * The heat map of `key`: from the cache, from a computation of the same key in progress, or
   * from `create` (called with a signal that aborts when every waiter has given up). `signal`
   * abandons this caller's wait (rejecting with an AbortError at once). A failed computation is
   * not cached.
   */
  async resolve(key: string, create: (signal: AbortSignal) => Promise<Heatmap>, signal?: AbortSignal): Promise<ResolvedHeatmap> {
    const hit = this.get(key);
    if (hit !== undefined) return { heatmap: hit, cached: true };
    const heatmap = await this.work.join(
      key,
      async (computeSignal) => {
        const computed = await create(computeSignal);
        // Cached even when every waiter gave up while it ran: the work is done and valid.
        this.#insert(key, computed);
        return computed;
      },
      signal,
    );
    return { heatmap, cached: false };
  }

  /** Empties the cache. */
  clear(): void {
    this.entries.clear();
  }

  #insert(key: string, heatmap: Heatmap): void {
    const bytes = heatmapBytes(heatmap);
    if (bytes > this.maxBytes) return;
    this.entries.set(key, heatmap, bytes);
    for (const victim of this.entries.evict(this.maxBytes)) this.events.onEvict?.(victim.key, victim.bytes);
  }
}
