// The server's routes: probes, metrics, POST /v1/embeddings and plain (SAM prompt) POST
// /v1/segment; the referring routes (POST /v1/heatmap, /v1/segment with a referring prompt) are in
// refer-routes.ts, the request shapes in schemas.ts, the shared request plumbing in inputs.ts.
import { endianness } from 'node:os';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ImageEmbedding } from '../embedding.js';
import { resizedSize } from '../mask-prompt.js';
import { checkPrompt, type Prompt } from '../prompt.js';
import type { Referrer, ReferrerImage } from '../referrer.js';
import type { Segmenter } from '../segmenter.js';
import type { Point } from '../types.js';
import type { EmbeddingCache, Lease } from './cache.js';
import { errorBody, HttpError } from './errors.js';
import { jsonBody } from './json.js';
import type { HeatmapCache } from './heatmap-cache.js';
import type { PinnedCache } from './pinned-cache.js';
import { cachedEmbedding, contentTypes, decodeBase64, decodeMaskImage, embed, masksJson, needReferrer, probe, type CachedPixels, type EncodeInput } from './inputs.js';
import type { ServerMetrics } from './metrics.js';
import type { Batcher, BoundedQueue } from './queues.js';
import { isReferring, labelJson, labelMasks, labelRequest, referringSegment, registerReferRoutes } from './refer-routes.js';
import { segmentSchema, type SegmentBody } from './schemas.js';

export type { HeatmapBody, MaskFormat, SegmentBody } from './schemas.js';

/** What the routes need from the server. */
export interface RouteContext {
  /** The loaded model; routes run only once it is (see the readiness hook in app.ts). */
  segmenter(): Segmenter;
  /** The referrer (CLIPSeg); undefined when the server has none (its routes answer 501). */
  referrer(): Referrer | undefined;
  /** The referrer's queue (heat maps and labels, one at a time). */
  heatmaps: BoundedQueue;
  cache: EmbeddingCache;
  /** Heat maps by imageId + query digest (see refer-routes.ts). */
  heatmapCache: HeatmapCache;
  /** The referrer's vision features by imageId (see pinned-cache.ts). */
  referrerImages: PinnedCache<ReferrerImage>;
  /** Decoded images by imageId, for the referrer's work on them (see inputs.ts withPixels). */
  decodedImages: PinnedCache<CachedPixels>;
  encoder: Batcher<EncodeInput, unknown, ImageEmbedding>;
  decoder: BoundedQueue;
  metrics: ServerMetrics;
  /** The request's cancellation: client gone or deadline passed. */
  signalOf(request: FastifyRequest): AbortSignal;
  /** Pixel limit (width × height) of images; 0: none. */
  limitInputPixels: number;
  /** Most mask pixels one segment request may ask for (boxes × masks per box × width × height). */
  maxMaskPixels: number;
  /** Most bytes of a request body (an image body; a multipart image file, see MULTIPART_OVERHEAD). */
  bodyLimit: number;
  /** Runs a model call, noting backend failures (a fatal one makes the server unready). */
  backend<T>(call: () => Promise<T>): Promise<T>;
  /** Readiness as /readyz reports it. */
  readiness():
    | { ready: true; device: string; precision: string; cpuMatmul: string }
    | { ready: false; code: string; message: string };
}

export function registerRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const state = ctx.readiness();
    if (state.ready) return { status: 'ready', device: state.device, precision: state.precision, cpuMatmul: state.cpuMatmul };
    return reply.code(503).header('retry-after', '1').send(errorBody(state.code, state.message));
  });

  app.get('/metrics', async (_request, reply) => {
    const { contentType, text } = await ctx.metrics.render();
    return reply.type(contentType).send(text);
  });

  app.post(
    '/v1/embeddings',
    { onRequest: contentTypes(/^(image\/[\w.+-]+|multipart\/form-data)\s*(;|$)/i, 'image/* or multipart/form-data') },
    async (request) => {
      const bytes = await imageBytes(request, ctx.bodyLimit);
      const signal = ctx.signalOf(request);
      const { lease } = await embed(ctx, bytes, signal);
      try {
        return { imageId: lease.id, width: lease.embedding.width, height: lease.embedding.height };
      } finally {
        lease.release();
      }
    },
  );

  app.post<{ Body: SegmentBody }>(
    '/v1/segment',
    { onRequest: contentTypes(/^application\/json\s*(;|$)/i, 'application/json'), schema: { body: segmentSchema } },
    async (request, reply) => {
      const body = await segment(ctx, request.body, ctx.signalOf(request));
      // polygons arrive as JSON text (RawJson): the body is spliced around them
      return request.body.format === 'polygons' ? reply.type('application/json; charset=utf-8').send(jsonBody(body)) : body;
    },
  );

  registerReferRoutes(app, ctx);
}

/**
 * The bytes a multipart body may hold besides its image file (which may be up to bodyLimit): part
 * headers, boundaries, the preamble and epilogue, and the small fields a form sends alongside.
 * Each plain field is cut to this size as well (fields are not read).
 */
