// omniseg bench --model <dir> --image <file> [--device D] [--precision P] [--cpu-matmul M] [--runs R]
import { performance } from 'node:perf_hooks';
import { decodeImage } from '../image.js';
import type { Prompt } from '../prompt.js';
import { Segmenter } from '../segmenter.js';
import type { RawImage } from '../types.js';
import type { BenchCommand } from './args.js';
import { jsonLine, median, ms, round } from './format.js';
import { loadSegmenter } from './model.js';
import type { CliIO } from './io.js';

interface Timing {
  encodeMs: number;
  decodeMs: number;
}

export async function runBench(args: BenchCommand, io: CliIO): Promise<void> {
  const decoded = await decodeImage(args.image);
  const pixels: RawImage = { ...decoded, channels: 3 };
  const prompt: Prompt = { points: [{ x: Math.floor(decoded.width / 2), y: Math.floor(decoded.height / 2), label: 1 }] };
  const segmenter = await loadSegmenter(args);
  try {
    await timeOnce(segmenter, pixels, prompt); // warm-up
    const runs: Timing[] = [];
    for (let i = 0; i < args.runs; i++) runs.push(...(await timeOnce(segmenter, pixels, prompt)));
    const result = {
      encodeMs: round(median(runs.map((r) => r.encodeMs)), 3),
      decodeMs: round(median(runs.map((r) => r.decodeMs)), 3),
      peakRssMB: round(process.resourceUsage().maxRSS / 1024, 1),
      device: segmenter.device,
      precision: segmenter.precision,
      cpuMatmul: segmenter.cpuMatmul,
    };
    if (args.json) {
      io.stdout(jsonLine(result));
    } else {
      io.stdout(
        `${args.image} (${decoded.width}x${decoded.height}), ${result.device} ${result.precision}, ` +
          `${segmenter.threads} threads, ${args.runs} runs (median)\n` +
          `  encode  ${ms(result.encodeMs)}\n  decode  ${ms(result.decodeMs)}\n  peak RSS ${result.peakRssMB} MB\n`,
      );
    }
  } finally {
    segmenter.dispose();
  }
}

/** Decodes timed per encode: the first includes the once-per-image decoder cache. */
const DECODES_PER_ENCODE = 5;

/** One encode, then DECODES_PER_ENCODE decodes on the cached embedding; wall-clock times. */
async function timeOnce(segmenter: Segmenter, pixels: RawImage, prompt: Prompt): Promise<Timing[]> {
  const t0 = performance.now();
  const embedding = await segmenter.encode(pixels);
  const encodeMs = performance.now() - t0;
  try {
    const timings: Timing[] = [];
    for (let i = 0; i < DECODES_PER_ENCODE; i++) {
      const t1 = performance.now();
      await segmenter.segment(embedding, prompt, { multimask: true });
      timings.push({ encodeMs, decodeMs: performance.now() - t1 });
    }
    return timings;
  } finally {
    embedding.dispose();
  }
}
