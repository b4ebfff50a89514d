// What the routes share: request fields decoded (base64, PNG masks, image headers), the image →
// embedding path through the cache and the encoder queue, the library's argument errors as 400s,
// and the JSON form of a mask.
import type { FastifyRequest } from 'fastify';
import { sharp } from '../sharp.js';
import { traceContoursJsonAsync } from '../contours.js';
import { abortError } from '../errors.js';
import { decodeForEncoder, decodeMaskImage as maskFromEncoded } from '../image.js';
import { maskSource, type Mask } from '../mask.js';
import type { Referrer } from '../referrer.js';
import type { BinaryMask, DecodedImage, RawImage } from '../types.js';
import { imageId, type Lease } from './cache.js';
import { HttpError } from './errors.js';
import { RawJson } from './json.js';
import type { RouteContext } from './routes.js';
import type { MaskFormat } from './schemas.js';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The bytes of a base64 field (whitespace ignored). @throws HttpError 400 naming `field` */
export function decodeBase64(text: string, field: string): Buffer {
  // Node's decoder skips what is not base64 (and takes base64url's - and _): an ASCII text it
  // decodes to its full length, with neither, is valid as it is. Every character skipped shortens
  // the bytes below that length, except at a length of 4k + 1 (never valid). (Node 20 reads a
  // character past U+00FF by its low byte: Ł as A.) The regexes below ran over the text twice:
  // 6.3 ms for a 2 MB image, where the decode takes 1.0.
  const ascii = Buffer.byteLength(text, 'utf8') === text.length;
  const bytes = Buffer.from(text, 'base64');
  let padding = 0;
  while (padding < 2 && text.charCodeAt(text.length - 1 - padding) === 61 /* = */) padding++;
  const chars = text.length - padding;
  const whole = text.length % 4 !== 1 && chars % 4 !== 1 && bytes.length === Math.floor((chars * 3) / 4);
  if (ascii && whole && !text.includes('-') && !text.includes('_')) return bytes;
  const compact = text.replace(/\s+/g, '');
  if (compact.length % 4 === 1 || !BASE64.test(compact)) {
    throw new HttpError(400, 'invalid_argument', `Expected base64 for ${field}`);
  }
  return Buffer.from(compact, 'base64');
}

/**
 * The raster formats the server decodes (sharp's names; AVIF reads as heif). Vector formats (SVG,
 * PDF) are refused: rendering one costs what its drawing asks, which its pixel count does not bound
 * (a 240-byte SVG filter at 3000² held libuv's threads, and every decode behind them, for seconds).
 */
export const RASTER_FORMATS: ReadonlySet<string> = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif']);

/**
 * Reads an encoded image's size from its header, as decoding will give it (EXIF orientation
 * applied). @throws HttpError 400 (undecodable), 413 (pixel limit), 415 (not a raster format), naming `field`
 */
export async function probe(bytes: Uint8Array, limit: number, field = 'image'): Promise<{ width: number; height: number }> {
  let width: number;
  let height: number;
  let format: string;
  try {
    const metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
    ({ width, height } = metadata.autoOrient);
    format = metadata.format;
  } catch (error) {
    throw new HttpError(400, 'invalid_image', `Cannot decode ${field}: ${(error as Error).message.split('\n')[0]}`);
  }
  if (!RASTER_FORMATS.has(format)) {
    const formats = 'JPEG, PNG, WebP, GIF, TIFF or HEIF/AVIF';
    throw new HttpError(415, 'unsupported_media_type', `The ${field} is ${format.toUpperCase()}: the server decodes ${formats} images`);
  }
  if (limit !== 0 && width * height > limit) {
    throw new HttpError(
      413,
      'image_too_large',
      `The ${field} is ${width}x${height} = ${width * height} pixels, more than the limit of ${limit}`,
    );
  }
  return { width, height };
}

/**
 * A binary mask sent as an encoded image (PNG): its first channel after conversion to grey (alpha
 * removed), non-zero inside. Its size is checked by whoever uses it (the library names the field).
 * @throws HttpError 400 / 413 naming `field`
 */
export async function decodeMaskImage(bytes: Uint8Array, limit: number, field: string): Promise<BinaryMask> {
  await probe(bytes, limit, field);
  try {
    return await maskFromEncoded(bytes, false); // probed above
  } catch (error) {
    throw new HttpError(400, 'invalid_image', `Cannot decode ${field}: ${(error as Error).message.split('\n')[0]}`);
  }
}

/** What the encoder queue takes: an image's encoded bytes and its id (`imageId`). */
export interface EncodeInput {
  bytes: Uint8Array;
  id: string;
}

/**
 * The embedding of an encoded image, pinned: from the cache, or encoded (through the encoder
 * queue; concurrent requests for the same image share one encode). The image's header is read
 * before it is queued, so that an undecodable or oversized image is refused at once.
 */