export const MULTIPART_OVERHEAD = 64 * 1024;

/**
 * The image of POST /v1/embeddings: the raw body, or the multipart file field `image`, the body's
 * only file (other fields are ignored). A multipart body is limited as a whole to bodyLimit +
 * MULTIPART_OVERHEAD (the parser itself limits each file only): 413 before reading when its
 * declared length is over, or as soon as the bytes read are.
 */
async function imageBytes(request: FastifyRequest, bodyLimit: number): Promise<Buffer> {
  let bytes: unknown;
  if (request.isMultipart()) {
    const limit = bodyLimit + MULTIPART_OVERHEAD;
    const tooLarge = () =>
      new HttpError(413, 'body_too_large', `The multipart body is larger than ${limit} bytes`, { connection: 'close' });
    if (Number(request.headers['content-length']) > limit) throw tooLarge();
    let refused: string | undefined;
    const cap = bodyCap(request, limit, tooLarge);
    try {
      const read = (async () => {
        for await (const part of request.parts({ limits: { fieldSize: MULTIPART_OVERHEAD } })) {
          if (part.type !== 'file') continue;
          if (refused !== undefined || part.fieldname !== 'image' || bytes !== undefined) {
            const what = bytes === undefined ? 'the multipart file field image' : 'one multipart file (image)';
            refused ??= `Expected ${what} but received the file field ${JSON.stringify(part.fieldname)}`;
            // The rest of the body is read (and dropped) before the answer: left unread, it stalled
            // the connection, and the client's next request on it waited until the socket timed out.
            part.file.resume();
            continue;
          }
          bytes = await part.toBuffer();
        }
      })();
      read.catch(() => {}); // (once the cap has stopped the reading, the parser ends it with an error)
      await Promise.race([read, cap.exceeded]);
    } catch (error) {
      if (error instanceof HttpError) throw error;
      // (past a refusal, the parser's own limits may stop the reading: the connection then closes)
      if (refused === undefined) throw error;
      throw new HttpError(400, 'invalid_request', refused, { connection: 'close' });
    } finally {
      cap.release();
    }
    if (refused !== undefined) throw new HttpError(400, 'invalid_request', refused);
    if (bytes === undefined) throw new HttpError(400, 'invalid_request', 'Missing the multipart file field image');
  } else {
    bytes = request.body;
  }
  if (!Buffer.isBuffer(bytes) || bytes.length === 0) throw new HttpError(400, 'invalid_image', 'The image is empty');
  return bytes;
}

/**
 * Counts a streamed body's bytes as they are read; past `limit` it stops reading (the answer then
 * closes the connection) and `exceeded` rejects with `error()`.
 */
function bodyCap(request: FastifyRequest, limit: number, error: () => Error): { exceeded: Promise<never>; release(): void } {
  const raw = request.raw;
  let seen = 0;
  let reject: (reason: Error) => void = () => {};
  const exceeded = new Promise<never>((_resolve, rejectWith) => {
    reject = rejectWith;
  });
  exceeded.catch(() => {}); // (raced; unobserved when the body is within the limit)
  const onData = (chunk: Buffer): void => {
    seen += chunk.length;
    if (seen <= limit) return;
    raw.off('data', onData);
    raw.unpipe();
    raw.pause();
    reject(error());
  };
  // (added before the parser pipes the body, in the same tick: no chunk flows before both listen)
  raw.on('data', onData);
  return { exceeded, release: () => raw.off('data', onData) };
}

/** The masks a plain segment asks for per pixel of its image: boxes (at least 1) × masks per box. */
function maskSets(ctx: RouteContext, body: SegmentBody): number {
  const perBox = body.multimask === true ? ctx.segmenter().config.numMultimaskOutputs : 1;
  return Math.max(1, body.boxes?.length ?? 0) * perBox;
}

/**
 * The masks a plain segment asks for, `sets` × width × height, against the server's limit.
 * @throws HttpError 413 masks_too_large
 */
function checkMaskPixels(ctx: RouteContext, sets: number, image: { width: number; height: number }): void {
  const pixels = sets * image.width * image.height;
  if (pixels > ctx.maxMaskPixels) {
    throw new HttpError(
      413,
      'masks_too_large',
      `${sets} masks of ${image.width}x${image.height} are ${pixels} pixels, more than the server's limit of ` +
        `${ctx.maxMaskPixels} (maxMaskPixels): send fewer boxes per request`,
    );
  }
}

/** Fields that only go with a referring prompt (text, refImage or prompts). */
const REFERRING_ONLY = ['refRegion', 'textWeight', 'weights', 'threshold', 'minArea', 'box'] as const;

