// gRefCOCO (Liu et al., "GRES: Generalized Referring Expression Segmentation", CVPR 2023) → the
// JSONL of `omniseg eval --dataset`. The release is `grefs(unc).json` — a list of refs
//   {"ref_id", "image_id", "split", "ann_id": id | [ids], "sentences": [{"sent_id", "raw", "sent", ...}], ...}
// where a no-target ref has "ann_id": [-1] — and COCO's `instances.json` ({"images": [{"id",
// "file_name", "height", "width"}], "annotations": [{"id", "image_id", "segmentation", "iscrowd"}]}).
// As the reference loader (ReLA's grefcoco.py with grefer.py) reads them: one sample per (ref,
// sentence), the sentence's "raw" text as the prompt; the ground truth is the union of the ref's
// annotations' masks, crowd annotations skipped, polygons with fewer than 3 vertices (or an odd
// number of coordinates) dropped, RLE segmentations (compressed or not) taken as they are; a
// no-target ref has no mask.
import path from 'node:path';
import { argumentMessage } from '../errors.js';
import { mergeValidRuns, rleRuns, validCountsString } from '../rle.js';
import type { RLE, RLEInput } from '../types.js';
import { polygonRuns } from './polygon.js';

/** One line of the converted dataset. */
export interface GrefcocoSample {
  /** The sentence's sent_id (unique in the release). */
  id: number;
  image: string;
  height: number;
  width: number;
  /** The united masks of the ref's annotations; none for a no-target ref. */
  masks: RLE[];
  text: string;
  refId: number;
}

export interface GrefcocoOptions {
  /** Keep only the refs of this split (e.g. "val", "testA"). */
  split?: string;
  /** Gives each image's path in the output from its COCO file_name. Default: the file_name. */
  imagePath?: (fileName: string) => string;
}

export interface GrefcocoConversion {
  samples: GrefcocoSample[];
  /** Refs converted, and of them those without a target. */
  refs: number;
  noTargetRefs: number;
  /** The splits the release has, in order of appearance. */
  splits: string[];
}

interface CocoImage {
  file_name: string;
  height: number;
  width: number;
}

interface CocoAnnotation {
  image_id: number;
  segmentation: unknown;
  iscrowd?: number | boolean;
}

/**
 * Converts parsed `grefs(unc).json` and `instances.json`. Yields to the event loop every few
 * hundred refs.
 * @throws Error naming the ref (or annotation) and field that do not fit the format
 */
export async function convertGrefcoco(grefs: unknown, instances: unknown, options: GrefcocoOptions = {}): Promise<GrefcocoConversion> {
  if (!Array.isArray(grefs)) throw new Error(`grefs: ${argumentMessage('an array of refs', 'the file', grefs)}`);
  const { images, annotations } = indexInstances(instances);
  const splits = [...new Set(grefs.map((r: unknown) => String(field(r, 'split', 'ref'))))];
  if (options.split !== undefined && !splits.includes(options.split)) {
    throw new Error(`No ref has split ${JSON.stringify(options.split)}; the splits are: ${splits.join(', ')}`);
  }
  const imagePath = options.imagePath ?? ((name: string) => name);
  const out: GrefcocoConversion = { samples: [], refs: 0, noTargetRefs: 0, splits };
  for (const [i, ref] of grefs.entries()) {
    if (i % 256 === 255) await new Promise((resolve) => setImmediate(resolve));
    if (options.split !== undefined && field(ref, 'split', 'ref') !== options.split) continue;
    const refId = integer(field(ref, 'ref_id', 'ref'), 'ref_id', 'ref');
    const where = `ref ${refId}`;
    const imageId = integer(field(ref, 'image_id', where), 'image_id', where);
    const image = images.get(imageId);
    if (image === undefined) throw new Error(`${where}: image_id ${imageId} is not in instances.json's images`);
    const annIds = field(ref, 'ann_id', where);
    const ids = (Array.isArray(annIds) ? annIds : [annIds]).map((id) => integer(id, 'ann_id', where));
    const noTarget = ids.includes(-1);
    if (noTarget && ids.length !== 1) throw new Error(`${where}: ann_id mixes -1 (no target) with annotations: ${JSON.stringify(annIds)}`);
    const masks = noTarget ? [] : [refMask(ids, annotations, imageId, image, where)];
    out.refs++;
    if (noTarget) out.noTargetRefs++;
    const sentences = field(ref, 'sentences', where);
    if (!Array.isArray(sentences)) throw new Error(`${where}: ${argumentMessage('an array', 'sentences', sentences)}`);
    for (const sentence of sentences) {
      const id = integer(field(sentence, 'sent_id', where), 'sent_id', where);
      const s = sentence as Record<string, unknown>;
      const text = [s.raw, s.sent].find((t): t is string => typeof t === 'string' && t.trim() !== '');
      if (text === undefined) throw new Error(`${where}: sentence ${id} has no text ("raw" or "sent")`);
      out.samples.push({ id, image: imagePath(image.file_name), height: image.height, width: image.width, masks, text, refId });
    }
  }
  return out;
}

