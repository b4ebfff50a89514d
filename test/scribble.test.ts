// Scribbles: sampling along the polyline, validation, and equivalence with the same clicks on
// the tiny SAM checkpoint.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageEmbedding } from '../lib/embedding.js';
import { checkPrompt, type Prompt } from '../lib/prompt.js';
import { samplePolyline, SCRIBBLE_MAX_POINTS, scribbleToPoints } from '../lib/scribble.js';
import { Segmenter, type SegmentResult } from '../lib/segmenter.js';
import type { Point, Scribble } from '../lib/types.js';
import { FIXTURES, MODEL_DIR } from './helpers/fixtures.js';

// wide.png is 150 × 100: spacing 150 / 32 = 4.6875 px.
const W = 150;
const H = 100;

/** Clicks with one label. */
const clicks = (label: 0 | 1, ...xy: Array<[number, number]>): Point[] => xy.map(([x, y]) => ({ x, y, label }));

describe('scribbleToPoints', () => {
  it('a straight stroke: at most 8 clicks, evenly spaced, endpoints included', () => {
    // Length 70 → floor(70 / 4.6875) + 1 = 15 → capped at 8, one every 10 px.
    expect(scribbleToPoints({ path: [[10, 40], [80, 40]], label: 1 }, W, H)).toEqual(
      clicks(1, [10, 40], [20, 40], [30, 40], [40, 40], [50, 40], [60, 40], [70, 40], [80, 40]),
    );
    expect(SCRIBBLE_MAX_POINTS).toBe(8);
  });

  it('follows the arc length around corners (the corner is kept only if a click falls on it)', () => {
    expect(scribbleToPoints({ path: [[10, 10], [40, 10], [40, 50]], label: 0 }, W, H)).toEqual(
      clicks(0, [10, 10], [20, 10], [30, 10], [40, 10], [40, 20], [40, 30], [40, 40], [40, 50]),
    );
    // Length 20 + 20 → floor(40 / 4.6875) + 1 = 9 → capped at 8, 40/7 apart: no click falls on
    // the corner (20, 0).
    const points = scribbleToPoints({ path: [[0, 0], [20, 0], [20, 20]], label: 1 }, W, H);
    expect(points).toHaveLength(8);
    expect(points.some((p) => p.x === 20 && p.y === 0)).toBe(false);
    points.forEach((p, k) => {
      const s = (k * 40) / 7; // arc length of click k
      expect(p.x).toBeCloseTo(Math.min(s, 20), 12);
      expect(p.y).toBeCloseTo(Math.max(s - 20, 0), 12);
    });
  });

  it('short strokes give fewer clicks, never fewer than the two endpoints', () => {
    // Length 10 → floor(10 / 4.6875) + 1 = 3.
    expect(scribbleToPoints({ path: [[0, 0], [6, 8]], label: 1 }, W, H)).toEqual(clicks(1, [0, 0], [3, 4], [6, 8]));
    // Length 1 → 2 clicks.
    expect(scribbleToPoints({ path: [[5, 5], [6, 5]], label: 1 }, W, H)).toEqual(clicks(1, [5, 5], [6, 5]));
  });

  it('spacing follows the longest side of the image', () => {
    // Same 10-px stroke on a 320-px image: spacing 10 → 2 clicks; on a 64-px image: spacing 2 → 6.
    expect(scribbleToPoints({ path: [[0, 0], [6, 8]], label: 1 }, 320, 10)).toHaveLength(2);
    expect(scribbleToPoints({ path: [[0, 0], [6, 8]], label: 1 }, 10, 64)).toHaveLength(6);
  });

  it('a single vertex, or a stroke of length 0, is one click', () => {
    expect(scribbleToPoints({ path: [[7, 3]], label: 0 }, W, H)).toEqual(clicks(0, [7, 3]));
    expect(scribbleToPoints({ path: [[7, 3], [7, 3], [7, 3]], label: 1 }, W, H)).toEqual(clicks(1, [7, 3]));
  });

  it('skips repeated vertices', () => {
    expect(samplePolyline([[0, 0], [10, 0], [10, 0], [20, 0]], 5, 8)).toEqual([[0, 0], [5, 0], [10, 0], [15, 0], [20, 0]]);
  });

  it('stays on the path for awkward lengths', () => {
    const path: Array<[number, number]> = [[0.1, 0.7], [149.9, 0.3], [0.3, 99.7]];
    const points = samplePolyline(path, 1, 8);
    expect(points).toHaveLength(8);
    expect(points[0]).toEqual([0.1, 0.7]);
    expect(points[7]).toEqual([0.3, 99.7]);
    for (const [x, y] of points) {
      expect(x).toBeGreaterThanOrEqual(0.1);
      expect(x).toBeLessThanOrEqual(149.9);
      expect(y).toBeGreaterThanOrEqual(0.3);
      expect(y).toBeLessThanOrEqual(99.7);
    }
  });
});

