// The server's routes: request shapes (JSON schemas), the image → embedding path through the cache
// and the encoder queue, the decode path through the decoder queue, and the response shapes.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import sharp from 'sharp';
import type { ImageEmbedding } from '../embedding.js';
import { decodeImage } from '../image.js';
import type { Mask } from '../mask.js';
import { toNativePrompt, type Prompt } from '../prompt.js';
import type { Heatmap, HeatmapOptions, Referrer } from '../referrer.js';
import { findInstances, instanceMasks, type Instance, type ReferringMasks } from '../referring/index.js';
import { instanceSettings, type InstanceSettings } from '../referring/instances.js';
import type { Segmenter } from '../segmenter.js';
import type { Box, Point, Scribble } from '../types.js';
import { imageId, type EmbeddingCache, type Lease } from './cache.js';
import { errorBody, HttpError } from './errors.js';
import type { ServerMetrics } from './metrics.js';
import type { Batcher, BoundedQueue } from './queues.js';

/** What the routes need from the server. */
export interface RouteContext {
  /** The loaded model; routes run only once it is (see the readiness hook in app.ts). */
  segmenter(): Segmenter;
  /** The referrer (CLIPSeg); undefined when the server has none (its routes answer 501). */
  referrer(): Referrer | undefined;
  /** The referrer's queue (one heat map at a time). */
  heatmaps: BoundedQueue;
  cache: EmbeddingCache;
  encoder: Batcher<Uint8Array, unknown, ImageEmbedding>;
  decoder: BoundedQueue;
  metrics: ServerMetrics;
  /** The request's cancellation: client gone or deadline passed. */
  signalOf(request: FastifyRequest): AbortSignal;
  /** Pixel limit (width × height) of images; 0: none. */
  limitInputPixels: number;
  /** Runs a model call, noting backend failures (a fatal one makes the server unready). */
  backend<T>(call: () => Promise<T>): Promise<T>;
  /** Readiness as /readyz reports it. */
  readiness(): { ready: true; device: string; precision: string } | { ready: false; code: string; message: string };
}

export type MaskFormat = 'rle' | 'png' | 'polygons';

/** Body of POST /v1/segment. Coordinates are pixels of the original image. */
export interface SegmentBody {
  imageId?: string;
  /** The encoded image, base64. */
  image?: string;
  /** [x, y, label] clicks, label 1 positive, 0 negative. */
  points?: Array<[number, number, number]>;
  boxes?: Box[];
  scribbles?: Scribble[];
  /** Low-res mask logits, base64 of little-endian float32 [L, L] (L = lowResSize, 256 for SAM). */
  maskInput?: string;
  /** A referring expression: the masks are those of what it refers to (needs a referrer). */
  text?: string;
  /** A reference image (visual prompt), base64; with or instead of `text`. */
  refImage?: string;
  /** With `text` and `refImage`: the text's weight in [0, 1] (default 0.5). */
  textWeight?: number;
  /** With `text` / `refImage`: heat above this is foreground, in [0, 1] (default 0.5). */
  threshold?: number;
  /** With `text` / `refImage`: the smallest instance, a fraction of the image, in [0, 1] (default 0.001). */
  minArea?: number;
  multimask?: boolean;
  format?: MaskFormat;
}

/** Body of POST /v1/heatmap. */
export interface HeatmapBody {
  imageId?: string;
  image?: string;
  text?: string;
  refImage?: string;
  textWeight?: number;
  /** `float32` (default): base64 of little-endian float32 [height, width]; `png`: 8-bit grey. */
  format?: 'float32' | 'png';
}

const MAX_PROMPTS = 256;
const coordinate = { type: 'number' } as const;

