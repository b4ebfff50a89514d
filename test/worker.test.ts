// The addon in worker_threads (it is context-aware: one instance per thread, per-environment
// state in napi instance data). The workers run the compiled package entry, dist/lib/index.js
// (a worker runs plain JavaScript): `npm run build:ts` first (npm install / npm ci do it).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { beforeAll, describe, expect, it } from 'vitest';
import { Segmenter } from '../lib/segmenter.js';
import type { Prompt } from '../lib/prompt.js';
import type { RLE } from '../lib/types.js';
import { FIXTURES, MODEL_DIR } from './helpers/fixtures.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = path.join(ROOT, 'dist', 'lib', 'index.js');
const WORKER = path.join(ROOT, 'test', 'helpers', 'segment-worker.mjs');
const IMAGE = path.join(FIXTURES, 'wide.png');

type MaskSummary = { score: number; area: number; rle: RLE };

const PROMPTS: Prompt[] = [
  { points: [{ x: 75, y: 50, label: 1 }] },
  { boxes: [[30, 20, 120, 85]] },
  { scribbles: [{ path: [[10, 40], [80, 40]], label: 1 }] },
];

/** Runs segment-worker.mjs in a Worker; resolves with what it posted once it has exited cleanly. */
function runWorker(threads: number): Promise<MaskSummary[][]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, {
      workerData: { entry: pathToFileURL(ENTRY).href, model: MODEL_DIR, image: IMAGE, prompts: PROMPTS, threads },
    });
    let posted: MaskSummary[][] | undefined;
    worker.once('message', (message: MaskSummary[][]) => {
      posted = message;
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`worker exited with code ${code}`));
      else if (posted === undefined) reject(new Error('worker exited without posting a result'));
      else resolve(posted);
    });
  });
}

/** The same segmentations on the main thread, with `threads` native threads. */
async function onMainThread(threads: number): Promise<MaskSummary[][]> {
  const segmenter = await Segmenter.load({ model: MODEL_DIR, threads });
  const embedding = await segmenter.encode(IMAGE);
  const out: MaskSummary[][] = [];
  for (const prompt of PROMPTS) {
    const { masks } = await segmenter.segment(embedding, prompt, { multimask: true });
    out.push(masks.map((m) => ({ score: m.score, area: m.area, rle: m.toRLE() })));
  }
  embedding.dispose();
  segmenter.dispose();
  return out;
}

// Results are compared bit for bit at the same thread count: how the GEMM rows are split across
// threads can change the last bits (OpenBLAS's Zen kernels), so 1 and 2 threads each have theirs.
describe('worker_threads', () => {
  const expected: Record<number, MaskSummary[][]> = {};
  beforeAll(async () => {
    expect(existsSync(ENTRY), `${ENTRY} is missing: run "npm run build:ts"`).toBe(true);
    expected[1] = await onMainThread(1);
    expected[2] = await onMainThread(2);
  });

  it('a worker loads the addon and segments like the main thread', { timeout: 30_000 }, async () => {
    const results = await runWorker(2);
    expect(results).toEqual(expected[2]);
    expect(results[0][0].area).toBeGreaterThan(0);
  });

  it('two workers at once, and again after they exited', { timeout: 30_000 }, async () => {
    const [a, b] = await Promise.all([runWorker(1), runWorker(2)]);
    expect(a).toEqual(expected[1]);
    expect(b).toEqual(expected[2]);
    // The main thread's instance is untouched by the workers' teardown.
    const segmenter = await Segmenter.load({ model: MODEL_DIR, threads: 1 });
    const { masks } = await segmenter.segment(IMAGE, PROMPTS[0], { multimask: true });
    expect(masks.map((m) => m.toRLE())).toEqual(expected[1][0].map((m) => m.rle));
    segmenter.dispose();
    expect(await runWorker(1)).toEqual(expected[1]);
  });

  // Terminating a worker while an encode or decode of the addon is in flight (the helper does it
  // 8 times): the finished native work cannot settle its promise in the terminating environment.
  // Without NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS (binding.gyp, CMakeLists.txt) node-addon-api
  // then throws out of a C callback and the whole process aborts.
  it('terminating a worker in the middle of native work leaves the process running', { timeout: 30_000 }, () => {
    const child = spawnSync(
      process.execPath,
      [path.join(ROOT, 'test', 'helpers', 'terminate-worker.mjs'), pathToFileURL(ENTRY).href, MODEL_DIR, IMAGE],
      { encoding: 'utf8', timeout: 25_000 },
    );
    expect({ status: child.status, signal: child.signal, stdout: child.stdout }).toEqual({
      status: 0,
      signal: null,
      stdout: 'survived 1\n',
    });
  });
});
