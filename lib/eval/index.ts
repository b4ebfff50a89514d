// The evaluation harness: sample files, mask metrics, PointM and the NoC click protocol.
export { evaluateMasks, scoreSample, summarize, PRECISION_THRESHOLDS } from './metrics.js';
export type { MaskEvaluation, MaskMetrics, PrecisionKey, SampleScore } from './metrics.js';
export { heatmapPeak, pointHit, pointM } from './pointm.js';
export type { HeatmapSample, PointMResult } from './pointm.js';
export {
  DEFAULT_MAX_CLICKS,
  NOC_THRESHOLDS,
  firstClick,
  maskIoU,
  nextClick,
  numberOfClicks,
  samClickSegmenter,
  simulateClicks,
  summarizeClicks,
} from './clicks.js';
export type { ClickMetrics, ClickOptions, ClickPrediction, ClickRun, ClickSegmenter, SamClickOptions } from './clicks.js';
export { squaredDistanceTransform } from './distance.js';
export {
  matchPredictions,
  parseRecords,
  readGroundTruth,
  readPredictions,
  toGroundTruth,
  toPrediction,
  unionRuns,
} from './samples.js';
export type { GroundTruthSample, MatchedSample, PredictionSample, SampleId } from './samples.js';
export { parseDataset, readDataset } from './dataset.js';
export type { DatasetSample } from './dataset.js';
