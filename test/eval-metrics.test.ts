// Mask metrics on hand-computed cases, and the sample formats (JSON / JSONL, both count forms,
// matching by id). Masks are 2x2; COCO counts run down the columns: pixel order
// (row 0, col 0), (row 1, col 0), (row 0, col 1), (row 1, col 1).
import { describe, expect, it } from 'vitest';
import { evaluateMasks, scoreSample, summarize } from '../lib/eval/metrics.js';
import { matchPredictions, parseRecords, toGroundTruth, toPrediction, type GroundTruthSample, type PredictionSample } from '../lib/eval/samples.js';
import { countsToString, mergeRuns, overlapRuns, rleIoU, rleMerge, runsArea } from '../lib/rle.js';

const SIZE: [number, number] = [2, 2];
/** A 2x2 RLE from column-major pixel indices, uncompressed or compressed. */
function rle(pixels: number[], compressed = false) {
  const bits = [0, 1, 2, 3].map((k) => (pixels.includes(k) ? 1 : 0));
  const counts: number[] = [];
  let value = 0;
  let run = 0;
  for (const b of bits) {
    if (b !== value) {
      counts.push(run);
      run = 0;
      value = b;
    }
    run++;
  }
  counts.push(run);
  return { size: SIZE, counts: compressed ? countsToString(counts) : counts };
}
const gt = (id: string | number, masks: ReturnType<typeof rle>[]): GroundTruthSample => ({ id, height: 2, width: 2, masks });
const pred = (id: string | number, masks: ReturnType<typeof rle>[]): PredictionSample => ({ id, masks });

// A: target {0,1}, prediction {1,2}: I 1, U 3.      B: target {0,1,2,3}, prediction {0,1,2}: I 3, U 4.
// C: target {3}, no prediction (empty): I 0, U 1.   D: no target (no masks), prediction []: TN.
// E: no target (one empty mask), prediction {0}: FP, U 1.
// F: target {0} ∪ {3}, prediction {0} ∪ {1}: I 1, U 3.
const GT = [
  gt('A', [rle([0, 1])]),
  gt('B', [rle([0, 1, 2, 3])]),
  gt('C', [rle([3])]),
  gt('D', []),
  gt('E', [rle([])]),
  gt(6, [rle([0]), rle([3], true)]),
];
const PRED = [
  pred(6, [rle([0], true), rle([1])]),
  pred('E', [rle([0], true)]),
  pred('B', [rle([0, 1, 2], true)]),
  pred('D', []),
  pred('A', [rle([1, 2], true)]),
];
const EXPECTED = {
  cIoU: 5 / 12, // (1 + 3 + 0 + 0 + 0 + 1) / (3 + 4 + 1 + 0 + 1 + 3)
  gIoU: (1 / 3 + 3 / 4 + 0 + 1 + 0 + 1 / 3) / 6,
  precision: { '0.5': 1 / 4, '0.6': 1 / 4, '0.7': 1 / 4, '0.8': 0, '0.9': 0 }, // only B (0.75) among A, B, C, F
  nAcc: 1 / 2, // D TN, E FP
  tAcc: 3 / 4, // A, B, F TP; C FN
  count: 6,
  mIoU: (1 / 3 + 3 / 4 + 0 + 1 / 3) / 4,
};

