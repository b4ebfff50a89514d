// createServer(): the HTTP segmentation server on Fastify. Loads the model in the background
// (/readyz answers 503 until it is loaded), keeps embeddings in a byte-bounded LRU cache, runs
// encodes and decodes through separate bounded queues, cancels the work of requests whose client
// disconnects or whose deadline passes, and shuts down gracefully (close(): stop accepting, finish
// in-flight requests, free the model).
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { ImageEmbedding } from '../embedding.js';
import { checkPixelLimit, decodeForEncoder } from '../image.js';
import { checkResizable } from '../mask-prompt.js';
import { Referrer, type ReferrerImage } from '../referrer.js';
import { Segmenter } from '../segmenter.js';
import type { DecodedImage } from '../types.js';
import { EmbeddingCache } from './cache.js';
import { ClientGone, errorBody, HttpError, RequestTimeout, toHttpError } from './errors.js';
import { HeatmapCache } from './heatmap-cache.js';
import { cachedPixels, type CachedPixels, type EncodeInput } from './inputs.js';
import { PinnedCache } from './pinned-cache.js';
import { ServerMetrics } from './metrics.js';
import { Batcher, BoundedQueue } from './queues.js';
import { DEFAULT_HOST, DEFAULT_PORT } from './defaults.js';
import { serverSettings, type ServerOptions } from './options.js';
import { registerRoutes } from './routes.js';

export type { ServerOptions } from './options.js';