describe('scribbleToPoints argument checks', () => {
  it('refuses labels other than 0 / 1, vertices outside the image and bad sizes', () => {
    expect(() => scribbleToPoints({ path: [[1, 1]], label: 7 as 1 }, 10, 10)).toThrow(/0 or 1 for scribble\.label /);
    expect(() => scribbleToPoints({ path: [[1e9, 1]], label: 1 }, 10, 10)).toThrow(
      /between 0 and 10 for scribble\.path\[0\]\[0\] /,
    );
    expect(() => scribbleToPoints({ path: [[1, 1]], label: 1 }, 0, 10)).toThrow(/for width /);
    expect(() => scribbleToPoints({ path: [[1, 1]], label: 1 }, 10, NaN)).toThrow(/for height /);
  });
});

describe('scribbles in a prompt', () => {
  const settings = { multimask: false, threshold: 0 };
  const pack = (prompt: unknown) => checkPrompt(prompt, W, H, 4, settings).native;

  it('are packed after the points, scribble by scribble, with their labels', () => {
    const p = pack({
      points: [{ x: 1, y: 2, label: 1 }],
      scribbles: [
        { path: [[0, 0], [6, 8]], label: 1 },
        { path: [[9, 9]], label: 0 },
      ],
    });
    expect(p.pointsPerPrompt).toBe(5);
    expect(p.points).toEqual(new Float32Array([1, 2, 0, 0, 3, 4, 6, 8, 9, 9]));
    expect(p.labels).toEqual(new Int32Array([1, 1, 1, 1, 0]));
  });

  it('a scribble alone is a prompt', () => {
    expect(pack({ scribbles: [{ path: [[3, 3]], label: 1 }] }).pointsPerPrompt).toBe(1);
  });

  it('are validated like points, naming the offending field', () => {
    const bad: Array<[unknown, Error]> = [
      [
        { scribbles: { path: [[1, 1]], label: 1 } },
        new TypeError(
          'Expected an array of scribbles {path, label} for prompt.scribbles but received {path: [[...]], label: 1} of type object',
        ),
      ],
      [{ scribbles: [null] }, new TypeError('Expected an object {path, label, dense?} for prompt.scribbles[0] but received null of type null')],
      [
        { scribbles: [{ label: 1 }] },
        new TypeError('Expected a non-empty array of vertices [x, y] for prompt.scribbles[0].path but received undefined of type undefined'),
      ],
      [
        { scribbles: [{ path: [], label: 1 }] },
        new RangeError('Expected a non-empty array of vertices [x, y] for prompt.scribbles[0].path but received [] of type array'),
      ],
      [
        { scribbles: [{ path: [[1, 1], { x: 2, y: 2 }], label: 1 }] },
        new TypeError('Expected an array [x, y] for prompt.scribbles[0].path[1] but received {x: 2, y: 2} of type object'),
      ],
      [
        { scribbles: [{ path: [[1, 2, 3]], label: 1 }] },
        new RangeError('Expected an array [x, y] for prompt.scribbles[0].path[0] but received [1, 2, 3] of type array'),
      ],
      [
        { scribbles: [{ path: [[1, 1]], label: 1 }, { path: [[1, 1], [151, 5]], label: 0 }] },
        new RangeError('Expected a number between 0 and 150 for prompt.scribbles[1].path[1][0] but received 151 of type number'),
      ],
      [
        { scribbles: [{ path: [[1, NaN]], label: 1 }] },
        new RangeError('Expected a number between 0 and 100 for prompt.scribbles[0].path[0][1] but received NaN of type number'),
      ],
      [
        { scribbles: [{ path: [[1, '2']], label: 1 }] },
        new TypeError('Expected a number between 0 and 100 for prompt.scribbles[0].path[0][1] but received "2" of type string'),
      ],
      [
        { scribbles: [{ path: [[1, 1]], label: 2 }] },
        new RangeError('Expected 0 or 1 for prompt.scribbles[0].label but received 2 of type number'),
      ],
      [
        { scribbles: [{ path: [[1, 1]] }] },
        new TypeError('Expected 0 or 1 for prompt.scribbles[0].label but received undefined of type undefined'),
      ],
      [
        { scribbles: [] },
        new RangeError(
          'Expected at least one of points, scribbles, boxes, mask or maskInput for prompt but received {scribbles: []} of type object',
        ),
      ],
    ];
    for (const [prompt, error] of bad) expect(() => pack(prompt)).toThrow(error);
  });
});

