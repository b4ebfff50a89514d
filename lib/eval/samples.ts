// Ground-truth and prediction files of the evaluation harness: JSON arrays or JSONL of
//   ground truth  {"id", "height", "width", "masks": [RLE | polygons...], "image"?}  (polygons:
//                 COCO's [[x0, y0, x1, y1, ...], ...] per object, rasterised as pycocotools does)
//   predictions   {"id", "masks": [RLE...]}
// RLE is COCO's {"size": [h, w], "counts"}, counts the compressed string or the uncompressed list
// of run lengths. Per sample, the masks of a side are united into one binary mask; a ground truth
// with no mask (or only empty ones) is a no-target sample. Predictions come in any order and are
// matched to the ground truth by id.
import { readFile } from 'node:fs/promises';
import { argumentMessage, describeValue } from '../errors.js';
import { mergeValidRuns, rleRuns } from '../rle.js';
import type { RLEInput } from '../types.js';
import { checkPolygon, polygonsToRLE } from './polygon.js';

/** A sample id: a string or a number, matched exactly (the number 1 and the string "1" differ). */
export type SampleId = string | number;

/** One ground-truth sample. */
export interface GroundTruthSample {
  id: SampleId;
  height: number;
  width: number;
  /** The sample's masks, each of size [height, width]; none for a no-target sample. */
  masks: RLEInput[];
  /**
   * The image, for evaluations that run a model (`omniseg eval --clicks`): a path, relative to the
   * ground-truth file's folder when read from a file. Optional.
   */
  image?: string;
}

/** One prediction. */
export interface PredictionSample {
  id: SampleId;
  /** The predicted masks; none (or only empty masks) for "no target". */
  masks: RLEInput[];
}

/** `text` without a leading UTF-8 byte order mark (editors on Windows write one; JSON.parse refuses it). */
export function withoutBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * Parses a JSON array of records, or JSONL (one JSON value per line, blank lines skipped).
 * @param file how to name the source in errors
 * @throws Error naming the file and the line of a syntax error
 */
export function parseRecords(text: string, file: string): unknown[] {
  text = withoutBom(text);
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[')) {
    try {
      return JSON.parse(trimmed) as unknown[];
    } catch (error) {
      throw new Error(`${file}: invalid JSON: ${(error as Error).message}`);
    }
  }
  const records: unknown[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      records.push(JSON.parse(line));
    } catch (error) {
      throw new Error(`${file}: line ${i + 1}: invalid JSON: ${(error as Error).message}`);
    }
  });
  return records;
}

/** Checks one ground-truth record. @throws Error saying which record and field is wrong */
export function toGroundTruth(record: unknown, where: string): GroundTruthSample {
  const obj = recordObject(record, where, '{id, height, width, masks}');
  const id = sampleId(obj.id, where);
  const height = dimension(obj.height, 'height', where);
  const width = dimension(obj.width, 'width', where);
  const masks = maskList(polygonMasks(obj.masks, height, width, where), where);
  masks.forEach((m, i) => checkSize(m, i, height, width, where));
  if (obj.image !== undefined && (typeof obj.image !== 'string' || obj.image === '')) {
    throw new Error(`${where}: ${argumentMessage('a file path', 'image', obj.image)}`);
  }
  return { id, height, width, masks, ...(typeof obj.image === 'string' ? { image: obj.image } : {}) };
}

/** Checks one prediction record (mask sizes are checked against the ground truth when matched). */
export function toPrediction(record: unknown, where: string): PredictionSample {
  const obj = recordObject(record, where, '{id, masks}');
  return { id: sampleId(obj.id, where), masks: maskList(obj.masks, where) };
}

/** Reads a ground-truth file (JSON array or JSONL). */
export async function readGroundTruth(file: string): Promise<GroundTruthSample[]> {
  const records = parseRecords(await readText(file, 'ground-truth'), file);
  const samples = records.map((r, i) => toGroundTruth(r, `${file}: record ${i + 1}`));
  uniqueIds(samples, file);
  return samples;
}

/** Reads a prediction file (JSON array or JSONL). */
export async function readPredictions(file: string): Promise<PredictionSample[]> {
  const records = parseRecords(await readText(file, 'prediction'), file);
  const samples = records.map((r, i) => toPrediction(r, `${file}: record ${i + 1}`));
  uniqueIds(samples, file);
  return samples;
}

