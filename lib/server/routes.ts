// The server's routes: request shapes (JSON schemas), the image → embedding path through the cache
// and the encoder queue, the decode path through the decoder queue, and the response shapes.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import sharp from 'sharp';
import type { ImageEmbedding } from '../embedding.js';
import type { Mask } from '../mask.js';
import { toNativePrompt, type Prompt } from '../prompt.js';
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
  text?: string;
  multimask?: boolean;
  format?: MaskFormat;
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
    multimask: { type: 'boolean' },
    format: { type: 'string', enum: ['rle', 'png', 'polygons'] },
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

  app.post('/v1/heatmap', async () => {
    throw new HttpError(501, 'not_implemented', 'Heat maps need a referrer model (CLIPSeg), which this server does not load yet');
  });
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
  const { lease, cached } = await ctx.cache.resolve(id, (encodeSignal) => ctx.encoder.submit(bytes, encodeSignal), signal);
  return { lease, encodeMs: cached ? 0 : lease.embedding.encodeMs };
}

/** Reads an encoded image's size from its header. @throws HttpError 400 (undecodable), 413 (pixel limit) */
async function probe(bytes: Uint8Array, limit: number): Promise<void> {
  let width: number;
  let height: number;
  try {
    ({ width, height } = await sharp(bytes, { limitInputPixels: false }).metadata());
  } catch (error) {
    throw new HttpError(400, 'invalid_image', `Cannot decode image: ${(error as Error).message.split('\n')[0]}`);
  }
  if (limit !== 0 && width * height > limit) {
    throw new HttpError(
      413,
      'image_too_large',
      `The image is ${width}x${height} = ${width * height} pixels, more than the limit of ${limit}`,
    );
  }
}

async function segment(ctx: RouteContext, body: SegmentBody, signal: AbortSignal) {
  const started = performance.now();
  if ((body.imageId === undefined) === (body.image === undefined)) {
    throw new HttpError(400, 'invalid_request', 'Give exactly one of imageId or image');
  }
  if (body.text !== undefined) {
    throw new HttpError(501, 'not_implemented', 'Text prompts need a referrer model (CLIPSeg), which this server does not load yet');
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
