#!/usr/bin/env node
// The CUDA backend through the library (issue #7), on a machine with an NVIDIA GPU: what the
// standalone checks (test/gpu, scripts/gpu-check.sh `ops` / `sam` / `clipseg`) cannot see, because
// they drive the native core without Node. Run by `scripts/gpu-check.sh run node` from the repo
// root, with the prebuilds and production dependencies `scripts/gpu-check.sh build` packed (the
// CPU prebuild and the CUDA prebuild, found and probed as on a user's machine).
//
// Checks (exit 1, naming each failure):
//   1. cudaStatus() finds the CUDA prebuild compiled and available, and device 'auto' picks it.
//   2. SAM, fp32 on CUDA against the CPU prebuild through the public API, per image and prompt
//      case: embedding rel L2 <= 1e-4, scores within 1e-4, <= 0.1 % of each mask's pixels
//      different; the fp16 / bf16 encoders within models/sam/gpu_check.py's half bounds.
//   3. `rle: true` decodes (run lengths found on the GPU) equal the dense masks' run lengths.
//   4. Embedding transfers: toFloat32ArrayAsync equals toFloat32Array; the CPU's embedding loaded
//      on CUDA (embeddingFromFloat32ArrayAsync) decodes to the CPU's masks.
//   5. encodeBatch of 4 images equals the 4 single encodes (rel L2 <= 1e-5).
//   6. Concurrency: 32 decodes started at once on two models sharing the GPU (each decode queue
//      runs one at a time, beside its model's encodes), while 4 encodes run, give the masks of the
//      same decodes run one by one (within the fp32 bounds; how many bit for bit is printed).
//   7. CLIPSeg heat maps on CUDA against the CPU: rel L2 <= 1e-4.
//   8. The event loop: the longest gap of a 1 ms timer while 2-7 run stays under 100 ms.
// Timings (medians of --iters, ms): encode from a PNG file and from raw pixels, decode at image
// size (dense and rle), encodeBatch per image, rle decodes/s with 64 queued, a CLIPSeg heat map;
// for CUDA fp32 and bf16 and for the CPU in the same run.
//
//   node scripts/gpu-node-check.mjs --sam DIR --clipseg DIR --images DIR [--iters 10] [--device cuda]
// (--device cpu runs every step with the CPU on both sides: a check of this script without a GPU.)
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { Segmenter, Referrer, cudaStatus, decodeImage, encodeRLE } = await import(path.join(root, 'dist', 'lib', 'index.js'));

const { values } = parseArgs({
  options: {
    sam: { type: 'string' },
    clipseg: { type: 'string' },
    images: { type: 'string' },
    iters: { type: 'string', default: '10' },
    device: { type: 'string', default: 'cuda' },
  },
});
if (!values.sam || !values.clipseg || !values.images || !['cuda', 'cpu'].includes(values.device)) {
  console.error('usage: node scripts/gpu-node-check.mjs --sam DIR --clipseg DIR --images DIR [--iters N] [--device cuda|cpu]');
  process.exit(2);
}
const iters = Number(values.iters);
const device = values.device;

const EMB_REL_L2_MAX = 1e-4;
const SCORE_MAX = 1e-4;
const MASK_MISMATCH_MAX = 1e-3;
const HALF_BOUNDS = { fp16: { emb: 1e-2, mask: 1e-2 }, bf16: { emb: 5e-2, mask: 3e-2 } }; // as gpu_check.py
const BATCH_REL_L2_MAX = 1e-5;
const HEATMAP_REL_L2_MAX = 1e-4;
const EVENT_LOOP_GAP_MAX_MS = 100;

const failures = [];
const fail = (what) => {
  failures.push(what);
  console.log(`  FAIL ${what}`);
};
const relL2 = (a, b) => {
  let d = 0;
  let n = 0;
  for (let i = 0; i < b.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d / Math.max(n, 1e-30));
};
const mismatch = (a, b) => {
  let m = 0;
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) m++;
  return m / b.length;
};
const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
async function timed(fn, n = iters) {
  await fn(); // warm-up
  const ms = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return median(ms);
}
const fmt = (v) => (v === undefined ? '-' : v < 10 ? v.toFixed(2) : v.toFixed(1));

// 1. the CUDA prebuild, as a user's installation finds it
const status = cudaStatus();
console.log(`cudaStatus(): ${JSON.stringify(status)}`);
if (device === 'cuda') {
  if (!status.compiled || !status.available) fail(`cudaStatus(): CUDA is not available (${status.reason ?? 'no reason'})`);
  const auto = await Segmenter.load({ model: values.sam });
  console.log(`device 'auto' picked ${auto.device}`);
  if (auto.device !== 'cuda') fail(`device 'auto' picked ${auto.device}, not cuda`);
  auto.dispose();
}

