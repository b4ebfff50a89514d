// createServer(): the HTTP segmentation server on Fastify. Loads the model in the background
// (/readyz answers 503 until it is loaded), keeps embeddings in a byte-bounded LRU cache, runs
// encodes and decodes through separate bounded queues, cancels the work of requests whose client
// disconnects or whose deadline passes, and shuts down gracefully (close(): stop accepting, finish
// in-flight requests, free the model).
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { ImageEmbedding } from '../embedding.js';
import { decodeImage } from '../image.js';
import { Segmenter, type Device, type Precision } from '../segmenter.js';
import type { DecodedImage } from '../types.js';
import { EmbeddingCache } from './cache.js';
import { ClientGone, errorBody, HttpError, RequestTimeout, toHttpError } from './errors.js';
import { ServerMetrics } from './metrics.js';
import { Batcher, BoundedQueue } from './queues.js';
import {
  DEFAULT_BATCH_DELAY_MS,
  DEFAULT_BODY_LIMIT,
  DEFAULT_CACHE_MB,
  DEFAULT_DECODE_CONCURRENCY,
  DEFAULT_HOST,
  DEFAULT_MAX_BATCH,
  DEFAULT_MAX_QUEUE,
  DEFAULT_PORT,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_SERVER_PIXEL_LIMIT,
} from './defaults.js';
import { registerRoutes } from './routes.js';


export interface ServerOptions {
  /** Checkpoint directory to load (in the background); or give `segmenter`. */
  model?: string;
  /** An already loaded model (not disposed by close()); or give `model`. */
  segmenter?: Segmenter;
  /** With `model`: backend, encoder precision and native threads (see LoadOptions). */
  device?: Device;
  precision?: Precision;
  threads?: number;
  /** Host and port for listen(). Defaults: 127.0.0.1, 8080 (0: any free port). */
  host?: string;
  port?: number;
  /** Byte budget of the embedding cache. Default: 1 GiB. */
  cacheBytes?: number;
  /** Requests allowed to wait in each queue (encoder, decoder); beyond it, 429. Default: 64. */
  maxQueue?: number;
  /** Encoder requests per batch. Default: 8. */
  maxBatch?: number;
  /** How long an idle encoder waits for a batch to fill, ms. Default: 2. */
  batchDelayMs?: number;
  /** Decoder calls in flight (the model decodes one at a time; 2 overlaps JS work). Default: 2. */
  decodeConcurrency?: number;
  /** Largest request body, bytes (413 beyond; base64 images count 4/3). Default: 32 MiB. */
  bodyLimit?: number;
  /** Largest image, width × height pixels (413 beyond); 0: none. Default: 8192². */
  limitInputPixels?: number;
  /** Deadline of a request, ms: its queued work is cancelled and it gets 503. Default: 60000. */
  requestTimeoutMs?: number;
  /** Fastify's logger option (pino): false (default), true, or pino options. */
  logger?: FastifyServerOptions['logger'];
  /** Node process metrics (memory, CPU, event loop) in /metrics. Default: true. */
  processMetrics?: boolean;
}

export interface OmnisegServer {
  readonly app: FastifyInstance;
  readonly metrics: ServerMetrics;
  readonly cache: EmbeddingCache;
  /** Settles when the model is loaded (rejects when loading fails). */
  readonly loaded: Promise<void>;
  /** Starts listening; resolves with the address, e.g. `http://127.0.0.1:8080`. */
  listen(options?: { host?: string; port?: number }): Promise<string>;
  /**
   * Graceful shutdown: new requests are refused (503) and new connections too, requests in
   * flight finish, then the cached embeddings and the model (when loaded here) are freed.
   */
  close(): Promise<void>;
}

type Status = { state: 'loading' } | { state: 'ready' } | { state: 'failed'; message: string } | { state: 'closing' };

/** A backend failure that makes the server unready (the model's device is unusable). */
const FATAL = /CUDA|cuBLAS|out of memory|device lost|Segmenter has been disposed/i;

function positive(value: number | undefined, name: string, fallback: number, integer = true): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0) || (integer && !Number.isInteger(value))) {
    throw new RangeError(`Expected a positive ${integer ? 'integer' : 'number'} for ${name} but received ${String(value)}`);
  }
  return value;
}

function nonNegative(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) {
    throw new RangeError(`Expected a number >= 0 for ${name} but received ${String(value)}`);
  }
  return value;
}

