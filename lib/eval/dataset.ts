// Dataset files of `omniseg eval --dataset`: JSONL, one sample per line,
//   {"id", "image", "height", "width", "masks": [RLE...],
//    "points"?: [[x, y, label], ...], "boxes"?: [[x0, y0, x1, y1], ...], "text"?: string}
// `image` is relative to the dataset file's folder; `masks` is the ground truth (none: no target);
// the prompts are in image pixels (x right, y down). A sample has points and/or boxes (SAM), or a
// text (referSegment), not both.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { argumentMessage } from '../errors.js';
import type { Box, Point } from '../types.js';
import { idKey, toGroundTruth, type GroundTruthSample } from './samples.js';

/** One dataset sample: its ground truth and its prompts. */
export interface DatasetSample extends GroundTruthSample {
  /** The image, resolved against the dataset file's folder. */
  image: string;
  points: Point[];
  boxes: Box[];
  text?: string;
  /** The 1-based line of the dataset file, for errors. */
  line: number;
}

/** Parses a dataset (JSONL; blank lines skipped). @param file names the source in errors and resolves `image` */
export function parseDataset(text: string, file: string): DatasetSample[] {
  const samples: DatasetSample[] = [];
  const seen = new Set<string>();
  text.split('\n').forEach((raw, i) => {
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
  const boxes = optionalList(obj.boxes, 'boxes', where, 'an array of [x0, y0, x1, y1]', (v) =>
    Array.isArray(v) && v.length === 4 && v.every(finite) ? ([v[0], v[1], v[2], v[3]] as Box) : undefined,
  );
  if (obj.text !== undefined && (typeof obj.text !== 'string' || obj.text.trim() === '')) {
    throw new Error(`${where}: ${argumentMessage('a non-empty string', 'text', obj.text)}`);
  }
  const text = obj.text as string | undefined;
  if (text !== undefined && points.length + boxes.length > 0) {
    throw new Error(`${where}: "text" does not go with "points" or "boxes" (a sample is prompted by one or the other)`);
  }
  if (text === undefined && points.length + boxes.length === 0) {
    throw new Error(`${where}: no prompt: give "points", "boxes" or "text"`);
  }
  return {
    ...gt,
    image: path.resolve(dir, gt.image),
    points,
    boxes,
    ...(text === undefined ? {} : { text }),
    line,
  };
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