const files = readdirSync(values.images)
  .filter((f) => f.endsWith('.png'))
  .map((f) => path.join(values.images, f));
const images = await Promise.all(files.map(async (file) => ({ file, ...(await decodeImage(file)) })));
const raw = (img) => ({ data: img.data, width: img.width, height: img.height, channels: 3 });
console.log(`images: ${images.map((i) => `${path.basename(i.file)} ${i.width}x${i.height}`).join(', ')}`);

const cases = (w, h) => [
  { name: 'point_multi', prompt: { points: [{ x: 0.48 * w, y: 0.4 * h, label: 1 }] }, multimask: true },
  { name: 'box', prompt: { boxes: [[0.25 * w, 0.2 * h, 0.75 * w, 0.85 * h]] }, multimask: false },
  {
    name: 'points3',
    prompt: { points: [{ x: 0.3 * w, y: 0.5 * h, label: 1 }, { x: 0.6 * w, y: 0.45 * h, label: 1 }, { x: 0.8 * w, y: 0.2 * h, label: 0 }] },
    multimask: false,
  },
];
const decodeAll = async (seg, emb, img, opts = {}) => {
  const out = [];
  for (const c of cases(img.width, img.height)) out.push((await seg.segment(emb, c.prompt, { multimask: c.multimask, ...opts })).masks);
  return out;
};
// masks (per case, per mask) of `ours` against `ref`: each mask within `maxMismatch`, scores within SCORE_MAX
const compareMasks = (label, ours, ref, maxMismatch, scores = true) => {
  let worst = 0;
  let worstScore = 0;
  ours.forEach((masks, c) => {
    if (masks.length !== ref[c].length) return fail(`${label} case ${c}: ${masks.length} masks, expected ${ref[c].length}`);
    masks.forEach((m, i) => {
      const mm = mismatch(m.data, ref[c][i].data);
      worst = Math.max(worst, mm);
      worstScore = Math.max(worstScore, Math.abs(m.score - ref[c][i].score));
      if (mm > maxMismatch) fail(`${label} case ${c} mask ${i}: ${(mm * 100).toFixed(3)} % of pixels differ (bound ${maxMismatch * 100} %)`);
    });
  });
  if (scores && worstScore > SCORE_MAX) fail(`${label}: score error ${worstScore.toExponential(2)} > ${SCORE_MAX}`);
  return { worst, worstScore };
};

const cpu = await Segmenter.load({ model: values.sam, device: 'cpu', cpuMatmul: 'fp32' });
const gpu = await Segmenter.load({ model: values.sam, device, precision: 'fp32' });
console.log(`SAM: CPU prebuild ${cpu.threads} threads; ${gpu.device} fp32`);
// (loaded before the event loop is watched: parsing the CLIP tokenizer's files is JS work)
const rCpu = await Referrer.load({ model: values.clipseg, device: 'cpu', cpuMatmul: 'fp32' });
const rGpu = await Referrer.load({ model: values.clipseg, device });

// 8. the event loop, watched from here to the end of the checks
let lastTick = performance.now();
let longestGap = 0;
let phase = 'start';
const gaps = new Map(); // phase → its longest gap
const ticker = setInterval(() => {
  const now = performance.now();
  longestGap = Math.max(longestGap, now - lastTick);
  gaps.set(phase, Math.max(gaps.get(phase) ?? 0, now - lastTick));
  lastTick = now;
}, 1);