function indexInstances(instances: unknown): { images: Map<number, CocoImage>; annotations: Map<number, CocoAnnotation> } {
  const images = new Map<number, CocoImage>();
  const annotations = new Map<number, CocoAnnotation>();
  const list = (key: string): unknown[] => {
    const value = field(instances, key, 'instances');
    if (!Array.isArray(value)) throw new Error(`instances: ${argumentMessage('an array', key, value)}`);
    return value;
  };
  for (const img of list('images')) {
    const id = integer(field(img, 'id', 'image'), 'id', 'image');
    const where = `image ${id}`;
    const fileName = field(img, 'file_name', where);
    if (typeof fileName !== 'string' || fileName === '') throw new Error(`${where}: ${argumentMessage('a file name', 'file_name', fileName)}`);
    const [height, width] = ['height', 'width'].map((k) => integer(field(img, k, where), k, where));
    if (height < 1 || width < 1) throw new Error(`${where}: the size ${width}x${height} is empty`);
    images.set(id, { file_name: fileName, height, width });
  }
  for (const ann of list('annotations')) {
    const id = integer(field(ann, 'id', 'annotation'), 'id', 'annotation');
    const where = `annotation ${id}`;
    const a = ann as Record<string, unknown>;
    annotations.set(id, { image_id: integer(field(ann, 'image_id', where), 'image_id', where), segmentation: a.segmentation, iscrowd: a.iscrowd as number });
  }
  return { images, annotations };
}

/** The union of the ref's (non-crowd) annotations as one RLE at the image's size. */
function refMask(ids: readonly number[], annotations: Map<number, CocoAnnotation>, imageId: number, image: CocoImage, where: string): RLE {
  const { height, width } = image;
  let counts: number[] = [height * width];
  for (const id of ids) {
    const ann = annotations.get(id);
    if (ann === undefined) throw new Error(`${where}: annotation ${id} is not in instances.json`);
    if (ann.image_id !== imageId) throw new Error(`${where}: annotation ${id} is on image ${ann.image_id}, not ${imageId}`);
    if (ann.iscrowd) continue;
    for (const runs of segmentationRuns(ann.segmentation, height, width, `${where}: annotation ${id}`)) {
      counts = mergeValidRuns(counts, runs);
    }
  }
  return { size: [height, width], counts: validCountsString(counts) };
}

/** Run lengths of each part of a COCO segmentation: valid polygons, or one RLE. */
function segmentationRuns(segmentation: unknown, height: number, width: number, where: string): number[][] {
  if (Array.isArray(segmentation)) {
    return segmentation
      .filter((p): p is number[] => Array.isArray(p) && p.length >= 6 && p.length % 2 === 0 && p.every((v) => typeof v === 'number' && Number.isFinite(v)))
      .map((p) => polygonRuns(p, height, width));
  }
  try {
    const { height: h, width: w, counts } = rleRuns(segmentation as RLEInput);
    if (h !== height || w !== width) throw new Error(`its RLE is ${w}x${h} but the image is ${width}x${height}`);
    return [[...counts]];
  } catch (error) {
    throw new Error(`${where}: segmentation: ${(error as Error).message}`);
  }
}

function field(record: unknown, key: string, where: string): unknown {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    throw new Error(`${where}: ${argumentMessage('an object', where, record)}`);
  }
  const value = (record as Record<string, unknown>)[key];
  if (value === undefined) throw new Error(`${where}: missing "${key}"`);
  return value;
}

function integer(value: unknown, name: string, where: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  throw new Error(`${where}: ${argumentMessage('an integer', name, value)}`);
}

/** The image path of a converted sample: the COCO file_name under `imagesDir`, relative to the output's folder. */
export function relativeImagePath(outFile: string, imagesDir: string): (fileName: string) => string {
  const base = path.dirname(path.resolve(outFile));
  return (fileName) => path.relative(base, path.resolve(imagesDir, fileName)).split(path.sep).join('/');
}
