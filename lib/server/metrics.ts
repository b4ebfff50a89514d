// Prometheus metrics of one server, in a registry of its own (several servers can live in one
// process). Served as text by GET /metrics.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { QueueStats } from './queues.js';

/** What a cache's gauges read. */
export interface CacheStats {
  readonly bytes: number;
  readonly size: number;
  readonly maxBytes: number;
  readonly pending: number;
}

/** What the gauges read when scraped. */
export interface MetricsSources {
  queues: Record<string, QueueStats>;
  cache: CacheStats;
  /** The heat-map cache (its metrics read 0 when absent). */
  heatmapCache?: CacheStats;
  /** The referrer's encoded images (its bytes read 0 when absent). */
  referrerImages?: { readonly bytes: number; readonly size: number };
  decodedImages?: { readonly bytes: number; readonly size: number };
  ready(): boolean;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_BUCKETS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64];

export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly latency: Histogram<'route' | 'method'>;
  readonly cancelled: Counter<'route' | 'reason'>;
  readonly rejected: Counter<'queue'>;
  readonly batchSize: Histogram;
  readonly encodes: Counter;
  readonly encodeSeconds: Histogram;
  readonly decodes: Counter;
  readonly decodeSeconds: Histogram;
  readonly cacheHits: Counter;
  readonly cacheMisses: Counter;
  readonly cacheEvictions: Counter;
  readonly heatmapCacheHits: Counter;
  readonly heatmapCacheMisses: Counter;
  readonly heatmapCacheEvictions: Counter;
  readonly referrerImageHits: Counter;
  readonly referrerImageMisses: Counter;
  readonly referrerImageEvictions: Counter;
  readonly decodedImageHits: Counter;
  readonly decodedImageMisses: Counter;
  readonly decodedImageEvictions: Counter;
  readonly backend: Gauge<'device' | 'precision' | 'cpu_matmul' | 'threads'>;
  readonly backendErrors: Counter;

  constructor(sources: MetricsSources, options: { processMetrics: boolean }) {
    const registers = [this.registry];
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'omniseg_' });
    this.requests = new Counter({
      name: 'omniseg_http_requests_total',
      help: 'HTTP requests answered, by route, method and status code',
      labelNames: ['route', 'method', 'status'],
      registers,
    });
    this.latency = new Histogram({
      name: 'omniseg_http_request_duration_seconds',
      help: 'Time from request received to response sent, by route',
      labelNames: ['route', 'method'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.cancelled = new Counter({
      name: 'omniseg_requests_cancelled_total',
      help: 'Requests whose work was cancelled, by reason (client_gone, timeout)',
      labelNames: ['route', 'reason'],
      registers,
    });
    this.rejected = new Counter({
      name: 'omniseg_queue_rejected_total',
      help: 'Requests refused because their queue was full (429)',
      labelNames: ['queue'],
      registers,
    });
    new Gauge({
      name: 'omniseg_queue_depth',
      help: 'Requests waiting in each queue (not yet running)',
      labelNames: ['queue'],
      registers,
      collect() {
        for (const [queue, stats] of Object.entries(sources.queues)) this.set({ queue }, stats.waiting);
      },
    });
    new Gauge({
      name: 'omniseg_queue_running',
      help: 'Requests running in each queue',
      labelNames: ['queue'],
      registers,
      collect() {
        for (const [queue, stats] of Object.entries(sources.queues)) this.set({ queue }, stats.running);
      },
    });
    this.batchSize = new Histogram({
      name: 'omniseg_encoder_batch_size',
      help: 'Requests per encoder batch (their decoded images go to the encoder in one call)',
      buckets: BATCH_BUCKETS,
      registers,
    });
    this.encodes = new Counter({ name: 'omniseg_encodes_total', help: 'Images encoded', registers });
    this.encodeSeconds = new Histogram({
      name: 'omniseg_encode_duration_seconds',
      help: "Native image encoder time per image: a batched call's time divided by its images, observed once per image",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.decodes = new Counter({ name: 'omniseg_decodes_total', help: 'Mask decoder calls', registers });
    this.decodeSeconds = new Histogram({
      name: 'omniseg_decode_duration_seconds',
      help: 'Native mask decoder time per call',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.cacheHits = new Counter({
      name: 'omniseg_cache_hits_total',
      help: 'Embedding lookups served from the cache',
      registers,
    });
    this.cacheMisses = new Counter({
      name: 'omniseg_cache_misses_total',
      help: 'Embedding lookups that needed an encode (or joined one in progress)',
      registers,
    });
    this.cacheEvictions = new Counter({
      name: 'omniseg_cache_evictions_total',
      help: 'Embeddings evicted to stay within the byte budget',
      registers,
    });
    new Gauge({
      name: 'omniseg_cache_bytes',
      help: 'Bytes of the cached embeddings',
      registers,
      collect() {
        this.set(sources.cache.bytes);
      },
    });
    new Gauge({
      name: 'omniseg_cache_max_bytes',
      help: 'Byte budget of the embedding cache',
      registers,
      collect() {
        this.set(sources.cache.maxBytes);
      },
    });
    new Gauge({
      name: 'omniseg_cache_entries',
      help: 'Embeddings in the cache',
      registers,
      collect() {
        this.set(sources.cache.size);
      },
    });
    new Gauge({
      name: 'omniseg_cache_pending',
      help: 'Encodes in progress (shared by the requests for the same image)',
      registers,
      collect() {
        this.set(sources.cache.pending);
      },
    });
    const heat = sources.heatmapCache;
    ({ hits: this.heatmapCacheHits, misses: this.heatmapCacheMisses, evictions: this.heatmapCacheEvictions } = cacheMetrics(
      registers,
      'heatmap',
      {
        hits: 'Heat-map lookups (referrer) served from the heat-map cache',
        misses: 'Heat-map lookups that needed a referrer forward pass (or joined one in progress)',
        evictions: 'Heat maps evicted to stay within the byte budget',
        bytes: 'Bytes of the cached heat maps',
      },
      heat,
    ));
    new Gauge({
      name: 'omniseg_heatmap_cache_max_bytes',
      help: 'Byte budget of the heat-map cache',
      registers,
      collect() {
        this.set(heat?.maxBytes ?? 0);
      },
    });
    new Gauge({
      name: 'omniseg_heatmap_cache_entries',
      help: 'Heat maps in the cache',
      registers,
      collect() {
        this.set(heat?.size ?? 0);
      },
    });
    ({ hits: this.referrerImageHits, misses: this.referrerImageMisses, evictions: this.referrerImageEvictions } = cacheMetrics(
      registers,
      'referrer_image',
      {
        hits: 'Heat maps computed on an image whose referrer vision features were cached (decoder only)',
        misses: 'Heat maps that ran the referrer vision tower on their image (or joined such a run)',
        evictions: 'Encoded referrer images evicted to stay within the byte budget',
        bytes: 'Bytes of the cached referrer vision features',
      },
      sources.referrerImages,
    ));
    ({ hits: this.decodedImageHits, misses: this.decodedImageMisses, evictions: this.decodedImageEvictions } = cacheMetrics(
      registers,
      'decoded_image',
      {
        hits: 'Decodes of an image avoided (labels, referrer and, with a referrer, SAM encodes): found in the decoded-image cache',
        misses: 'Decodes of an image for labels, the referrer and (with a referrer) SAM encodes, or joins of one in progress',
        evictions: 'Decoded images evicted to stay within the byte budget',
        bytes: 'Bytes of the cached decoded images',
      },
      sources.decodedImages,
    ));
    this.backend = new Gauge({
      name: 'omniseg_backend_info',
      help: 'The loaded model backend (value 1)',
      labelNames: ['device', 'precision', 'cpu_matmul', 'threads'],
      registers,
    });
    this.backendErrors = new Counter({
      name: 'omniseg_backend_errors_total',
      help: 'Model calls that failed for a reason other than the request',
      registers,
    });
    new Gauge({
      name: 'omniseg_ready',
      help: '1 when the model is loaded and the server accepts work, else 0',
      registers,
      collect() {
        this.set(sources.ready() ? 1 : 0);
      },
    });
  }

  /** The Prometheus text exposition and its content type. */
  async render(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}

/** A cache's omniseg_<name>_cache_{hits,misses,evictions}_total counters and its _bytes gauge. */
function cacheMetrics(
  registers: Registry[],
  name: string,
  help: { hits: string; misses: string; evictions: string; bytes: string },
  source: { readonly bytes: number } | undefined,
): { hits: Counter; misses: Counter; evictions: Counter } {
  const counter = (kind: 'hits' | 'misses' | 'evictions') =>
    new Counter({ name: `omniseg_${name}_cache_${kind}_total`, help: help[kind], registers });
  const counters = { hits: counter('hits'), misses: counter('misses'), evictions: counter('evictions') };
  new Gauge({
    name: `omniseg_${name}_cache_bytes`,
    help: help.bytes,
    registers,
    collect() {
      this.set(source?.bytes ?? 0);
    },
  });
  return counters;
}
