// The HTTP server on the tiny SAM fixture, through Fastify's inject(): every endpoint, the JSON
// shapes, the error codes, the embedding cache (encode once, LRU eviction) and /metrics.
// Skipped when the native addon is not built.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { InjectOptions } from 'fastify';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRLE } from '../lib/rle.js';
import { Segmenter } from '../lib/segmenter.js';
import { createServer, imageId, type OmnisegServer } from '../lib/server/index.js';
import { MULTIPART_OVERHEAD } from '../lib/server/routes.js';
import { CPU_MATMUL_BF16X3, FIXTURES, MODEL_DIR, addonAvailable } from './helpers/fixtures.js';
import { metric, multipartBody, multipartParts, parsePrometheus } from './helpers/server.js';

const WIDE = readFileSync(path.join(FIXTURES, 'wide.png')); // 150 × 100
const SMALL = readFileSync(path.join(FIXTURES, 'small.png')); // 90 × 70
const PNG = { 'content-type': 'image/png' };

describe.skipIf(!addonAvailable())('omniseg server (tiny SAM)', () => {
  let segmenter: Segmenter;
  let server: OmnisegServer;

  beforeAll(async () => {
    segmenter = await Segmenter.load({ model: MODEL_DIR, threads: 2 });
    server = await createServer({ model: MODEL_DIR, threads: 2, processMetrics: false });
    await server.loaded;
  });
  afterAll(async () => {
    await server?.close();
    segmenter?.dispose();
  });

  const inject = (options: InjectOptions) => server.app.inject(options);
  const segment = (body: unknown) => inject({ method: 'POST', url: '/v1/segment', payload: body as object });
  const embed = (bytes: Buffer) => inject({ method: 'POST', url: '/v1/embeddings', headers: PNG, payload: bytes });
  const scrape = async (s: OmnisegServer = server) => parsePrometheus((await s.app.inject({ url: '/metrics' })).body);

  /** Asserts an error response: status, code, and a message matching `message`. */
  function expectError(res: { statusCode: number; json(): unknown }, status: number, code: string, message?: RegExp) {
    expect(res.statusCode).toBe(status);
    const body = res.json() as { error: { code: string; message: string } };
    expect(Object.keys(body)).toEqual(['error']);
    expect(body.error.code).toBe(code);
    expect(typeof body.error.message).toBe('string');
    if (message !== undefined) expect(body.error.message).toMatch(message);
  }

  describe('probes', () => {
    it('GET /healthz answers 200', async () => {
      const res = await inject({ url: '/healthz' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ status: 'ok' });
    });

    it('GET /readyz answers 200 with the backend once the model is loaded', async () => {
      const res = await inject({ url: '/readyz' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ status: 'ready', device: 'cpu', precision: 'fp32', cpuMatmul: CPU_MATMUL_BF16X3 });
    });
  });

  describe('POST /v1/embeddings', () => {
    it('encodes a raw image once: the same image again is a cache hit with the same imageId', async () => {
      const before = await scrape();
      const first = await embed(WIDE);
      expect(first.statusCode).toBe(200);
      expect(first.json()).toEqual({ imageId: imageId(WIDE), width: 150, height: 100 });
      const second = await embed(WIDE);
      expect(second.json()).toEqual(first.json());
      const after = await scrape();
      const delta = (name: string) => metric(after, name) - metric(before, name);
      expect(delta('omniseg_encodes_total')).toBe(1);
      expect(delta('omniseg_cache_misses_total')).toBe(1);
      expect(delta('omniseg_cache_hits_total')).toBe(1);
    });

    it('takes the image as the multipart file field "image"', async () => {
      const res = await inject({ method: 'POST', url: '/v1/embeddings', ...multipartBody('image', SMALL) });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ imageId: imageId(SMALL), width: 90, height: 70 });
    });

    it('takes the image among plain multipart fields; 400 for a second file', async () => {
      const withField = multipartParts([{ name: 'note', value: 'x' }, { name: 'image', file: SMALL }, { name: 'other', value: 'y' }]);
      const res = await inject({ method: 'POST', url: '/v1/embeddings', ...withField });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ imageId: imageId(SMALL), width: 90, height: 70 });
      const twoFiles = multipartParts([{ name: 'image', file: SMALL }, { name: 'image', file: WIDE }]);
      expectError(await inject({ method: 'POST', url: '/v1/embeddings', ...twoFiles }), 400, 'invalid_request', /one multipart file/);
      const threeFiles = multipartParts([{ name: 'image', file: SMALL }, { name: 'a', file: WIDE }, { name: 'b', file: WIDE }]);
      expectError(await inject({ method: 'POST', url: '/v1/embeddings', ...threeFiles }), 400, 'invalid_request', /one multipart file/);
      const none = multipartParts([{ name: 'image', value: 'x' }]);
      expectError(await inject({ method: 'POST', url: '/v1/embeddings', ...none }), 400, 'invalid_request', /Missing the multipart file field image/);
      // more parts than the parser takes: a malformed request, not a large one (it was 413 body_too_large)
      const fields = multipartParts([...Array.from({ length: 9 }, (_, i) => ({ name: `f${i}`, value: 'x' })), { name: 'image', file: SMALL }]);
      expectError(await inject({ method: 'POST', url: '/v1/embeddings', ...fields }), 400, 'invalid_multipart', /fields limit/);
    });

    it('400 for another multipart field, an empty body or bytes that are not an image', async () => {
      expectError(await inject({ method: 'POST', url: '/v1/embeddings', ...multipartBody('picture', SMALL) }), 400, 'invalid_request', /field image/);
      expectError(await embed(Buffer.alloc(0)), 400, 'invalid_image', /empty/);
      expectError(await embed(Buffer.from('not an image at all')), 400, 'invalid_image', /Cannot decode image/);
    });

    it('takes an image content type with parameters; 400 for a malformed multipart body', async () => {
      const res = await inject({ method: 'POST', url: '/v1/embeddings', headers: { 'content-type': 'image/png; name=x' }, payload: SMALL });
      expect(res.statusCode).toBe(200);
      const noBoundary = await inject({ method: 'POST', url: '/v1/embeddings', headers: { 'content-type': 'multipart/form-data' }, payload: 'x' });
      expectError(noBoundary, 400, 'invalid_multipart', /Boundary not found/);
      const garbage = await inject({
        method: 'POST',
        url: '/v1/embeddings',
        headers: { 'content-type': 'multipart/form-data; boundary=abc' },
        payload: '--abc\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nnot finished',
      });
      expectError(garbage, 400, 'invalid_multipart');
    });

    it('415 for a vector image (SVG is rendered at whatever cost its drawing asks), in every image field', async () => {
      const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>');
      const message = /^The image is SVG: the server decodes JPEG, PNG, WebP, GIF, TIFF or HEIF\/AVIF images$/;
      expectError(await inject({ method: 'POST', url: '/v1/embeddings', headers: { 'content-type': 'image/svg+xml' }, payload: svg }), 415, 'unsupported_media_type', message);
      expectError(await segment({ image: svg.toString('base64'), points: [[1, 1, 1]] }), 415, 'unsupported_media_type', message);
      await embed(WIDE);
      const mask = await segment({ imageId: imageId(WIDE), mask: svg.toString('base64') });
      expectError(mask, 415, 'unsupported_media_type', /^The mask is SVG/);
    });

    it('a refused multipart file is read to its end: the next request on the connection is answered at once', async () => {
      const s = await createServer({ segmenter, processMetrics: false });
      try {
        const base = await s.listen({ port: 0 });
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        const send = (headers: Record<string, string>, body: Buffer) =>
          new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
            const req = http.request(`${base}/v1/embeddings`, { method: 'POST', agent, headers }, (res) => {
              res.resume();
              res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
            });
            req.setTimeout(5000, () => req.destroy(new Error('no answer within 5 s')));
            req.on('error', reject);
            req.end(body);
          });
        // (a file large enough not to arrive in one chunk: the parser is still reading it when refused)
        const photo = multipartBody('photo', Buffer.alloc(900_000, 7));
        const refused = await send(photo.headers, photo.payload);
        expect(refused.status).toBe(400);
        const next = await send(PNG, WIDE);
        expect(next).toEqual({ status: 200, reused: true });
        agent.destroy();
      } finally {
        await s.close();
      }
    });

    it('415 for a body that is not image/* or multipart', async () => {
      const json = await inject({ method: 'POST', url: '/v1/embeddings', payload: { image: 'x' } });
      expectError(json, 415, 'unsupported_media_type', /image\/\* or multipart\/form-data.*application\/json/);
      const none = await inject({ method: 'POST', url: '/v1/embeddings', payload: WIDE, headers: { 'content-type': '' } });
      expectError(none, 415, 'unsupported_media_type');
    });
  });

  describe('POST /v1/segment', () => {
    const click = { points: [[75, 50, 1]] };

    it('segments a cached image by imageId, as Segmenter.segment does, masks as COCO RLE', async () => {
      await embed(WIDE);
      const res = await segment({ imageId: imageId(WIDE), ...click, multimask: true });
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(Object.keys(body).sort()).toEqual(['imageId', 'masks', 'timings']);
      expect(body.timings.encodeMs).toBe(0);
      expect(body.timings.decodeMs).toBeGreaterThan(0);
      const expected = await segmenter.segment(WIDE, { points: [{ x: 75, y: 50, label: 1 }] }, { multimask: true });
      expect(body.masks).toHaveLength(3);
      body.masks.forEach((m: { score: number; box: number[]; area: number; rle: { size: number[]; counts: string } }, i: number) => {
        expect(Object.keys(m).sort()).toEqual(['area', 'box', 'rle', 'score']);
        expect(m.score).toBeCloseTo(expected.masks[i].score, 6);
        expect(m.box).toEqual(expected.masks[i].box);
        expect(m.area).toBe(expected.masks[i].area);
        expect(m.rle).toEqual(expected.masks[i].toRLE());
        expect(decodeRLE(m.rle).length).toBe(150 * 100);
      });
    });

    it('encodes an inline base64 image (once) and reports its imageId and encode time', async () => {
      const image = (await sharp(SMALL).flop().png().toBuffer()).toString('base64');
      const first = await segment({ image, boxes: [[10, 10, 60, 50]] });
      expect(first.statusCode).toBe(200);
      expect(first.json().imageId).toBe(imageId(Buffer.from(image, 'base64')));
      expect(first.json().timings.encodeMs).toBeGreaterThan(0);
      expect(first.json().masks).toHaveLength(1);
      const second = await segment({ image, boxes: [[10, 10, 60, 50]] });
      expect(second.json().timings.encodeMs).toBe(0);
      expect(second.json().masks).toEqual(first.json().masks);
    });

    it('returns PNG (base64) or polygons with format', async () => {
      await embed(WIDE);
      const png = await segment({ imageId: imageId(WIDE), ...click, format: 'png' });
      expect(png.statusCode).toBe(200);
      const [mask] = png.json().masks;
      expect(Object.keys(mask).sort()).toEqual(['area', 'box', 'png', 'score']);
      const meta = await sharp(Buffer.from(mask.png, 'base64')).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['png', 150, 100]);
      const poly = await segment({ imageId: imageId(WIDE), ...click, format: 'polygons' });
      expect(poly.statusCode).toBe(200);
      expect(poly.headers['content-type']).toBe('application/json; charset=utf-8');
      const [polyMask] = poly.json().masks;
      expect(Object.keys(polyMask)).toEqual(['score', 'box', 'area', 'polygons']);
      const own = (await segmenter.segment(WIDE, { points: [{ x: 75, y: 50, label: 1 }] })).masks[0];
      expect(polyMask.polygons).toEqual(own.toPolygons());
      expect(polyMask.polygons.length).toBeGreaterThan(0);
      expect(polyMask).toMatchObject({ box: own.box, area: own.area });
    });

    it('takes several boxes, scribbles and a base64 float32 maskInput', async () => {
      await embed(WIDE);
      const lowRes = segmenter.config.lowResSize;
      const maskInput = Buffer.from(new Float32Array(lowRes * lowRes).fill(1).buffer).toString('base64');
      const res = await segment({
        imageId: imageId(WIDE),
        boxes: [
          [10, 10, 80, 60],
          [60, 20, 140, 90],
        ],
        scribbles: [{ path: [[20, 20], [60, 40]], label: 1 }],
        maskInput,
      });
      expect(res.statusCode).toBe(200);
      expect(res.json().masks).toHaveLength(2);
    });

    it('takes a dense mask prompt (base64 PNG at the image size) and dense scribbles, as Segmenter.segment does', async () => {
      await embed(WIDE);
      const bits = new Uint8Array(150 * 100);
      for (let y = 20; y < 60; y++) bits.fill(255, y * 150 + 30, y * 150 + 90);
      const png = await sharp(Buffer.from(bits), { raw: { width: 150, height: 100, channels: 1 } }).png().toBuffer();
      const stroke = { path: [[20, 70], [120, 80]] as Array<[number, number]>, label: 1 as const };
      const res = await segment({
        imageId: imageId(WIDE),
        points: [[60, 40, 1]],
        mask: png.toString('base64'),
        scribbles: [{ ...stroke, dense: true }],
      });
      expect(res.statusCode).toBe(200);
      const expected = await segmenter.segment(WIDE, {
        points: [{ x: 60, y: 40, label: 1 }],
        mask: { data: bits, width: 150, height: 100 },
        scribbles: [{ ...stroke, dense: true }],
      });
      expect(res.json().masks.map((m: { rle: unknown }) => m.rle)).toEqual(expected.masks.map((m) => m.toRLE()));
      // Both dense prompts reach the decoder: without them the masks differ.
      const sparse = await segment({ imageId: imageId(WIDE), points: [[60, 40, 1]], scribbles: [stroke] });
      expect(sparse.json().masks[0].rle).not.toEqual(res.json().masks[0].rle);
      const strokeOnly = await segment({ imageId: imageId(WIDE), points: [[60, 40, 1]], scribbles: [{ ...stroke, dense: true }] });
      expect(strokeOnly.json().masks[0].rle).not.toEqual(sparse.json().masks[0].rle);
    });

    it('400 naming the field for a bad dense mask prompt', async () => {
      await embed(WIDE);
      const id = imageId(WIDE);
      const small = (await sharp(Buffer.alloc(100, 255), { raw: { width: 10, height: 10, channels: 1 } }).png().toBuffer()).toString('base64');
      const lowRes = segmenter.config.lowResSize;
      const maskInput = Buffer.from(new Float32Array(lowRes * lowRes).buffer).toString('base64');
      expectError(await segment({ imageId: id, ...click, mask: small }), 400, 'invalid_argument', /for mask\.width/);
      expectError(await segment({ imageId: id, ...click, mask: small, maskInput }), 400, 'invalid_request', /mask or maskInput, not both/);
      expectError(await segment({ imageId: id, ...click, mask: 'bm90IGFuIGltYWdl' }), 400, 'invalid_image', /Cannot decode mask/);
      expectError(await segment({ imageId: id, ...click, mask: '***' }), 400, 'invalid_argument', /base64 for mask/);
      const dense = { path: [[1, 1]], label: 1, dense: 'yes' };
      expectError(await segment({ imageId: id, scribbles: [dense] }), 400, 'invalid_request', /scribbles\[0\]\.dense/);
    });

    it('400 naming the field for a body that does not fit the schema', async () => {
      const id = imageId(WIDE);
      expectError(await segment({ imageId: id, points: [[1, 2]] }), 400, 'invalid_request', /points\[0\]/);
      expectError(await segment({ imageId: id, ...click, format: 'jpeg' }), 400, 'invalid_request', /format/);
      expectError(await segment({ imageId: id, ...click, colour: 'red' }), 400, 'invalid_request', /Unknown field colour/);
      expectError(await segment({ imageId: id, ...click, multimask: 'yes' }), 400, 'invalid_request', /multimask/);
      expectError(await segment({ imageId: 'abc', ...click }), 400, 'invalid_request', /imageId/);
      expectError(await segment({ imageId: id, scribbles: [{ path: [] , label: 1 }] }), 400, 'invalid_request', /scribbles\[0\]\.path/);
    });

    it('400 naming the field for values the model refuses', async () => {
      await embed(WIDE);
      const id = imageId(WIDE);
      expectError(await segment({ imageId: id, points: [[500, 50, 1]] }), 400, 'invalid_argument', /for points\[0\]/);
      expectError(await segment({ imageId: id, points: [[5, 5, 7]] }), 400, 'invalid_argument', /points\[0\]\.label/);
      expectError(await segment({ imageId: id, boxes: [[50, 50, 10, 10]] }), 400, 'invalid_argument', /boxes\[0\]/);
      expectError(await segment({ imageId: id }), 400, 'invalid_argument', /at least one of points/);
      expectError(await segment({ imageId: id, ...click, maskInput: 'AAAA' }), 400, 'invalid_argument', /maskInput but received 3 bytes/);
      expectError(await segment({ image: '***', ...click }), 400, 'invalid_argument', /base64 for image/);
      expectError(await segment({ image: Buffer.from('nope').toString('base64'), ...click }), 400, 'invalid_image');
    });

    it('400 for neither or both of imageId and image, and for malformed JSON', async () => {
      expectError(await segment(click), 400, 'invalid_request', /exactly one of imageId or image/);
      expectError(await segment({ imageId: imageId(WIDE), image: WIDE.toString('base64'), ...click }), 400, 'invalid_request');
      const bad = await inject({ method: 'POST', url: '/v1/segment', headers: { 'content-type': 'application/json' }, payload: '{"points": [' });
      expectError(bad, 400, 'invalid_json');
    });

    it('404 for an imageId that is not cached', async () => {
      expectError(await segment({ imageId: 'f'.repeat(64), ...click }), 404, 'unknown_image', /POST the image to \/v1\/embeddings/);
    });

    it('415 for a body that is not JSON', async () => {
      const res = await inject({ method: 'POST', url: '/v1/segment', headers: { 'content-type': 'text/plain' }, payload: 'x' });
      expectError(res, 415, 'unsupported_media_type', /application\/json/);
    });

    it('501 for text prompts, labels and heat maps (no referrer model loaded)', async () => {
      expectError(await segment({ imageId: imageId(WIDE), text: 'a cat' }), 501, 'no_referrer', /referrer/);
      expectError(await segment({ imageId: imageId(WIDE), prompts: [{ text: 'a cat' }] }), 501, 'no_referrer', /referrer/);
      expectError(await segment({ imageId: imageId(WIDE), ...click, vocabulary: ['cat'] }), 501, 'no_referrer', /^Labels need/);
      expectError(await inject({ method: 'POST', url: '/v1/heatmap', payload: {} }), 501, 'no_referrer');
    });
  });

  it('404 for an unknown route', async () => {
    expectError(await inject({ url: '/v2/nothing' }), 404, 'not_found', /GET \/v2\/nothing/);
  });

  describe('limits', () => {
    it('413 for a body over the limit and an image over the pixel limit', async () => {
      const small = await createServer({ segmenter, bodyLimit: 1000, limitInputPixels: 100 * 100, processMetrics: false });
      try {
        const big = await small.app.inject({ method: 'POST', url: '/v1/embeddings', headers: PNG, payload: Buffer.alloc(2000, 1) });
        expectError(big, 413, 'body_too_large');
        const multi = await small.app.inject({ method: 'POST', url: '/v1/embeddings', ...multipartBody('image', Buffer.alloc(2000, 1)) });
        expectError(multi, 413, 'body_too_large');
        const json = await small.app.inject({ method: 'POST', url: '/v1/segment', payload: { image: 'A'.repeat(2000), points: [[1, 1, 1]] } });
        expectError(json, 413, 'body_too_large');
        const tiny = await sharp({ create: { width: 101, height: 100, channels: 3, background: 'red' } }).png().toBuffer();
        expect(tiny.length).toBeLessThan(1000);
        const pixels = await small.app.inject({ method: 'POST', url: '/v1/embeddings', headers: PNG, payload: tiny });
        expectError(pixels, 413, 'image_too_large', /101x100 = 10100 pixels, more than the limit of 10000/);
        // the masks one segment request asks for: boxes × masks per box × pixels (each decode holds them all)
        const fewMasks = await createServer({ segmenter, maxMaskPixels: 2 * 150 * 100, processMetrics: false });
        try {
          const id = (await fewMasks.app.inject({ method: 'POST', url: '/v1/embeddings', headers: PNG, payload: WIDE })).json().imageId;
          const seg = (body: object) => fewMasks.app.inject({ method: 'POST', url: '/v1/segment', payload: { imageId: id, ...body } });
          expect((await seg({ boxes: [[1, 1, 9, 9], [2, 2, 8, 8]] })).statusCode).toBe(200);
          expectError(
            await seg({ boxes: [[1, 1, 9, 9]], multimask: true }),
            413,
            'masks_too_large',
            /^3 masks of 150x100 are 45000 pixels, more than the server's limit of 30000 \(maxMaskPixels\): send fewer boxes per request$/,
          );
          expectError(await seg({ boxes: [[1, 1, 9, 9], [2, 2, 8, 8], [3, 3, 7, 7]] }), 413, 'masks_too_large');
          // an image sent with the request is refused before it is encoded
          const encodes = metric(parsePrometheus((await fewMasks.app.inject({ url: '/metrics' })).body), 'omniseg_encodes_total');
          const sent = await fewMasks.app.inject({
            method: 'POST',
            url: '/v1/segment',
            payload: { image: (await sharp(WIDE).flop().png().toBuffer()).toString('base64'), boxes: [[1, 1, 9, 9]], multimask: true },
          });
          expectError(sent, 413, 'masks_too_large', /^3 masks of 150x100 are 45000 pixels/);
          expect(metric(parsePrometheus((await fewMasks.app.inject({ url: '/metrics' })).body), 'omniseg_encodes_total')).toBe(encodes);
        } finally {
          await fewMasks.close();
        }
      } finally {
        await small.close();
      }
      expect(segmenter.encode(SMALL)).toBeInstanceOf(Promise); // a server given a Segmenter leaves it usable
    });

    it('413 for a multipart body over bodyLimit + MULTIPART_OVERHEAD, from its length or as it is read', async () => {
      const s = await createServer({ segmenter, bodyLimit: 1000, processMetrics: false });
      try {
        const image = await sharp({ create: { width: 40, height: 30, channels: 3, background: 'red' } }).png().toBuffer();
        expect(image.length).toBeLessThan(1000);
        const { headers, payload } = multipartBody('image', image);
        expect((await s.app.inject({ method: 'POST', url: '/v1/embeddings', headers, payload })).statusCode).toBe(200);
        // an epilogue after the closing boundary: the parser reads it, and the file limit never sees it
        const epilogue = Buffer.concat([payload, Buffer.alloc(1000 + MULTIPART_OVERHEAD, 0x61)]);
        const declared = await s.app.inject({ method: 'POST', url: '/v1/embeddings', headers, payload: epilogue });
        expectError(declared, 413, 'body_too_large', new RegExp(`larger than ${1000 + MULTIPART_OVERHEAD} bytes`));
        // chunked (no length): refused once the bytes read pass the limit, with the sender still writing
        const base = await s.listen({ port: 0 });
        const sent = await new Promise<{ status: number; written: number }>((resolve, reject) => {
          let written = 0;
          let answered = false;
          const req = http.request(`${base}/v1/embeddings`, { method: 'POST', headers: { ...headers, 'transfer-encoding': 'chunked' } }, (res) => {
            answered = true;
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, written }));
          });
          req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
          req.on('error', (error) => (answered ? undefined : reject(error)));
          const chunk = Buffer.alloc(64 * 1024, 0x61);
          const write = (): void => {
            if (written === 0) req.write(payload);
            // (up to 1 GiB: without the cap the server would read it all and answer 200)
            while (!answered && written < 2 ** 30) {
              written += chunk.length;
              if (!req.write(chunk)) return void req.once('drain', write);
            }
            req.end();
          };
          write();
        });
        expect(sent.status).toBe(413);
        expect(sent.written).toBeLessThan(64 * 2 ** 20);
      } finally {
        await s.close();
      }
    });

    it('keeps the cache within its byte budget, evicting the least recently used embedding', async () => {
      const probe = await segmenter.encode(SMALL);
      const bytes = probe.byteLength; // the embedding and its decoder cache
      probe.dispose();
      const lru = await createServer({ segmenter, cacheBytes: Math.floor(2.5 * bytes), processMetrics: false });
      try {
        const third = await sharp(WIDE).flip().png().toBuffer();
        for (const image of [WIDE, SMALL]) expect((await lru.app.inject({ method: 'POST', url: '/v1/embeddings', headers: PNG, payload: image })).statusCode).toBe(200);
        const seg = (image: Buffer) =>
          lru.app.inject({ method: 'POST', url: '/v1/segment', payload: { imageId: imageId(image), points: [[5, 5, 1]] } });
        expect((await seg(WIDE)).statusCode).toBe(200); // WIDE is now the most recently used
        expect((await lru.app.inject({ method: 'POST', url: '/v1/embeddings', headers: PNG, payload: third })).statusCode).toBe(200);
        expectError(await seg(SMALL), 404, 'unknown_image');
        expect((await seg(WIDE)).statusCode).toBe(200);
        expect((await seg(third)).statusCode).toBe(200);
        const samples = await scrape(lru);
        expect(metric(samples, 'omniseg_cache_evictions_total')).toBe(1);
        expect(metric(samples, 'omniseg_cache_entries')).toBe(2);
        expect(metric(samples, 'omniseg_cache_bytes')).toBe(2 * bytes);
        expect(metric(samples, 'omniseg_cache_max_bytes')).toBe(Math.floor(2.5 * bytes));
      } finally {
        await lru.close();
      }
    });
  });

  describe('over HTTP on 127.0.0.1', () => {
    it('encodes a multipart upload and serves 16 concurrent clients the masks Segmenter.segment gives', async () => {
      const s = await createServer({ segmenter, processMetrics: false });
      try {
        const base = await s.listen({ port: 0 });
        const form = new FormData();
        form.append('image', new Blob([new Uint8Array(WIDE)], { type: 'image/png' }), 'wide.png');
        const up = await fetch(`${base}/v1/embeddings`, { method: 'POST', body: form });
        expect(up.status).toBe(200);
        const { imageId: id } = (await up.json()) as { imageId: string };
        const clicks = Array.from({ length: 16 }, (_, i) => [5 + i * 9, 10 + i * 5, 1]);
        const responses = await Promise.all(
          clicks.map((click) =>
            fetch(`${base}/v1/segment`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ imageId: id, points: [click] }),
            }),
          ),
        );
        expect(responses.map((r) => r.status)).toEqual(Array(16).fill(200));
        const bodies = (await Promise.all(responses.map((r) => r.json()))) as Array<{ masks: Array<{ rle: unknown }> }>;
        for (const [i, [x, y]] of clicks.entries()) {
          const expected = await segmenter.segment(WIDE, { points: [{ x, y, label: 1 }] });
          expect(bodies[i].masks[0].rle).toEqual(expected.masks[0].toRLE());
        }
      } finally {
        await s.close();
      }
    });
  });

  describe('GET /metrics', () => {
    it('serves Prometheus text with per-route counts and latencies, queues, batches, cache and backend', async () => {
      await embed(WIDE);
      await segment({ imageId: imageId(WIDE), points: [[75, 50, 1]] });
      await segment({ imageId: 'f'.repeat(64), points: [[75, 50, 1]] });
      const res = await inject({ url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      const samples = parsePrometheus(res.body);
      const route = { route: '/v1/segment', method: 'POST' };
      expect(metric(samples, 'omniseg_http_requests_total', { ...route, status: '200' })).toBeGreaterThanOrEqual(1);
      expect(metric(samples, 'omniseg_http_requests_total', { ...route, status: '404' })).toBeGreaterThanOrEqual(1);
      expect(metric(samples, 'omniseg_http_request_duration_seconds_count', route)).toBeGreaterThanOrEqual(2);
      expect(metric(samples, 'omniseg_http_request_duration_seconds_bucket', { ...route, le: '+Inf' })).toBeGreaterThanOrEqual(2);
      expect(samples.some((s) => s.name === 'omniseg_queue_depth' && s.labels.queue === 'encoder')).toBe(true);
      expect(samples.some((s) => s.name === 'omniseg_queue_depth' && s.labels.queue === 'decoder')).toBe(true);
      expect(metric(samples, 'omniseg_encoder_batch_size_count')).toBeGreaterThanOrEqual(1);
      expect(metric(samples, 'omniseg_decodes_total')).toBeGreaterThanOrEqual(1);
      const backend = { device: 'cpu', precision: 'fp32', cpu_matmul: CPU_MATMUL_BF16X3, threads: '2' };
      expect(metric(samples, 'omniseg_backend_info', backend)).toBe(1);
      expect(metric(samples, 'omniseg_ready')).toBe(1);
    });

    it('includes the process metrics (RSS) by default', async () => {
      const s = await createServer({ segmenter });
      try {
        expect(metric(await scrape(s), 'omniseg_process_resident_memory_bytes')).toBeGreaterThan(0);
      } finally {
        await s.close();
      }
    });
  });
});
