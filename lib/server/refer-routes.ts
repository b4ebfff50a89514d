// The referring routes (needs a referrer, CLIPSeg): POST /v1/heatmap, and POST /v1/segment with a
// referring prompt (text / refImage / refRegion, or fused `prompts` + `weights`), composed with
// clicks, scribbles and a box on the target image (SEEM), its masks labelled from a `vocabulary`.
// Heat maps go through the heat-map cache (keyed by imageId + query digest) and the referrer
// queue; masks are decoded on the server's cached SAM embedding.
import { endianness } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { sharp } from '../sharp.js';
import type { Mask } from '../mask.js';
import { native } from '../native.js';
import type { Heatmap, HeatmapOptions, Referrer, ReferringPrompt } from '../referrer.js';
import { instanceMasks, type Instance, type ReferringMasks, type RefRegion } from '../referring/index.js';
import { instancesInBox, targetSettings } from '../referring/compose.js';
import { findInstancesAsync, instanceSettings, type InstanceSettings } from '../referring/instances.js';
import { labelSettings, vocabularyList, type SegmentLabel } from '../referring/labels.js';
import { querySpec } from '../referring/prompts.js';
import { refRegion } from '../referring/visual-prompt.js';
import type { Point } from '../types.js';
import { imageId, type Lease } from './cache.js';
import { HttpError } from './errors.js';
import { queryDigest } from './heatmap-cache.js';
import {
  argument,
  argumentError,
  cachedEmbedding,
  contentTypes,
  decodeBase64,
  decodeMaskImage,
  embed,
  masksJson,
  needReferrer,
  probe,
  withPixels,
} from './inputs.js';
import type { RouteContext } from './routes.js';
import { heatmapSchema, type HeatmapBody, type PromptBody, type QueryBody, type RegionBody, type SegmentBody } from './schemas.js';

export function registerReferRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.post<{ Body: HeatmapBody }>(
    '/v1/heatmap',
    { onRequest: contentTypes(/^application\/json\s*(;|$)/i, 'application/json'), schema: { body: heatmapSchema } },
    async (request, reply) => {
      const body = await heatmap(ctx, request.body, ctx.signalOf(request));
      return reply.type('application/json; charset=utf-8').send(body);
    },
  );
}

/** Whether a segment request has a referring prompt. */
export function isReferring(body: SegmentBody): boolean {
  return body.text !== undefined || body.refImage !== undefined || body.prompts !== undefined;
}

/** A request's query: validated, its reference images and region masks decoded, and its cache digest. */
interface Query {
  options: HeatmapOptions;
  digest: string;
}

/** The request image of a referring route: its bytes, id and decoded size, pinned when it is `imageId`'s. */
interface RequestImage {
  bytes: Uint8Array;
  id: string;
  width: number;
  height: number;
  lease: Lease | undefined;
}

/** The response of POST /v1/heatmap as UTF-8 JSON (see jsonWithBase64). */
async function heatmap(ctx: RouteContext, body: HeatmapBody, signal: AbortSignal): Promise<Buffer> {
  const started = performance.now();
  const referrer = needReferrer(ctx, 'Heat maps');
  if (body.text === undefined && body.refImage === undefined && body.prompts === undefined) {
    throw new HttpError(400, 'invalid_request', 'Give text or refImage (or both), or prompts');
  }
  const query = await requestQuery(ctx, body);
  const image = await requestImage(ctx, body);
  try {
    const { heat, cached } = await heatmapOf(ctx, referrer, image, query, signal);
    const png = body.format === 'png';
    const bytes = png ? await heatmapPng(heat) : float32LE(heat.data);
    const head = {
      imageId: image.id,
      width: heat.width,
      height: heat.height,
      heatmapCached: cached,
      timings: { heatmapMs: cached ? 0 : heat.timings.totalMs, totalMs: performance.now() - started },
    };
    return await jsonWithBase64(head, png ? 'png' : 'heatmap', bytes);
  } finally {
    image.lease?.release();
  }
}

/**
 * The JSON of `head` with `field: <base64 of bytes>` added as its last member, as UTF-8, made in a
 * worker thread (spliceBase64Async). On the JS thread, a 1080p float32 heat map costs ~4 ms of
 * base64, ~27 ms of JSON.stringify scanning and copying the text, and ~11 ms more to encode and
 * measure it when sent; base64 needs no escaping.
 */
