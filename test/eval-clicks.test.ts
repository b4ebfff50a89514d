// The NoC click protocol with stub segmenters whose behaviour is known, so that every click,
// IoU and NoC below is computed by hand; and with SAM (the tiny fixture) when the addon is built.
import { describe, expect, it } from 'vitest';
import {
  firstClick,
  maskIoU,
  nextClick,
  numberOfClicks,
  samClickSegmenter,
  simulateClicks,
  summarizeClicks,
  type ClickSegmenter,
} from '../lib/eval/clicks.js';
import { Segmenter } from '../lib/segmenter.js';
import type { Point } from '../lib/types.js';
import { FIXTURES, MODEL_DIR, addonAvailable } from './helpers/fixtures.js';
import path from 'node:path';

/** A width × height mask with the rectangle [x0..x1] × [y0..y1] (inclusive, clipped) set. */
function rect(width: number, height: number, x0: number, y0: number, x1: number, y1: number, into = new Uint8Array(width * height)) {
  for (let y = Math.max(0, y0); y <= Math.min(height - 1, y1); y++) {
    for (let x = Math.max(0, x0); x <= Math.min(width - 1, x1); x++) into[y * width + x] = 1;
  }
  return into;
}

/**
 * Refines the previous mask (fed back as logits, 1 inside / 0 outside): the newest click adds
 * (positive) or removes (negative) the 5x5 box around it. Records what it was given.
 */
function boxStub(width: number, height: number) {
  const calls: Array<{ clicks: Point[]; previous: Float32Array | undefined }> = [];
  const segmenter: ClickSegmenter<Float32Array> = {
    async predict(clicks, previous) {
      calls.push({ clicks: [...clicks], previous });
      const mask = previous === undefined ? new Uint8Array(width * height) : Uint8Array.from(previous);
      const c = clicks[clicks.length - 1];
      const box = rect(width, height, c.x - 2, c.y - 2, c.x + 2, c.y + 2);
      for (let i = 0; i < mask.length; i++) if (box[i]) mask[i] = c.label;
      return { mask, logits: Float32Array.from(mask) };
    },
  };
  return { segmenter, calls };
}

describe('click placement', () => {
  it('first click: the ground-truth pixel farthest from its boundary, first in row-major order on ties', () => {
    // Rectangle columns 2..16, rows 2..6 of 19x9: distance at (x, 4) is min(3, x - 1, 17 - x), 3 for x = 4..14.
    expect(firstClick(rect(19, 9, 2, 2, 16, 6), 19, 9)).toEqual({ x: 4, y: 4, label: 1 });
    // The image edge is a boundary: a 4x4 square in the corner peaks at (1, 1), distance 2.
    expect(firstClick(rect(8, 8, 0, 0, 3, 3), 8, 8)).toEqual({ x: 1, y: 1, label: 1 });
    expect(firstClick(new Uint8Array(16), 4, 4)).toBeUndefined();
  });

  it('next click: negative, farthest inside the largest error region (false positives)', () => {
    // 8x8; ground truth columns 0..3 rows 0..3 plus (7, 7); prediction columns 0..6 rows 0..3.
    // FP block columns 4..6 rows 0..3 (12 pixels) beats the FN pixel (7, 7); inside it the distance
    // min(x - 3, 7 - x, y + 1, 4 - y) peaks at 2 at (5, 1) and (5, 2).
    const gt = rect(8, 8, 0, 0, 3, 3);
    gt[7 * 8 + 7] = 1;
    const pred = rect(8, 8, 0, 0, 6, 3);
    expect(nextClick(gt, pred, 8, 8)).toEqual({ x: 5, y: 1, label: 0 });
    expect(nextClick(gt, pred, 8, 8, new Set([1 * 8 + 5]))).toEqual({ x: 5, y: 2, label: 0 });
    expect(nextClick(gt, gt, 8, 8)).toBeUndefined();
  });

  it('next click: the largest region wins over a deeper but smaller one', () => {
    // 10x10; FN strip along row 9 (10 pixels, depth 1) and FP block columns 0..2 rows 0..2
    // (9 pixels, depth 2 at (1, 1)): the strip is larger, so the click is positive at its first pixel.
    const gt = rect(10, 10, 0, 9, 9, 9);
    const pred = rect(10, 10, 0, 0, 2, 2);
    expect(nextClick(gt, pred, 10, 10)).toEqual({ x: 0, y: 9, label: 1 });
  });

  it('numberOfClicks: the first click with IoU ≥ the threshold, else the budget', () => {
    expect(numberOfClicks([0.5, 0.85, 0.95], 0.85)).toBe(2);
    expect(numberOfClicks([0.5, 0.85, 0.95], 0.9)).toBe(3);
    expect(numberOfClicks([0.5, 0.6], 0.9)).toBe(20);
    expect(numberOfClicks([0.5, 0.6, 0.95], 0.9, 2)).toBe(2);
    expect(maskIoU(Uint8Array.of(1, 1, 0), Uint8Array.of(0, 1, 1))).toBe(1 / 3);
    expect(maskIoU(new Uint8Array(3), new Uint8Array(3))).toBe(0);
  });
});

