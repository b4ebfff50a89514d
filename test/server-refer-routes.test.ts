// The referring routes (lib/server/refer-routes.ts) on the tiny SAM + CLIPSeg fixtures (random
// weights: the server is checked against the library on the same models, not against what a
// trained model would find): many-to-one `prompts` + `weights` and `refRegion` (box, scribble, PNG
// mask) on /v1/heatmap, SEEM composition (points, scribbles, box) and `vocabulary` labels on
// /v1/segment, the heat-map cache (hits, shared computations, eviction, metrics) and the 400s
// naming the field. Skipped when the native addon is not built.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { readInPlace } from '../lib/image.js';
import { Mask } from '../lib/mask.js';
import { native } from '../lib/native.js';
import { Referrer, type HeatmapOptions } from '../lib/referrer.js';
import { referSegment } from '../lib/referring/index.js';
import { decodeRLE } from '../lib/rle.js';
import { Segmenter } from '../lib/segmenter.js';
import { heatmapBytes } from '../lib/server/heatmap-cache.js';
import { createServer, imageId, type OmnisegServer } from '../lib/server/index.js';
import { jsonWithBase64 } from '../lib/server/refer-routes.js';
import { FIXTURES, MODEL_DIR, addonAvailable } from './helpers/fixtures.js';
import { metric, parsePrometheus } from './helpers/server.js';

const CLIPSEG_DIR = path.join(FIXTURES, '..', 'clipseg-tiny', 'model');
const WIDE = readFileSync(path.join(FIXTURES, 'wide.png')); // 150 × 100
const SMALL = readFileSync(path.join(FIXTURES, 'small.png')); // 90 × 70
const WIDE_ID = imageId(WIDE);