export async function jsonWithBase64(head: Record<string, unknown>, field: string, bytes: Uint8Array): Promise<Buffer> {
  const text = JSON.stringify(head);
  const prefix = `${text.slice(0, -1)}${text === '{}' ? '' : ','}${JSON.stringify(field)}:"`;
  const json = await native().spliceBase64Async(prefix, bytes, '"}');
  return Buffer.from(json.buffer, json.byteOffset, json.byteLength);
}

/**
 * POST /v1/segment with a referring prompt: heat map (cached) → instances (`findInstances`) kept
 * by the target box (`instancesInBox`) → SAM masks on the server's cached embedding
 * (`instanceMasks`, with the target clicks). Not `referSegment()`, which encodes the image itself:
 * here an `imageId` reuses its cached embedding, and an `image` is encoded (and cached) only when
 * an instance is left.
 */
export async function referringSegment(ctx: RouteContext, body: SegmentBody, signal: AbortSignal, started: number) {
  const referrer = needReferrer(ctx, 'Text and refImage prompts');
  for (const field of ['boxes', 'maskInput', 'mask', 'multimask'] as const) {
    if (body[field] !== undefined) {
      const hint = field === 'boxes' ? '; give the target box as box' : '';
      throw new HttpError(400, 'invalid_request', `Field ${field} cannot be combined with text or refImage${hint}`);
    }
  }
  // A dense scribble is a SAM mask prompt; composition turns scribbles into clicks only.
  const dense = (body.scribbles ?? []).findIndex((s) => s.dense === true);
  if (dense >= 0) throw new HttpError(400, 'invalid_request', `Field scribbles[${dense}].dense cannot be combined with text or refImage`);
  const settings: InstanceSettings = argument(() =>
    instanceSettings({
      ...(body.threshold === undefined ? {} : { threshold: body.threshold }),
      ...(body.minArea === undefined ? {} : { minArea: body.minArea }),
    }),
  );
  const labelling = labelRequest(body);
  const query = await requestQuery(ctx, body);
  const segmenter = ctx.segmenter();
  const image = await requestImage(ctx, body);
  let { lease } = image;
  try {
    const target = argument(() =>
      targetSettings(
        {
          points: body.points?.map(([x, y, label]) => ({ x, y, label }) as Point),
          scribbles: body.scribbles,
          box: body.box,
        },
        image.width,
        image.height,
      ),
    );
    const { heat, cached } = await heatmapOf(ctx, referrer, image, query, signal);
    // (the cached heat map is the server's own, never changed: read in place, off the JS thread)
    const candidates = instancesInBox(await findInstancesAsync(heat.data, heat.width, heat.height, settings), target, heat.width);
    let result: ReferringMasks = { masks: [], scores: [], instances: [], noTarget: true };
    let encodeMs = 0;
    let decodeMs = 0;
    if (candidates.length > 0) {
      if (lease === undefined) ({ lease, encodeMs } = await embed(ctx, image.bytes, signal));
      const { embedding } = lease;
      result = await ctx.decoder.run(async () => {
        const start = performance.now();
        const masks = await ctx.backend(() => instanceMasks(segmenter, embedding, candidates, { signal }, target));
        decodeMs = performance.now() - start;
        return masks;
      }, signal);
      ctx.metrics.decodes.inc();
      ctx.metrics.decodeSeconds.observe(decodeMs / 1000);
    }
    const labelled = labelling === undefined ? undefined : await labelMasks(ctx, referrer, image, result.masks, labelling, signal);
    const format = body.format ?? 'rle';
    const masks = (await masksJson(result.masks, format, signal)).map((json, i) => ({
      ...json,
      score: result.scores[i],
      samScore: result.masks[i].score,
      instance: instanceJson(result.instances[i]),
      ...(labelled === undefined ? {} : labelJson(labelled.labels[i])),
    }));
    return {
      imageId: image.id,
      noTarget: result.noTarget,
      masks,
      heatmapCached: cached,
      timings: {
        heatmapMs: cached ? 0 : heat.timings.totalMs,
        encodeMs,
        decodeMs,
        ...(labelled === undefined ? {} : { labelMs: labelled.ms }),
        totalMs: performance.now() - started,
      },
    };
  } finally {
    lease?.release();
  }
}

