// createServer's options: what each one means, and their validation (before anything loads or
// listens), with the library's argument messages naming `options.<key>`.
import type { FastifyServerOptions } from 'fastify';
import { CPU_MATMULS, DEVICES, MAX_THREADS, PRECISIONS } from '../backends.js';
import { MAX_ENCODE_BATCH, segmenterArg, type CpuMatmul, type Device, type Precision, type Segmenter } from '../segmenter.js';
import { boolean, finiteNumber, integerInRange, knownKeys, nonEmptyString, numberInRange, oneOf, plainObject } from '../validate.js';
import {
  DEFAULT_BATCH_DELAY_MS,
  DEFAULT_BODY_LIMIT,
  DEFAULT_CACHE_MB,
  DEFAULT_DECODE_CONCURRENCY,
  DEFAULT_DECODED_IMAGE_CACHE_MB,
  DEFAULT_HEATMAP_CACHE_MB,
  DEFAULT_MAX_BATCH,
  DEFAULT_MAX_QUEUE,
  DEFAULT_REFERRER_IMAGE_CACHE_MB,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_MAX_MASK_PIXELS,
  DEFAULT_SERVER_PIXEL_LIMIT,
  MAX_TIMER_MS,
} from './defaults.js';

export interface ServerOptions {
  /** Checkpoint directory to load (in the background); or give `segmenter`. */
  model?: string;
  /** An already loaded model (not disposed by close()); or give `model`. */
  segmenter?: Segmenter;
  /**
   * CLIPSeg checkpoint directory of a referrer, loaded next to SAM (readiness waits for both):
   * enables `POST /v1/heatmap` and `text` / `refImage` prompts in `POST /v1/segment`. Loaded with
   * `device`, `cpuMatmul` and `threads`. Without it, those answer 501.
   */
  referrer?: string;
  /** With `model`: backend, encoder precision and native threads (see LoadOptions). */
  device?: Device;
  precision?: Precision;
  /**
   * With `model` / `referrer`: the image encoders' matrix products (linear layers, attention) on
   * CPU (see LoadOptions).
   */
  cpuMatmul?: CpuMatmul;
  threads?: number;
  /** Host and port for listen(). Defaults: 127.0.0.1, 8080 (0: any free port). */
  host?: string;
  port?: number;
  /** Byte budget of the embedding cache (each embedding counted as its `byteLength`). Default: 1 GiB. */
  cacheBytes?: number;
  /**
   * Byte budget of the heat-map cache (with `referrer`): heat maps by image and query, reused by
   * repeated /v1/heatmap and referring /v1/segment requests; 0 caches none. Default: 64 MiB.
   */
  heatmapCacheBytes?: number;
  /**
   * Byte budget of the referrer's encoded images (with `referrer`): the CLIPSeg vision tower's
   * activations by image, so that a new query on a known image runs only the decoder; 0 keeps
   * none. Default: 256 MiB (~60 images at clipseg-rd64-refined's ~4.3 MiB).
   */
  referrerImageCacheBytes?: number;
  /**
   * Byte budget of decoded images (with `referrer`): an image's pixels by image, so that labelling
   * the masks of an image the server has seen (`vocabulary`), or encoding it for the referrer,
   * does not decode it again; 0 keeps none. Default: 128 MiB (3 bytes a pixel: ~21 images at
   * 1080p, 3 at 4000 × 3000).
   */
  decodedImageCacheBytes?: number;
  /** Requests allowed to wait in each queue (encoder, decoder); beyond it, 429. Default: 64. */
  maxQueue?: number;
  /** Encoder requests per batch, each batch one native encoder pass (at most 64). Default: 8. */
  maxBatch?: number;
  /** How long an idle encoder waits for a batch to fill, ms. Default: 2. */
  batchDelayMs?: number;
  /** Decoder calls in flight (the model decodes one at a time; 2 overlaps JS work). Default: 2. */
  decodeConcurrency?: number;
  /**
   * Largest request body, bytes (413 beyond; base64 images count 4/3; a multipart body may add
   * 64 KiB of part headers and fields to its image file). Default: 32 MiB.
   */
  bodyLimit?: number;
  /** Largest image, width × height pixels (413 beyond); 0: none. Default: 8192². */
  limitInputPixels?: number;
  /**
   * Most mask pixels one /v1/segment request may ask for: boxes (at least 1) × masks per box (3
   * with multimask) × width × height, 413 beyond. The decode holds them all at once (~1 byte each,
   * more while it finds their run lengths). Default: 2^28 (e.g. 10 boxes × 3 masks at 4K).
   */
  maxMaskPixels?: number;
  /** Deadline of a request, ms: its queued work is cancelled and it gets 503. Default: 60000. */
  requestTimeoutMs?: number;
  /** Fastify's logger option (pino): false (default), true, or pino options. */
  logger?: FastifyServerOptions['logger'];
  /** Node process metrics (memory, CPU, event loop) in /metrics. Default: true. */
  processMetrics?: boolean;
}