export interface OmnisegServer {
  readonly app: FastifyInstance;
  readonly metrics: ServerMetrics;
  readonly cache: EmbeddingCache;
  /** The referrer's heat maps (empty without a referrer). */
  readonly heatmapCache: HeatmapCache;
  /** Settles when the models (SAM, and the referrer when given) are loaded (rejects when loading fails). */
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
// (running out of memory is one request's failure, the host's or the GPU's: the next may fit)
const FATAL = /CUDA|cuBLAS|device lost|(Segmenter|Referrer) has been disposed/i;
const fatal = (message: string): boolean => FATAL.test(message) && !/out of memory/i.test(message);

/** Builds the server (routes registered, model loading in the background); call listen() to serve. */
export async function createServer(options: ServerOptions): Promise<OmnisegServer> {
  const {
    cacheBytes,
    heatmapCacheBytes,
    referrerImageCacheBytes,
    decodedImageCacheBytes,
    maxQueue,
    maxBatch,
    batchDelayMs,
    decodeConcurrency,
    bodyLimit,
    limitInputPixels,
    maxMaskPixels,
    requestTimeoutMs,
  } = serverSettings(options);

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
  const heatmapCache = new HeatmapCache(heatmapCacheBytes, { onEvict: () => metrics?.heatmapCacheEvictions.inc() });
  const referrerImages = new PinnedCache<ReferrerImage>(referrerImageCacheBytes, {
    onHit: () => metrics?.referrerImageHits.inc(),
    onMiss: () => metrics?.referrerImageMisses.inc(),
    onEvict: () => metrics?.referrerImageEvictions.inc(),
  });
  const decodedImages = new PinnedCache<CachedPixels>(decodedImageCacheBytes, {
    onHit: () => metrics?.decodedImageHits.inc(),
    onMiss: () => metrics?.decodedImageMisses.inc(),
    onEvict: () => metrics?.decodedImageEvictions.inc(),
  });
  // The model's own pixel limit (a given Segmenter's may be tighter) and whether the image can be
  // resized into the model input are checked while decoding, so that an image the model would
  // refuse fails alone and not its whole batch.
  const pixelLimit = (): number => {
    const own = segmenter?.limitInputPixels ?? 0;
    return own === 0 || limitInputPixels === 0 ? Math.max(own, limitInputPixels) : Math.min(own, limitInputPixels);
  };
  // A batch of requests is one Segmenter.encodeBatch call: one native encoder pass.
  const encoder = new Batcher<EncodeInput, DecodedImage, ImageEmbedding>('encoder', {
    maxBatch,
    maxDelayMs: batchDelayMs,
    maxWaiting: maxQueue,
    prepare: async ({ bytes, id }) => {
      // With a referrer, whose work on the image (labels, heat maps) needs its pixels too, they
      // come from the decoded-image cache or are kept there: one decode for both, held to the
      // server's limit as the referrer's are (a model's own limit may be tighter: checked after).
      // (Pixels are never written, so the encode may read them after the cache lets them go.)
      const image =
        options.referrer === undefined
          ? await decodeForEncoder(bytes, { limitInputPixels: pixelLimit() })
          : await decodedImages.with(
              id,
              async () => cachedPixels(await decodeForEncoder(bytes, { limitInputPixels })),
              async (cached) => cached.image,
            );
      checkPixelLimit(image.width * image.height, pixelLimit(), 'image', `${image.width}x${image.height}`);
      checkResizable(image.width, image.height, live().config.longestEdge, 'image');
      return image;
    },
    runMany: async (images, signal) => {
      const pixels = images.map((image) => ({ data: image.data, width: image.width, height: image.height, channels: 3 }) as const);
      const embeddings = await backendCall(() => live().encodeBatch(pixels, { signal }));
      metrics?.encodes.inc(embeddings.length);
      // Each embedding reports the batch's time: every image is observed with its share of it.
      const perImageSeconds = (embeddings[0]?.encodeMs ?? 0) / embeddings.length / 1000;
      for (let i = 0; i < embeddings.length; i++) metrics?.encodeSeconds.observe(perImageSeconds);
      return embeddings;
    },
    discard: (embedding) => embedding.dispose(),
    onBatch: (size) => metrics?.batchSize.observe(size),
  });
  const decoder = new BoundedQueue('decoder', { concurrency: decodeConcurrency, maxWaiting: maxQueue });
  // Heat maps: one CLIPSeg forward pass at a time (each uses every native thread).
  const heatmaps = new BoundedQueue('referrer', { concurrency: 1, maxWaiting: maxQueue });
  let referrer: Referrer | undefined;
  metrics = new ServerMetrics(
    {
      queues: options.referrer === undefined ? { encoder, decoder } : { encoder, decoder, referrer: heatmaps },
      cache,
      heatmapCache,
      referrerImages,
      decodedImages,
      ready: () => status.state === 'ready',
    },
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
        if (fatal(e.message) && status.state === 'ready') status = { state: 'failed', message: e.message };
      }
      throw error;
    }
  }

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // A connection silent for the whole request deadline (an upload that stalls) is closed, so
    // that it holds no memory and no close() waits for it; the deadline itself only covers work
    // that has started.
    connectionTimeout: requestTimeoutMs,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  });

  // Requests not yet answered, and close()'s wait for them.
  let inFlight = 0;
  const drainWaiters: Array<() => void> = [];
  const drained = (): Promise<void> =>
    inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => drainWaiters.push(resolve));

  // Per-request cancellation: the client going away, or the deadline passing.
  const controllers = new WeakMap<
    FastifyRequest,
    { controller: AbortController; timer: NodeJS.Timeout; start: number; counted?: boolean }
  >();
  const count = (request: FastifyRequest, entry: { start: number; counted?: boolean }, status: number): void => {
    if (entry.counted === true) return;
    entry.counted = true;
    const route = routeLabel(request);
    serverMetrics.requests.inc({ route, method: request.method, status: String(status) });
    serverMetrics.latency.observe({ route, method: request.method }, (performance.now() - entry.start) / 1000);
  };
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
    const entry = { controller, timer, start: performance.now() };
    controllers.set(request, entry);
    inFlight++;
    reply.raw.once('close', () => {
      clearTimeout(timer);
      if (!reply.raw.writableFinished) {
        controller.abort(new ClientGone('The client closed the connection'));
        // (no response finishes, so onResponse never runs for it: counted and logged here)
        count(request, entry, 499);
        request.log.info({ statusCode: 499, responseTime: performance.now() - entry.start }, 'client gone before the response');
      }
      inFlight--;
      if (inFlight === 0) for (const resolve of drainWaiters.splice(0)) resolve();
    });
  });
  app.addHook('onResponse', async (request, reply) => {
    const entry = controllers.get(request);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    count(request, entry, reply.statusCode);
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
      // (from the signal's reason: request.raw.destroyed is true as soon as the body has been read)
      const reason = controllers.get(request)?.controller.signal.reason instanceof ClientGone ? 'client_gone' : 'timeout';
      serverMetrics.cancelled.inc({ route: routeLabel(request), reason });
      http =
        reason === 'timeout'
          ? new HttpError(503, 'timeout', `The request was not done within ${requestTimeoutMs} ms`, { 'retry-after': '1' })
          : new HttpError(499, 'client_gone', 'The client closed the connection');
    } else {
      http = toHttpError(error);
    }
    if (http.statusCode === 429) {
      serverMetrics.rejected.inc({ queue: /encoder|decoder|referrer/.exec(http.message)?.[0] ?? 'decoder' });
    }
    if (http.statusCode >= 500 && http.statusCode !== 503 && http.statusCode !== 501) request.log.error({ err: error }, 'request failed');
    return reply.code(http.statusCode).headers(http.headers).send(errorBody(http.code, http.message));
  });
  app.setNotFoundHandler(async (request, reply) =>
    reply.code(404).send(errorBody('not_found', `No route ${request.method} ${request.url.split('?')[0]}`)),
  );

  // (parameters allowed, as the routes allow them: `image/png; name=x`)
  app.addContentTypeParser(/^image\/[\w.+-]+\s*(;.*)?$/i, { parseAs: 'buffer', bodyLimit }, (_request, body, done) =>
    done(null, body),
  );
  // files: 2, so that a second file reaches imageBytes, which refuses it by name (400; the
  // parser's own limit would answer 413).
  await app.register(multipart, { limits: { fileSize: bodyLimit, files: 2, fields: 8, parts: 10 } });

  registerRoutes(app, {
    segmenter: live,
    cache,
    heatmapCache,
    referrerImages,
    decodedImages,
    encoder,
    decoder,
    metrics: serverMetrics,
    referrer: () => {
      if (options.referrer === undefined) return undefined;
      if (referrer === undefined) throw new HttpError(503, 'not_ready', 'The referrer model is not loaded', { 'retry-after': '1' });
      return referrer;
    },
    heatmaps,
    signalOf,
    limitInputPixels,
    maxMaskPixels,
    bodyLimit,
    backend: backendCall,
    readiness: () => {
      switch (status.state) {
        case 'ready':
          return {
            ready: true,
            device: segmenter?.device ?? 'cpu',
            precision: segmenter?.precision ?? 'fp32',
            cpuMatmul: segmenter?.cpuMatmul ?? 'fp32',
          };
        case 'loading':
          return { ready: false, code: 'not_ready', message: 'The model is still loading' };
        case 'failed':
          return { ready: false, code: 'backend_failed', message: `The model backend failed: ${status.message}` };
        case 'closing':
          return { ready: false, code: 'shutting_down', message: 'The server is shutting down' };
      }
    },
  });

  const useSegmenter = (loaded: Segmenter): void => {
    segmenter = loaded;
    serverMetrics.backend.set(
      { device: loaded.device, precision: loaded.precision, cpu_matmul: loaded.cpuMatmul, threads: String(loaded.threads) },
      1,
    );
  };
  const loadFailed = (error: unknown): never => {
    if (status.state === 'loading') status = { state: 'failed', message: (error as Error).message };
    app.log.error({ err: error }, 'model load failed');
    throw error;
  };
  const threadsOption = options.threads === undefined ? {} : { threads: options.threads };
  const backendOptions = {
    ...(options.device === undefined ? {} : { device: options.device }),
    ...(options.cpuMatmul === undefined ? {} : { cpuMatmul: options.cpuMatmul }),
  };
  const loads: Array<Promise<void>> = [];
  if (options.segmenter !== undefined) {
    useSegmenter(options.segmenter);
  } else {
    const model = options.model as string;
    loads.push(
      Segmenter.load({
        model,
        ...backendOptions,
        ...(options.precision === undefined ? {} : { precision: options.precision }),
        ...threadsOption,
        limitInputPixels,
      }).then((s) => {
        if (status.state === 'closing') s.dispose();
        else useSegmenter(s);
      }),
    );
  }
  if (options.referrer !== undefined) {
    loads.push(
      Referrer.load({ model: options.referrer, ...backendOptions, ...threadsOption, limitInputPixels }).then((r) => {
        if (status.state === 'closing') r.dispose();
        else referrer = r;
      }),
    );
  }
  let loaded: Promise<void>;
  if (loads.length === 0) {
    status = { state: 'ready' };
    loaded = Promise.resolve();
  } else {
    // Ready once every model is loaded; the first failure makes the server unready for good.
    loaded = Promise.all(loads).then(() => {
      if (status.state === 'loading') status = { state: 'ready' };
    }, loadFailed);
    loaded.catch(() => {}); // reported through /readyz and the log; awaited by whoever wants it
  }

  app.addHook('onClose', async () => {
    cache.clear();
    heatmapCache.clear();
    referrerImages.clear();
    decodedImages.clear();
    if (ownsSegmenter) segmenter?.dispose();
    // Loaded here in any case; a load still in progress disposes its model when it ends.
    referrer?.dispose();
  });

  let closing: Promise<void> | undefined;
  return {
    app,
    metrics: serverMetrics,
    cache,
    heatmapCache,
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