/** `vocabulary` and `topK` of a request, validated; undefined without a vocabulary. */
export function labelRequest(body: SegmentBody): { vocabulary: string[]; topK: number } | undefined {
  if (body.vocabulary === undefined) {
    if (body.topK !== undefined) throw new HttpError(400, 'invalid_request', 'Field topK needs vocabulary');
    return undefined;
  }
  const vocabulary = argument(() => vocabularyList(body.vocabulary));
  const { topK } = argument(() => labelSettings(body.topK === undefined ? {} : { topK: body.topK }, vocabulary.length));
  return { vocabulary, topK };
}

/**
 * Each mask's labels (`Referrer.label`, through the referrer queue); undefined for an empty mask
 * (it has no region to classify).
 */
export async function labelMasks(
  ctx: RouteContext,
  referrer: Referrer,
  image: { id: string; bytes: Uint8Array },
  masks: readonly Mask[],
  request: { vocabulary: string[]; topK: number },
  signal: AbortSignal,
): Promise<{ labels: Array<SegmentLabel[] | undefined>; ms: number }> {
  const start = performance.now();
  const nonEmpty = masks.flatMap((mask, i) => (mask.area > 0 ? [i] : []));
  const labels: Array<SegmentLabel[] | undefined> = masks.map(() => undefined);
  if (nonEmpty.length > 0) {
    const found = await ctx.heatmaps.run(
      () =>
        ctx.backend(() =>
          withPixels(ctx, image.id, image.bytes, (pixels) =>
            referrer.label(
              pixels,
              nonEmpty.map((i) => masks[i]),
              request.vocabulary,
              { topK: request.topK, signal },
            ),
          ),
        ),
      signal,
    );
    nonEmpty.forEach((maskIndex, k) => (labels[maskIndex] = found[k]));
  }
  return { labels, ms: performance.now() - start };
}

/** `label` (the most probable, null for an empty mask) and `labels` of a mask's JSON. */
export function labelJson(labels: SegmentLabel[] | undefined) {
  return { label: labels?.[0]?.label ?? null, labels: labels ?? [] };
}

const QUERY_FIELDS = ['text', 'refImage', 'refRegion', 'textWeight', 'prompts', 'weights'] as const;

/**
 * The query of a request, checked by the library's own validation (`querySpec`: errors name the
 * field, e.g. `prompts[1].textWeight`), then its reference images decoded from base64 and probed,
 * and its regions checked against their reference image's size.
 */
async function requestQuery(ctx: RouteContext, body: QueryBody): Promise<Query> {
  const raw: Record<string, unknown> = {};
  for (const field of QUERY_FIELDS) if (body[field] !== undefined) raw[field] = body[field];
  argument(() => querySpec(raw));
  const regionBytes = new Map<number, Uint8Array>();
  const prompt = async (p: PromptBody, i: number, name: string): Promise<ReferringPrompt> => {
    const out: ReferringPrompt = {};
    if (p.text !== undefined) out.text = p.text;
    if (p.textWeight !== undefined) out.textWeight = p.textWeight;
    if (p.refImage !== undefined) {
      const ref = decodeBase64(p.refImage, `${name}refImage`);
      const { width, height } = await probe(ref, ctx.limitInputPixels, `${name}refImage`);
      out.refImage = ref;
      if (p.refRegion !== undefined) out.refRegion = await region(ctx, p.refRegion, `${name}refRegion`, width, height, i, regionBytes);
    }
    return out;
  };
  let options: HeatmapOptions;
  if (body.prompts === undefined) {
    options = await prompt(body, 0, '');
  } else {
    const prompts = await Promise.all(body.prompts.map((p, i) => prompt(p, i, `prompts[${i}].`)));
    options = { prompts, ...(body.weights === undefined ? {} : { weights: body.weights }) };
  }
  const spec = argument(() => querySpec(options));
  return { options, digest: queryDigest(spec, regionBytes) };
}

/** A request region on a width × height reference image, validated (a mask decoded from its PNG). */
async function region(
  ctx: RouteContext,
  body: RegionBody,
  field: string,
  width: number,
  height: number,
  index: number,
  regionBytes: Map<number, Uint8Array>,
): Promise<RefRegion> {
  let value: unknown = body;
  if ('mask' in body) {
    const bytes = decodeBase64(body.mask, `${field}.mask`);
    regionBytes.set(index, bytes);
    value = { mask: await decodeMaskImage(bytes, ctx.limitInputPixels, `${field}.mask`) };
  }
  return argument(() => refRegion(value, field, width, height));
}

