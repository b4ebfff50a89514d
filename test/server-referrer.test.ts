// The server with a referrer (tiny SAM + tiny CLIPSeg fixtures, random weights: mechanics only),
// through Fastify's inject(): POST /v1/heatmap (float32 and PNG), POST /v1/segment with text
// (target and no target, on a cached embedding), 501 without a referrer, 400s naming the field,
// and the route metrics. Skipped when the native addon is not built.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Referrer } from '../lib/referrer.js';
import { createServer, imageId, type OmnisegServer } from '../lib/server/index.js';
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

describe.skipIf(!addonAvailable())('omniseg server with a referrer (tiny SAM + CLIPSeg)', () => {
  let server: OmnisegServer;
  let plain: OmnisegServer;
  let referrer: Referrer;

  beforeAll(async () => {
    server = await createServer({ model: MODEL_DIR, referrer: CLIPSEG_DIR, threads: 2, processMetrics: false });
    plain = await createServer({ model: MODEL_DIR, threads: 2, processMetrics: false });
    referrer = await Referrer.load({ model: CLIPSEG_DIR, threads: 2 });
    await Promise.all([server.loaded, plain.loaded]);
  });
  afterAll(async () => {
    await server?.close();
    await plain?.close();
    referrer?.dispose();
  });

  const post = (s: OmnisegServer, url: string, payload: Record<string, unknown>) => s.app.inject({ method: 'POST', url, payload });

  it('is ready once both models are loaded', async () => {
    const res = await server.app.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(200);
  });

  it('POST /v1/heatmap: float32 heat map of the image, as Referrer.heatmap computes it', async () => {
    const res = await post(server, '/v1/heatmap', { image: WIDE.toString('base64'), text: 'a red cat' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ imageId: WIDE_ID, width: 150, height: 100 });
    const heat = float32s(body.heatmap);
    const expected = (await referrer.heatmap(WIDE, { text: 'a red cat' })).data;
    expect(heat.length).toBe(150 * 100);
    for (let i = 0; i < heat.length; i += 97) expect(heat[i]).toBeCloseTo(expected[i], 5);
  });

  it('POST /v1/heatmap: PNG, on an imageId, with text and refImage', async () => {
    const embedded = await server.app.inject({
      method: 'POST',
      url: '/v1/embeddings',
      headers: { 'content-type': 'image/png' },
      payload: WIDE,
    });
    expect(embedded.statusCode).toBe(200);
    const res = await post(server, '/v1/heatmap', {
      imageId: WIDE_ID,
      text: 'a red cat',
      refImage: SMALL.toString('base64'),
      textWeight: 0.3,
      format: 'png',
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.heatmap).toBeUndefined();
    const meta = await sharp(Buffer.from(body.png, 'base64')).metadata();
    expect(meta).toMatchObject({ format: 'png', width: 150, height: 100, channels: 1 });
  });

  it('POST /v1/segment with text on a cached embedding: masks and noTarget false (threshold 0)', async () => {
    const encodes = metric(parsePrometheus((await server.app.inject({ url: '/metrics' })).body), 'omniseg_encodes_total');
    const res = await post(server, '/v1/segment', { imageId: WIDE_ID, text: 'a red cat', threshold: 0, minArea: 0 });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.noTarget).toBe(false);
    expect(body.masks.length).toBeGreaterThan(0);
    expect(body.masks[0]).toMatchObject({ rle: { size: [100, 150] } });
    expect(typeof body.masks[0].score).toBe('number');
    expect(body.masks[0].instance.box).toHaveLength(4);
    // The cached embedding was reused: no encode.
    const after = metric(parsePrometheus((await server.app.inject({ url: '/metrics' })).body), 'omniseg_encodes_total');
    expect(after).toBe(encodes);
  });

  it('POST /v1/segment with text: noTarget true with threshold 1, no masks, no encode', async () => {
    const image = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 9, g: 99, b: 199 } } })
      .png()
      .toBuffer();
    const res = await post(server, '/v1/segment', { image: image.toString('base64'), text: 'a dog', threshold: 1, format: 'png' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ imageId: imageId(image), noTarget: true, masks: [] });
    expect(server.cache.has(imageId(image))).toBe(false);
  });

  it('400s name the field', async () => {
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['/v1/heatmap', { image: WIDE.toString('base64') }, /Give text or refImage/],
      ['/v1/heatmap', { text: 'x' }, /exactly one of imageId or image/],
      ['/v1/heatmap', { image: WIDE.toString('base64'), text: 'x', textWeight: 0.5 }, /textWeight/],
      ['/v1/heatmap', { image: WIDE.toString('base64'), text: 'x', format: 'jpeg' }, /format/],
      ['/v1/heatmap', { image: WIDE.toString('base64'), text: 'x', bogus: 1 }, /Unknown field bogus/],
      ['/v1/heatmap', { image: WIDE.toString('base64'), refImage: 'bm90IGFuIGltYWdl' }, /Cannot decode refImage/],
      ['/v1/segment', { imageId: WIDE_ID, text: 'x', threshold: 2 }, /threshold/],
      ['/v1/segment', { imageId: WIDE_ID, text: 'x', maskInput: 'AAAA' }, /Field maskInput cannot be combined with text/],
      ['/v1/segment', { imageId: WIDE_ID, points: [[1, 1, 1]], threshold: 0.5 }, /Field threshold needs text/],
    ];
    for (const [url, payload, message] of cases) {
      const res = await post(server, url, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.message).toMatch(message);
    }
    const unknown = await post(server, '/v1/heatmap', { imageId: 'f'.repeat(64), text: 'x' });
    expect(unknown.statusCode).toBe(404);
  });

  it('501 without a referrer', async () => {
    const heat = await post(plain, '/v1/heatmap', { image: WIDE.toString('base64'), text: 'a cat' });
    expect(heat.statusCode).toBe(501);
    expect(heat.json().error).toEqual({
      code: 'no_referrer',
      message: 'Heat maps need a referrer model (CLIPSeg); start the server with --referrer <dir>',
    });
    const seg = await post(plain, '/v1/segment', { image: WIDE.toString('base64'), text: 'a cat' });
    expect(seg.statusCode).toBe(501);
    expect(seg.json().error.message).toMatch(/^Text and refImage prompts need a referrer model/);
  });

  it('counts heat map requests in the route metrics', async () => {
    const samples = parsePrometheus((await server.app.inject({ url: '/metrics' })).body);
    expect(metric(samples, 'omniseg_http_requests_total', { route: '/v1/heatmap', method: 'POST', status: '200' })).toBe(2);
    expect(metric(samples, 'omniseg_http_requests_total', { route: '/v1/heatmap', method: 'POST', status: '400' })).toBeGreaterThan(0);
    expect(metric(samples, 'omniseg_queue_depth', { queue: 'referrer' })).toBe(0);
  });
});
