// omniseg eval --gt gt.json (--pred pred.json [--report r.html] | --heatmaps dir | --clicks --model dir) [--json]
//              --dataset data.jsonl --model dir [--referrer dir] [--out results.jsonl] [--report r.html] [--json] (eval-dataset.ts)
//              --convert grefcoco --grefs f --instances f --images dir [--split s] --out data.jsonl (eval-convert.ts)
import path from 'node:path';
import { samClickSegmenter, simulateClicks, summarizeClicks, type ClickRun } from '../eval/clicks.js';
import { evaluateMasks, PRECISION_THRESHOLDS, type MaskMetrics } from '../eval/metrics.js';
import { pointM, type HeatmapSample } from '../eval/pointm.js';
import { writeReport, type ReportSample } from '../eval/report.js';
import {
  idKey,
  matchPredictions,
  readGroundTruth,
  readPredictions,
  unionRuns,
  type GroundTruthSample,
  type PredictionSample,
  type SampleId,
} from '../eval/samples.js';
import { decodeRLE, runsArea } from '../rle.js';
import type { EvalCommand } from './args.js';
import { runEvalConvert } from './eval-convert.js';
import { runEvalDataset } from './eval-dataset.js';
import { jsonLine } from './format.js';
import { decodeForEncoder } from '../image.js';
import { loadSegmenter } from './model.js';
import { readFloat32File, type CliIO } from './io.js';

export async function runEval(args: EvalCommand, io: CliIO): Promise<void> {
  if (args.convert !== undefined) return runEvalConvert({ ...args, convert: args.convert, out: args.out as string }, io);
  if (args.gt === undefined) return runEvalDataset(args, io, formatMetrics);
  const gt = await readGroundTruth(args.gt);
  if (args.pred !== undefined) return evalMasks({ ...args, gt: args.gt }, args.pred, gt, io);
  if (args.heatmaps !== undefined) return evalHeatmaps({ ...args, gt: args.gt }, args.heatmaps, gt, io);
  return evalClicks({ ...args, gt: args.gt }, gt, io);
}

/** The command of the --gt modes. */
type GtCommand = EvalCommand & { gt: string };

async function evalMasks(args: GtCommand, predFile: string, gt: GroundTruthSample[], io: CliIO): Promise<void> {
  const predictions = await readPredictions(predFile);
  const { metrics, missing, extra, samples } = evaluateMasks(gt, predictions);
  if (args.report !== undefined) {
    const reported = matchPredictions(gt, predictions).pairs.map(({ gt: g, pred }, i) => reportSample(g, pred, samples[i].iou, samples[i].target));
    await writeReport(args.report, metrics, reported, { title: `${args.gt} vs ${predFile}` });
  }
  if (missing.length > 0) {
    warn(io, `${count(missing.length, 'ground-truth sample')} without a prediction, scored as empty: ${ids(missing)}`);
  }
  if (extra.length > 0) warn(io, `${count(extra.length, 'prediction')} with an id not in the ground truth, ignored: ${ids(extra)}`);
  if (args.json) return io.stdout(jsonLine(metrics));
  io.stdout(`${args.gt} vs ${predFile}: ${sampleSummary(gt)}\n${formatMetrics(metrics)}`);
}

/** A --pred sample for the report (masks only: no image). */
function reportSample(g: GroundTruthSample, pred: PredictionSample | undefined, iou: number, target: boolean): ReportSample {
  const { id, height, width } = g;
  const runs = (masks: PredictionSample['masks'], what: string) => unionRuns(masks, height, width, `sample ${idKey(id)} (${what})`);
  return { id, iou, target, height, width, gt: runs(g.masks, 'ground truth'), pred: runs(pred?.masks ?? [], 'prediction') };
}

async function evalHeatmaps(args: GtCommand, dir: string, gt: GroundTruthSample[], io: CliIO): Promise<void> {
  const samples: HeatmapSample[] = [];
  for (const g of gt) {
    const mask = unitedMask(g);
    if (!mask.some((v) => v !== 0)) continue; // no target: nothing to point at
    const heatmap = await readFloat32File(heatmapFile(dir, g.id), g.height * g.width, 'heat map');
    samples.push({ mask, heatmap });
  }
  const result = pointM(samples);
  if (args.json) return io.stdout(jsonLine(result));
  io.stdout(
    `${args.gt} vs ${dir}: ${sampleSummary(gt)}\n` +
      `  PointM  ${fixed(result.PointM)}  (${result.hits} hits, ${result.misses} misses)\n`,
  );
}