/** The image of a referring request: `image` (base64, probed) or the image kept with `imageId`'s embedding (pinned). */
async function requestImage(ctx: RouteContext, body: { imageId?: string; image?: string }): Promise<RequestImage> {
  if ((body.imageId === undefined) === (body.image === undefined)) {
    throw new HttpError(400, 'invalid_request', 'Give exactly one of imageId or image');
  }
  if (body.imageId === undefined) {
    const bytes = decodeBase64(body.image ?? '', 'image');
    const { width, height } = await probe(bytes, ctx.limitInputPixels);
    return { bytes, id: imageId(bytes), width, height, lease: undefined };
  }
  const lease = cachedEmbedding(ctx, body.imageId);
  if (lease.source === undefined) {
    lease.release();
    throw new HttpError(404, 'unknown_image', `The image of imageId ${body.imageId} was not kept; send it as image`);
  }
  const { width, height } = lease.embedding;
  return { bytes: lease.source, id: lease.id, width, height, lease };
}

/**
 * The heat map of a query over an image: from the heat-map cache, or computed (the image decoded
 * again: the embedding cache keeps the encoded image, not its pixels) through the referrer queue.
 * Cancelled while queued; a forward pass once started runs to its end (and is cached).
 */
async function heatmapOf(
  ctx: RouteContext,
  referrer: Referrer,
  image: RequestImage,
  query: Query,
  signal: AbortSignal,
): Promise<{ heat: Heatmap; cached: boolean }> {
  // The image's vision features come from the referrer-image cache (encoded once per image); the
  // query's embeddings and the decoder run here. Both through the referrer queue. The encode is
  // shared by every request for the image, whatever its query: it is cancelled while queued only
  // when every request waiting for it is gone; once started it runs to its end (and is cached).
  const compute = async (computeSignal: AbortSignal): Promise<Heatmap> => {
    const encode = (encodeSignal: AbortSignal) => {
      const queued = whileQueued(encodeSignal);
      return ctx.heatmaps.run(() => {
        queued.started();
        return ctx.backend(() => withPixels(ctx, image.id, image.bytes, (pixels) => referrer.encode(pixels)));
      }, queued.signal);
    };
    try {
      return await ctx.referrerImages.with(
        image.id,
        encode,
        (encoded) => ctx.heatmaps.run(() => ctx.backend(() => referrer.heatmap(encoded, query.options)), computeSignal),
        computeSignal,
      );
    } catch (error) {
      throw argumentError(error);
    }
  };
  const key = `${image.id}:${query.digest}`;
  // A miss counts whether it computes the heat map or joins a computation in progress.
  (ctx.heatmapCache.has(key) ? ctx.metrics.heatmapCacheHits : ctx.metrics.heatmapCacheMisses).inc();
  const { heatmap, cached } = await ctx.heatmapCache.resolve(key, compute, signal);
  return { heat: heatmap, cached };
}

/**
 * A signal for BoundedQueue.run that follows `signal` until the task calls `started()`, then
 * never aborts: the task is cancelled while it waits, and runs to its end once started (run()
 * would otherwise stop waiting for a started task, whose result nobody would then keep or free).
 */
function whileQueued(signal: AbortSignal): { signal: AbortSignal; started(): void } {
  const queued = new AbortController();
  const follow = (): void => queued.abort(signal.reason);
  if (signal.aborted) follow();
  else signal.addEventListener('abort', follow, { once: true });
  return { signal: queued.signal, started: () => signal.removeEventListener('abort', follow) };
}

function instanceJson(instance: Instance) {
  const { peak, box, area, maxResponse, meanResponse } = instance;
  return { peak, box, area, maxResponse, meanResponse };
}

/** The bytes of little-endian float32 values (the array's own bytes on a little-endian host). */
function float32LE(values: Float32Array): Uint8Array {
  if (endianness() === 'LE') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const bytes = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) bytes.writeFloatLE(values[i], i * 4);
  return bytes;
}

/** The heat map as an 8-bit grey PNG (round(255 · p)), made off the JS thread. */
async function heatmapPng(heat: Heatmap): Promise<Buffer> {
  const grey = await native().quantizeUnitAsync(heat.data);
  return sharp(grey, { raw: { width: heat.width, height: heat.height, channels: 1 } }).toColourspace('b-w').png().toBuffer();
}