/** JSON schema of POST /v1/segment (unknown fields are refused, naming them). */
export const segmentSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    imageId: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    image: { type: 'string', minLength: 1 },
    points: {
      type: 'array',
      maxItems: MAX_PROMPTS,
      items: { type: 'array', minItems: 3, maxItems: 3, items: coordinate },
    },
    boxes: {
      type: 'array',
      maxItems: MAX_PROMPTS,
      items: { type: 'array', minItems: 4, maxItems: 4, items: coordinate },
    },
    scribbles: {
      type: 'array',
      maxItems: MAX_PROMPTS,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['path', 'label'],
        properties: {
          path: {
            type: 'array',
            minItems: 1,
            maxItems: 4096,
            items: { type: 'array', minItems: 2, maxItems: 2, items: coordinate },
          },
          label: { type: 'number' },
        },
      },
    },
    maskInput: { type: 'string' },
    text: { type: 'string' },
    refImage: { type: 'string', minLength: 1 },
    textWeight: { type: 'number' },
    threshold: { type: 'number' },
    minArea: { type: 'number' },
    multimask: { type: 'boolean' },
    format: { type: 'string', enum: ['rle', 'png', 'polygons'] },
  },
} as const;

/** JSON schema of POST /v1/heatmap. */
export const heatmapSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    imageId: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    image: { type: 'string', minLength: 1 },
    text: { type: 'string' },
    refImage: { type: 'string', minLength: 1 },
    textWeight: { type: 'number' },
    format: { type: 'string', enum: ['float32', 'png'] },
  },
} as const;

/** Refuses (415) a request whose Content-Type is not one of `accepted`, before its body is read. */
function contentTypes(accepted: RegExp, what: string) {
  return async (request: FastifyRequest): Promise<void> => {
    const type = request.headers['content-type'] ?? '';
    if (!accepted.test(type)) {
      throw new HttpError(415, 'unsupported_media_type', `Expected Content-Type ${what} but received ${JSON.stringify(type)}`);
    }
  };
}

export function registerRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const state = ctx.readiness();
    if (state.ready) return { status: 'ready', device: state.device, precision: state.precision };
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
      const bytes = await imageBytes(request);
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
    async (request) => segment(ctx, request.body, ctx.signalOf(request)),
  );

  app.post<{ Body: HeatmapBody }>(
    '/v1/heatmap',
    { onRequest: contentTypes(/^application\/json\s*(;|$)/i, 'application/json'), schema: { body: heatmapSchema } },
    async (request) => heatmap(ctx, request.body, ctx.signalOf(request)),
  );
}

/** The image of POST /v1/embeddings: the raw body, or the multipart file field `image`. */
async function imageBytes(request: FastifyRequest): Promise<Buffer> {
  let bytes: unknown;
  if (request.isMultipart()) {
    const part = await request.file();
    if (part === undefined) throw new HttpError(400, 'invalid_request', 'Missing the multipart file field image');
    if (part.fieldname !== 'image') {
      throw new HttpError(400, 'invalid_request', `Expected the multipart file field image but received ${JSON.stringify(part.fieldname)}`);
    }
    bytes = await part.toBuffer();
  } else {
    bytes = request.body;
  }
  if (!Buffer.isBuffer(bytes) || bytes.length === 0) throw new HttpError(400, 'invalid_image', 'The image is empty');
  return bytes;
}

/**
 * The embedding of an encoded image, pinned: from the cache, or encoded (through the encoder
 * queue; concurrent requests for the same image share one encode). The image's header is read
 * before it is queued, so that an undecodable or oversized image is refused at once.
 */
async function embed(ctx: RouteContext, bytes: Uint8Array, signal: AbortSignal): Promise<{ lease: Lease; encodeMs: number }> {
  const id = imageId(bytes);
  const hit = ctx.cache.acquire(id);
  if (hit !== undefined) {
    ctx.metrics.cacheHits.inc();
    return { lease: hit, encodeMs: 0 };
  }
  ctx.metrics.cacheMisses.inc();
  await probe(bytes, ctx.limitInputPixels);
  // With a referrer, the image is kept with its embedding: text prompts on an imageId need it.
  const source = ctx.referrer() === undefined ? undefined : bytes;
  const { lease, cached } = await ctx.cache.resolve(id, (encodeSignal) => ctx.encoder.submit(bytes, encodeSignal), signal, source);
  return { lease, encodeMs: cached ? 0 : lease.embedding.encodeMs };
}