describe('simulateClicks with stub segmenters', () => {
  it('box stub on a 15x5 rectangle: clicks (4,4), (9,4), (14,4); IoU 1/3, 2/3, 1; logits fed back', async () => {
    // Ground truth columns 2..16, rows 2..6 of 19x9 (75 pixels). Click 1 at (4, 4) → box columns 2..6
    // (25 px). FN columns 7..16: depth min(3, x - 6, 17 - x) peaks first at (9, 4) → columns 2..11 (50 px).
    // FN columns 12..16: depth min(3, x - 11, 17 - x) peaks at (14, 4) → the whole rectangle.
    const gt = rect(19, 9, 2, 2, 16, 6);
    const { segmenter, calls } = boxStub(19, 9);
    const run = await simulateClicks(segmenter, gt, 19, 9);
    expect(run.clicks).toEqual([
      { x: 4, y: 4, label: 1 },
      { x: 9, y: 4, label: 1 },
      { x: 14, y: 4, label: 1 },
    ]);
    expect(run.ious).toEqual([25 / 75, 50 / 75, 1]);
    expect([run.noc85, run.noc90]).toEqual([3, 3]);
    expect(calls.map((c) => c.clicks.length)).toEqual([1, 2, 3]);
    expect(calls[0].previous).toBeUndefined();
    expect(Array.from(calls[1].previous ?? [])).toEqual(Array.from(rect(19, 9, 2, 2, 6, 6)));
    expect(Array.from(calls[2].previous ?? [])).toEqual(Array.from(rect(19, 9, 2, 2, 11, 6)));
  });

  it('a stub that overshoots, then is exact: the second click is negative; NoC@85 = NoC@90 = 2', async () => {
    // 8x8; ground truth columns 0..3 rows 0..3 plus (7, 7) (17 px). Round 1 returns columns 0..6 rows 0..3:
    // IoU 16 / 29; the FP block is the largest error → negative click at (5, 1). Round 2 returns the truth.
    const gt = rect(8, 8, 0, 0, 3, 3);
    gt[63] = 1;
    const rounds = [rect(8, 8, 0, 0, 6, 3), gt.slice()];
    const seen: Point[][] = [];
    const stub: ClickSegmenter<number> = {
      async predict(clicks, previous) {
        seen.push([...clicks]);
        expect(previous).toBe(clicks.length === 1 ? undefined : 1);
        return { mask: rounds[clicks.length - 1], logits: clicks.length };
      },
    };
    const run = await simulateClicks(stub, gt, 8, 8);
    expect(run.clicks).toEqual([
      { x: 1, y: 1, label: 1 },
      { x: 5, y: 1, label: 0 },
    ]);
    expect(run.ious).toEqual([16 / 29, 1]);
    expect([run.noc85, run.noc90]).toEqual([2, 2]);
  });

  it('a stub that never segments: each click at a new pixel, NoC 20 (the budget) when never reached', async () => {
    // 3x3 ground truth at columns 1..3, rows 1..3 of 5x5: the centre (2, 2) first (depth 2), then every
    // other pixel (depth 1) in row-major order; after 9 clicks no unclicked error pixel remains.
    const gt = rect(5, 5, 1, 1, 3, 3);
    const empty: ClickSegmenter = { predict: async () => ({ mask: new Uint8Array(25) }) };
    const run = await simulateClicks(empty, gt, 5, 5);
    expect(run.clicks.map((c) => [c.x, c.y, c.label])).toEqual([
      [2, 2, 1],
      [1, 1, 1],
      [2, 1, 1],
      [3, 1, 1],
      [1, 2, 1],
      [3, 2, 1],
      [1, 3, 1],
      [2, 3, 1],
      [3, 3, 1],
    ]);
    expect([run.noc85, run.noc90]).toEqual([20, 20]);
    const short = await simulateClicks(empty, gt, 5, 5, { maxClicks: 4 });
    expect(short.clicks).toHaveLength(4);
    expect([short.noc85, short.noc90]).toEqual([4, 4]);
  });

  it('stopAt: Infinity runs the whole budget; errors for an empty ground truth and a wrong-sized mask', async () => {
    const gt = rect(19, 9, 2, 2, 16, 6);
    const run = await simulateClicks(boxStub(19, 9).segmenter, gt, 19, 9, { stopAt: Infinity, maxClicks: 5 });
    // After IoU 1 there is no error left to click on.
    expect(run.ious).toEqual([25 / 75, 50 / 75, 1]);
    await expect(simulateClicks(boxStub(4, 4).segmenter, new Uint8Array(16), 4, 4)).rejects.toThrow(
      'The ground truth is empty: there is nothing to click on',
    );
    const bad: ClickSegmenter = { predict: async () => ({ mask: new Uint8Array(3) }) };
    await expect(simulateClicks(bad, gt, 19, 9)).rejects.toThrow('The segmenter returned a mask of 3 pixels for a 19x9 image');
  });

  it('summarizeClicks: mean NoC and the failures', () => {
    const runs = [
      { clicks: [], ious: [0.86, 0.95], noc85: 1, noc90: 2 },
      { clicks: [], ious: [0.5, 0.87], noc85: 2, noc90: 20 },
      { clicks: [], ious: [0.1], noc85: 20, noc90: 20 },
    ];
    expect(summarizeClicks(runs)).toEqual({ 'NoC@85': 23 / 3, 'NoC@90': 14, 'NoF@85': 1, 'NoF@90': 2, count: 3 });
    expect(summarizeClicks([])).toEqual({ 'NoC@85': null, 'NoC@90': null, 'NoF@85': 0, 'NoF@90': 0, count: 0 });
  });
});

