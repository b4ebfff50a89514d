import { describe, expect, it } from 'vitest';
import { MAX_PROMPT_BOXES, MAX_PROMPT_POINTS, MAX_PROMPT_SET_POINTS, checkPrompt, toNativePrompt } from '../lib/prompt.js';

const settings = { multimask: false, threshold: 0 };
/** 100 × 80 image, 4 × 4 low-res logits (no dense mask to convert without a frame: checkPrompt packs all of it). */
const pack = (prompt: unknown, s = settings) => checkPrompt(prompt, 100, 80, 4, s).native;

describe('checkPrompt', () => {
  it('points only: one prompt set of N points, in image pixels, no padding point', () => {
    const p = pack({
      points: [
        { x: 10, y: 20, label: 1 },
        { x: 99.5, y: 0, label: 0 },
      ],
    });
    expect(p.promptCount).toBe(1);
    expect(p.pointsPerPrompt).toBe(2);
    expect(p.points).toEqual(new Float32Array([10, 20, 99.5, 0]));
    expect(p.labels).toEqual(new Int32Array([1, 0]));
    expect(p.boxes).toBeNull();
    expect(p.maskInput).toBeNull();
  });

  it('several boxes: one prompt set per box, the points repeated in each', () => {
    const p = pack({
      points: [{ x: 5, y: 6, label: 1 }],
      boxes: [
        [0, 0, 50, 40],
        [10, 20, 100, 80],
      ],
    });
    expect(p.promptCount).toBe(2);
    expect(p.pointsPerPrompt).toBe(1);
    expect(p.points).toEqual(new Float32Array([5, 6, 5, 6]));
    expect(p.labels).toEqual(new Int32Array([1, 1]));
    expect(p.boxes).toEqual(new Float32Array([0, 0, 50, 40, 10, 20, 100, 80]));
  });

  it('boxes only', () => {
    const p = pack({ boxes: [[1, 2, 3, 4]] });
    expect(p.promptCount).toBe(1);
    expect(p.points).toBeNull();
    expect(p.labels).toBeNull();
    expect(p.pointsPerPrompt).toBe(0);
  });

  it('mask input only: a copy of it, taken when the prompt is validated', () => {
    const maskInput = Float32Array.from({ length: 16 }, (_, i) => i - 8);
    const p = pack({ maskInput });
    expect(p.promptCount).toBe(1);
    // The decode reads it later (queued); the caller may change its array meanwhile.
    expect(p.maskInput).not.toBe(maskInput);
    maskInput.fill(NaN);
    expect(Array.from(p.maskInput!)).toEqual(Array.from({ length: 16 }, (_, i) => i - 8));
  });

  it(`refuses more than ${MAX_PROMPT_POINTS} points or ${MAX_PROMPT_BOXES} boxes, naming them`, () => {
    const points = Array.from({ length: MAX_PROMPT_POINTS + 1 }, () => ({ x: 1, y: 1, label: 1 }));
    expect(() => pack({ points })).toThrow(RangeError);
    expect(() => pack({ points })).toThrow(/at most 4096 points, scribble points included \(got 4097\) for prompt\.points /);
    expect(() => pack({ points: points.slice(1) })).not.toThrow();
    // scribbles count by the points they become (2 for this stroke)
    const scribbles = [{ path: [[0, 0], [1, 1]], label: 1 }];
    expect(() => pack({ points: points.slice(2), scribbles })).toThrow(/for prompt\.points and prompt\.scribbles /);
    const boxes = Array.from({ length: MAX_PROMPT_BOXES + 1 }, () => [0, 0, 1, 1]);
    expect(() => pack({ boxes })).toThrow(/at most 4096 boxes for prompt\.boxes /);
    expect(() => pack({ boxes: boxes.slice(1) })).not.toThrow();
  });

  it(`refuses more than ${MAX_PROMPT_SET_POINTS} points over all boxes (boxes × points)`, () => {
    const points = (n: number) => Array.from({ length: n }, () => ({ x: 1, y: 1, label: 1 }));
    const boxes = (n: number) => Array.from({ length: n }, () => [0, 0, 1, 1]);
    // the server's largest prompt fits
    expect(() => pack({ boxes: boxes(256), points: points(256) })).not.toThrow();
    expect(() => pack({ boxes: boxes(256), points: points(257) })).toThrow(
      /^Expected at most 65536 points over all boxes \(each box takes every point: 256 × 257\) for prompt but received/,
    );
    expect(() => pack({ boxes: boxes(4096), points: points(4096) })).toThrow(RangeError);
    // (each box alone, or the points alone, up to their own limits)
    expect(() => pack({ boxes: boxes(4096), points: points(16) })).not.toThrow();
    expect(() => pack({ points: points(4096) })).not.toThrow();
  });

  it('refuses a decode whose masks total more than 2^32 - 1 pixels, at the image\'s size', async () => {
    const boxes = (n: number) => Array.from({ length: n }, () => [0, 0, 1, 1]);
    // one decode's masks are one array: 1432 boxes × 3 masks of 1000 × 1000 pixels are more than 2^32 - 1
    const big = (prompt: unknown, multimask: boolean, side = 1000) => toNativePrompt(prompt, side, side, 4, { multimask, threshold: 0 });
    await expect(big({ boxes: boxes(1432) }, true)).rejects.toThrow(
      new RangeError(
        'Expected boxes whose masks total at most 2^32 - 1 pixels (boxes × masks per box × width × height = 4296000000; ' +
          'decode fewer boxes per call) for prompt.boxes but received [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], ... 1428 more] of type array',
      ),
    );
    await expect(big({ boxes: boxes(1431) }, true)).resolves.toMatchObject({ promptCount: 1431 });
    await expect(big({ boxes: boxes(1432) }, false)).resolves.toMatchObject({ promptCount: 1432 });
    await expect(big({ boxes: boxes(1074) }, false, 2000)).rejects.toThrow(/= 4296000000; decode fewer boxes per call\) for prompt\.boxes/);
    await expect(big({ boxes: boxes(1073) }, false, 2000)).resolves.toMatchObject({ promptCount: 1073 });
  });

  it('carries multimask and threshold', () => {
    const p = pack({ boxes: [[1, 2, 3, 4]] }, { multimask: true, threshold: -0.5 });
    expect([p.multimask, p.threshold]).toEqual([true, -0.5]);
  });

  it('no prompt at all is a RangeError', () => {
    expect(() => pack({})).toThrow(
      new RangeError('Expected at least one of points, scribbles, boxes, mask or maskInput for prompt but received {} of type object'),
    );
    expect(() => pack({ points: [], boxes: [] })).toThrow(
      new RangeError(
        'Expected at least one of points, scribbles, boxes, mask or maskInput for prompt but received {points: [], boxes: []} of type object',
      ),
    );
  });

  it('type errors name the offending field', () => {
    expect(() => pack(null)).toThrow(
      new TypeError('Expected an object {points?, scribbles?, boxes?, mask?, maskInput?} for prompt but received null of type null'),
    );
    expect(() => pack({ points: { x: 1, y: 2, label: 1 } })).toThrow(
      new TypeError(
        'Expected an array of points {x, y, label} for prompt.points but received {x: 1, y: 2, label: 1} of type object',
      ),
    );
    expect(() => pack({ boxes: [1, 2, 3, 4] })).toThrow(
      new TypeError('Expected an array [x0, y0, x1, y1] for prompt.boxes[0] but received 1 of type number'),
    );
  });

  it('checks coordinates against the image and the mask input size', () => {
    expect(() => pack({ points: [{ x: 1, y: 81, label: 1 }] })).toThrow(
      new RangeError('Expected a number between 0 and 80 for prompt.points[0].y but received 81 of type number'),
    );
    expect(() => pack({ boxes: [[0, 0, 10, 10], [30, 0, 20, 10]] })).toThrow(
      new RangeError(
        'Expected a box [x0, y0, x1, y1] with x0 <= x1 and y0 <= y1 for prompt.boxes[1] but received [30, 0, 20, 10] of type array',
      ),
    );
    expect(() => pack({ maskInput: new Float32Array(15) })).toThrow(
      new RangeError(
        'Expected a Float32Array of 16 finite values (4x4 logits) for prompt.maskInput but received Float32Array(15) of type Float32Array',
      ),
    );
  });
});