/** Reads an encoded image's size from its header. @throws HttpError 400 (undecodable), 413 (pixel limit) */
async function probe(bytes: Uint8Array, limit: number, field = 'image'): Promise<void> {
  let width: number;
  let height: number;
  try {
    ({ width, height } = await sharp(bytes, { limitInputPixels: false }).metadata());
  } catch (error) {
    throw new HttpError(400, 'invalid_image', `Cannot decode ${field}: ${(error as Error).message.split('\n')[0]}`);
  }
  if (limit !== 0 && width * height > limit) {
    throw new HttpError(
      413,
      'image_too_large',
      `The ${field} is ${width}x${height} = ${width * height} pixels, more than the limit of ${limit}`,
    );
  }
}

async function segment(ctx: RouteContext, body: SegmentBody, signal: AbortSignal) {
  const started = performance.now();
  if ((body.imageId === undefined) === (body.image === undefined)) {
    throw new HttpError(400, 'invalid_request', 'Give exactly one of imageId or image');
  }
  if (body.text !== undefined || body.refImage !== undefined) return referringSegment(ctx, body, signal, started);
  for (const field of ['textWeight', 'threshold', 'minArea'] as const) {
    if (body[field] !== undefined) throw new HttpError(400, 'invalid_request', `Field ${field} needs text or refImage`);
  }
  const segmenter = ctx.segmenter();
  const maskInput = body.maskInput === undefined ? undefined : decodeMaskInput(body.maskInput, segmenter.config.lowResSize);
  let lease: Lease;
  let encodeMs = 0;
  if (body.imageId !== undefined) {
    const cached = ctx.cache.acquire(body.imageId);
    if (cached === undefined) {
      throw new HttpError(404, 'unknown_image', `No embedding for imageId ${body.imageId}; POST the image to /v1/embeddings`);
    }
    ctx.metrics.cacheHits.inc();
    lease = cached;
  } else {
    ({ lease, encodeMs } = await embed(ctx, decodeBase64(body.image ?? '', 'image'), signal));
  }
  try {
    const prompt: Prompt = {};
    if (body.points !== undefined) prompt.points = body.points.map(([x, y, label]) => ({ x, y, label }) as Point);
    if (body.boxes !== undefined) prompt.boxes = body.boxes;
    if (body.scribbles !== undefined) prompt.scribbles = body.scribbles;
    if (maskInput !== undefined) prompt.maskInput = maskInput;
    const multimask = body.multimask ?? false;
    const { embedding } = lease;
    // Checked here so that a bad prompt is refused (400, see toHttpError) without taking a
    // decoder slot; segment() checks it again.
    toNativePrompt(prompt, embedding.width, embedding.height, segmenter.config.lowResSize, { multimask, threshold: 0 });
    const result = await ctx.decoder.run(
      () => ctx.backend(() => segmenter.segment(embedding, prompt, { multimask, signal })),
      signal,
    );
    ctx.metrics.decodes.inc();
    ctx.metrics.decodeSeconds.observe(result.timings.decodeMs / 1000);
    const masks = await Promise.all(result.masks.map((m) => maskJson(m, body.format ?? 'rle')));
    return {
      imageId: lease.id,
      masks,
      timings: { encodeMs, decodeMs: result.timings.decodeMs, totalMs: performance.now() - started },
    };
  } finally {
    lease.release();
  }
}

