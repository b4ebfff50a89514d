#!/usr/bin/env node
// `npm run bench:server`: the HTTP server (omniseg serve, in a child process) under load from
// closed-loop keep-alive clients in this process:
//   1. decode-only requests on a cached embedding (POST /v1/segment {imageId, points}), 1 and 16
//      clients: requests/s, p50, p99;
//   2. encoder throughput (POST /v1/embeddings, every request a different image), 16 clients,
//      without batching (--max-batch 1) and with it (--max-batch 8 and 16): images/s;
//   3. the server's RSS before and after (from its /metrics);
//   4. mask formats on a 4000 × 3000 image (rle, png, polygons: 4 boxes × 3 masks a request, one
//      client) while a second client sends one-point decodes: requests/s of each, the probe's
//      p99 and the server's longest event-loop stall (nodejs_eventloop_lag_max_seconds), which
//      show the formatting work left on the server's JS thread;
//   5. with the referrer (--referrer, the tiny CLIPSeg fixture by default) on a 1920 × 1080 image,
//      one client per request kind, and the labelled and referring segments on a 4000 × 3000 one:
//      requests/s and the longest event-loop stall of each.
// With batching, a batch's images go to the native encoder in one Segmenter.encodeBatch call (its
// matrix products cover the whole batch); without it (--max-batch 1), one image per call.
//
// --device and --precision go to `omniseg serve` as they are (scripts/gpu-check.sh runs sections 1
// and 2 on a GPU with --device cuda).
//
//   npm run bench:server [-- --model dir --image file --seconds 5 --threads 2 --sections 1,2,4,5 --device auto
//                            --precision fp32 --json]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: path.join(root, 'test', 'fixtures', 'sam-tiny', 'model') },
    referrer: { type: 'string', default: path.join(root, 'test', 'fixtures', 'clipseg-tiny', 'model') },
    image: { type: 'string', default: path.join(root, 'test', 'fixtures', 'sam-tiny', 'wide.png') },
    seconds: { type: 'string', default: '5' },
    threads: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
    sections: { type: 'string', default: '1,2,4,5' },
    device: { type: 'string' },
    precision: { type: 'string' },
  },
});
/** The sections asked for (--sections 4,5 runs only those; 3, the RSS, comes with 1). */
const sections = new Set(values.sections.split(',').map(Number));
const seconds = Number(values.seconds);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** --device / --precision as given, for every server started. */
const backend = [...(values.device ? ['--device', values.device] : []), ...(values.precision ? ['--precision', values.precision] : [])];

/** Starts `omniseg serve` on a free port; resolves with its base URL and a stop function. */
async function startServer(extra) {
  const child = spawn(
    process.execPath,
    [path.join(root, 'dist', 'lib', 'cli.js'), 'serve', '--model', values.model, '--port', '0', '--threads', values.threads, '--max-queue', '1024', ...backend, ...extra],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let log = '';
  const base = await new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      log += chunk;
      const url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(log)?.[1];
      if (url !== undefined && /model loaded/.test(log)) resolve(url);
    });
    child.on('exit', (code) => reject(new Error(`omniseg serve exited with ${code}:\n${log}`)));
  });
  const stop = () =>
    new Promise((resolve) => {
      child.removeAllListeners('exit');
      child.on('exit', resolve);
      child.kill('SIGTERM');
    });
  return { base, stop };
}