/** A ground-truth sample and its prediction (undefined when the predictions lack its id). */
export interface MatchedSample {
  gt: GroundTruthSample;
  pred: PredictionSample | undefined;
}

/**
 * Pairs each ground-truth sample (in ground-truth order) with the prediction of the same id.
 * @returns the pairs, the ids without a prediction, and the prediction ids not in the ground truth
 */
export function matchPredictions(
  gt: readonly GroundTruthSample[],
  predictions: readonly PredictionSample[],
): { pairs: MatchedSample[]; missing: SampleId[]; extra: SampleId[] } {
  const byId = new Map<string, PredictionSample>();
  for (const p of predictions) byId.set(idKey(p.id), p);
  const gtIds = new Set(gt.map((g) => idKey(g.id)));
  const pairs = gt.map((g) => ({ gt: g, pred: byId.get(idKey(g.id)) }));
  return {
    pairs,
    missing: pairs.filter((p) => p.pred === undefined).map((p) => p.gt.id),
    extra: predictions.filter((p) => !gtIds.has(idKey(p.id))).map((p) => p.id),
  };
}

/**
 * The union of a side's masks as column-major run lengths (COCO RLE counts) of a height × width
 * mask: all zeros when there is no mask.
 * @throws Error when a mask's size is not [height, width]
 */
export function unionRuns(masks: readonly RLEInput[], height: number, width: number, where: string): readonly number[] {
  let counts: readonly number[] = [height * width];
  masks.forEach((m, i) => {
    checkSize(m, i, height, width, where);
    const runs = rleRuns(m).counts;
    counts = i === 0 ? runs : mergeValidRuns(counts, runs);
  });
  return counts;
}

/** The id as a map key: numbers and strings stay distinct. */
export function idKey(id: SampleId): string {
  return JSON.stringify(id);
}

function recordObject(record: unknown, where: string, what: string): Record<string, unknown> {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    throw new Error(`${where}: ${argumentMessage(`an object ${what}`, 'the record', record)}`);
  }
  return record as Record<string, unknown>;
}

function sampleId(id: unknown, where: string): SampleId {
  if (typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id))) return id;
  throw new Error(`${where}: ${argumentMessage('a string or a number', 'id', id)}`);
}

function dimension(value: unknown, name: string, where: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1) return value;
  throw new Error(`${where}: ${argumentMessage('a positive integer', name, value)}`);
}

/**
 * `masks` with each object given as COCO polygons (an array of [x0, y0, x1, y1, ...] rings)
 * rasterised to RLE as pycocotools does (RLEs and anything else are left for maskList).
 */
function polygonMasks(masks: unknown, height: number, width: number, where: string): unknown {
  if (!Array.isArray(masks)) return masks;
  return masks.map((m: unknown, i) => {
    if (!Array.isArray(m)) return m;
    try {
      return polygonsToRLE(m.map((p: unknown, j) => checkPolygon(p, `masks[${i}][${j}]`)), height, width);
    } catch (error) {
      throw new Error(`${where}: ${(error as Error).message}`);
    }
  });
}

function maskList(masks: unknown, where: string): RLEInput[] {
  if (!Array.isArray(masks)) {
    throw new Error(`${where}: ${argumentMessage('an array of COCO RLEs {size, counts}', 'masks', masks)}`);
  }
  masks.forEach((m, i) => {
    try {
      rleRuns(m as RLEInput);
    } catch (error) {
      throw new Error(`${where}: masks[${i}]: ${(error as Error).message}`);
    }
  });
  return masks as RLEInput[];
}

function checkSize(mask: RLEInput, i: number, height: number, width: number, where: string): void {
  const [h, w] = mask.size;
  if (h !== height || w !== width) {
    throw new Error(
      `${where}: masks[${i}] has size ${describeValue(mask.size)} but the sample is [${height}, ${width}] (height, width)`,
    );
  }
}

function uniqueIds(samples: ReadonlyArray<{ id: SampleId }>, file: string): void {
  const seen = new Set<string>();
  samples.forEach((s, i) => {
    const key = idKey(s.id);
    if (seen.has(key)) throw new Error(`${file}: record ${i + 1}: duplicate id ${key}`);
    seen.add(key);
  });
}

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    throw new Error(`Cannot read ${what} file ${file}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}`);
  }
}