async function maskJson(mask: Mask, format: MaskFormat) {
  const head = { score: mask.score, box: mask.box, area: mask.area };
  switch (format) {
    case 'rle':
      return { ...head, rle: mask.toRLE() };
    case 'png':
      return { ...head, png: (await mask.toPNG()).toString('base64') };
    case 'polygons':
      return { ...head, polygons: mask.toPolygons() };
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeBase64(text: string, field: string): Buffer {
  const compact = text.replace(/\s+/g, '');
  if (compact.length % 4 === 1 || !BASE64.test(compact)) {
    throw new HttpError(400, 'invalid_argument', `Expected base64 for ${field}`);
  }
  return Buffer.from(compact, 'base64');
}

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
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** The referrer, or 501 naming what needed it. */
function needReferrer(ctx: RouteContext, what: string): Referrer {
  const referrer = ctx.referrer();
  if (referrer === undefined) {
    throw new HttpError(501, 'no_referrer', `${what} need a referrer model (CLIPSeg); start the server with --referrer <dir>`);
  }
  return referrer;
}

/** The library's argument errors (`... for options.text ...`) as 400s naming the request field. */
function argumentError(error: unknown): unknown {
  if (error instanceof TypeError || error instanceof RangeError) {
    return new HttpError(400, 'invalid_argument', error.message.replace(/ for options\./, ' for '));
  }
  return error;
}

function argument<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    throw argumentError(error);
  }
}

/** The encoded image of a request: `image` (base64, probed) or the image kept with `imageId`'s embedding (pinned). */
async function referringImage(
  ctx: RouteContext,
  body: { imageId?: string; image?: string },
): Promise<{ bytes: Uint8Array; lease: Lease | undefined }> {
  if ((body.imageId === undefined) === (body.image === undefined)) {
    throw new HttpError(400, 'invalid_request', 'Give exactly one of imageId or image');
  }
  if (body.imageId === undefined) {
    const bytes = decodeBase64(body.image ?? '', 'image');
    await probe(bytes, ctx.limitInputPixels);
    return { bytes, lease: undefined };
  }
  const lease = ctx.cache.acquire(body.imageId);
  if (lease === undefined) {
    throw new HttpError(404, 'unknown_image', `No embedding for imageId ${body.imageId}; POST the image to /v1/embeddings`);
  }
  ctx.metrics.cacheHits.inc();
  if (lease.source === undefined) {
    lease.release();
    throw new HttpError(404, 'unknown_image', `The image of imageId ${body.imageId} was not kept; send it as image`);
  }
  return { bytes: lease.source, lease };
}

/**
 * The referrer's heat map of `bytes` (decoded again here: the cache keeps the encoded image, not
 * its pixels), through the referrer queue. Cancelled while queued; a forward pass once started runs
 * to its end.
 */
async function runHeatmap(
  ctx: RouteContext,
  referrer: Referrer,
  bytes: Uint8Array,
  body: { text?: string; refImage?: string; textWeight?: number },
  signal: AbortSignal,
): Promise<Heatmap> {
  const options: HeatmapOptions = {};
  if (body.text !== undefined) options.text = body.text;
  if (body.textWeight !== undefined) options.textWeight = body.textWeight;
  if (body.refImage !== undefined) {
    const ref = decodeBase64(body.refImage, 'refImage');
    await probe(ref, ctx.limitInputPixels, 'refImage');
    options.refImage = ref;
  }
  const image = await decodeImage(bytes, { limitInputPixels: ctx.limitInputPixels });
  const raw = { data: image.data, width: image.width, height: image.height, channels: 3 } as const;
  try {
    return await ctx.heatmaps.run(() => ctx.backend(() => referrer.heatmap(raw, options)), signal);
  } catch (error) {
    throw argumentError(error);
  }
}

async function heatmap(ctx: RouteContext, body: HeatmapBody, signal: AbortSignal) {
  const started = performance.now();
  const referrer = needReferrer(ctx, 'Heat maps');
  if (body.text === undefined && body.refImage === undefined) {
    throw new HttpError(400, 'invalid_request', 'Give text or refImage (or both)');
  }
  const { bytes, lease } = await referringImage(ctx, body);
  try {
    const heat = await runHeatmap(ctx, referrer, bytes, body, signal);
    const encoded =
      body.format === 'png' ? { png: (await heatmapPng(heat)).toString('base64') } : { heatmap: float32Base64(heat.data) };
    return {
      imageId: lease?.id ?? imageId(bytes),
      width: heat.width,
      height: heat.height,
      ...encoded,
      timings: { heatmapMs: heat.timings.totalMs, totalMs: performance.now() - started },
    };
  } finally {
    lease?.release();
  }
}