// 2. fp32 parity with the CPU; 3. rle; 4. transfers
const refs = [];
for (const img of images) {
  const name = path.basename(img.file);
  phase = `fp32 ${name}`;
  const eCpu = await cpu.encode(raw(img));
  const eGpu = await gpu.encode(raw(img));
  const fCpu = await eCpu.toFloat32ArrayAsync();
  const fGpu = await eGpu.toFloat32ArrayAsync();
  const emb = relL2(fGpu, fCpu);
  if (!(emb <= EMB_REL_L2_MAX)) fail(`${name}: embedding rel L2 ${emb.toExponential(2)} > ${EMB_REL_L2_MAX}`);
  if (relL2(eGpu.toFloat32Array(), fGpu) !== 0) fail(`${name}: toFloat32Array and toFloat32ArrayAsync differ`);
  const mCpu = await decodeAll(cpu, eCpu, img);
  const mGpu = await decodeAll(gpu, eGpu, img);
  const { worst, worstScore } = compareMasks(`${name} fp32`, mGpu, mCpu, MASK_MISMATCH_MAX);
  const mRle = await decodeAll(gpu, eGpu, img, { rle: true });
  mRle.forEach((masks, c) =>
    masks.forEach((m, i) => {
      const dense = mGpu[c][i];
      if (m.toRLE().counts !== encodeRLE(dense.data, dense.height, dense.width).counts) fail(`${name} case ${c} mask ${i}: rle decode differs from the dense mask`);
    }),
  );
  const loaded = await gpu.embeddingFromFloat32ArrayAsync(fCpu, img.width, img.height);
  const mLoaded = await decodeAll(gpu, loaded, img);
  const fromCpu = compareMasks(`${name} CPU embedding decoded on ${device}`, mLoaded, mCpu, MASK_MISMATCH_MAX);
  loaded.dispose();
  console.log(
    `${name}: embedding rel L2 ${emb.toExponential(2)}, masks ≤ ${(worst * 100).toFixed(4)} % pixels, scores ≤ ${worstScore.toExponential(2)}; ` +
      `CPU embedding decoded on ${device}: ≤ ${(fromCpu.worst * 100).toFixed(4)} %; rle ok`,
  );
  refs.push({ img, name, fCpu, mCpu, eGpu, mGpu });
  eCpu.dispose();
}

// 2. half precision, against the CPU's fp32
for (const precision of device === 'cuda' ? ['bf16', 'fp16'] : []) {
  phase = precision;
  const half = await Segmenter.load({ model: values.sam, device, precision });
  for (const r of refs) {
    const e = await half.encode(raw(r.img));
    const emb = relL2(await e.toFloat32ArrayAsync(), r.fCpu);
    const { worst } = compareMasks(`${r.name} ${precision}`, await decodeAll(half, e, r.img), r.mCpu, HALF_BOUNDS[precision].mask, false);
    if (!(emb <= HALF_BOUNDS[precision].emb)) fail(`${r.name} ${precision}: embedding rel L2 ${emb.toExponential(2)} > ${HALF_BOUNDS[precision].emb}`);
    console.log(`${r.name} ${precision}: embedding rel L2 ${emb.toExponential(2)}, masks ≤ ${(worst * 100).toFixed(3)} % pixels`);
    e.dispose();
  }
  half.dispose();
}

// 5. encodeBatch: 4 images (the test images, repeated) in one call
phase = 'encodeBatch';
const batchImages = Array.from({ length: 4 }, (_, i) => raw(images[i % images.length]));
const batch = await gpu.encodeBatch(batchImages);
let batchWorst = 0;
for (let i = 0; i < batch.length; i++) {
  const single = refs[i % refs.length].eGpu;
  batchWorst = Math.max(batchWorst, relL2(await batch[i].toFloat32ArrayAsync(), await single.toFloat32ArrayAsync()));
  batch[i].dispose();
}
if (!(batchWorst <= BATCH_REL_L2_MAX)) fail(`encodeBatch: rel L2 ${batchWorst.toExponential(2)} from the single encodes > ${BATCH_REL_L2_MAX}`);
console.log(`encodeBatch(4): rel L2 from single encodes ≤ ${batchWorst.toExponential(2)}`);

// 6. concurrency: 32 decodes at once on two models, with encodes running beside them
{
  phase = 'concurrency';
  const second = await Segmenter.load({ model: values.sam, device, precision: 'fp32' });
  const secondEmbeddings = await Promise.all(refs.map((r) => second.encode(raw(r.img))));
  const jobs = Array.from({ length: 32 }, (_, j) => ({ r: refs[j % refs.length], e: j % 2 ? secondEmbeddings[j % refs.length] : undefined, c: j % 3 }));
  const encodes = Array.from({ length: 4 }, (_, i) => (i % 2 ? second : gpu).encode(raw(images[i % images.length])));
  const results = await Promise.all(
    jobs.map(({ r, e, c }) => {
      const k = cases(r.img.width, r.img.height)[c];
      return e ? second.segment(e, k.prompt, { multimask: k.multimask }) : gpu.segment(r.eGpu, k.prompt, { multimask: k.multimask });
    }),
  );
  // a race shows as garbage; fp32 noise (a GEMM algorithm chosen differently) would stay within the parity bounds
  let bad = 0;
  let exact = 0;
  for (const [j, { masks }] of results.entries()) {
    const { r, c } = jobs[j];
    masks.forEach((m, i) => {
      const mm = mismatch(m.data, r.mGpu[c][i].data);
      const ds = Math.abs(m.score - r.mGpu[c][i].score);
      if (mm > MASK_MISMATCH_MAX || ds > SCORE_MAX) bad++;
      else if (mm === 0 && ds === 0) exact++;
    });
    await new Promise((resolve) => setImmediate(resolve)); // (this script's own pixel loops: a decode's worth at a time)
  }
  for (const e of await Promise.all(encodes)) e.dispose();
  for (const e of secondEmbeddings) e.dispose();
  second.dispose();
  const total = results.reduce((n, { masks }) => n + masks.length, 0);
  if (bad > 0) fail(`concurrency: ${bad} of ${total} masks of 32 concurrent decodes differ from the same decodes run one by one`);
  console.log(`concurrency: 32 decodes on two models beside 4 encodes: ${exact} of ${total} masks bit for bit as run one by one, ${bad} outside the bounds`);
}