describe('evaluateMasks (hand-computed)', () => {
  it('scores targets, no-targets, empty and missing predictions, in any order', () => {
    const result = evaluateMasks(GT, PRED);
    expect(result.metrics).toEqual(EXPECTED);
    expect(Object.keys(result.metrics)).toEqual(['cIoU', 'gIoU', 'precision', 'nAcc', 'tAcc', 'count', 'mIoU']);
    expect(result.missing).toEqual(['C']);
    expect(result.extra).toEqual([]);
    expect(result.samples.map((s) => [s.id, s.target, s.empty, s.intersection, s.union, s.iou])).toEqual([
      ['A', true, false, 1, 3, 1 / 3],
      ['B', true, false, 3, 4, 3 / 4],
      ['C', true, true, 0, 1, 0],
      ['D', false, true, 0, 0, 1],
      ['E', false, false, 0, 1, 0],
      [6, true, false, 1, 3, 1 / 3],
    ]);
  });

  it('gives the same numbers for reversed predictions and for the other count form', () => {
    expect(evaluateMasks(GT, [...PRED].reverse()).metrics).toEqual(EXPECTED);
    const flipped = PRED.map((p) => ({
      ...p,
      masks: p.masks.map((m) => ({ size: m.size, counts: typeof m.counts === 'string' ? m.counts : countsToString(m.counts) })),
    }));
    expect(evaluateMasks(GT, flipped).metrics).toEqual(EXPECTED);
  });

  it('precision counts IoU strictly above the threshold: IoU 0.5 is not a hit at 0.5', () => {
    const { metrics } = evaluateMasks([gt(1, [rle([0, 1])])], [pred(1, [rle([0])])]);
    expect(metrics.mIoU).toBe(0.5);
    expect(metrics.precision).toEqual({ '0.5': 0, '0.6': 0, '0.7': 0, '0.8': 0, '0.9': 0 });
    const perfect = evaluateMasks([gt(1, [rle([0, 1])])], [pred(1, [rle([0, 1])])]).metrics;
    expect(perfect.precision).toEqual({ '0.5': 1, '0.6': 1, '0.7': 1, '0.8': 1, '0.9': 1 });
  });

  it('ids match exactly: the number 1 and the string "1" differ; unknown predictions are listed', () => {
    const result = evaluateMasks([gt(1, [rle([0])])], [pred('1', [rle([0])])]);
    expect(result.missing).toEqual([1]);
    expect(result.extra).toEqual(['1']);
    expect(result.metrics.tAcc).toBe(0);
  });

  it('ratios with nothing to count are null', () => {
    expect(summarize([])).toEqual({
      cIoU: null,
      gIoU: null,
      precision: { '0.5': null, '0.6': null, '0.7': null, '0.8': null, '0.9': null },
      nAcc: null,
      tAcc: null,
      count: 0,
      mIoU: null,
    });
    // Only true negatives: no union anywhere, so cIoU is undefined; gIoU and nAcc are 1.
    const m = evaluateMasks([gt('x', [])], [pred('x', [])]).metrics;
    expect([m.cIoU, m.gIoU, m.nAcc, m.tAcc, m.mIoU, m.count]).toEqual([null, 1, 1, null, null, 1]);
  });

  it('a prediction of another size is an error naming the sample', () => {
    expect(() => evaluateMasks([gt('a', [rle([0])])], [pred('a', [{ size: [3, 2], counts: [6] }])])).toThrow(
      'sample "a" (prediction): masks[0] has size [3, 2] but the sample is [2, 2] (height, width)',
    );
  });

  it('scoreSample works on run lengths', () => {
    expect(scoreSample('s', [0, 2, 2], [1, 2, 1])).toEqual({ id: 's', target: true, empty: false, intersection: 1, union: 3, iou: 1 / 3 });
  });
});

describe('RLE merge and overlap (hand-computed)', () => {
  it('unites and intersects run lengths', () => {
    // {0,1} and {1,2} of 4 pixels.
    expect(mergeRuns([0, 2, 2], [1, 2, 1])).toEqual([0, 3, 1]);
    expect(mergeRuns([0, 2, 2], [1, 2, 1], true)).toEqual([1, 1, 2]);
    expect(overlapRuns([0, 2, 2], [1, 2, 1])).toEqual({ intersection: 1, union: 3 });
    // Zero-length runs inside the lists are skipped.
    expect(mergeRuns([2, 0, 2], [4])).toEqual([4]);
    expect(mergeRuns([2, 0, 0, 2], [4])).toEqual([2, 2]);
    expect(runsArea([1, 2, 1])).toBe(2);
  });

  it('rleMerge and rleIoU accept both count forms; an empty list gives an empty mask', () => {
    expect(rleMerge([rle([0, 1]), rle([1, 2], true)])).toEqual({ size: [2, 2], counts: countsToString([0, 3, 1]) });
    expect(rleMerge([], false, [2, 3])).toEqual({ size: [2, 3], counts: '6' });
    expect(rleIoU(rle([0, 1]), rle([1, 2], true))).toBe(1 / 3);
    expect(rleIoU(rle([]), rle([]))).toBe(0);
    expect(() => rleMerge([rle([0]), { size: [1, 4], counts: [4] }])).toThrow(
      'Expected an RLE of size [2, 2] for rles[1].size but received [1, 4] of type array',
    );
  });
});