/** The numeric options, checked, with the defaults filled in. */
export interface ServerSettings {
  cacheBytes: number;
  heatmapCacheBytes: number;
  referrerImageCacheBytes: number;
  decodedImageCacheBytes: number;
  maxQueue: number;
  maxBatch: number;
  batchDelayMs: number;
  decodeConcurrency: number;
  bodyLimit: number;
  limitInputPixels: number;
  maxMaskPixels: number;
  requestTimeoutMs: number;
}

const KEYS: ReadonlySet<string> = new Set<keyof ServerOptions>([
  'model',
  'segmenter',
  'referrer',
  'device',
  'precision',
  'cpuMatmul',
  'threads',
  'host',
  'port',
  'cacheBytes',
  'heatmapCacheBytes',
  'referrerImageCacheBytes',
  'decodedImageCacheBytes',
  'maxQueue',
  'maxBatch',
  'batchDelayMs',
  'decodeConcurrency',
  'bodyLimit',
  'limitInputPixels',
  'maxMaskPixels',
  'requestTimeoutMs',
  'logger',
  'processMetrics',
]);

const MIB = 1024 * 1024;

/**
 * Checks every option createServer takes (an unknown key too: a misspelt option would otherwise
 * be a default silently) and returns the numeric settings.
 * @throws TypeError / RangeError naming `options.<key>`.
 */
export function serverSettings(options: unknown): ServerSettings {
  const opts = plainObject(options, 'options', 'an object {model | segmenter, ...}');
  knownKeys(opts, KEYS, 'createServer');
  if ((opts.model === undefined) === (opts.segmenter === undefined)) {
    throw new TypeError('Expected exactly one of model (a checkpoint directory) or segmenter for options');
  }
  if (opts.model !== undefined) nonEmptyString(opts.model, 'options.model');
  if (opts.segmenter !== undefined) segmenterArg(opts.segmenter, 'options.segmenter');
  if (opts.referrer !== undefined) nonEmptyString(opts.referrer, 'options.referrer');
  if (opts.device !== undefined) oneOf(opts.device, 'options.device', DEVICES);
  if (opts.precision !== undefined) oneOf(opts.precision, 'options.precision', PRECISIONS);
  if (opts.cpuMatmul !== undefined) oneOf(opts.cpuMatmul, 'options.cpuMatmul', CPU_MATMULS);
  if (opts.threads !== undefined) integerInRange(opts.threads, 'options.threads', 1, MAX_THREADS);
  if (opts.host !== undefined) nonEmptyString(opts.host, 'options.host');
  if (opts.port !== undefined) integerInRange(opts.port, 'options.port', 0, 65535);
  if (opts.processMetrics !== undefined) boolean(opts.processMetrics, 'options.processMetrics');
  /** A finite number ≥ 0 (bytes, ms) up to `max`, or the default. */
  const amount = (key: keyof ServerSettings, fallback: number, max = Infinity): number =>
    opts[key] === undefined ? fallback : finiteNumber(numberInRange(opts[key], `options.${key}`, 0, max), `options.${key}`);
  /** An integer from `min` to `max`, or the default. */
  const count = (key: keyof ServerSettings, fallback: number, min: number, max = Infinity): number =>
    opts[key] === undefined ? fallback : integerInRange(opts[key], `options.${key}`, min, max);
  return {
    cacheBytes: amount('cacheBytes', DEFAULT_CACHE_MB * MIB),
    heatmapCacheBytes: amount('heatmapCacheBytes', DEFAULT_HEATMAP_CACHE_MB * MIB),
    referrerImageCacheBytes: amount('referrerImageCacheBytes', DEFAULT_REFERRER_IMAGE_CACHE_MB * MIB),
    decodedImageCacheBytes: amount('decodedImageCacheBytes', DEFAULT_DECODED_IMAGE_CACHE_MB * MIB),
    maxQueue: count('maxQueue', DEFAULT_MAX_QUEUE, 1),
    maxBatch: count('maxBatch', DEFAULT_MAX_BATCH, 1, MAX_ENCODE_BATCH),
    // (setTimeout takes at most 2^31 − 1 ms; a longer delay fires at once)
    batchDelayMs: amount('batchDelayMs', DEFAULT_BATCH_DELAY_MS, MAX_TIMER_MS),
    decodeConcurrency: count('decodeConcurrency', DEFAULT_DECODE_CONCURRENCY, 1),
    bodyLimit: count('bodyLimit', DEFAULT_BODY_LIMIT, 1),
    limitInputPixels: count('limitInputPixels', DEFAULT_SERVER_PIXEL_LIMIT, 0),
    maxMaskPixels: count('maxMaskPixels', DEFAULT_MAX_MASK_PIXELS, 1),
    requestTimeoutMs: count('requestTimeoutMs', DEFAULT_REQUEST_TIMEOUT_MS, 1, MAX_TIMER_MS),
  };
}
