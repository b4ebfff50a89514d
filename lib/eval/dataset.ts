// Dataset files of `omniseg eval --dataset`: JSONL, one sample per line,
//   {"id", "image", "height", "width", "masks": [RLE | polygons, ...],
//    "points"?: [[x, y, label], ...], "boxes"?: [[x0, y0, x1, y1], ...],
//    "text"?: string, "refImage"?: path, "refRegion"?: {"box"} | {"scribble"} | {"mask": RLE}}
// `image` and `refImage` are relative to the dataset file's folder; `masks` is the ground truth,
// one entry per object (none: no target), each a COCO RLE or COCO polygons
// `[[x0, y0, x1, y1, ...], ...]` (rasterised as pycocotools does); the prompts are in image pixels
// (x right, y down). A sample with `points` and/or `boxes` only is segmented by SAM; one with a
// referring prompt (`text` and/or `refImage`, `refRegion` only with `refImage`) by referSegment,
// its `points` and at most one box narrowing the referred instances (SEEM-style composition).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { argumentMessage } from '../errors.js';
import { rleRuns } from '../rle.js';
import type { Box, Point, RLEInput, Vertex } from '../types.js';
import { idKey, toGroundTruth, withoutBom, type GroundTruthSample } from './samples.js';

/** A region of a dataset sample's reference image (the mask as RLE at the reference image's size). */
export type DatasetRegion = { box: Box } | { scribble: Vertex[] } | { mask: RLEInput };

/** One dataset sample: its ground truth (polygons rasterised to RLE) and its prompts. */
export interface DatasetSample extends GroundTruthSample {
  /** The image, resolved against the dataset file's folder. */
  image: string;
  points: Point[];
  boxes: Box[];
  text?: string;
  /** The reference image, resolved against the dataset file's folder. */
  refImage?: string;
  refRegion?: DatasetRegion;
  /** The 1-based line of the dataset file, for errors. */
  line: number;
}

/** Whether a sample has a referring prompt (text and/or reference image), so runs referSegment. */
export function isReferring(sample: DatasetSample): boolean {
  return sample.text !== undefined || sample.refImage !== undefined;
}

/** Parses a dataset (JSONL; blank lines skipped). @param file names the source in errors and resolves `image` */
export function parseDataset(text: string, file: string): DatasetSample[] {
  const samples: DatasetSample[] = [];
  const seen = new Set<string>();
  withoutBom(text).split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    const where = `${file}: line ${i + 1}`;
    let record: unknown;
    try {
      record = JSON.parse(raw);
    } catch (error) {
      throw new Error(`${where}: invalid JSON: ${(error as Error).message}`);
    }
    const sample = toDatasetSample(record, where, path.dirname(file), i + 1);
    const key = idKey(sample.id);
    if (seen.has(key)) throw new Error(`${where}: duplicate id ${key}`);
    seen.add(key);
    samples.push(sample);
  });
  return samples;
}

/** Reads a dataset file. */
export async function readDataset(file: string): Promise<DatasetSample[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    throw new Error(`Cannot read dataset file ${file}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}`);
  }
  return parseDataset(text, file);
}

function toDatasetSample(record: unknown, where: string, dir: string, line: number): DatasetSample {
  const gt = toGroundTruth(record, where);
  const obj = record as Record<string, unknown>;
  if (gt.image === undefined) throw new Error(`${where}: ${argumentMessage('a file path', 'image', obj.image)}`);
  const points = optionalList(obj.points, 'points', where, 'an array of [x, y, label] (label 0 or 1)', (v) => {
    if (!Array.isArray(v) || v.length !== 3 || !finite(v[0]) || !finite(v[1]) || (v[2] !== 0 && v[2] !== 1)) return undefined;
    return { x: v[0], y: v[1], label: v[2] } as Point;
  });
  const boxes = optionalList(obj.boxes, 'boxes', where, 'an array of [x0, y0, x1, y1]', toBox);
  const text = optionalString(obj.text, 'text', 'a non-empty string', where);
  const refImage = optionalString(obj.refImage, 'refImage', 'a file path', where);
  const refRegion = obj.refRegion === undefined ? undefined : toRegion(obj.refRegion, where);
  if (refRegion !== undefined && refImage === undefined) throw new Error(`${where}: "refRegion" needs "refImage"`);
  const referring = text !== undefined || refImage !== undefined;
  if (referring && boxes.length > 1) {
    throw new Error(`${where}: a referring sample ("text" / "refImage") takes at most one box, not ${boxes.length}`);
  }
  if (!referring && points.length + boxes.length === 0) {
    throw new Error(`${where}: no prompt: give "points", "boxes", "text" or "refImage"`);
  }
  return {
    ...gt,
    image: path.resolve(dir, gt.image),
    points,
    boxes,
    ...(text === undefined ? {} : { text }),
    ...(refImage === undefined ? {} : { refImage: path.resolve(dir, refImage) }),
    ...(refRegion === undefined ? {} : { refRegion }),
    line,
  };
}

const REGION_WHAT = 'an object with exactly one of box [x0, y0, x1, y1], scribble [[x, y], ...] or mask (a COCO RLE)';

function toRegion(value: unknown, where: string): DatasetRegion {
  const fail = (): never => {
    throw new Error(`${where}: ${argumentMessage(REGION_WHAT, 'refRegion', value)}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail();
  const obj = value as Record<string, unknown>;
  const kinds = (['box', 'scribble', 'mask'] as const).filter((k) => obj[k] !== undefined);
  if (kinds.length !== 1) return fail();
  if (kinds[0] === 'box') return { box: toBox(obj.box) ?? fail() };
  if (kinds[0] === 'scribble') {
    const vertices = obj.scribble;
    const ok = Array.isArray(vertices) && vertices.length > 0 && vertices.every((v) => Array.isArray(v) && v.length === 2 && v.every(finite));
    return ok ? { scribble: (vertices as number[][]).map(([x, y]) => [x, y] as Vertex) } : fail();
  }
  try {
    rleRuns(obj.mask as RLEInput);
  } catch (error) {
    throw new Error(`${where}: refRegion.mask: ${(error as Error).message}`);
  }
  return { mask: obj.mask as RLEInput };
}

function toBox(v: unknown): Box | undefined {
  return Array.isArray(v) && v.length === 4 && v.every(finite) ? ([v[0], v[1], v[2], v[3]] as Box) : undefined;
}

function optionalString(value: unknown, name: string, what: string, where: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.trim() === '') throw new Error(`${where}: ${argumentMessage(what, name, value)}`);
  return value;
}

function optionalList<T>(
  value: unknown,
  name: string,
  where: string,
  what: string,
  convert: (item: unknown) => T | undefined,
): T[] {
  if (value === undefined) return [];
  const items = Array.isArray(value) ? value.map(convert) : undefined;
  if (items === undefined || items.some((item) => item === undefined)) {
    throw new Error(`${where}: ${argumentMessage(what, name, value)}`);
  }
  return items as T[];
}

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}
