// The server's queues, readiness, cancellation and shutdown, against the fake addon (whose encodes
// and decodes can be held open with gates), over inject() and over a real socket on 127.0.0.1.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { binding, calls, gate, resetCalls } from './helpers/fake-binding.js';
import { metric, parsePrometheus, solidPng } from './helpers/server.js';

vi.mock('../lib/native.js', async () => {
  const { binding } = await import('./helpers/fake-binding.js');
  return { native: () => binding, nativeCuda: () => ({ error: 'not built' }) };
});

const { createServer, imageId } = await import('../lib/server/index.js');
type Server = Awaited<ReturnType<typeof createServer>>;

let modelDir: string;
const images: Buffer[] = [];
beforeAll(async () => {
  modelDir = await mkdtemp(path.join(tmpdir(), 'omniseg-model-'));
  for (let i = 0; i < 4; i++) images.push(await solidPng(20, 10, 40 * i));
});
afterAll(async () => {
  await rm(modelDir, { recursive: true, force: true });
});

let servers: Server[] = [];
beforeEach(() => {
  resetCalls();
});
afterEach(async () => {
  calls.encodeGate?.open();
  calls.decodeGate?.open();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function start(options: Parameters<typeof createServer>[0] = {}): Promise<Server> {
  const server = await createServer({ model: modelDir, processMetrics: false, ...options });
  servers.push(server);
  await server.loaded.catch(() => {});
  return server;
}

const PNG = { 'content-type': 'image/png' };
const embed = (s: Server, image: Buffer) => s.app.inject({ method: 'POST', url: '/v1/embeddings', headers: PNG, payload: image });
const segment = (s: Server, image: Buffer) =>
  s.app.inject({ method: 'POST', url: '/v1/segment', payload: { imageId: imageId(image), points: [[3, 4, 1]] } });
const samples = async (s: Server) => parsePrometheus((await s.app.inject({ url: '/metrics' })).body);

/** Waits until `condition()` holds (polling), failing after 2 s. */
async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met within 2 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
const depth = async (s: Server, queue: string) => metric(await samples(s), 'omniseg_queue_depth', { queue });

describe('readiness', () => {
  it('/readyz and /v1/* answer 503 until the model is loaded', async () => {
    const load = gate();
    const original = binding.loadSam;
    binding.loadSam = async (...args) => {
      await load.promise;
      return original(...args);
    };
    try {
      const server = await createServer({ model: modelDir, processMetrics: false });
      servers.push(server);
      const res = await server.app.inject({ url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.json()).toEqual({ error: { code: 'not_ready', message: 'The model is still loading' } });
      expect((await embed(server, images[0])).json().error.code).toBe('not_ready');
      expect((await server.app.inject({ url: '/healthz' })).statusCode).toBe(200);
      expect(metric(await samples(server), 'omniseg_ready')).toBe(0);
      load.open();
      await server.loaded;
      expect((await server.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    } finally {
      binding.loadSam = original;
    }
  });

  it('stays unready, naming the problem, when the model cannot be loaded', async () => {
    const server = await start({ model: path.join(modelDir, 'missing') });
    await expect(server.loaded).rejects.toThrow(/Model directory not found/);
    const res = await server.app.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json().error).toMatchObject({ code: 'backend_failed', message: expect.stringMatching(/Model directory not found/) });
    expect((await embed(server, images[0])).statusCode).toBe(503);
  });

  it('becomes unready after a fatal backend error, not after an ordinary one', async () => {
    const server = await start();
    await embed(server, images[0]);
    calls.decodeError = new Error('decode failed');
    const ordinary = await segment(server, images[0]);
    expect(ordinary.statusCode).toBe(500);
    expect(ordinary.json().error).toEqual({ code: 'internal_error', message: 'decode failed' });
    expect((await server.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    // running out of memory is that request's failure, on the host or the GPU: the next may fit
    // (one request too large for the host's memory made a CPU server unready for good)
    for (const message of ['out of memory', 'CUDA out of memory in cudaMalloc']) {
      calls.decodeError = new Error(message);
      expect((await segment(server, images[0])).statusCode).toBe(500);
      expect((await server.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    }
    calls.decodeError = new Error('CUDA error: an illegal memory access was encountered');
    expect((await segment(server, images[0])).statusCode).toBe(500);
    const ready = await server.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().error.code).toBe('backend_failed');
    expect(metric(await samples(server), 'omniseg_backend_errors_total')).toBe(4);
  });
});

describe('backpressure', () => {
  it('429 with Retry-After when the encoder queue is full', async () => {
    const server = await start({ maxQueue: 1, maxBatch: 1, batchDelayMs: 0 });
    calls.encodeGate = gate();
    const running = embed(server, images[0]);
    await until(() => calls.encode.length === 1);
    const waiting = embed(server, images[1]);
    await until(async () => (await depth(server, 'encoder')) === 1);
    const refused = await embed(server, images[2]);
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(refused.json().error.code).toBe('queue_full');
    calls.encodeGate.open();
    expect((await running).statusCode).toBe(200);
    expect((await waiting).statusCode).toBe(200);
    expect(metric(await samples(server), 'omniseg_queue_rejected_total', { queue: 'encoder' })).toBe(1);
  });

  it('429 with Retry-After when the decoder queue is full', async () => {
    const server = await start({ maxQueue: 1, decodeConcurrency: 1 });
    await embed(server, images[0]);
    calls.decodeGate = gate();
    const running = segment(server, images[0]);
    await until(() => calls.decode.length === 1);
    const waiting = segment(server, images[0]);
    await until(async () => (await depth(server, 'decoder')) === 1);
    const refused = await segment(server, images[0]);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toMatch(/^\d+$/);
    calls.decodeGate.open();
    expect([(await running).statusCode, (await waiting).statusCode]).toEqual([200, 200]);
  });

  it('decodes on cached embeddings do not wait behind encodes', async () => {
    const server = await start();
    await embed(server, images[0]);
    calls.encodeGate = gate();
    const encoding = embed(server, images[1]);
    await until(() => calls.encode.length === 2);
    expect((await segment(server, images[0])).statusCode).toBe(200);
    calls.encodeGate.open();
    expect((await encoding).statusCode).toBe(200);
  });

  it('batches encoder requests that arrive together', async () => {
    const server = await start({ maxBatch: 4, batchDelayMs: 50 });
    const results = await Promise.all(images.slice(0, 3).map((image) => embed(server, image)));
    expect(results.map((r) => r.statusCode)).toEqual([200, 200, 200]);
    const s = await samples(server);
    expect(metric(s, 'omniseg_encoder_batch_size_count')).toBe(1);
    expect(metric(s, 'omniseg_encoder_batch_size_sum')).toBe(3);
    // One native call for the batch, each image observed with its share of the batch's time.
    expect(calls.encodeBatches).toEqual([3]);
    expect(calls.encode).toHaveLength(3);
    expect(metric(s, 'omniseg_encodes_total')).toBe(3);
    expect(metric(s, 'omniseg_encode_duration_seconds_count')).toBe(3);
    expect(metric(s, 'omniseg_encode_duration_seconds_sum')).toBeCloseTo(0.0125, 9);
  });

  it('refuses options that are not an object, and a segmenter that is not a Segmenter', async () => {
    await expect(createServer(undefined as never)).rejects.toThrow(
      new TypeError('Expected an object {model | segmenter, ...} for options but received undefined of type undefined'),
    );
    await expect(createServer({ segmenter: {} as never })).rejects.toThrow(
      new TypeError('Expected a Segmenter (Segmenter.load) for options.segmenter but received {} of type object'),
    );
  });

  it('takes at most MAX_ENCODE_BATCH requests per batch', async () => {
    await expect(createServer({ model: modelDir, maxBatch: 65 })).rejects.toThrow(
      new RangeError('Expected an integer between 1 and 64 for options.maxBatch but received 65 of type number'),
    );
  });

  it('refuses a negative decoded-image budget by name', async () => {
    await expect(createServer({ model: modelDir, decodedImageCacheBytes: -1 })).rejects.toThrow(
      new RangeError('Expected a number >= 0 for options.decodedImageCacheBytes but received -1 of type number'),
    );
  });

  it('checks every option before loading anything: a wrong type is a TypeError, an unknown key is refused', async () => {
    const refused: Array<[Record<string, unknown>, ErrorConstructor, string | RegExp]> = [
      // (a string budget was a RangeError without its type; a misspelt option a silent default)
      [{ cacheBytes: '1e9' }, TypeError, 'Expected a number >= 0 for options.cacheBytes but received "1e9" of type string'],
      [{ maxQueue: 1.5 }, RangeError, 'Expected an integer >= 1 for options.maxQueue but received 1.5 of type number'],
      [{ cacheMB: 1024 }, RangeError, /^Expected an option createServer takes \(model, segmenter, .*\) for options but received "cacheMB"/],
      [{ device: 'gpu' }, RangeError, /for options\.device but received "gpu"/],
      [{ precision: 'fp8' }, RangeError, /for options\.precision but received "fp8"/],
      [{ threads: 0 }, RangeError, 'Expected an integer between 1 and 1024 for options.threads but received 0 of type number'],
      [{ port: 70000 }, RangeError, 'Expected an integer between 0 and 65535 for options.port but received 70000 of type number'],
      [{ host: 1 }, TypeError, 'Expected a non-empty string for options.host but received 1 of type number'],
      [{ processMetrics: 'no' }, TypeError, 'Expected a boolean for options.processMetrics but received "no" of type string'],
      [{ referrer: '' }, RangeError, 'Expected a non-empty string for options.referrer but received "" of type string'],
      [{ cacheBytes: Infinity }, RangeError, 'Expected a finite number for options.cacheBytes but received Infinity of type number'],
      [{ batchDelayMs: 2 ** 31 }, RangeError, 'Expected a number between 0 and 2147483647 for options.batchDelayMs but received 2147483648 of type number'],
    ];
    for (const [extra, type, message] of refused) {
      const attempt = createServer({ model: modelDir, ...extra });
      await expect(attempt, JSON.stringify(extra)).rejects.toThrow(type);
      await expect(attempt, JSON.stringify(extra)).rejects.toThrow(message);
    }
    await expect(createServer({ model: '' })).rejects.toThrow(new RangeError('Expected a non-empty string for options.model but received "" of type string'));
  });

  it('an image that cannot be decoded fails alone; the rest of its batch is encoded', async () => {
    const server = await start({ maxBatch: 3, batchDelayMs: 50 });
    const bodies = [images[0], Buffer.from('not an image'), images[1]];
    const results = await Promise.all(bodies.map((image) => embed(server, image)));
    expect(results.map((r) => r.statusCode)).toEqual([200, 400, 200]);
    expect(results[1].json().error.message).toMatch(/^Cannot decode image/);
    expect(calls.encodeBatches).toEqual([2]);
  });

  it('an image the model cannot resize fails alone too (fake model: longestEdge 64, so 129:1)', async () => {
    const server = await start({ maxBatch: 3, batchDelayMs: 50 });
    const strip = await solidPng(200, 1, 10);
    const results = await Promise.all([images[0], strip, images[1]].map((image) => embed(server, image)));
    expect(results.map((r) => r.statusCode)).toEqual([200, 400, 200]);
    expect(results[1].json().error.message).toMatch(/at most 128 times its shortest .* for image but received "200x1"/);
    expect(calls.encodeBatches).toEqual([2]);
  });

  it('refuses a request deadline setTimeout cannot keep (2^31 ms or more: it would fire at once)', async () => {
    await expect(createServer({ model: modelDir, requestTimeoutMs: 2 ** 31 })).rejects.toThrow(
      new RangeError('Expected an integer between 1 and 2147483647 for options.requestTimeoutMs but received 2147483648 of type number'),
    );
  });

  it('encodes an image once for concurrent requests', async () => {
    const server = await start();
    const results = await Promise.all([0, 1, 2].map(() => embed(server, images[0])));
    expect(new Set(results.map((r) => r.json().imageId)).size).toBe(1);
    expect(calls.encode).toHaveLength(1);
  });

  it('503 with Retry-After when a request passes its deadline; its queued work never runs', async () => {
    const server = await start({ requestTimeoutMs: 150, maxBatch: 1, batchDelayMs: 0 });
    calls.encodeGate = gate();
    const [first, second] = await Promise.all([embed(server, images[0]), embed(server, images[1])]);
    for (const res of [first, second]) {
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.json().error.code).toBe('timeout');
    }
    calls.encodeGate.open();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(calls.encode).toHaveLength(1);
    expect(calls.embeddings.every((e) => e.disposed)).toBe(true);
    const s = await samples(server);
    expect(metric(s, 'omniseg_requests_cancelled_total', { route: '/v1/embeddings', reason: 'timeout' })).toBe(2);
  });
});

describe('over a socket', () => {
  it('a request past its deadline is a 503 timeout over HTTP too (not 499: its body was read)', async () => {
    const server = await start({ requestTimeoutMs: 150, maxBatch: 1, batchDelayMs: 0 });
    const base = await server.listen({ port: 0 });
    calls.encodeGate = gate();
    const res = await fetch(`${base}/v1/embeddings`, { method: 'POST', headers: PNG, body: new Uint8Array(images[0]) });
    expect(res.status).toBe(503);
    expect((await res.json()).error.code).toBe('timeout');
    calls.encodeGate.open();
    const s = await samples(server);
    expect(metric(s, 'omniseg_requests_cancelled_total', { route: '/v1/embeddings', reason: 'timeout' })).toBe(1);
    expect(metric(s, 'omniseg_requests_cancelled_total', { route: '/v1/embeddings', reason: 'client_gone' })).toBe(0);
  });

  it('closes a connection whose upload stalls for the whole deadline; close() waits for it no longer', async () => {
    const deadline = 300;
    const server = await start({ requestTimeoutMs: deadline });
    const base = new URL(await server.listen({ port: 0 }));
    const { connect } = await import('node:net');
    const socket = connect(Number(base.port), base.hostname);
    const t0 = performance.now();
    const ended = new Promise<number>((resolve) => socket.on('close', () => resolve(performance.now() - t0)));
    socket.write('POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n0123456789');
    await new Promise((resolve) => setTimeout(resolve, 50)); // (the request has reached the server)
    const closed = server.close().then(() => performance.now() - t0);
    const [endedMs, closedMs] = await Promise.all([ended, closed]);
    // The server ends the silent connection once the deadline has passed (not before: it is in
    // flight), and close(), called while it was open, resolves after it and without waiting more.
    expect(endedMs).toBeGreaterThanOrEqual(deadline - 20);
    expect(closedMs).toBeGreaterThanOrEqual(endedMs - 20);
    expect(closedMs).toBeLessThan(deadline + 2000);
  });

  it('serves concurrent clients', async () => {
    const server = await start();
    const base = await server.listen({ port: 0 });
    await embed(server, images[0]);
    const responses = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        fetch(`${base}/v1/segment`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ imageId: imageId(images[0]), points: [[i, 5, 1]] }),
        }),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(16).fill(200));
    expect(calls.decode).toHaveLength(16);
  });

  it('a client that disconnects cancels its queued encode and decode', async () => {
    const server = await start({ maxBatch: 1, batchDelayMs: 0, decodeConcurrency: 1 });
    const base = await server.listen({ port: 0 });
    await embed(server, images[0]);
    const post = (url: string, body: string | Uint8Array, type: string, signal?: AbortSignal) =>
      fetch(`${base}${url}`, { method: 'POST', headers: { 'content-type': type }, body: typeof body === 'string' ? body : new Uint8Array(body), signal });

    calls.encodeGate = gate();
    const running = post('/v1/embeddings', images[1], 'image/png');
    await until(() => calls.encode.length === 2);
    const client = new AbortController();
    const queued = post('/v1/embeddings', images[2], 'image/png', client.signal);
    await until(async () => (await depth(server, 'encoder')) === 1);
    client.abort();
    await expect(queued).rejects.toThrow();
    await until(async () => (await depth(server, 'encoder')) === 0);

    calls.decodeGate = gate();
    const json = JSON.stringify({ imageId: imageId(images[0]), points: [[3, 4, 1]] });
    const decoding = post('/v1/segment', json, 'application/json');
    await until(() => calls.decode.length === 1);
    const decodeClient = new AbortController();
    const queuedDecode = post('/v1/segment', json, 'application/json', decodeClient.signal);
    await until(async () => (await depth(server, 'decoder')) === 1);
    decodeClient.abort();
    await expect(queuedDecode).rejects.toThrow();
    await until(async () => (await depth(server, 'decoder')) === 0);

    calls.encodeGate.open();
    calls.decodeGate.open();
    expect((await running).status).toBe(200);
    expect((await decoding).status).toBe(200);
    expect(calls.encode).toHaveLength(2);
    expect(calls.decode).toHaveLength(1);
    const s = await samples(server);
    expect(metric(s, 'omniseg_requests_cancelled_total', { route: '/v1/embeddings', reason: 'client_gone' })).toBe(1);
    expect(metric(s, 'omniseg_requests_cancelled_total', { route: '/v1/segment', reason: 'client_gone' })).toBe(1);
    // counted with status 499, as the README says (no response finishes for them: they were not)
    for (const route of ['/v1/embeddings', '/v1/segment']) {
      expect(metric(s, 'omniseg_http_requests_total', { route, method: 'POST', status: '499' })).toBe(1);
      expect(metric(s, 'omniseg_http_request_duration_seconds_count', { route, method: 'POST' })).toBe(route === '/v1/segment' ? 2 : 3);
    }
  });

  it('a client that disconnects while its batch is encoded gets nothing; its embedding is freed', async () => {
    const server = await start({ maxBatch: 2, batchDelayMs: 50 });
    const base = await server.listen({ port: 0 });
    calls.encodeGate = gate();
    const client = new AbortController();
    const post = (image: Buffer, signal?: AbortSignal) =>
      fetch(`${base}/v1/embeddings`, { method: 'POST', headers: PNG, body: new Uint8Array(image), signal });
    const kept = post(images[0]);
    const gone = post(images[1], client.signal);
    await until(() => calls.encodeBatches.length === 1);
    client.abort();
    await expect(gone).rejects.toThrow();
    await until(async () => metric(await samples(server), 'omniseg_requests_cancelled_total', { route: '/v1/embeddings', reason: 'client_gone' }) === 1);
    calls.encodeGate.open();
    const res = await kept;
    expect(res.status).toBe(200);
    expect(calls.encodeBatches).toEqual([2]);
    // The kept image's embedding is cached; the other one was freed when it came back.
    await until(() => calls.embeddings.filter((e) => e.disposed).length === 1);
    expect(server.cache.has(imageId(images[0]))).toBe(true);
    expect(server.cache.has(imageId(images[1]))).toBe(false);
  });

  it('shuts down gracefully: refuses new connections, finishes in-flight work, frees the embeddings', async () => {
    const server = await start();
    const base = await server.listen({ port: 0 });
    calls.encodeGate = gate();
    const inFlight = fetch(`${base}/v1/embeddings`, { method: 'POST', headers: PNG, body: new Uint8Array(images[0]) });
    await until(() => calls.encode.length === 1);
    let closed = false;
    const closing = server.close().then(() => {
      closed = true;
    });
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    expect(closed).toBe(false);
    calls.encodeGate.open();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect((await res.json()).imageId).toBe(imageId(images[0]));
    await closing;
    expect(calls.embeddings.every((e) => e.disposed)).toBe(true);
  });
});