// 7. CLIPSeg
phase = 'CLIPSeg';
for (const img of images) {
  for (const text of ['a cat', 'a person in a space suit']) {
    const a = await rGpu.heatmap(raw(img), { text });
    const b = await rCpu.heatmap(raw(img), { text });
    const e = relL2(a.logits, b.logits);
    if (!(e <= HEATMAP_REL_L2_MAX)) fail(`${path.basename(img.file)} "${text}": heat-map logits rel L2 ${e.toExponential(2)} > ${HEATMAP_REL_L2_MAX}`);
    console.log(`CLIPSeg ${path.basename(img.file)} "${text}": logits rel L2 ${e.toExponential(2)}`);
  }
}
console.log(`event loop: longest gap ${longestGap.toFixed(1)} ms during the checks (${[...gaps].map(([p, g]) => `${p} ${g.toFixed(1)}`).join(', ')})`);
if (longestGap > EVENT_LOOP_GAP_MAX_MS) fail(`the event loop stalled ${longestGap.toFixed(1)} ms (bound ${EVENT_LOOP_GAP_MAX_MS} ms)`);
clearInterval(ticker);

// Timings: the largest test image
const big = refs.reduce((a, b) => (a.img.width * a.img.height >= b.img.width * b.img.height ? a : b));
const point = cases(big.img.width, big.img.height)[0];
const rows = [];
const bf16 = device === 'cuda' ? await Segmenter.load({ model: values.sam, device, precision: 'bf16' }) : undefined;
for (const [label, seg, n] of [
  [`${device} fp32`, gpu, iters],
  ...(bf16 ? [[`${device} bf16`, bf16, iters]] : []),
  ['cpu fp32', cpu, Math.max(2, Math.ceil(iters / 5))],
]) {
  const emb = await seg.encode(raw(big.img));
  const row = { label };
  row.encodeFile = await timed(async () => (await seg.encode(big.img.file)).dispose(), n);
  row.encodeRaw = await timed(async () => (await seg.encode(raw(big.img))).dispose(), n);
  row.batch = (await timed(async () => (await seg.encodeBatch(batchImages)).forEach((e) => e.dispose()), Math.max(2, Math.ceil(n / 4)))) / batchImages.length;
  row.decode = await timed(() => seg.segment(emb, point.prompt, { multimask: true }), n * 3);
  row.decodeRle = await timed(() => seg.segment(emb, point.prompt, { multimask: true, rle: true }), n * 3);
  const t = performance.now();
  const queued = 64;
  await Promise.all(Array.from({ length: queued }, () => seg.segment(emb, point.prompt, { multimask: true, rle: true })));
  row.decodesPerS = (queued * 1000) / (performance.now() - t);
  emb.dispose();
  rows.push(row);
}
// (rows[0] is the device's fp32 row, the last the CPU's; with --device cpu both say "cpu fp32")
for (const [row, ref, n] of [
  [rows[0], rGpu, iters],
  [rows.at(-1), rCpu, Math.max(2, Math.ceil(iters / 5))],
]) {
  row.heatmap = await timed(() => ref.heatmap(raw(big.img), { text: 'a person' }), n);
}
console.log(`\ntimings, ${big.name} ${big.img.width}x${big.img.height}, median ms (decodes at image size, 3 masks):`);
console.log(['', 'encode file', 'encode raw', 'batch(4)/img', 'decode', 'decode rle', 'rle decodes/s (64 queued)', 'CLIPSeg heat map'].join(' | '));
for (const r of rows) {
  console.log([r.label, fmt(r.encodeFile), fmt(r.encodeRaw), fmt(r.batch), fmt(r.decode), fmt(r.decodeRle), fmt(r.decodesPerS), fmt(r.heatmap)].join(' | '));
}

for (const r of refs) r.eGpu.dispose();
bf16?.dispose();
gpu.dispose();
cpu.dispose();
rGpu.dispose();
rCpu.dispose();
if (failures.length > 0) {
  console.log(`\n${failures.length} failure(s):\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
console.log('\nok');