async function segment(ctx: RouteContext, body: SegmentBody, signal: AbortSignal) {
  const started = performance.now();
  if ((body.imageId === undefined) === (body.image === undefined)) {
    throw new HttpError(400, 'invalid_request', 'Give exactly one of imageId or image');
  }
  if (isReferring(body)) return referringSegment(ctx, body, signal, started);
  for (const field of REFERRING_ONLY) {
    if (body[field] !== undefined) throw new HttpError(400, 'invalid_request', `Field ${field} needs text or refImage`);
  }
  if (body.mask !== undefined && body.maskInput !== undefined) {
    throw new HttpError(400, 'invalid_request', 'Give mask or maskInput, not both');
  }
  const referrer: Referrer | undefined = body.vocabulary === undefined ? undefined : needReferrer(ctx, 'Labels');
  const labelling = labelRequest(body);
  const segmenter = ctx.segmenter();
  const maskInput = body.maskInput === undefined ? undefined : decodeMaskInput(body.maskInput, segmenter.config.lowResSize);
  const mask =
    body.mask === undefined ? undefined : await decodeMaskImage(decodeBase64(body.mask, 'mask'), ctx.limitInputPixels, 'mask');
  let lease: Lease;
  let encodeMs = 0;
  let bytes: Uint8Array | undefined;
  if (body.imageId !== undefined) {
    lease = cachedEmbedding(ctx, body.imageId);
    bytes = lease.source;
  } else {
    bytes = decodeBase64(body.image ?? '', 'image');
    // (before the encode it would waste; only where the image limit does not settle it already,
    // as embed() reads the header too)
    const sets = maskSets(ctx, body);
    if (ctx.limitInputPixels === 0 || sets * ctx.limitInputPixels > ctx.maxMaskPixels) {
      checkMaskPixels(ctx, sets, await probe(bytes, ctx.limitInputPixels));
    }
    ({ lease, encodeMs } = await embed(ctx, bytes, signal));
  }
  try {
    const prompt: Prompt = {};
    if (body.points !== undefined) prompt.points = body.points.map(([x, y, label]) => ({ x, y, label }) as Point);
    if (body.boxes !== undefined) prompt.boxes = body.boxes;
    if (body.scribbles !== undefined) prompt.scribbles = body.scribbles as Prompt['scribbles'];
    if (maskInput !== undefined) prompt.maskInput = maskInput;
    if (mask !== undefined) prompt.mask = mask;
    const multimask = body.multimask ?? false;
    const { embedding } = lease;
    // Checked here so that a bad prompt is refused (400, see toHttpError) without taking a
    // decoder slot; segment() checks it again.
    const { config } = segmenter;
    const frame = {
      ...resizedFrame(embedding, config.longestEdge),
      imageSize: config.imageSize,
      lowResSize: config.lowResSize,
    };
    checkPrompt(prompt, embedding.width, embedding.height, config.lowResSize, { multimask, threshold: 0 }, frame);
    checkMaskPixels(ctx, maskSets(ctx, body), embedding);
    const format = body.format ?? 'rle';
    // Masks as run lengths from the native decode (off the event loop; on the GPU with CUDA):
    // box, area and RLE come from the runs; png and polygons decode the pixels from them, which
    // costs less than taking them whole; the labelling's visual prompts read the runs natively.
    const result = await ctx.decoder.run(
      () => ctx.backend(() => segmenter.segment(embedding, prompt, { multimask, rle: true, signal })),
      signal,
    );
    ctx.metrics.decodes.inc();
    ctx.metrics.decodeSeconds.observe(result.timings.decodeMs / 1000);
    let labelled: Awaited<ReturnType<typeof labelMasks>> | undefined;
    if (referrer !== undefined && labelling !== undefined) {
      if (bytes === undefined) {
        throw new HttpError(404, 'unknown_image', `The image of imageId ${lease.id} was not kept; send it as image`);
      }
      labelled = await labelMasks(ctx, referrer, { id: lease.id, bytes }, result.masks, labelling, signal);
    }
    const masks = (await masksJson(result.masks, format, signal)).map((json, i) => ({
      ...json,
      ...(labelled === undefined ? {} : labelJson(labelled.labels[i])),
    }));
    return {
      imageId: lease.id,
      masks,
      timings: {
        encodeMs,
        decodeMs: result.timings.decodeMs,
        ...(labelled === undefined ? {} : { labelMs: labelled.ms }),
        totalMs: performance.now() - started,
      },
    };
  } finally {
    lease.release();
  }
}

/** The size of an embedding's image after the processor's longest-edge resize (its place in the model input). */
function resizedFrame(embedding: ImageEmbedding, longestEdge: number): { resizedWidth: number; resizedHeight: number } {
  const [resizedWidth, resizedHeight] = resizedSize(embedding.width, embedding.height, longestEdge);
  return { resizedWidth, resizedHeight };
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** maskInput: base64 of L × L little-endian float32 logits. */
function decodeMaskInput(text: string, lowResSize: number): Float32Array {
  const bytes = decodeBase64(text, 'maskInput');
  const count = lowResSize * lowResSize;
  if (bytes.length !== count * 4) {
    throw new HttpError(
      400,
      'invalid_argument',
      `Expected base64 of ${lowResSize}x${lowResSize} little-endian float32 (${count * 4} bytes) for maskInput but received ${bytes.length} bytes`,
    );
  }
  const out = new Float32Array(count);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  }
  return out;
}
