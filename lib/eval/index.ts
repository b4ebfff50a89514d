// The evaluation harness: sample files, mask metrics, PointM, the NoC click protocol, datasets
// (COCO polygons, the gRefCOCO converter) and the HTML report.
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
export { isReferring, parseDataset, readDataset } from './dataset.js';
export type { DatasetRegion, DatasetSample } from './dataset.js';
export { polygonRuns, polygonsToRLE } from './polygon.js';
export { convertGrefcoco } from './grefcoco.js';
export type { GrefcocoConversion, GrefcocoOptions, GrefcocoSample } from './grefcoco.js';
export { writeReport } from './report.js';
export type { ReportOptions, ReportSample } from './report.js';