describe('sample formats', () => {
  const gtLine = '{"id":"a","height":2,"width":2,"masks":[{"size":[2,2],"counts":[0,2,2]}]}';

  it('reads JSONL (blank lines skipped) and JSON arrays', () => {
    expect(parseRecords(`${gtLine}\n\n${gtLine}\n`, 'f')).toHaveLength(2);
    expect(parseRecords(`  [${gtLine}, ${gtLine}]`, 'f')).toHaveLength(2);
    expect(() => parseRecords(`${gtLine}\n{oops\n`, 'gt.jsonl')).toThrow(/^gt\.jsonl: line 2: invalid JSON: /);
  });

  it('checks records and names the record and field', () => {
    const good = JSON.parse(gtLine) as Record<string, unknown>;
    expect(toGroundTruth(good, 'r1')).toEqual({ id: 'a', height: 2, width: 2, masks: [{ size: [2, 2], counts: [0, 2, 2] }] });
    expect(() => toGroundTruth({ ...good, id: null }, 'r1')).toThrow('r1: Expected a string or a number for id but received null of type null');
    expect(() => toGroundTruth({ ...good, height: 0 }, 'r1')).toThrow('r1: Expected a positive integer for height but received 0 of type number');
    expect(() => toGroundTruth({ ...good, masks: [{ size: [2, 2], counts: [1, 2] }] }, 'r1')).toThrow(
      'r1: masks[0]: Expected run lengths summing to height × width = 4 (they sum to 3) for rle.counts',
    );
    expect(() => toGroundTruth({ ...good, masks: [{ size: [1, 4], counts: [4] }] }, 'r1')).toThrow(
      'r1: masks[0] has size [1, 4] but the sample is [2, 2] (height, width)',
    );
    expect(() => toPrediction({ id: 'a' }, 'r2')).toThrow('r2: Expected an array of COCO RLEs {size, counts} for masks but received undefined');
    expect(() => toPrediction([], 'r2')).toThrow('r2: Expected an object {id, masks} for the record but received [] of type array');
  });

  it('ground truth takes COCO polygons per object (rasterised as pycocotools does) beside RLEs', () => {
    // a 2×2 square [1, 1]–[3, 3] on a 4 × 4 image covers pixels (1..2, 1..2) (cf. test/eval-dataset.test.ts)
    const square = [[1, 1, 3, 1, 3, 3, 1, 3]];
    const gt = toGroundTruth({ id: 'p', height: 4, width: 4, masks: [square, { size: [4, 4], counts: [16] }] }, 'r1');
    expect(gt.masks).toHaveLength(2);
    const poly = gt.masks[0] as { size: [number, number]; counts: string };
    expect(poly.size).toEqual([4, 4]);
    expect(rleMerge([poly])).toEqual(rleMerge([{ size: [4, 4], counts: [5, 2, 2, 2, 5] }]));
    expect(() => toGroundTruth({ id: 'p', height: 4, width: 4, masks: [[[0, 0, 1, 1]]] }, 'r1')).toThrow(/^r1: Expected a polygon/);
  });

  it('matchPredictions pairs by id in ground-truth order', () => {
    const m = matchPredictions([gt('a', []), gt('b', [])], [pred('c', []), pred('b', [])]);
    expect(m.pairs.map((p) => [p.gt.id, p.pred?.id])).toEqual([
      ['a', undefined],
      ['b', 'b'],
    ]);
    expect(m.missing).toEqual(['a']);
    expect(m.extra).toEqual(['c']);
  });
});