/** Little-endian float32 values of a base64 string. */
function float32s(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

/** A w × h grey PNG, 255 inside [x0, x1) × [y0, y1), and its pixels. */
async function rectPng(w: number, h: number, [x0, y0, x1, y1]: number[]): Promise<{ png: string; data: Uint8Array }> {
  const data = new Uint8Array(w * h);
  for (let y = y0; y < y1; y++) data.fill(255, y * w + x0, y * w + x1);
  const png = await sharp(Buffer.from(data), { raw: { width: w, height: h, channels: 1 } }).png().toBuffer();
  return { png: png.toString('base64'), data };
}

function expectClose(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst).toBeLessThan(1e-5);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

interface MaskBody {
  score: number;
  samScore: number;
  rle: { size: [number, number]; counts: string };
  label?: string | null;
  labels?: Array<{ label: string; probability: number }>;
}

describe.skipIf(!addonAvailable())('referring routes (tiny SAM + CLIPSeg)', () => {
  let server: OmnisegServer;
  let segmenter: Segmenter;
  let referrer: Referrer;

  beforeAll(async () => {
    server = await createServer({ model: MODEL_DIR, referrer: CLIPSEG_DIR, threads: 2, processMetrics: false });
    segmenter = await Segmenter.load({ model: MODEL_DIR, threads: 2 });
    referrer = await Referrer.load({ model: CLIPSEG_DIR, threads: 2 });
    await server.loaded;
  });
  afterAll(async () => {
    await server?.close();
    segmenter?.dispose();
    referrer?.dispose();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const post = (url: string, payload: Record<string, unknown>, s = server) => s.app.inject({ method: 'POST', url, payload });
  const scrape = async (s = server) => parsePrometheus((await s.app.inject({ url: '/metrics' })).body);
  const image = WIDE.toString('base64');
  const refImage = SMALL.toString('base64');

  describe('POST /v1/heatmap', () => {
    it('fuses prompts with weights (many-to-one), as Referrer.heatmap does', async () => {
      const res = await post('/v1/heatmap', {
        image,
        prompts: [{ text: 'a red cat' }, { text: 'a dog', refImage, textWeight: 0.25 }, { refImage, refRegion: { box: [10, 10, 60, 50] } }],
        weights: [1, 1, 2],
      });
      expect(res.statusCode).toBe(200);
      const heat = float32s(res.json().heatmap);
      const expected = await referrer.heatmap(WIDE, {
        prompts: [{ text: 'a red cat' }, { text: 'a dog', refImage: SMALL, textWeight: 0.25 }, { refImage: SMALL, refRegion: { box: [10, 10, 60, 50] } }],
        weights: [1, 1, 2],
      });
      expectClose(heat, expected.data);
      const single = await referrer.heatmap(WIDE, { text: 'a red cat' });
      expect(maxDiff(heat, single.data)).toBeGreaterThan(1e-3);
    });

    it('format png: the heat map as an 8-bit grey PNG, round(255 · p), in a JSON response', async () => {
      const float = await post('/v1/heatmap', { image, text: 'a red cat' });
      const res = await post('/v1/heatmap', { image, text: 'a red cat', format: 'png' });
      expect([float.statusCode, res.statusCode]).toEqual([200, 200]);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      const body = res.json();
      expect(Object.keys(body).sort()).toEqual(['heatmapCached', 'height', 'imageId', 'png', 'timings', 'width']);
      expect([body.width, body.height, body.heatmapCached]).toEqual([150, 100, true]);
      const png = Buffer.from(body.png, 'base64');
      const meta = await sharp(png).metadata();
      expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['png', 150, 100, 1]);
      const grey = await sharp(png).extractChannel(0).raw().toBuffer();
      const heat = float32s(float.json().heatmap);
      expect(Array.from(grey)).toEqual(Array.from(heat, (p) => Math.round(Math.min(1, Math.max(0, p)) * 255)));
    });

    it('takes a reference region as a box, a scribble or a PNG mask, as Referrer.heatmap does', async () => {
      const regions: Array<[Record<string, unknown>, HeatmapOptions['refRegion']]> = [
        [{ box: [10, 10, 60, 50] }, { box: [10, 10, 60, 50] }],
        [{ scribble: [[20, 20], [70, 40]] }, { scribble: [[20, 20], [70, 40]] }],
      ];
      const maps: Float32Array[] = [];
      for (const [sent, region] of regions) {
        const res = await post('/v1/heatmap', { image, refImage, refRegion: sent });
        expect(res.statusCode, JSON.stringify(sent)).toBe(200);
        maps.push(float32s(res.json().heatmap));
        expectClose(maps.at(-1) as Float32Array, (await referrer.heatmap(WIDE, { refImage: SMALL, refRegion: region })).data);
      }
      // The box's pixels as a PNG mask make the same visual prompt as the box.
      const { png } = await rectPng(90, 70, [10, 10, 60, 50]);
      const masked = await post('/v1/heatmap', { image, refImage, refRegion: { mask: png } });
      expect(masked.statusCode).toBe(200);
      expect(float32s(masked.json().heatmap)).toEqual(maps[0]);
      const whole = (await referrer.heatmap(WIDE, { refImage: SMALL })).data;
      expect(maxDiff(maps[0], whole)).toBeGreaterThan(1e-4);
    });
  });

  describe('heat-map cache', () => {
    it('answers a repeated query from the cache without a forward pass; equal weights share an entry', async () => {
      const forward = vi.spyOn(Referrer.prototype, 'heatmap');
      const before = await scrape();
      const query = { prompts: [{ text: 'a cat' }, { refImage }], weights: [1, 3] };
      const first = await post('/v1/heatmap', { image, ...query });
      const second = await post('/v1/heatmap', { image, ...query, weights: [2, 6] });
      expect([first.statusCode, second.statusCode]).toEqual([200, 200]);
      expect([first.json().heatmapCached, second.json().heatmapCached]).toEqual([false, true]);
      expect(second.json().timings.heatmapMs).toBe(0);
      expect(second.json().heatmap).toBe(first.json().heatmap);
      // A referring segment with the same query on the same image (by imageId) reuses it too.
      await server.app.inject({ method: 'POST', url: '/v1/embeddings', headers: { 'content-type': 'image/png' }, payload: WIDE });
      const seg = await post('/v1/segment', { imageId: WIDE_ID, ...query, threshold: 1 });
      expect(seg.json()).toMatchObject({ heatmapCached: true, noTarget: true });
      expect(forward).toHaveBeenCalledTimes(1);
      // Other reference bytes are another query.
      const flipped = (await sharp(SMALL).flop().png().toBuffer()).toString('base64');
      const other = await post('/v1/heatmap', { image, ...query, prompts: [{ text: 'a cat' }, { refImage: flipped }] });
      expect(other.json().heatmapCached).toBe(false);
      expect(forward).toHaveBeenCalledTimes(2);
      const after = await scrape();
      const delta = (name: string) => metric(after, name) - metric(before, name);
      expect([delta('omniseg_heatmap_cache_hits_total'), delta('omniseg_heatmap_cache_misses_total')]).toEqual([2, 2]);
      expect(metric(after, 'omniseg_heatmap_cache_entries')).toBe(server.heatmapCache.size);
      expect(metric(after, 'omniseg_heatmap_cache_bytes')).toBe(server.heatmapCache.bytes);
      expect(metric(after, 'omniseg_heatmap_cache_max_bytes')).toBe(64 * 1024 * 1024);
    });

    it('a new query on a known image runs the decoder only: the vision features are cached per image', async () => {
      const encode = vi.spyOn(Referrer.prototype, 'encode');
      const before = await scrape();
      const flipped = (await sharp(WIDE).flop().png().toBuffer()).toString('base64');
      const a = await post('/v1/heatmap', { image: flipped, text: 'first text' });
      const b = await post('/v1/heatmap', { image: flipped, text: 'second text' });
      expect([a.statusCode, b.statusCode]).toEqual([200, 200]);
      expect([a.json().heatmapCached, b.json().heatmapCached]).toEqual([false, false]);
      expect(encode).toHaveBeenCalledTimes(1);
      const direct = await referrer.heatmap(await sharp(WIDE).flop().png().toBuffer(), { text: 'second text' });
      expect(float32s(b.json().heatmap)).toEqual(direct.data);
      const after = await scrape();
      const delta = (name: string) => metric(after, name) - metric(before, name);
      expect([delta('omniseg_referrer_image_cache_hits_total'), delta('omniseg_referrer_image_cache_misses_total')]).toEqual([1, 1]);
      expect(metric(after, 'omniseg_referrer_image_cache_bytes')).toBeGreaterThan(0);
    });

    it('shares one forward pass among concurrent identical requests', async () => {
      const forward = vi.spyOn(Referrer.prototype, 'heatmap');
      const responses = await Promise.all([1, 2, 3].map(() => post('/v1/heatmap', { image, text: 'three at once' })));
      expect(forward).toHaveBeenCalledTimes(1);
      expect(responses.map((r) => r.statusCode)).toEqual([200, 200, 200]);
      expect(new Set(responses.map((r) => r.json().heatmap)).size).toBe(1);
    });

    it('evicts the least recently used heat map beyond its byte budget (--heatmap-cache-mb)', async () => {
      const one = heatmapBytes(await referrer.heatmap(WIDE, { text: 'aaa' }));
      const tight = await createServer({ model: MODEL_DIR, referrer: CLIPSEG_DIR, threads: 2, processMetrics: false, heatmapCacheBytes: one + 16 });
      try {
        await tight.loaded;
        const cached = async (text: string) => (await post('/v1/heatmap', { image, text }, tight)).json().heatmapCached;
        expect([await cached('aaa'), await cached('aaa'), await cached('bbb'), await cached('aaa')]).toEqual([false, true, false, false]);
        const samples = await scrape(tight);
        expect(metric(samples, 'omniseg_heatmap_cache_evictions_total')).toBe(2);
        expect(metric(samples, 'omniseg_heatmap_cache_entries')).toBe(1);
      } finally {
        await tight.close();
      }
    });
  });

  describe('POST /v1/segment with a referring prompt', () => {
    /** The server's masks and those referSegment gives for the same options. */
    async function compare(options: Record<string, unknown>, libraryOptions: Record<string, unknown>) {
      const res = await post('/v1/segment', { image, threshold: 0.5, minArea: 0, ...options });
      expect(res.statusCode, res.body).toBe(200);
      const expected = await referSegment(segmenter, referrer, WIDE, { threshold: 0.5, minArea: 0, ...libraryOptions });
      const body = res.json() as { noTarget: boolean; masks: MaskBody[] };
      expect(body.noTarget).toBe(expected.noTarget);
      expect(body.masks.map((m) => m.rle)).toEqual(expected.masks.map((m) => m.toRLE()));
      body.masks.forEach((m, i) => expect(m.score).toBeCloseTo(expected.scores[i], 5));
      return body;
    }

    it('narrows the instances with points, scribbles and a box on the image (SEEM composition), as referSegment does', async () => {
      const text = 'a red cat';
      const plain = await compare({ text }, { text });
      const scribble = { path: [[100, 90], [140, 95]], label: 0 };
      const composed = await compare(
        { text, box: [0, 0, 60, 60], points: [[7, 28, 0]], scribbles: [scribble] },
        { text, box: [0, 0, 60, 60], points: [{ x: 7, y: 28, label: 0 }], scribbles: [scribble] },
      );
      expect(composed.masks.length).toBeGreaterThan(0);
      expect(composed.masks.length).toBeLessThan(plain.masks.length);
      // the negative clicks changed SAM's prompts: a mask that the referring prompt alone does not give
      expect(plain.masks.map((m) => m.rle)).not.toContainEqual(composed.masks[0].rle);
      // a positive click keeps the masks that contain it
      const selected = await compare({ text, points: [[100, 79, 1]] }, { text, points: [{ x: 100, y: 79, label: 1 }] });
      expect(selected.masks.length).toBeGreaterThan(0);
      // a box where the heat map has no instance: no target
      const empty = await compare({ text, box: [0, 90, 5, 99] }, { text, box: [0, 90, 5, 99] });
      expect(empty).toMatchObject({ noTarget: true, masks: [] });
    });

    it('fuses prompts (many-to-one) with a reference region, as referSegment does', async () => {
      const region = { box: [10, 10, 60, 50] };
      await compare(
        { prompts: [{ text: 'a red cat' }, { refImage, refRegion: region }], weights: [3, 1] },
        { prompts: [{ text: 'a red cat' }, { refImage: SMALL, refRegion: region }], weights: [3, 1] },
      );
    });

    it('labels each mask from a vocabulary, as Referrer.label does', async () => {
      const vocabulary = ['cat', 'dog', 'car'];
      const res = await post('/v1/segment', { image, text: 'a red cat', threshold: 0.5, minArea: 0, vocabulary, topK: 2 });
      expect(res.statusCode).toBe(200);
      const body = res.json() as { masks: MaskBody[]; timings: { labelMs: number } };
      expect(body.masks.length).toBeGreaterThan(0);
      expect(body.timings.labelMs).toBeGreaterThan(0);
      const masks = body.masks.map((m) => new Mask({ data: decodeRLE(m.rle), width: 150, height: 100, score: 0, lowResLogits: new Float32Array(0) }));
      const expected = await referrer.label(WIDE, masks, vocabulary, { topK: 2 });
      body.masks.forEach((m, i) => {
        expect(m.labels?.map((l) => l.label)).toEqual(expected[i].map((l) => l.label));
        m.labels?.forEach((l, k) => expect(l.probability).toBeCloseTo(expected[i][k].probability, 5));
        expect(m.label).toBe(expected[i][0].label);
      });
    });

    it('decodes an image once for SAM, its labels and the referrer\'s encode: the pixels are cached per image', async () => {
      const label = vi.spyOn(Referrer.prototype, 'label');
      const flipped = (await sharp(WIDE).flip().png().toBuffer()).toString('base64'); // (an image no other test sends)
      const before = await scrape();
      const request = { image: flipped, points: [[75, 50, 1]], multimask: true, vocabulary: ['cat', 'dog'] };
      const [a, b] = [await post('/v1/segment', request), await post('/v1/segment', request)];
      const heat = await post('/v1/heatmap', { image: flipped, text: 'pixels cached' }); // (a new image for the referrer)
      expect([a.statusCode, b.statusCode, heat.statusCode]).toEqual([200, 200, 200]);
      expect(b.json().masks).toEqual(a.json().masks);
      const after = await scrape();
      const delta = (name: string) => metric(after, name) - metric(before, name);
      // one decode (the SAM encode of request a); hits: a's labels, b's labels, the heat map's encode
      expect([delta('omniseg_decoded_image_cache_misses_total'), delta('omniseg_decoded_image_cache_hits_total')]).toEqual([1, 3]);
      expect(metric(after, 'omniseg_decoded_image_cache_bytes')).toBeGreaterThanOrEqual(150 * 100 * 3);
      // the labels read the cached pixels, as raw RGB the library made (no copy)
      const pixels = label.mock.calls.map(([image]) => image as { data: Uint8Array; width: number; channels: number });
      expect(pixels.map((p) => [p.width, p.channels])).toEqual([[150, 3], [150, 3]]);
      expect(pixels[1].data).toBe(pixels[0].data);
      expect(readInPlace(pixels[0].data)).toBeTypeOf('function');
    });

    it('an image over the model\'s own pixel limit is refused for SAM, not for the referrer sharing its decode', async () => {
      const tight = await Segmenter.load({ model: MODEL_DIR, threads: 2, limitInputPixels: 10_000 }); // wide.png: 15000
      const s = await createServer({ segmenter: tight, referrer: CLIPSEG_DIR, threads: 2, processMetrics: false });
      try {
        await s.loaded;
        for (let i = 0; i < 4; i++) {
          const variant = (await sharp(WIDE).modulate({ brightness: 1 + i / 100 }).png().toBuffer()).toString('base64');
          const sam = post('/v1/segment', { image: variant, points: [[75, 50, 1]] }, s);
          await new Promise((resolve) => setTimeout(resolve, i)); // (the heat map joins the encoder's decode)
          const [seg, heat] = await Promise.all([sam, post('/v1/heatmap', { image: variant, text: 'a cat' }, s)]);
          expect([seg.statusCode, heat.statusCode]).toEqual([413, 200]);
        }
      } finally {
        await s.close();
        tight.dispose();
      }
    });

    it('labels the masks of a plain (point) segmentation too', async () => {
      const res = await post('/v1/segment', { image, points: [[75, 50, 1]], multimask: true, vocabulary: ['cat', 'dog'] });
      expect(res.statusCode).toBe(200);
      const body = res.json() as { masks: Array<MaskBody & { area: number }> };
      const nonEmpty = body.masks.filter((m) => m.area > 0);
      expect(nonEmpty.length).toBeGreaterThan(0);
      const masks = nonEmpty.map((m) => new Mask({ data: decodeRLE(m.rle), width: 150, height: 100, score: 0, lowResLogits: new Float32Array(0) }));
      const expected = await referrer.label(WIDE, masks, ['cat', 'dog']);
      nonEmpty.forEach((m, i) => {
        expect(m.labels?.map((l) => l.label)).toEqual(expected[i].map((l) => l.label));
        expect(m.label).toBe(expected[i][0].label);
      });
      for (const m of body.masks.filter((x) => x.area === 0)) expect([m.label, m.labels]).toEqual([null, []]);
    });
  });

  it('400s name the field', async () => {
    const { png: smallMask } = await rectPng(10, 10, [0, 0, 5, 5]);
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['/v1/heatmap', { image, text: 'b', prompts: [{ text: 'a' }] }, /text goes inside prompts\[i\].* for text /],
      ['/v1/heatmap', { image, prompts: [{ text: 'a' }, { text: 'b' }], weights: [1] }, /an array of 2 weights for weights /],
      ['/v1/heatmap', { image, prompts: [{ text: 'a' }], weights: [-1] }, /for weights\[0\]/],
      ['/v1/heatmap', { image, prompts: [{ text: 'a', textWeight: 0.3 }] }, /for prompts\[0\]\.textWeight/],
      ['/v1/heatmap', { image, prompts: [{}] }, /for prompts\[0\] /],
      ['/v1/heatmap', { image, prompts: [] }, /Invalid field prompts/],
      ['/v1/heatmap', { image, text: 'a', refRegion: { box: [0, 0, 5, 5] } }, /refRegion needs refImage.* for refRegion /],
      ['/v1/heatmap', { image, refImage, refRegion: { box: [0, 0, 5, 5], scribble: [[1, 1]] } }, /Invalid field refRegion/],
      ['/v1/heatmap', { image, refImage, refRegion: { polygon: [] } }, /Unknown field refRegion\.polygon/],
      ['/v1/heatmap', { image, refImage, refRegion: { box: [0, 0, 500, 5] } }, /for refRegion\.box/],
      ['/v1/heatmap', { image, refImage, refRegion: { mask: smallMask } }, /for refRegion\.mask\.width/],
      ['/v1/heatmap', { image, prompts: [{ refImage, refRegion: { mask: 'bm90IGFuIGltYWdl' } }] }, /Cannot decode prompts\[0\]\.refRegion\.mask/],
      ['/v1/heatmap', { image, prompts: [{ refImage: 'bm90IGFuIGltYWdl' }] }, /Cannot decode prompts\[0\]\.refImage/],
      ['/v1/segment', { image, text: 'x', boxes: [[1, 1, 5, 5]] }, /Field boxes cannot be combined with text.*give the target box as box/],
      ['/v1/segment', { image, text: 'x', mask: smallMask }, /Field mask cannot be combined with text/],
      ['/v1/segment', { image, text: 'x', box: [0, 0, 500, 5] }, /for box\[2\]/],
      ['/v1/segment', { image, text: 'x', points: [[500, 1, 1]] }, /for points\[0\]/],
      ['/v1/segment', { image, text: 'x', scribbles: [{ path: [[1, 1]], label: 3 }] }, /for scribbles\[0\]\.label/],
      ['/v1/segment', { image, text: 'x', scribbles: [{ path: [[1, 1]], label: 1, dense: true }] }, /Field scribbles\[0\]\.dense cannot be combined/],
      ['/v1/segment', { image, points: [[1, 1, 1]], box: [0, 0, 5, 5] }, /Field box needs text or refImage/],
      ['/v1/segment', { image, points: [[1, 1, 1]], refRegion: { box: [0, 0, 5, 5] } }, /Field refRegion needs text or refImage/],
      ['/v1/segment', { image, text: 'x', vocabulary: ['a', 'a'] }, /for vocabulary\[1\]/],
      ['/v1/segment', { image, text: 'x', vocabulary: ['a'], topK: 0 }, /for topK/],
      ['/v1/segment', { image, text: 'x', topK: 2 }, /Field topK needs vocabulary/],
    ];
    const forward = vi.spyOn(Referrer.prototype, 'heatmap');
    for (const [url, payload, message] of cases) {
      const res = await post(url, payload);
      expect(res.statusCode, `${url} ${String(message)}`).toBe(400);
      expect(res.json().error.message, `${url} ${String(message)}`).toMatch(message);
    }
    // Every one of them was refused before the model ran.
    expect(forward).not.toHaveBeenCalled();
  });
});

describe.skipIf(!addonAvailable())('jsonWithBase64', () => {
  it('adds the base64 member last to the JSON of any head, as JSON.stringify would, in UTF-8', async () => {
    for (const length of [0, 1, 2, 3, 4, 5, 6, 7, 300, 1001]) {
      const bytes = Uint8Array.from({ length }, (_, i) => (i * 151 + 7) & 255);
      const base64 = Buffer.from(bytes).toString('base64');
      for (const head of [{}, { a: 1 }, { imageId: 'x"y', timings: { totalMs: 1.5 }, list: [1, 'two'] }, { label: 'café ☕ 猫' }]) {
        const json = await jsonWithBase64(head, 'png', bytes);
        expect(json.toString('utf8'), `${length} bytes`).toBe(JSON.stringify({ ...head, png: base64 }));
      }
    }
  });

  it('encodes a copy of the bytes, and the native call refuses other arguments', async () => {
    const bytes = new Uint8Array(30).fill(7);
    const pending = jsonWithBase64({}, 'x', bytes);
    bytes.fill(0);
    expect(JSON.parse((await pending).toString()).x).toBe(Buffer.alloc(30, 7).toString('base64'));
    const call = (...args: unknown[]) => () => (native().spliceBase64Async as (...a: unknown[]) => unknown)(...args);
    expect(call('a', new Uint16Array(2), 'b')).toThrow(TypeError);
    expect(call('a', new Uint8Array(2))).toThrow(TypeError);
    expect(call(1, new Uint8Array(2), 'b')).toThrow(TypeError);
  });
});