function request(base, method, url, body, type) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${url}`, { method, agent, headers: body ? { 'content-type': type, 'content-length': body.length } : {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** `clients` closed loops of `makeRequest` for `seconds`: requests/s and latency percentiles. */
async function load(clients, makeRequest) {
  const latencies = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let i = 0; performance.now() < end; i++) {
        const t = performance.now();
        const res = await makeRequest(client, i);
        if (res.status !== 200) errors++;
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
  return { clients, requests: latencies.length, errors, perSecond: latencies.length / elapsed, p50Ms: pct(50), p99Ms: pct(99) };
}

/** The server's longest event-loop stall (ms) since the last call: prom-client resets its histogram on each scrape. */
const eventLoopStallMs = async (base) =>
  Number(/^omniseg_nodejs_eventloop_lag_max_seconds (\S+)/m.exec((await request(base, 'GET', '/metrics')).body)?.[1]) * 1000;

const rss = async (base) =>
  Number(/^omniseg_process_resident_memory_bytes (\d+)/m.exec((await request(base, 'GET', '/metrics')).body)?.[1] ?? NaN) / 2 ** 20;

const image = readFileSync(values.image);
const { width, height } = await sharp(image).metadata();
const results = { model: values.model, image: values.image, seconds, threads: Number(values.threads), decode: [], encode: [] };

// 1. Decode-only on a cached embedding.
if (sections.has(1)) {
  const { base, stop } = await startServer([]);
  const { imageId } = JSON.parse((await request(base, 'POST', '/v1/embeddings', image, 'image/png')).body);
  results.rssBeforeMB = await rss(base);
  results.rssAfterMB = [];
  for (const clients of [1, 16, 16]) {
    results.decode.push(
      await load(clients, (client, i) => {
        const body = JSON.stringify({ imageId, points: [[(client * 7 + i) % width, (i * 3) % height, 1]] });
        return request(base, 'POST', '/v1/segment', Buffer.from(body), 'application/json');
      }),
    );
    results.rssAfterMB.push(await rss(base));
  }
  await stop();
}

// 2. Encoder throughput, each request a new image (one pixel differs), with and without batching.
const raw = await sharp(image).removeAlpha().raw().toBuffer({ resolveWithObject: true });
let serial = 0;
const variant = () => {
  const data = Buffer.from(raw.data);
  const n = serial++;
  data[0] = n & 255;
  data[1] = (n >> 8) & 255;
  data[2] = (n >> 16) & 255;
  return sharp(data, { raw: raw.info }).png({ compressionLevel: 1 }).toBuffer();
};
const pool = sections.has(2) ? await Promise.all(Array.from({ length: 4096 }, variant)) : [];
let next = 0;
for (const [label, flags] of !sections.has(2) ? [] : [
  ['no batching', ['--max-batch', '1', '--batch-delay-ms', '0']],
  ['batching (8, 2 ms)', ['--max-batch', '8', '--batch-delay-ms', '2']],
  ['batching (16, 2 ms)', ['--max-batch', '16', '--batch-delay-ms', '2']],
]) {
  const { base, stop } = await startServer([...flags, '--cache-mb', '64']);
  const r = await load(16, () => request(base, 'POST', '/v1/embeddings', pool[next++ % pool.length], 'image/png'));
  const metrics = (await request(base, 'GET', '/metrics')).body;
  const sum = Number(/^omniseg_encoder_batch_size_sum (\S+)/m.exec(metrics)?.[1]);
  const count = Number(/^omniseg_encoder_batch_size_count (\S+)/m.exec(metrics)?.[1]);
  results.encode.push({ label, ...r, meanBatch: sum / count });
  await stop();
}
// 4. Mask formats of a large image, and how long they hold up the server's other requests.
results.formats = [];
if (sections.has(4)) {
  const big = await sharp(image).resize(4000, 3000, { fit: 'fill' }).png({ compressionLevel: 1 }).toBuffer();
  const { base, stop } = await startServer([]);
  const { imageId } = JSON.parse((await request(base, 'POST', '/v1/embeddings', big, 'image/png')).body);
  const boxes = [[200, 150, 1800, 1400], [2000, 150, 3800, 1400], [200, 1600, 1800, 2850], [1200, 800, 3000, 2400]];
  const lagMax = () => eventLoopStallMs(base);
  for (const format of ['rle', 'png', 'polygons']) {
    const body = Buffer.from(JSON.stringify({ imageId, boxes, multimask: true, format }));
    await request(base, 'POST', '/v1/segment', body, 'application/json'); // warm-up
    await lagMax(); // resets the server's lag histogram
    const [formatted, probe] = await Promise.all([
      load(1, () => request(base, 'POST', '/v1/segment', body, 'application/json')),
      load(1, (_, i) => {
        const point = JSON.stringify({ imageId, points: [[(i * 37) % 4000, (i * 23) % 3000, 1]] });
        return request(base, 'POST', '/v1/segment', Buffer.from(point), 'application/json');
      }),
    ]);
    results.formats.push({ format, formatted, probe, lagMaxMs: await lagMax() });
  }
  await stop();
}
// 5. Referrer routes at 1080p (and the heaviest two at 12 MP): how long each kind of request holds
// the server's event loop.
results.referrer = [];
for (const [sceneWidth, sceneHeight, only] of !sections.has(5) ? [] : [
  [1920, 1080, undefined],
  [4000, 3000, ['segment, 1 point + 5 labels', 'referring segment (text)']],
]) {
  const scene = await sharp({ create: { width: sceneWidth, height: sceneHeight, channels: 3, background: { r: 90, g: 120, b: 200 } } })
    .composite([
      {
        input: await sharp(image).resize(Math.round((sceneWidth * 900) / 1920), Math.round((sceneHeight * 600) / 1080)).toBuffer(),
        left: Math.round((sceneWidth * 300) / 1920),
        top: Math.round((sceneHeight * 200) / 1080),
      },
    ])
    .png()
    .toBuffer();
  const { base, stop } = await startServer(['--referrer', values.referrer]);
  const { imageId } = JSON.parse((await request(base, 'POST', '/v1/embeddings', scene, 'image/png')).body);
  const point = [[Math.round((sceneWidth * 700) / 1920), Math.round((sceneHeight * 500) / 1080), 1]];
  const kinds = {
    'segment, 1 point': ['/v1/segment', { imageId, points: point }],
    'segment, 1 point + 5 labels': ['/v1/segment', { imageId, points: point, vocabulary: ['cat', 'dog', 'car', 'tree', 'person'] }],
    'heat map, float32': ['/v1/heatmap', { imageId, text: 'a cat' }],
    'heat map, png': ['/v1/heatmap', { imageId, text: 'a cat', format: 'png' }],
    'referring segment (text)': ['/v1/segment', { imageId, text: 'a cat', threshold: 0.3 }],
  };
  for (const [kind, [url, body]] of Object.entries(kinds)) {
    if (only !== undefined && !only.includes(kind)) continue;
    const payload = Buffer.from(JSON.stringify(body));
    await request(base, 'POST', url, payload, 'application/json'); // warm-up (fills the caches)
    await eventLoopStallMs(base);
    const r = await load(1, () => request(base, 'POST', url, payload, 'application/json'));
    results.referrer.push({ kind, size: `${sceneWidth}x${sceneHeight}`, ...r, lagMaxMs: await eventLoopStallMs(base) });
  }
  await stop();
}
agent.destroy();

if (values.json) {
  console.log(JSON.stringify(results));
} else {
  const f = (x) => x.toFixed(1);
  console.log(`omniseg serve: ${path.basename(values.model)}, ${path.basename(values.image)} (${width}x${height}), ${values.threads} threads, ${seconds} s per run`);
  for (const r of results.decode) {
    console.log(`  decode (cached embedding), ${String(r.clients).padStart(2)} clients: ${f(r.perSecond)} req/s, p50 ${f(r.p50Ms)} ms, p99 ${f(r.p99Ms)} ms, errors ${r.errors}`);
  }
  for (const r of results.encode) {
    console.log(`  encode, 16 clients, ${r.label}: ${f(r.perSecond)} images/s, p50 ${f(r.p50Ms)} ms, p99 ${f(r.p99Ms)} ms, mean batch ${f(r.meanBatch)}, errors ${r.errors}`);
  }
  for (const r of results.formats) {
    console.log(
      `  format ${r.format.padEnd(8)} (4000x3000, 12 masks): ${f(r.formatted.perSecond)} req/s, p50 ${f(r.formatted.p50Ms)} ms; ` +
        `meanwhile one-point decodes p50 ${f(r.probe.p50Ms)} ms, p99 ${f(r.probe.p99Ms)} ms; longest event-loop stall ${f(r.lagMaxMs)} ms`,
    );
  }
  for (const r of results.referrer) {
    console.log(
      `  referrer ${r.size.padEnd(9)}, ${r.kind.padEnd(28)}: ${f(r.perSecond)} req/s, p50 ${f(r.p50Ms)} ms, errors ${r.errors}; longest event-loop stall ${f(r.lagMaxMs)} ms`,
    );
  }
  if (results.decode.length > 0) {
    let total = 0;
    const after = results.decode.map((r, i) => `${f(results.rssAfterMB[i])} MB after ${(total += r.requests)}`);
    console.log(`  server RSS: ${f(results.rssBeforeMB)} MB before the decode runs, then ${after.join(', ')} requests`);
  }
}