/** Builds the server (routes registered, model loading in the background); call listen() to serve. */
export async function createServer(options: ServerOptions): Promise<OmnisegServer> {
  if ((options.model === undefined) === (options.segmenter === undefined)) {
    throw new TypeError('Expected exactly one of model (a checkpoint directory) or segmenter for options');
  }
  const cacheBytes = nonNegative(options.cacheBytes, 'cacheBytes', DEFAULT_CACHE_MB * 1024 * 1024);
  const maxQueue = positive(options.maxQueue, 'maxQueue', DEFAULT_MAX_QUEUE);
  const maxBatch = positive(options.maxBatch, 'maxBatch', DEFAULT_MAX_BATCH);
  const batchDelayMs = nonNegative(options.batchDelayMs, 'batchDelayMs', DEFAULT_BATCH_DELAY_MS);
  const decodeConcurrency = positive(options.decodeConcurrency, 'decodeConcurrency', DEFAULT_DECODE_CONCURRENCY);
  const bodyLimit = positive(options.bodyLimit, 'bodyLimit', DEFAULT_BODY_LIMIT);
  const limitInputPixels = nonNegative(options.limitInputPixels, 'limitInputPixels', DEFAULT_SERVER_PIXEL_LIMIT);
  const requestTimeoutMs = positive(options.requestTimeoutMs, 'requestTimeoutMs', DEFAULT_REQUEST_TIMEOUT_MS);

  let status: Status = { state: 'loading' };
  let segmenter: Segmenter | undefined = options.segmenter;
  const ownsSegmenter = options.segmenter === undefined;

  const live = (): Segmenter => {
    // Not the status: requests in flight when close() is called still finish.
    if (segmenter === undefined) {
      throw new HttpError(503, 'not_ready', 'The model is not loaded', { 'retry-after': '1' });
    }
    return segmenter;
  };

  let metrics: ServerMetrics | undefined;
  const cache = new EmbeddingCache(cacheBytes, { onEvict: () => metrics?.cacheEvictions.inc() });
  const encoder = new Batcher<Uint8Array, DecodedImage, ImageEmbedding>('encoder', {
    maxBatch,
    maxDelayMs: batchDelayMs,
    maxWaiting: maxQueue,
    prepare: (bytes) => decodeImage(bytes, { limitInputPixels }),
    run: async (image, signal) => {
      const pixels = { data: image.data, width: image.width, height: image.height, channels: 3 } as const;
      const embedding = await backendCall(() => live().encode(pixels, signal === undefined ? {} : { signal }));
      metrics?.encodes.inc();
      metrics?.encodeSeconds.observe(embedding.encodeMs / 1000);
      return embedding;
    },
    onBatch: (size) => metrics?.batchSize.observe(size),
  });
  const decoder = new BoundedQueue('decoder', { concurrency: decodeConcurrency, maxWaiting: maxQueue });
  metrics = new ServerMetrics(
    { queues: { encoder, decoder }, cache, ready: () => status.state === 'ready' },
    { processMetrics: options.processMetrics ?? true },
  );
  const serverMetrics = metrics;

  /** Marks the server unready when a model call fails in a way that will not get better. */
  async function backendCall<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      const e = error as Error;
      const requestFault = e instanceof TypeError || e instanceof RangeError || e.name === 'AbortError' || e instanceof HttpError;
      if (!requestFault && !/^Cannot decode image/.test(e.message)) {
        serverMetrics.backendErrors.inc();
        if (FATAL.test(e.message) && status.state === 'ready') status = { state: 'failed', message: e.message };
      }
      throw error;
    }
  }

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  });

  // Requests not yet answered, and close()'s wait for them.
  let inFlight = 0;
  const drainWaiters: Array<() => void> = [];
  const drained = (): Promise<void> =>
    inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => drainWaiters.push(resolve));

  // Per-request cancellation: the client going away, or the deadline passing.
  const controllers = new WeakMap<FastifyRequest, { controller: AbortController; timer: NodeJS.Timeout; start: number }>();
  const signalOf = (request: FastifyRequest): AbortSignal => {
    const entry = controllers.get(request);
    if (entry === undefined) throw new Error('No signal for this request');
    return entry.controller.signal;
  };
  app.addHook('onRequest', async (request, reply) => {
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new RequestTimeout(`The request took more than ${requestTimeoutMs} ms`)),
      requestTimeoutMs,
    );
    timer.unref();
    controllers.set(request, { controller, timer, start: performance.now() });
    inFlight++;
    reply.raw.once('close', () => {
      clearTimeout(timer);
      if (!reply.raw.writableFinished) controller.abort(new ClientGone('The client closed the connection'));
      inFlight--;
      if (inFlight === 0) for (const resolve of drainWaiters.splice(0)) resolve();
    });
  });
  app.addHook('onResponse', async (request, reply) => {
    const entry = controllers.get(request);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    const route = routeLabel(request);
    serverMetrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    serverMetrics.latency.observe({ route, method: request.method }, (performance.now() - entry.start) / 1000);
  });
  // During shutdown, responses close their connection, so that keep-alive clients do not hold
  // close() open.
  app.addHook('onSend', async (_request, reply) => {
    if (status.state === 'closing') reply.header('connection', 'close');
  });
  // Work is accepted only while ready; probes and metrics always answer.
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/v1/')) return;
    if (status.state === 'ready') return;
    if (status.state === 'failed') throw new HttpError(503, 'backend_failed', `The model backend failed: ${status.message}`);
    if (status.state === 'closing') throw new HttpError(503, 'shutting_down', 'The server is shutting down');
    throw new HttpError(503, 'not_ready', 'The model is still loading', { 'retry-after': '1' });
  });

  app.setErrorHandler(async (error, request, reply) => {
    let http: HttpError;
    if ((error as Error).name === 'AbortError') {
      const reason = request.raw.destroyed || controllers.get(request)?.controller.signal.reason instanceof ClientGone ? 'client_gone' : 'timeout';
      serverMetrics.cancelled.inc({ route: routeLabel(request), reason });
      http =
        reason === 'timeout'
          ? new HttpError(503, 'timeout', `The request was not done within ${requestTimeoutMs} ms`, { 'retry-after': '1' })
          : new HttpError(499, 'client_gone', 'The client closed the connection');
    } else {
      http = toHttpError(error);
    }
    if (http.statusCode === 429) serverMetrics.rejected.inc({ queue: /encoder/.test(http.message) ? 'encoder' : 'decoder' });
    if (http.statusCode >= 500 && http.statusCode !== 503 && http.statusCode !== 501) request.log.error({ err: error }, 'request failed');
    return reply.code(http.statusCode).headers(http.headers).send(errorBody(http.code, http.message));
  });
  app.setNotFoundHandler(async (request, reply) =>
    reply.code(404).send(errorBody('not_found', `No route ${request.method} ${request.url.split('?')[0]}`)),
  );

  app.addContentTypeParser(/^image\/[\w.+-]+$/i, { parseAs: 'buffer', bodyLimit }, (_request, body, done) => done(null, body));
  await app.register(multipart, { limits: { fileSize: bodyLimit, files: 1, fields: 8, parts: 9 } });

  registerRoutes(app, {
    segmenter: live,
    cache,
    encoder,
    decoder,
    metrics: serverMetrics,
    signalOf,
    limitInputPixels,
    backend: backendCall,
    readiness: () => {
      switch (status.state) {
        case 'ready':
          return { ready: true, device: segmenter?.device ?? 'cpu', precision: segmenter?.precision ?? 'fp32' };
        case 'loading':
          return { ready: false, code: 'not_ready', message: 'The model is still loading' };
        case 'failed':
          return { ready: false, code: 'backend_failed', message: `The model backend failed: ${status.message}` };
        case 'closing':
          return { ready: false, code: 'shutting_down', message: 'The server is shutting down' };
      }
    },
  });

  const becomeReady = (loaded: Segmenter): void => {
    segmenter = loaded;
    serverMetrics.backend.set({ device: loaded.device, precision: loaded.precision, threads: String(loaded.threads) }, 1);
    if (status.state === 'loading') status = { state: 'ready' };
  };
  let loaded: Promise<void>;
  if (options.segmenter !== undefined) {
    becomeReady(options.segmenter);
    loaded = Promise.resolve();
  } else {
    const model = options.model as string;
    loaded = Segmenter.load({
      model,
      ...(options.device === undefined ? {} : { device: options.device }),
      ...(options.precision === undefined ? {} : { precision: options.precision }),
      ...(options.threads === undefined ? {} : { threads: options.threads }),
      limitInputPixels,
    }).then(
      (s) => {
        if (status.state === 'closing') s.dispose();
        else becomeReady(s);
      },
      (error: unknown) => {
        status = { state: 'failed', message: (error as Error).message };
        app.log.error({ err: error }, 'model load failed');
        throw error;
      },
    );
    loaded.catch(() => {}); // reported through /readyz and the log; awaited by whoever wants it
  }

  app.addHook('onClose', async () => {
    cache.clear();
    if (ownsSegmenter) segmenter?.dispose();
  });

  let closing: Promise<void> | undefined;
  return {
    app,
    metrics: serverMetrics,
    cache,
    loaded,
    async listen(listenOptions = {}) {
      return app.listen({
        host: listenOptions.host ?? options.host ?? DEFAULT_HOST,
        port: listenOptions.port ?? options.port ?? DEFAULT_PORT,
      });
    },
    close() {
      if (closing === undefined) {
        status = { state: 'closing' };
        closing = app.close();
        // Once the requests in flight are answered, connections left open (keep-alive ones that
        // became idle later, or opened without a request) would hold close() open: end them.
        void drained().then(() => app.server.closeAllConnections());
      }
      return closing;
    },
  };
}

/** The route pattern for metrics labels ('unmatched' for 404s, so that labels stay bounded). */
function routeLabel(request: FastifyRequest): string {
  return request.routeOptions.url ?? 'unmatched';
}
