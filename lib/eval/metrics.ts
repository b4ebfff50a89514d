// Referring-segmentation metrics with the gRefCOCO (GRES / ReLA) and RefCOCO conventions.
//
// Per sample the ground-truth masks and the predicted masks are each united into one binary mask
// (see samples.ts). A sample is a *target* sample when its ground truth has at least one
// foreground pixel, else a *no-target* sample; a prediction is *empty* when it has none.
//
//   cIoU       Σ intersection / Σ union over all samples (a no-target sample adds 0 to the
//              intersections and its predicted area to the unions)
//   gIoU       mean over all samples of the per-sample IoU; a no-target sample scores 1 when the
//              prediction is empty, else 0
//   precision  {"0.5", ..., "0.9"}: the fraction of target samples whose IoU is strictly greater
//              than the threshold
//   nAcc       TN / (TN + FP) over no-target samples (TN: prediction empty)
//   tAcc       TP / (TP + FN) over target samples (TP: prediction not empty)
//   count      the number of samples
//   mIoU       mean IoU over the target samples
//
// A ratio with nothing to count (e.g. nAcc without no-target samples) is null.
import { overlapRuns, runsArea } from '../rle.js';
import { idKey, matchPredictions, unionRuns, type GroundTruthSample, type PredictionSample, type SampleId } from './samples.js';

/** The IoU thresholds of `precision`, as its keys. */
export const PRECISION_THRESHOLDS = ['0.5', '0.6', '0.7', '0.8', '0.9'] as const;
export type PrecisionKey = (typeof PRECISION_THRESHOLDS)[number];

/** What one sample contributes to the metrics. */
export interface SampleScore {
  id: SampleId;
  /** The ground truth has at least one foreground pixel. */
  target: boolean;
  /** The prediction has no foreground pixel (also when there is no prediction for the id). */
  empty: boolean;
  /** Foreground pixels of both masks. */
  intersection: number;
  /** Foreground pixels of either mask. */
  union: number;
  /** intersection / union for a target sample; for a no-target sample 1 when `empty`, else 0. */
  iou: number;
}

/** The metrics `omniseg eval --json` prints, in this key order. */
export interface MaskMetrics {
  cIoU: number | null;
  gIoU: number | null;
  precision: Record<PrecisionKey, number | null>;
  nAcc: number | null;
  tAcc: number | null;
  count: number;
  mIoU: number | null;
}

/**
 * Scores one sample from the column-major run lengths of its united ground-truth and predicted
 * masks (same size).
 */
export function scoreSample(id: SampleId, gtRuns: readonly number[], predRuns: readonly number[]): SampleScore {
  const target = runsArea(gtRuns) > 0;
  const empty = runsArea(predRuns) === 0;
  const { intersection, union } = overlapRuns(gtRuns, predRuns);
  const iou = target ? intersection / union : empty ? 1 : 0;
  return { id, target, empty, intersection, union, iou };
}

/** The metrics of a list of sample scores. */
export function summarize(scores: readonly SampleScore[]): MaskMetrics {
  let sumI = 0;
  let sumU = 0;
  let sumIoU = 0;
  let targetIoU = 0;
  let targets = 0;
  let tp = 0;
  let tn = 0;
  const above = PRECISION_THRESHOLDS.map(() => 0);
  for (const s of scores) {
    sumI += s.intersection;
    sumU += s.union;
    sumIoU += s.iou;
    if (s.target) {
      targets++;
      targetIoU += s.iou;
      if (!s.empty) tp++;
      PRECISION_THRESHOLDS.forEach((t, i) => {
        if (s.iou > Number(t)) above[i]++;
      });
    } else if (s.empty) {
      tn++;
    }
  }
  const noTargets = scores.length - targets;
  const precision = Object.fromEntries(
    PRECISION_THRESHOLDS.map((t, i) => [t, ratio(above[i], targets)]),
  ) as Record<PrecisionKey, number | null>;
  return {
    cIoU: ratio(sumI, sumU),
    gIoU: ratio(sumIoU, scores.length),
    precision,
    nAcc: ratio(tn, noTargets),
    tAcc: ratio(tp, targets),
    count: scores.length,
    mIoU: ratio(targetIoU, targets),
  };
}

/** The result of `evaluateMasks`. */
export interface MaskEvaluation {
  metrics: MaskMetrics;
  /** One score per ground-truth sample, in ground-truth order. */
  samples: SampleScore[];
  /** Ground-truth ids without a prediction (scored as empty predictions). */
  missing: SampleId[];
  /** Prediction ids that are not in the ground truth (ignored). */
  extra: SampleId[];
}

/**
 * Scores predictions against ground truth. Predictions are matched by id, in any order; a
 * ground-truth sample without a prediction counts as an empty prediction (and is listed in
 * `missing`); predictions of unknown ids are ignored (and listed in `extra`).
 * @throws Error when a predicted mask's size differs from its ground truth's
 */
export function evaluateMasks(gt: readonly GroundTruthSample[], predictions: readonly PredictionSample[]): MaskEvaluation {
  const { pairs, missing, extra } = matchPredictions(gt, predictions);
  const samples = pairs.map(({ gt: g, pred }) => {
    const where = `sample ${idKey(g.id)}`;
    const gtRuns = unionRuns(g.masks, g.height, g.width, `${where} (ground truth)`);
    const predRuns = unionRuns(pred?.masks ?? [], g.height, g.width, `${where} (prediction)`);
    return scoreSample(g.id, gtRuns, predRuns);
  });
  return { metrics: summarize(samples), samples, missing, extra };
}

function ratio(numerator: number, denominator: number): number | null {
  return denominator === 0 ? null : numerator / denominator;
}
