// The RLE codec, merge, IoU and the mask metrics against pycocotools: fixtures written by
// models/eval/generate_fixtures.py (pycocotools' encode / frPyObjects / iou / merge, and the
// metrics computed with numpy from pycocotools-decoded masks).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { evaluateMasks } from '../lib/eval/metrics.js';
import { parseRecords, toGroundTruth, toPrediction } from '../lib/eval/samples.js';
import { countsToString, decodeRLE, encodeRLE, rleArea, rleIoU, rleMerge } from '../lib/rle.js';
import type { RLE } from '../lib/types.js';

interface Fixture {
  masks: Array<{ height: number; width: number; bits: string; rle: RLE; uncompressed: number[]; fromUncompressed: string; area: number }>;
  pairs: Array<{ a: number; b: number; iou: number; union: string; intersection: string }>;
  eval: {
    gtJsonl: string;
    predJson: string;
    samples: Array<{ id: string | number; target: boolean; empty: boolean; intersection: number; union: number; iou: number }>;
    metrics: unknown;
  };
}

const FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'eval', 'coco.json');
const fixture = JSON.parse(readFileSync(FILE, 'utf8')) as Fixture;
const bitmap = (bits: string) => Uint8Array.from(bits, (c) => (c === '1' ? 1 : 0));

describe('RLE vs pycocotools', () => {
  it(`encodes, decodes and measures ${fixture.masks.length} masks as pycocotools does`, () => {
    for (const m of fixture.masks) {
      const mask = bitmap(m.bits);
      expect(encodeRLE(mask, m.height, m.width)).toEqual(m.rle);
      expect(decodeRLE(m.rle)).toEqual(mask);
      expect(decodeRLE({ size: m.rle.size, counts: m.uncompressed })).toEqual(mask);
      expect(countsToString(m.uncompressed)).toBe(m.fromUncompressed);
      expect(rleArea(m.rle)).toBe(m.area);
      expect(rleArea({ size: m.rle.size, counts: m.uncompressed })).toBe(m.area);
    }
  });

  it(`IoU, union and intersection of ${fixture.pairs.length} pairs equal pycocotools' iou and merge`, () => {
    for (const p of fixture.pairs) {
      const a = fixture.masks[p.a];
      const b = fixture.masks[p.b];
      expect(rleIoU(a.rle, b.rle)).toBe(p.iou);
      expect(rleIoU({ size: a.rle.size, counts: a.uncompressed }, b.rle)).toBe(p.iou);
      expect(rleMerge([a.rle, b.rle]).counts).toBe(p.union);
      expect(rleMerge([a.rle, b.rle], true).counts).toBe(p.intersection);
    }
  });
});

describe('mask metrics vs numpy on pycocotools-decoded masks', () => {
  it('JSONL ground truth, shuffled JSON predictions with both count forms and a missing one', () => {
    const gt = parseRecords(fixture.eval.gtJsonl, 'gt.jsonl').map((r, i) => toGroundTruth(r, `record ${i + 1}`));
    const pred = parseRecords(fixture.eval.predJson, 'pred.json').map((r, i) => toPrediction(r, `record ${i + 1}`));
    const result = evaluateMasks(gt, pred);
    expect(result.missing).toEqual(['s7']);
    expect(result.samples).toEqual(fixture.eval.samples);
    expect(result.metrics).toEqual(fixture.eval.metrics);
  });

  it('reads JSONL and JSON arrays that start with a byte order mark alike', () => {
    const plain = parseRecords(fixture.eval.gtJsonl, 'gt.jsonl');
    expect(parseRecords(`\uFEFF${fixture.eval.gtJsonl}`, 'gt.jsonl')).toEqual(plain);
    expect(parseRecords(`\uFEFF${JSON.stringify(plain)}`, 'gt.json')).toEqual(plain);
  });
});
