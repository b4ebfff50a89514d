// omniseg eval --dataset <file.jsonl> --model <sam-dir> [--referrer <clipseg-dir>] [--out results.jsonl] [--json]:
// runs SAM (points / boxes) or referSegment (text) on each sample, writes one result line per
// sample to --out, and prints the --pred metrics of the predictions.
import { open, type FileHandle } from 'node:fs/promises';
import { readDataset, type DatasetSample } from '../eval/dataset.js';
import { scoreSample, summarize, type MaskMetrics, type SampleScore } from '../eval/metrics.js';
import { idKey, unionRuns } from '../eval/samples.js';
import { decodeImage } from '../image.js';
import type { Prompt } from '../prompt.js';
import { Referrer } from '../referrer.js';
import { referSegment } from '../referring/index.js';
import { Segmenter } from '../segmenter.js';
import type { RLE } from '../types.js';
import type { EvalCommand } from './args.js';
import { jsonLine } from './format.js';
import type { CliIO } from './io.js';

/** One line of --out. */
interface SampleResult {
  id: DatasetSample['id'];
  masks: RLE[];
  iou: number;
  timings: Record<string, number>;
}

/** What runs the samples: SAM, and CLIPSeg when --referrer is given. */
interface Models {
  segmenter: Segmenter;
  referrer?: Referrer;
}

/** @param formatMetrics the metrics as `eval --pred` prints them */
export async function runEvalDataset(args: EvalCommand, io: CliIO, formatMetrics: (m: MaskMetrics) => string): Promise<void> {
  const file = args.dataset as string;
  const samples = await readDataset(file);
  const needsReferrer = samples.find((s) => s.text !== undefined);
  if (needsReferrer !== undefined && args.referrer === undefined) {
    throw new Error(`${file}: line ${needsReferrer.line}: sample ${idKey(needsReferrer.id)} has a "text" prompt: give --referrer <clipseg-dir>`);
  }
  const backend = { device: args.device, threads: args.threads };
  const segmenter = await Segmenter.load({ model: args.model as string, precision: args.precision, ...backend });
  let referrer: Referrer | undefined;
  let out: FileHandle | undefined;
  const scores: SampleScore[] = [];
  try {
    if (args.referrer !== undefined) referrer = await Referrer.load({ model: args.referrer, ...backend });
    out = args.out === undefined ? undefined : await openOut(args.out);
    for (const [k, sample] of samples.entries()) {
      const { result, score } = await runSample({ segmenter, referrer }, sample, `${file}: line ${sample.line}`);
      scores.push(score);
      await out?.write(jsonLine(result));
      io.stderr(`\r${k + 1}/${samples.length} samples`);
    }
    if (samples.length > 0) io.stderr('\n');
  } finally {
    await out?.close();
    referrer?.dispose();
    segmenter.dispose();
  }
  const metrics = summarize(scores);
  if (args.json) return io.stdout(jsonLine(metrics));
  const targets = scores.filter((s) => s.target).length;
  io.stdout(
    `${file} with ${args.model}: ${scores.length} sample${scores.length === 1 ? '' : 's'} ` +
      `(${targets} with a target, ${scores.length - targets} without)\n${formatMetrics(metrics)}`,
  );
}

/** Runs one sample and scores its prediction. @param where names the sample in errors */
async function runSample(models: Models, sample: DatasetSample, where: string): Promise<{ result: SampleResult; score: SampleScore }> {
  try {
    const image = await decodeImage(sample.image);
    if (image.width !== sample.width || image.height !== sample.height) {
      throw new Error(`${sample.image} is ${image.width}x${image.height} but the sample is ${sample.width}x${sample.height}`);
    }
    const pixels = { data: image.data, width: image.width, height: image.height, channels: 3 } as const;
    let masks: RLE[];
    let timings: Record<string, number>;
    if (sample.text !== undefined) {
      const r = await referSegment(models.segmenter, models.referrer as Referrer, pixels, { text: sample.text });
      masks = r.masks.map((m) => m.toRLE());
      timings = { heatmapMs: r.timings.heatmapMs, encodeMs: r.timings.encodeMs, decodeMs: r.timings.instancesMs };
    } else {
      const prompt: Prompt = {};
      if (sample.points.length > 0) prompt.points = sample.points;
      if (sample.boxes.length > 0) prompt.boxes = sample.boxes;
      const r = await models.segmenter.segment(pixels, prompt);
      masks = r.masks.map((m) => m.toRLE());
      timings = { ...r.timings };
    }
    const gtRuns = unionRuns(sample.masks, sample.height, sample.width, 'ground truth');
    const score = scoreSample(sample.id, gtRuns, unionRuns(masks, sample.height, sample.width, 'prediction'));
    return { result: { id: sample.id, masks, iou: score.iou, timings }, score };
  } catch (error) {
    throw new Error(`${where}: sample ${idKey(sample.id)}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function openOut(file: string): Promise<FileHandle> {
  try {
    return await open(file, 'w');
  } catch (error) {
    throw new Error(`Cannot write ${file}: ${(error as Error).message}`);
  }
}