async function evalClicks(args: GtCommand, gt: GroundTruthSample[], io: CliIO): Promise<void> {
  const withTarget = gt.map((g) => ({ g, mask: unitedMask(g) })).filter((t) => t.mask.some((v) => v !== 0));
  const noImage = withTarget.find((t) => t.g.image === undefined);
  if (noImage !== undefined) {
    throw new Error(`${args.gt}: sample ${idKey(noImage.g.id)} has no "image" (--clicks needs one per sample with a target)`);
  }
  const segmenter = await loadSegmenter({ ...args, model: args.model as string });
  const runs: ClickRun[] = [];
  try {
    for (const { g, mask } of withTarget) {
      const image = path.resolve(path.dirname(args.gt), g.image as string);
      // Decoded first, so that an image of the wrong size is refused before it is encoded.
      const pixels = await decodeForEncoder(image, { limitInputPixels: segmenter.limitInputPixels }).catch((error: unknown) => {
        throw new Error(`Sample ${idKey(g.id)}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      });
      if (pixels.width !== g.width || pixels.height !== g.height) {
        throw new Error(`Sample ${idKey(g.id)}: ${image} is ${pixels.width}x${pixels.height} but the ground truth is ${g.width}x${g.height}`);
      }
      const embedding = await segmenter.encode({ ...pixels, channels: 3 });
      try {
        runs.push(await simulateClicks(samClickSegmenter(segmenter, embedding), mask, g.width, g.height, { maxClicks: args.maxClicks }));
      } finally {
        embedding.dispose();
      }
    }
  } finally {
    segmenter.dispose();
  }
  const metrics = summarizeClicks(runs);
  if (args.json) return io.stdout(jsonLine(metrics));
  const skipped = gt.length - withTarget.length;
  io.stdout(
    `${args.gt} with ${args.model}: ${count(runs.length, 'sample')} with a target` +
      `${skipped > 0 ? ` (${skipped} without, skipped)` : ''}, at most ${args.maxClicks} clicks\n` +
      `  NoC@85  ${fixed(metrics['NoC@85'], 2)}  (${metrics['NoF@85']} never reached)\n` +
      `  NoC@90  ${fixed(metrics['NoC@90'], 2)}  (${metrics['NoF@90']} never reached)\n`,
  );
}

/** The ground truth's masks united, height × width row-major 0/1. */
function unitedMask(g: GroundTruthSample): Uint8Array {
  const counts = unionRuns(g.masks, g.height, g.width, `sample ${idKey(g.id)}`);
  return decodeRLE({ size: [g.height, g.width], counts });
}

/** <dir>/<id>.f32; ids that are not plain file names are refused. */
function heatmapFile(dir: string, id: SampleId): string {
  const name = String(id);
  if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) {
    throw new Error(`Sample ${idKey(id)}: the id is not a file name, so it has no heat map file <id>.f32`);
  }
  return path.join(dir, `${name}.f32`);
}

function formatMetrics(m: MaskMetrics): string {
  const lines = [
    ['cIoU', fixed(m.cIoU)],
    ['gIoU', fixed(m.gIoU)],
    ['mIoU', fixed(m.mIoU)],
    ...PRECISION_THRESHOLDS.map((t) => [`P@${t}`, fixed(m.precision[t])]),
    ['nAcc', fixed(m.nAcc)],
    ['tAcc', fixed(m.tAcc)],
  ];
  return lines.map(([k, v]) => `  ${k.padEnd(6)}  ${v}\n`).join('');
}

function sampleSummary(gt: readonly GroundTruthSample[]): string {
  const targets = gt.filter((g) => runsArea(unionRuns(g.masks, g.height, g.width, `sample ${idKey(g.id)}`)) > 0).length;
  return `${count(gt.length, 'sample')} (${targets} with a target, ${gt.length - targets} without)`;
}

function fixed(value: number | null, digits = 4): string {
  return value === null ? 'n/a' : value.toFixed(digits);
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** The first few ids, JSON-quoted. */
function ids(list: readonly SampleId[]): string {
  const shown = list.slice(0, 5).map(idKey).join(', ');
  return list.length > 5 ? `${shown}, ... (${list.length - 5} more)` : shown;
}

function warn(io: CliIO, message: string): void {
  io.stderr(`omniseg: warning: ${message}\n`);
}