describe('scribbles on the sam-tiny checkpoint', () => {
  let segmenter: Segmenter;
  let embedding: ImageEmbedding;
  beforeAll(async () => {
    segmenter = await Segmenter.load({ model: MODEL_DIR, threads: 2 });
    embedding = await segmenter.encode(path.join(FIXTURES, 'wide.png'));
  });
  afterAll(() => {
    embedding.dispose();
    segmenter.dispose();
  });

  const sameMasks = (a: SegmentResult, b: SegmentResult): void => {
    expect(a.masks).toHaveLength(b.masks.length);
    a.masks.forEach((mask, i) => {
      expect(mask.score).toBe(b.masks[i].score);
      expect(Buffer.from(mask.data).equals(Buffer.from(b.masks[i].data))).toBe(true);
      expect(Buffer.from(mask.lowResLogits.buffer, mask.lowResLogits.byteOffset, mask.lowResLogits.byteLength)).toEqual(
        Buffer.from(b.masks[i].lowResLogits.buffer, b.masks[i].lowResLogits.byteOffset, b.masks[i].lowResLogits.byteLength),
      );
    });
  };

  it('a scribble across the image gives the masks of its 8 clicks', async () => {
    const stroke: Scribble = { path: [[10, 40], [80, 40]], label: 1 };
    const fromScribble = await segmenter.segment(embedding, { scribbles: [stroke] }, { multimask: true });
    const fromClicks = await segmenter.segment(
      embedding,
      { points: clicks(1, [10, 40], [20, 40], [30, 40], [40, 40], [50, 40], [60, 40], [70, 40], [80, 40]) },
      { multimask: true },
    );
    sameMasks(fromScribble, fromClicks);
    expect(fromScribble.masks.some((m) => m.area > 0)).toBe(true);
    // The comparison can fail: the endpoints alone give other masks.
    const endpoints = await segmenter.segment(embedding, { points: clicks(1, [10, 40], [80, 40]) }, { multimask: true });
    expect(endpoints.masks.map((m) => m.score)).not.toEqual(fromScribble.masks.map((m) => m.score));
  });

  it('positive and negative scribbles with clicks and a box match the same clicks', async () => {
    const prompt: Prompt = {
      points: clicks(1, [75, 50]),
      scribbles: [
        { path: [[10, 10], [40, 10], [40, 50]], label: 1 },
        { path: [[120, 90], [126, 98]], label: 0 },
      ],
      boxes: [[5, 5, 140, 95]],
    };
    const fromScribbles = await segmenter.segment(embedding, prompt);
    const fromClicks = await segmenter.segment(embedding, {
      points: [
        ...clicks(1, [75, 50]),
        ...clicks(1, [10, 10], [20, 10], [30, 10], [40, 10], [40, 20], [40, 30], [40, 40], [40, 50]),
        ...clicks(0, [120, 90], [123, 94], [126, 98]),
      ],
      boxes: prompt.boxes,
    });
    sameMasks(fromScribbles, fromClicks);
  });
});