export async function embed(ctx: RouteContext, bytes: Uint8Array, signal: AbortSignal): Promise<{ lease: Lease; encodeMs: number }> {
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
  const { lease, cached } = await ctx.cache.resolve(id, (encodeSignal) => ctx.encoder.submit({ bytes, id }, encodeSignal), signal, source);
  return { lease, encodeMs: cached ? 0 : lease.embedding.encodeMs };
}

/** The cached embedding of `imageId`, pinned. @throws HttpError 404 */
export function cachedEmbedding(ctx: RouteContext, id: string): Lease {
  const lease = ctx.cache.acquire(id);
  if (lease === undefined) {
    throw new HttpError(404, 'unknown_image', `No embedding for imageId ${id}; POST the image to /v1/embeddings`);
  }
  ctx.metrics.cacheHits.inc();
  return lease;
}

/** The referrer, or 501 naming what needed it. */
export function needReferrer(ctx: RouteContext, what: string): Referrer {
  const referrer = ctx.referrer();
  if (referrer === undefined) {
    throw new HttpError(501, 'no_referrer', `${what} need a referrer model (CLIPSeg); start the server with --referrer <dir>`);
  }
  return referrer;
}

/** The library's argument errors (`... for options.text ...`) as 400s naming the request field. */
export function argumentError(error: unknown): unknown {
  if (error instanceof TypeError || error instanceof RangeError) {
    return new HttpError(400, 'invalid_argument', error.message.replace(/ for options\./, ' for '));
  }
  return error;
}

/** Runs a validation, its TypeError / RangeError becoming a 400 (see argumentError). */
export function argument<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    throw argumentError(error);
  }
}

/**
 * Masks formatted at once by one request: a png or polygons job holds a decoded mask (12 MP: 12 MB)
 * and a thread (sharp's, or the addon's tracer, both on libuv's pool, which encodes share).
 */
const FORMAT_CONCURRENCY = 2;

/**
 * The JSON of each mask, in order. png and polygons are made off the JS thread, a few masks at a
 * time; a cancelled request stops between masks.
 */
export async function masksJson(masks: readonly Mask[], format: MaskFormat, signal: AbortSignal) {
  const out: Array<Awaited<ReturnType<typeof maskJson>>> = new Array(masks.length);
  let next = 0;
  let failed = false; // one lane's failure stops the other too
  const lane = async (): Promise<void> => {
    while (next < masks.length && !failed) {
      if (signal.aborted) throw abortError(signal); // (the error toHttpError maps to 503 / 499)
      const i = next++;
      try {
        out[i] = await maskJson(masks[i], format);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(FORMAT_CONCURRENCY, masks.length) }, lane));
  return out;
}

async function maskJson(mask: Mask, format: MaskFormat) {
  const head = { score: mask.score, box: mask.box, area: mask.area };
  switch (format) {
    case 'rle':
      return { ...head, rle: mask.toRLE() };
    case 'png':
      return { ...head, png: (await mask.toPNG()).toString('base64') };
    case 'polygons':
      // (their JSON text, made in the worker thread: jsonBody splices it into the response)
      return { ...head, polygons: new RawJson(await traceContoursJsonAsync(maskSource(mask), mask.width, mask.height)) };
  }
}

/** A decoded image the server keeps (RouteContext.decodedImages): decodeForEncoder's pixels, which nothing writes. */
export interface CachedPixels {
  image: DecodedImage;
  readonly bytes: number;
  dispose(): void;
}

/**
 * Runs `use` on the pixels of image `id` (whose encoded bytes are `bytes`), decoded once and kept
 * in the decoded-image cache while the budget allows, so that labelling the masks of an image the
 * server has seen, or encoding it for the referrer, does not decode it again (a 12 MP PNG: ~150 ms
 * of a libuv thread); with a referrer, the SAM encoder's decodes go through the cache too (app.ts).
 * The pixels are the library's own: the referrer and the encoder read them in place.
 */
export function withPixels<R>(ctx: RouteContext, id: string, bytes: Uint8Array, use: (pixels: RawImage) => Promise<R>): Promise<R> {
  const decode = async () => cachedPixels(await decodeForEncoder(bytes, { limitInputPixels: ctx.limitInputPixels }));
  return ctx.decodedImages.with(id, decode, ({ image }) => use({ ...image, channels: 3 }));
}

/** decodeForEncoder's pixels as a decoded-image cache entry (3 bytes a pixel; nothing to free). */
export function cachedPixels(image: DecodedImage): CachedPixels {
  return { image, bytes: image.data.length, dispose: () => {} };
}

/** Refuses (415) a request whose Content-Type is not one of `accepted`, before its body is read. */
export function contentTypes(accepted: RegExp, what: string) {
  return async (request: FastifyRequest): Promise<void> => {
    const type = request.headers['content-type'] ?? '';
    if (!accepted.test(type)) {
      throw new HttpError(415, 'unsupported_media_type', `Expected Content-Type ${what} but received ${JSON.stringify(type)}`);
    }
  };
}