describe.runIf(addonAvailable())('samClickSegmenter (tiny SAM fixture)', () => {
  it('follows the protocol: each click is the next click for the previous round, logits fed back', async () => {
    const sam = await Segmenter.load({ model: MODEL_DIR, device: 'cpu', threads: 2 });
    try {
      const embedding = await sam.encode(path.join(FIXTURES, 'wide.png'));
      const { width, height } = embedding;
      const gt = rect(width, height, 40, 30, 110, 70);
      const inner = samClickSegmenter(sam, embedding);
      const masks: Uint8Array[] = [];
      const logits: Float32Array[] = [];
      const recorder: ClickSegmenter = {
        async predict(clicks, previous) {
          expect(clicks).toHaveLength(masks.length + 1);
          expect(previous).toBe(logits.at(-1)); // the previous round's (none in the first)
          const out = await inner.predict(clicks, previous);
          expect(out.logits).toBeInstanceOf(Float32Array);
          masks.push(out.mask);
          logits.push(out.logits!);
          return out;
        },
      };
      const run = await simulateClicks(recorder, gt, width, height, { maxClicks: 4 });
      expect(run.clicks.length).toBeGreaterThan(1); // (IoU stays under 0.9 on the random model)
      expect(run.clicks[0]).toEqual(firstClick(gt, width, height));
      const clicked = new Set<number>([run.clicks[0].y * width + run.clicks[0].x]);
      for (let k = 1; k < run.clicks.length; k++) {
        expect(run.clicks[k]).toEqual(nextClick(gt, masks[k - 1], width, height, clicked));
        clicked.add(run.clicks[k].y * width + run.clicks[k].x);
      }
      expect(run.ious).toEqual(masks.map((m) => maskIoU(gt, m)));
      embedding.dispose();
    } finally {
      sam.dispose();
    }
  });
});
