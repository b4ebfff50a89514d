// omniseg eval --dataset <file.jsonl> --model <sam-dir> [--referrer <clipseg-dir>] [--out results.jsonl]
//              [--report report.html] [--json]:
// runs SAM (points / boxes) or referSegment (text / reference image, narrowed by points and a
// box) on each sample, writes one result line per sample to --out, prints the --pred metrics of
// the predictions and, with --report, writes the HTML report.
import { isReferring, readDataset, type DatasetRegion, type DatasetSample } from '../eval/dataset.js';
import { scoreSample, summarize, type MaskMetrics, type SampleScore } from '../eval/metrics.js';
import { writeReport, type ReportSample } from '../eval/report.js';
import { idKey, unionRuns } from '../eval/samples.js';
import { decodeImage } from '../image.js';
import type { Prompt } from '../prompt.js';
import { Referrer } from '../referrer.js';
import { referSegment, type RefRegion, type ReferSegmentOptions } from '../referring/index.js';
import { decodeRLE } from '../rle.js';
import { Segmenter } from '../segmenter.js';
import type { RLE } from '../types.js';
import type { EvalCommand } from './args.js';
import { jsonLine } from './format.js';
import { WholeFile, type CliIO } from './io.js';

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
  const needsReferrer = samples.find(isReferring);
  if (needsReferrer !== undefined && args.referrer === undefined) {
    const kind = needsReferrer.text !== undefined ? 'text' : 'refImage';
    throw new Error(
      `${file}: line ${needsReferrer.line}: sample ${idKey(needsReferrer.id)} has a "${kind}" prompt: give --referrer <clipseg-dir>`,
    );
  }
  const backend = { device: args.device, cpuMatmul: args.cpuMatmul, threads: args.threads };
  const segmenter = await Segmenter.load({ model: args.model as string, precision: args.precision, ...backend });
  let referrer: Referrer | undefined;
  let out: WholeFile | undefined;
  const scores: SampleScore[] = [];
  const reported: ReportSample[] = [];
  try {
    if (args.referrer !== undefined) referrer = await Referrer.load({ model: args.referrer, ...backend });
    out = args.out === undefined ? undefined : await WholeFile.open(args.out);
    for (const [k, sample] of samples.entries()) {
      const { result, score, report } = await runSample({ segmenter, referrer }, sample, `${file}: line ${sample.line}`);
      scores.push(score);
      if (args.report !== undefined) reported.push(report);
      await out?.write(jsonLine(result));
      io.stderr(progress(k + 1, samples.length, io.stderrIsTTY === true));
    }
    await out?.commit();
    out = undefined;
  } finally {
    if (scores.length > 0) io.stderr('\n'); // (ends the progress line, before any error message)
    await out?.discard();
    referrer?.dispose();
    segmenter.dispose();
  }
  const metrics = summarize(scores);
  if (args.report !== undefined) await writeReport(args.report, metrics, reported, { title: `${file} with ${args.model}` });
  if (args.json) return io.stdout(jsonLine(metrics));
  const targets = scores.filter((s) => s.target).length;
  io.stdout(
    `${file} with ${args.model}: ${scores.length} sample${scores.length === 1 ? '' : 's'} ` +
      `(${targets} with a target, ${scores.length - targets} without)\n${formatMetrics(metrics)}`,
  );
}

/** Runs one sample and scores its prediction. @param where names the sample in errors */
async function runSample(
  models: Models,
  sample: DatasetSample,
  where: string,
): Promise<{ result: SampleResult; score: SampleScore; report: ReportSample }> {
  try {
    const image = await decodeImage(sample.image);
    if (image.width !== sample.width || image.height !== sample.height) {
      throw new Error(`${sample.image} is ${image.width}x${image.height} but the sample is ${sample.width}x${sample.height}`);
    }
    const pixels = { data: image.data, width: image.width, height: image.height, channels: 3 } as const;
    let masks: RLE[];
    let timings: Record<string, number>;
    if (isReferring(sample)) {
      const r = await referSegment(models.segmenter, models.referrer as Referrer, pixels, referOptions(sample));
      masks = r.masks.map((m) => m.toRLE());
      timings = { heatmapMs: r.timings.heatmapMs, encodeMs: r.timings.encodeMs, decodeMs: r.timings.instancesMs };
    } else {
      const prompt: Prompt = {};
      if (sample.points.length > 0) prompt.points = sample.points;
      if (sample.boxes.length > 0) prompt.boxes = sample.boxes;
      const r = await models.segmenter.segment(pixels, prompt, { rle: true });
      masks = r.masks.map((m) => m.toRLE());
      timings = { ...r.timings };
    }
    const gtRuns = unionRuns(sample.masks, sample.height, sample.width, 'ground truth');
    const predRuns = unionRuns(masks, sample.height, sample.width, 'prediction');
    const score = scoreSample(sample.id, gtRuns, predRuns);
    const { id, height, width, points, boxes, text, refImage } = sample;
    return {
      result: { id, masks, iou: score.iou, timings },
      score,
      report: { id, iou: score.iou, target: score.target, height, width, gt: gtRuns, pred: predRuns, image: sample.image, points, boxes, text, refImage },
    };
  } catch (error) {
    throw new Error(`${where}: sample ${idKey(sample.id)}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** referSegment's options for a referring sample: its prompt, and its points and box on the image. */
function referOptions(sample: DatasetSample): ReferSegmentOptions {
  const options: ReferSegmentOptions = {};
  if (sample.text !== undefined) options.text = sample.text;
  if (sample.refImage !== undefined) options.refImage = sample.refImage;
  if (sample.refRegion !== undefined) options.refRegion = refRegion(sample.refRegion);
  if (sample.points.length > 0) options.points = sample.points;
  if (sample.boxes.length > 0) options.box = sample.boxes[0];
  return options;
}

/** A dataset region as referSegment takes it (the mask decoded; its size is checked there). */
function refRegion(region: DatasetRegion): RefRegion {
  if (!('mask' in region)) return region;
  const [height, width] = region.mask.size;
  return { mask: { data: decodeRLE(region.mask), width, height } };
}

/** `k/n samples` after a carriage return; on a terminal behind a bar. */
export function progress(k: number, n: number, tty: boolean): string {
  if (!tty) return `\r${k}/${n} samples`;
  const filled = Math.round((PROGRESS_WIDTH * k) / n);
  return `\r[${'#'.repeat(filled)}${'.'.repeat(PROGRESS_WIDTH - filled)}] ${k}/${n} samples`;
}

const PROGRESS_WIDTH = 30;