/**
 * POST /v1/segment with `text` / `refImage`: heat map → instances (`findInstances`) → SAM masks on
 * the server's cached embedding (`instanceMasks`). Not `referSegment()`, which encodes the image
 * itself: here an `imageId` reuses its cached embedding, and an `image` is encoded (and cached)
 * only when the heat map has a target. The cost over a point prompt is one image decode and one
 * CLIPSeg forward pass per request (heat maps are not cached).
 */
async function referringSegment(ctx: RouteContext, body: SegmentBody, signal: AbortSignal, started: number) {
  const referrer = needReferrer(ctx, 'Text and refImage prompts');
  for (const field of ['points', 'boxes', 'scribbles', 'maskInput', 'multimask'] as const) {
    if (body[field] !== undefined) throw new HttpError(400, 'invalid_request', `Field ${field} cannot be combined with text or refImage`);
  }
  const settings: InstanceSettings = argument(() =>
    instanceSettings({
      ...(body.threshold === undefined ? {} : { threshold: body.threshold }),
      ...(body.minArea === undefined ? {} : { minArea: body.minArea }),
    }),
  );
  const segmenter = ctx.segmenter();
  let { bytes, lease } = await referringImage(ctx, body);
  try {
    const heat = await runHeatmap(ctx, referrer, bytes, body, signal);
    const candidates = findInstances(heat.data, heat.width, heat.height, settings);
    let result: ReferringMasks = { masks: [], scores: [], instances: [], noTarget: true };
    let encodeMs = 0;
    let decodeMs = 0;
    if (candidates.length > 0) {
      if (lease === undefined) ({ lease, encodeMs } = await embed(ctx, bytes, signal));
      const { embedding } = lease;
      result = await ctx.decoder.run(async () => {
        const start = performance.now();
        const masks = await ctx.backend(() => instanceMasks(segmenter, embedding, candidates, { signal }));
        decodeMs = performance.now() - start;
        return masks;
      }, signal);
      ctx.metrics.decodes.inc();
      ctx.metrics.decodeSeconds.observe(decodeMs / 1000);
    }
    const format = body.format ?? 'rle';
    const masks = await Promise.all(
      result.masks.map(async (mask, i) => ({
        ...(await maskJson(mask, format)),
        score: result.scores[i],
        samScore: mask.score,
        instance: instanceJson(result.instances[i]),
      })),
    );
    return {
      imageId: lease?.id ?? imageId(bytes),
      noTarget: result.noTarget,
      masks,
      timings: { heatmapMs: heat.timings.totalMs, encodeMs, decodeMs, totalMs: performance.now() - started },
    };
  } finally {
    lease?.release();
  }
}

function instanceJson(instance: Instance) {
  const { peak, box, area, maxResponse, meanResponse } = instance;
  return { peak, box, area, maxResponse, meanResponse };
}

/** Little-endian float32 values, base64. */
function float32Base64(values: Float32Array): string {
  const bytes = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) bytes.writeFloatLE(values[i], i * 4);
  return bytes.toString('base64');
}

/** The heat map as an 8-bit grey PNG (round(255 · p)). */
async function heatmapPng(heat: Heatmap): Promise<Buffer> {
  const grey = Buffer.alloc(heat.width * heat.height);
  for (let i = 0; i < grey.length; i++) grey[i] = Math.round(Math.min(1, Math.max(0, heat.data[i])) * 255);
  return sharp(grey, { raw: { width: heat.width, height: heat.height, channels: 1 } }).toColourspace('b-w').png().toBuffer();
}
