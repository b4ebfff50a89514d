// Child-process body for test/server-memory.test.ts (run with --expose-gc): requests against an
// in-process server (inject) on a small model, printing RSS as JSON. Runs the compiled entry
// (dist/lib/server). Every 4th request posts a new image (the cache holds 4 embeddings, so
// evictions free native memory all along); the others decode on the latest image.
// argv: entry-url model-dir requests warmup
const [entry, model, requestsArg, warmupArg] = process.argv.slice(2);
const requests = Number(requestsArg);
const warmup = Number(warmupArg);
const { createServer } = await import(entry);
const { default: sharp } = await import('sharp');

const server = await createServer({ model, threads: 2, cacheBytes: 4 * 32 * 16 * 16 * 4, processMetrics: false });
await server.loaded;

const rssMB = () => {
  globalThis.gc();
  return process.memoryUsage().rss / 2 ** 20;
};
const png = (n) =>
  sharp({ create: { width: 96, height: 64, channels: 3, background: { r: n & 255, g: (n >> 8) & 255, b: 99 } } })
    .png()
    .toBuffer();

let imageId = '';
let baseline = 0;
const samples = [];
for (let i = 1; i <= requests; i++) {
  let res;
  if (i % 4 === 1) {
    res = await server.app.inject({ method: 'POST', url: '/v1/embeddings', headers: { 'content-type': 'image/png' }, payload: await png(i) });
    imageId = res.json().imageId;
  } else {
    res = await server.app.inject({ method: 'POST', url: '/v1/segment', payload: { imageId, points: [[i % 96, i % 64, 1]], multimask: true } });
  }
  if (res.statusCode !== 200) throw new Error(`request ${i}: ${res.statusCode} ${res.body}`);
  if (i === warmup) baseline = rssMB();
  if (i % 100 === 0) samples.push(Math.round(rssMB() * 10) / 10);
}
const final = rssMB();
await server.close();
console.log(JSON.stringify({ baseline, final, growth: final - baseline, samples, cached: server.cache.size }));
