#!/usr/bin/env node
// `npm run bench:clipseg`: CLIPSeg heat-map latency and peak RSS, omniseg (Referrer, in this
// process) next to PyTorch (transformers, fp32, bench/clipseg_reference.py in a child process)
// measured in the same run on the same random clipseg-rd64-refined-shaped checkpoint (built by
// models/clipseg/parity.py), image, texts and thread count. Target (issue #4 item 9): a heat map
// for a text in ≤ 0.7× PyTorch's time at 2 threads; a repeated text is served from the
// Referrer's text-embedding cache (PyTorch has none, so its time is the same for it).
//
// Each timed heat map starts from the decoded image (RGB pixels in memory) and ends with the
// heat map at the image's size: preprocessing, tokenising, the model, sigmoid and resize.
// Medians of --runs after one warm-up; "new text" uses a text not seen before in every run.
//
// The vision tower's linear layers run in the default cpuMatmul (bf16x3 on CPUs with AMX);
// --cpu-matmul fp32 times the exact path.
//
//   npm run bench:clipseg [-- --threads 2 --runs 10 --image path.png --cpu-matmul fp32 --skip-reference --json]
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '10' },
    image: { type: 'string', default: path.join(root, '..', 'shared', 'images', 'astronaut.png') },
    'cpu-matmul': { type: 'string' },
    'skip-reference': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const threads = Number(values.threads);
const runs = Number(values.runs);
if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`Expected an integer ≥ 1 for --threads, got ${values.threads}`);
if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`Expected an integer ≥ 1 for --runs, got ${values.runs}`);
const py = path.join(root, '.venv', 'bin', 'python');
const sh = (cmd, args) => execFileSync(cmd, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const load = () => os.loadavg().map((v) => v.toFixed(2)).join(' ');
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// The random checkpoint comes from the parity harness (built once into .cache/parity/).
sh('bash', ['scripts/setup-python.sh']);
sh(py, ['models/clipseg/parity.py', '--prepare-only']);
const modelDir = path.join(root, '.cache', 'parity', 'clipseg-rd64-refined');
const { Referrer } = await import(path.join(root, 'dist', 'lib', 'index.js'));

// texts[0] warms up; texts[1..runs] are each timed once, never seen before by the Referrer.
const texts = Array.from({ length: runs + 1 }, (_, i) => `a photo of thing number ${i}`);

const loadBefore = load();
const { data, info } = await sharp(values.image).removeAlpha().raw().toBuffer({ resolveWithObject: true });
const pixels = { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: 3 };
const referrer = await Referrer.load({
  model: modelDir,
  threads,
  device: 'cpu',
  ...(values['cpu-matmul'] ? { cpuMatmul: values['cpu-matmul'] } : {}),
});
const cpuMatmul = referrer.cpuMatmul;
const timed = async (text) => {
  const t0 = performance.now();
  const map = await referrer.heatmap(pixels, { text });
  return { wallMs: performance.now() - t0, ...map.timings };
};
let newText, cachedText;
try {
  await timed(texts[0]); // warm-up
  newText = [];
  for (const text of texts.slice(1)) newText.push(await timed(text));
  cachedText = [];
  for (const text of texts.slice(1)) cachedText.push(await timed(text)); // second prompt, text cached
} finally {
  referrer.dispose();
}
const summary = (rs) => ({
  wallMs: median(rs.map((r) => r.wallMs)),
  totalMs: median(rs.map((r) => r.totalMs)),
  modelMs: median(rs.map((r) => r.modelMs)),
  preprocessMs: median(rs.map((r) => r.preprocessMs)),
  postprocessMs: median(rs.map((r) => r.postprocessMs)),
});
const ours = {
  newText: summary(newText),
  cachedText: summary(cachedText),
  peakRssMB: process.resourceUsage().maxRSS / 1024,
  threads,
  cpuMatmul,
};
const loadBetween = load();
const ref = values['skip-reference']
  ? null
  : JSON.parse(
      sh(py, ['bench/clipseg_reference.py', '--model', modelDir, '--image', values.image, '--threads', String(threads), '--texts', JSON.stringify(texts)]),
    );
const loadAfter = load();

const TARGET = 0.7;
const row = (name, a, b, unit, target) => {
  const ratio = b ? a / b : NaN;
  const verdict = target === undefined || !b ? '' : ratio <= target ? 'ok' : 'MISSES TARGET';
  console.log(
    `${name.padEnd(30)} ${a.toFixed(1).padStart(9)} ${b ? b.toFixed(1).padStart(9) : '        -'}  ${unit.padEnd(3)}` +
      ` ${b ? `${ratio.toFixed(2)}×` : ''} ${target ? `(target ≤ ${target}×)` : ''} ${verdict}`,
  );
};
if (!values.json) {
  console.log(
    `CLIPSeg rd64-refined config (random weights), ${values.image} ${info.width}x${info.height}, threads=${threads}, ` +
      `runs=${runs} (median), cpuMatmul=${cpuMatmul}`,
  );
  console.log(`load average (1/5/15 min): before ${loadBefore}, between ${loadBetween}, after ${loadAfter}`);
  console.log(`${''.padEnd(30)} ${'omniseg'.padStart(9)} ${'pytorch'.padStart(9)}`);
  row('heat map, new text (wall)', ours.newText.wallMs, ref?.heatmapMs, 'ms', TARGET);
  row('heat map, cached text (wall)', ours.cachedText.wallMs, ref?.heatmapMs, 'ms', TARGET);
  row('  model, new text', ours.newText.modelMs, ref?.modelMs, 'ms');
  row('  model, cached text', ours.cachedText.modelMs, ref?.modelMs, 'ms');
  row('  pre + post, new text', ours.newText.preprocessMs + ours.newText.postprocessMs, ref ? ref.heatmapMs - ref.modelMs : undefined, 'ms');
  row('peak RSS', ours.peakRssMB, ref?.peakRssMB, 'MB');
  if (ref) console.log(`pytorch: torch ${ref.torch}, ${ref.threads} threads, attention ${ref.attention}`);
}
console.log(JSON.stringify({ omniseg: ours, pytorch: ref, load: { before: loadBefore, between: loadBetween, after: loadAfter } }));
