// Referring segmentation (lib/referring/): heat map → instances on constructed maps, mask NMS on
// constructed masks, the SAM prompts of each instance, and referSegment end to end on the tiny
// SAM and CLIPSeg fixtures (random weights: mechanics only — what reaches SAM, no target, NMS).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeForEncoder, decodeImage } from '../lib/image.js';
import { Mask } from '../lib/mask.js';
import { native } from '../lib/native.js';
import { Referrer } from '../lib/referrer.js';
import { maskToCounts } from '../lib/rle.js';
import { findInstancesAsync, instanceRuns } from '../lib/referring/instances.js';
import {
  DEFAULT_HEAT_THRESHOLD,
  DEFAULT_MIN_AREA,
  findInstances,
  instanceMasks,
  instancePrompts,
  labelComponents,
  maskNms,
  referSegment,
  referSegmentEach,
  type Instance,
} from '../lib/referring/index.js';
import { toNativePrompt } from '../lib/prompt.js';
import { Segmenter } from '../lib/segmenter.js';
import type { Box, Prompt } from '../lib/index.js';
import { seededRandom } from './helpers/random.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const SAM_DIR = path.join(FIXTURES, 'sam-tiny', 'model');
const CLIPSEG_DIR = path.join(FIXTURES, 'clipseg-tiny', 'model');
const WIDE = path.join(FIXTURES, 'sam-tiny', 'wide.png');

/** A width × height map, 0 everywhere except the given [x, y, value] pixels. */
function heatMap(width: number, height: number, pixels: Array<[number, number, number]>): Float32Array {
  const heat = new Float32Array(width * height);
  for (const [x, y, v] of pixels) heat[y * width + x] = v;
  return heat;
}

/** Pixels of the rectangle [x0, x1] × [y0, y1] (inclusive), all with `value`, or `value(x, y)`. */
function rect(x0: number, y0: number, x1: number, y1: number, value: number | ((x: number, y: number) => number)) {
  const out: Array<[number, number, number]> = [];
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) out.push([x, y, typeof value === 'number' ? value : value(x, y)]);
  }
  return out;
}

const summary = (inst: Instance) => ({
  peak: inst.peak,
  box: inst.box,
  area: inst.area,
  maxResponse: inst.maxResponse,
  meanResponse: inst.meanResponse,
});

describe('findInstances', () => {
  it('two blobs: one instance each, sorted by peak response, with peak, box, area, mean/max', () => {
    const heat = heatMap(20, 10, [
      ...rect(1, 1, 4, 3, 0.6), // 4 × 3, weaker
      ...rect(10, 5, 12, 8, (x, y) => (x === 11 && y === 6 ? 0.9 : 0.7)), // 3 × 4, stronger
    ]);
    const found = findInstances(heat, 20, 10, { minArea: 0 });
    expect(found.map(summary)).toEqual([
      { peak: { x: 11, y: 6 }, box: [10, 5, 12, 8], area: 12, maxResponse: expect.closeTo(0.9, 6), meanResponse: expect.closeTo((11 * 0.7 + 0.9) / 12, 6) },
      { peak: { x: 1, y: 1 }, box: [1, 1, 4, 3], area: 12, maxResponse: expect.closeTo(0.6, 6), meanResponse: expect.closeTo(0.6, 6) },
    ]);
    // Each instance's mask is exactly its component.
    expect(found[0].mask.reduce((s, v) => s + v, 0)).toBe(12);
    expect(found[0].mask[6 * 20 + 11]).toBe(1);
    expect(found[0].mask[1 * 20 + 1]).toBe(0);
  });

  it('blobs touching at a corner: one instance with 8-connectivity (default), two with 4', () => {
    const heat = heatMap(10, 10, [...rect(1, 1, 3, 3, 0.8), ...rect(4, 4, 6, 6, 0.7)]);
    const eight = findInstances(heat, 10, 10, { minArea: 0 });
    expect(eight.map(summary)).toEqual([
      { peak: { x: 1, y: 1 }, box: [1, 1, 6, 6], area: 18, maxResponse: expect.closeTo(0.8, 6), meanResponse: expect.closeTo(0.75, 6) },
    ]);
    const four = findInstances(heat, 10, 10, { minArea: 0, connectivity: 4 });
    expect(four.map((i) => i.box)).toEqual([
      [1, 1, 3, 3],
      [4, 4, 6, 6],
    ]);
  });

  it('blobs sharing an edge are one instance with either connectivity', () => {
    const heat = heatMap(10, 10, [...rect(1, 1, 3, 3, 0.8), ...rect(4, 1, 6, 3, 0.7)]);
    expect(findInstances(heat, 10, 10, { minArea: 0, connectivity: 4 }).map((i) => i.box)).toEqual([[1, 1, 6, 3]]);
  });

  it('a blob with a hole: one instance, the hole outside its area and mask but inside its box', () => {
    const ring = rect(2, 2, 8, 8, (x, y) => (x >= 4 && x <= 6 && y >= 4 && y <= 6 ? 0.1 : 0.8));
    const [inst, ...rest] = findInstances(heatMap(12, 12, ring), 12, 12, { minArea: 0 });
    expect(rest).toEqual([]);
    expect(inst.box).toEqual([2, 2, 8, 8]);
    expect(inst.area).toBe(49 - 9);
    expect(inst.mask[5 * 12 + 5]).toBe(0);
    expect(inst.meanResponse).toBeCloseTo(0.8, 6);
  });

  it('nothing above the threshold: no instances; the threshold is strict', () => {
    const heat = heatMap(8, 8, rect(0, 0, 7, 7, 0.5));
    expect(DEFAULT_HEAT_THRESHOLD).toBe(0.5);
    expect(findInstances(heat, 8, 8)).toEqual([]);
    expect(findInstances(heat, 8, 8, { threshold: 0.49 })).toHaveLength(1);
    expect(findInstances(heatMap(8, 8, rect(0, 0, 7, 7, 1)), 8, 8, { threshold: 1 })).toEqual([]);
  });

  it('one-pixel noise below the minimum area is dropped; minArea is relative to the image', () => {
    // 100 × 100: the default 0.001 is 10 pixels.
    expect(DEFAULT_MIN_AREA).toBe(0.001);
    const heat = heatMap(100, 100, [[50, 50, 0.99], ...rect(10, 10, 13, 12, 0.7)]); // 1 px and 12 px
    expect(findInstances(heat, 100, 100).map((i) => i.area)).toEqual([12]);
    expect(findInstances(heat, 100, 100, { minArea: 0 }).map((i) => i.area)).toEqual([1, 12]);
    expect(findInstances(heat, 100, 100, { minArea: 0.0013 })).toEqual([]); // ceil(13) > 12
  });

  it('maxInstances keeps the strongest peaks', () => {
    const heat = heatMap(10, 1, [
      [0, 0, 0.6],
      [3, 0, 0.9],
      [6, 0, 0.7],
      [9, 0, 0.8],
    ]);
    expect(findInstances(heat, 10, 1, { minArea: 0, maxInstances: 2 }).map((i) => i.peak.x)).toEqual([3, 9]);
  });

  it('validates its arguments with the shared message template', () => {
    const heat = new Float32Array(4);
    expect(() => findInstances(heat, 3, 1)).toThrow(RangeError);
    expect(() => findInstances([0, 0] as unknown as Float32Array, 2, 1)).toThrow(
      'Expected a Float32Array of 2 values for heat but received',
    );
    expect(() => findInstances(heat, 2, 2, { threshold: 2 })).toThrow(
      'Expected a number between 0 and 1 for options.threshold but received 2',
    );
    expect(() => findInstances(heat, 2, 2, { connectivity: 6 as 4 })).toThrow(
      'Expected 4 or 8 for options.connectivity but received 6',
    );
    expect(() => findInstances(heat, 2, 2, null as never)).toThrow(
      new TypeError('Expected an object {threshold?, minArea?, connectivity?, maxInstances?} for options but received null of type null'),
    );
    expect(() => findInstances(heat, 2, 2, { maxInstances: 0 })).toThrow(RangeError);
  });
});

/**
 * The definition, the slow way: a flood fill from each unlabelled foreground pixel in row-major
 * order over its 4 or 8 neighbours, then each component's statistics from the label image.
 */
function floodFill(heat: Float32Array, width: number, height: number, threshold: number, connectivity: 4 | 8) {
  const labels = new Int32Array(width * height);
  let count = 0;
  for (let start = 0; start < heat.length; start++) {
    if (labels[start] !== 0 || !(heat[start] > threshold)) continue;
    labels[start] = ++count;
    const stack = [start];
    while (stack.length > 0) {
      const i = stack.pop() as number;
      const x = i % width;
      const y = Math.floor(i / width);
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          if ((dx === 0 && dy === 0) || (connectivity === 4 && dx !== 0 && dy !== 0)) continue;
          const nx = x + dx;
          const ny = y + dy;
          const j = ny * width + nx;
          if (nx < 0 || ny < 0 || nx >= width || ny >= height || labels[j] !== 0 || !(heat[j] > threshold)) continue;
          labels[j] = count;
          stack.push(j);
        }
      }
    }
  }
  const instances = Array.from({ length: count }, () => ({
    peak: -1, max: -Infinity, sum: 0, area: 0, box: [Infinity, Infinity, -1, -1], mask: new Uint8Array(width * height),
  }));
  labels.forEach((label, i) => {
    if (label === 0) return;
    const c = instances[label - 1];
    const x = i % width;
    const y = Math.floor(i / width);
    c.area++;
    c.sum += heat[i];
    if (heat[i] > c.max) [c.max, c.peak] = [heat[i], i];
    c.box = [Math.min(c.box[0], x), Math.min(c.box[1], y), Math.max(c.box[2], x), Math.max(c.box[3], y)];
    c.mask[i] = 1;
  });
  return { labels, count, instances };
}

describe('labelComponents and findInstances against a flood fill', () => {
  // Noise of every density and blobs, in shapes down to one row or column.
  const random = seededRandom(3);
  const maps: Array<{ heat: Float32Array; width: number; height: number }> = [];
  for (const [width, height] of [[1, 1], [1, 9], [9, 1], [7, 5], [31, 17], [64, 48]]) {
    for (const density of [0, 0.2, 0.45, 0.6, 0.9, 1]) {
      maps.push({ heat: Float32Array.from({ length: width * height }, () => (random() < density ? 0.5 + random() / 2 : random() / 2)), width, height });
    }
    const heat = new Float32Array(width * height);
    for (let k = 0; k < 4; k++) {
      const [cx, cy, r] = [random() * width, random() * height, 1 + random() * 6];
      heat.forEach((_, i) => {
        if (Math.hypot((i % width) - cx, Math.floor(i / width) - cy) < r) heat[i] = Math.max(heat[i], 0.6 + random() * 0.4);
      });
    }
    maps.push({ heat, width, height });
  }

  it('labels the same components, numbered by their first pixel', () => {
    for (const { heat, width, height } of maps) {
      for (const connectivity of [4, 8] as const) {
        const ref = floodFill(heat, width, height, 0.5, connectivity);
        const got = labelComponents(heat, width, height, 0.5, connectivity);
        expect(got.count, `${width}x${height} ${connectivity}`).toBe(ref.count);
        expect(got.labels).toEqual(ref.labels);
      }
    }
  });

  it('gives every component its area, box, peak, mean, max and mask', () => {
    for (const { heat, width, height } of maps) {
      for (const connectivity of [4, 8] as const) {
        const ref = floodFill(heat, width, height, 0.5, connectivity).instances;
        const got = findInstances(heat, width, height, { minArea: 0, connectivity, maxInstances: 1e6 });
        const expected = ref
          .map((c) => ({
            peak: { x: c.peak % width, y: Math.floor(c.peak / width) },
            box: c.box,
            area: c.area,
            maxResponse: c.max,
            meanResponse: c.sum / c.area,
            mask: Buffer.from(c.mask).toString('base64'),
          }))
          .sort((a, b) => b.maxResponse - a.maxResponse || b.area - a.area || a.peak.y * width + a.peak.x - (b.peak.y * width + b.peak.x));
        // (masks as base64: toEqual on hundreds of typed arrays would take seconds)
        expect(got.map((g) => ({ ...g, mask: Buffer.from(g.mask).toString('base64') }))).toEqual(expected);
      }
    }
  });

  it("an instance's mask is made on first use and can be replaced", () => {
    const { heat, width, height } = maps[maps.length - 1];
    const [inst] = findInstances(heat, width, height, { minArea: 0, maxInstances: 2 ** 60 });
    expect(inst.mask).toBe(inst.mask); // made once
    expect(inst.mask.reduce((a, v) => a + v, 0)).toBe(inst.area);
    const other = new Uint8Array(width * height);
    inst.mask = other;
    expect(inst.mask).toBe(other);
    expect(Object.assign(inst, { mask: other.slice() }).mask).not.toBe(other);
    expect({ ...inst }.mask).toBe(inst.mask);
  });

  it('findInstancesAsync (a worker thread) finds what findInstances finds', async () => {
    for (const { heat, width, height } of maps) {
      const options = { minArea: 0.01, connectivity: 4 as const, maxInstances: 3, threshold: 0.55 };
      const plain = (list: Instance[]) => list.map((g) => ({ ...g, mask: Buffer.from(g.mask).toString('base64') }));
      expect(plain(await findInstancesAsync(heat, width, height, options))).toEqual(plain(findInstances(heat, width, height, options)));
    }
  });

  it('refuses bad arguments by name; the native calls refuse malformed ones with a TypeError', () => {
    const heat = new Float32Array(6);
    expect(() => labelComponents(heat, 3, 3, 0.5, 8)).toThrow(/for heat /);
    expect(() => labelComponents(heat, 3, 2, Number.NaN, 8)).toThrow(/for threshold /);
    expect(() => labelComponents(heat, 3, 2, 0.5, 6 as 8)).toThrow(/4 or 8 for connectivity /);
    expect(() => labelComponents([0] as unknown as Float32Array, 1, 1, 0.5, 8)).toThrow(TypeError);
    expect(labelComponents(heat, 3, 2, -1, 4)).toEqual({ labels: new Int32Array(6).fill(1), count: 1 });
    const call = (name: 'findInstances' | 'componentLabels', ...args: unknown[]) => () =>
      (native()[name] as (...a: unknown[]) => unknown)(...args);
    expect(call('findInstances', heat, 3, 2, 0.5, 8, 1, 1)).not.toThrow();
    expect(call('findInstances', heat, 3, 3, 0.5, 8, 1, 1)).toThrow(TypeError);
    expect(call('findInstances', heat, 3, 2, 0.5, 6, 1, 1)).toThrow(TypeError);
    expect(call('findInstances', heat, 3, 2, 0.5, 8, 1, 0)).toThrow(TypeError);
    expect(call('findInstances', new Float64Array(6), 3, 2, 0.5, 8, 1, 1)).toThrow(TypeError);
    expect(call('findInstances', heat, 3, 2, 0.5, 8)).toThrow(TypeError);
    expect(call('componentLabels', heat, 3, 2, Number.NaN, 8)).toThrow(TypeError);
    expect(call('componentLabels', heat, 65536, 32768, 0.5, 8)).toThrow(TypeError); // 2^31 pixels
  });
});

describe('maskNms', () => {
  const W = 10;
  const H = 10;
  const mask = (x0: number, y0: number, x1: number, y1: number) => {
    const data = new Uint8Array(W * H);
    for (const [x, y] of rect(x0, y0, x1, y1, 1)) data[y * W + x] = 1;
    return { data, width: W, height: H };
  };

  it('keeps the better of two identical masks', () => {
    expect(maskNms([mask(0, 0, 4, 4), mask(0, 0, 4, 4)], [0.3, 0.7], 0.5)).toEqual([1]);
  });

  it('keeps disjoint masks, by descending score', () => {
    expect(maskNms([mask(0, 0, 2, 2), mask(5, 5, 7, 7)], [0.2, 0.9], 0.5)).toEqual([1, 0]);
  });

  it('suppresses only IoU strictly above the threshold', () => {
    // 5 × 4 and 5 × 2 rows 0..1 of it: IoU = 10 / 20 = 0.5.
    const masks = [mask(0, 0, 4, 3), mask(0, 0, 4, 1)];
    expect(maskNms(masks, [0.9, 0.8], 0.5)).toEqual([0, 1]);
    expect(maskNms(masks, [0.9, 0.8], 0.49)).toEqual([0]);
    expect(maskNms([mask(0, 0, 4, 4), mask(0, 0, 4, 4)], [0.5, 0.5], 1)).toEqual([0, 1]);
  });

  it('Masks from run lengths and from pixels give the same; masks of other sizes are refused', () => {
    const plain = [mask(0, 0, 4, 3), mask(0, 0, 4, 1), mask(6, 6, 9, 9)];
    const asMask = (m: { data: Uint8Array }, runs: boolean) =>
      new Mask({ ...(runs ? { counts: Uint32Array.from(maskToCounts(m.data, H, W)) } : { data: m.data }), width: W, height: H, score: 1, lowResLogits: new Float32Array(1) });
    for (const threshold of [0.49, 0.5]) {
      const expected = maskNms(plain, [0.9, 0.8, 0.7], threshold);
      expect(maskNms(plain.map((m) => asMask(m, true)), [0.9, 0.8, 0.7], threshold)).toEqual(expected);
      expect(maskNms(plain.map((m, i) => asMask(m, i === 1)), [0.9, 0.8, 0.7], threshold)).toEqual(expected);
    }
    const other = { data: new Uint8Array(20), width: 5, height: 4 };
    expect(() => maskNms([mask(0, 0, 1, 1), other], [0.9, 0.8], 0.5)).toThrow(RangeError);
  });

  it('gives the greedy IoU suppression computed from pixels (random rectangles, many disjoint; empty masks)', () => {
    const random = seededRandom(5);
    const iou = (a: Uint8Array, b: Uint8Array) => {
      let inter = 0;
      let union = 0;
      for (let i = 0; i < a.length; i++) {
        inter += a[i] & b[i];
        union += a[i] | b[i];
      }
      return union === 0 ? 0 : inter / union;
    };
    for (let trial = 0; trial < 50; trial++) {
      const masks = Array.from({ length: 6 }, () => {
        if (random() < 0.1) return { data: new Uint8Array(W * H), width: W, height: H };
        const [x0, y0] = [Math.floor(random() * W), Math.floor(random() * H)];
        return mask(x0, y0, Math.min(W - 1, x0 + Math.floor(random() * 4)), Math.min(H - 1, y0 + Math.floor(random() * 4)));
      });
      const scores = masks.map(() => random());
      const threshold = [0, 0.2, 0.5][trial % 3];
      const order = masks.map((_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
      const kept: number[] = [];
      for (const i of order) if (kept.every((k) => iou(masks[i].data, masks[k].data) <= threshold)) kept.push(i);
      expect(maskNms(masks, scores, threshold), `trial ${trial}`).toEqual(kept);
    }
  });

  it('refuses mismatched masks and scores, and arguments of the wrong kind, by name', () => {
    const m = mask(0, 0, 1, 1);
    expect(() => maskNms([m], [], 0.5)).toThrow(
      new RangeError('Expected an array (or typed array) of 1 finite numbers (one per mask) for scores but received [] of type array'),
    );
    // typed-array scores, and masks of any class, are taken as they were
    class Owned {
      constructor(readonly data: Uint8Array, readonly width: number, readonly height: number) {}
    }
    expect(maskNms([new Owned(m.data, m.width, m.height), m], Float32Array.of(0.5, 0.9), 0.5)).toEqual([1]);
    expect(() => maskNms(null as never, [], 0.5)).toThrow(
      new TypeError('Expected an array of masks {data, width, height} for masks but received null of type null'),
    );
    expect(() => maskNms([{ ...m, data: [1, 0] as never }], [1], 0.5)).toThrow(/for masks\[0\]\.data but received \[1, 0\]/);
    expect(() => maskNms([m], ['1' as never], 0.5)).toThrow(new TypeError('Expected a finite number for scores[0] but received "1" of type string'));
    expect(() => maskNms([m], [NaN], 0.5)).toThrow(RangeError);
    expect(() => maskNms([m], [1], 1.5)).toThrow(new RangeError('Expected a number between 0 and 1 for iouThreshold but received 1.5 of type number'));
    expect(() => maskNms([m], [1], '0.5' as never)).toThrow(TypeError);
  });
});

describe('instancePrompts', () => {
  const heat = heatMap(20, 10, [...rect(1, 1, 4, 3, 0.6), ...rect(10, 5, 12, 8, 0.9)]);
  const instances = findInstances(heat, 20, 10, { minArea: 0 });

  it('one prompt per instance with its box, peak and pixels as the mask prompt', () => {
    const prompts = instancePrompts(instances, 20, 10, { peakPoint: true, maskPrompt: true });
    expect(prompts.map((p) => p.instances)).toEqual([[instances[0]], [instances[1]]]);
    expect(prompts[0].prompt).toEqual({
      boxes: [[10, 5, 12, 8]],
      points: [{ x: 10, y: 5, label: 1 }],
      mask: { data: instances[0].mask, width: 20, height: 10 },
    });
  });

  it('without peak or mask prompts, all boxes in one prompt', () => {
    const prompts = instancePrompts(instances, 20, 10, { peakPoint: false, maskPrompt: false });
    expect(prompts).toEqual([{ prompt: { boxes: [instances[0].box, instances[1].box] }, instances }]);
  });

  it('a mask that is not the instance\'s own runs at the image\'s size is checked, naming the instance', async () => {
    const frame = { resizedWidth: 20, resizedHeight: 10, imageSize: 20, lowResSize: 4 };
    const pack = (prompt: Prompt, w = 20, h = 10) => toNativePrompt(prompt, w, h, 4, { multimask: false, threshold: 0 }, frame);
    const maskOnly = { peakPoint: false, maskPrompt: true };
    // an Instance not from findInstances (e.g. rebuilt from JSON), its mask of another type
    const rebuilt = { ...instances[0], mask: Uint32Array.of(1, 1) as unknown as Uint8Array };
    expect(() => instancePrompts([rebuilt], 20, 10, maskOnly)).toThrow(new TypeError(
      'Expected a Uint8Array of width × height = 200 bytes for instances[0].mask but received Uint32Array(2) of type Uint32Array',
    ));
    // without a mask prompt its mask is not read
    expect(instancePrompts([rebuilt], 20, 10, { peakPoint: true, maskPrompt: false })).toHaveLength(1);
    // the rest of an instance, and the other arguments, by name
    const box = (b: unknown) => [{ ...instances[0], box: b as Box }];
    expect(() => instancePrompts(box([0, 0, 21, 1]), 20, 10, maskOnly)).toThrow(
      new RangeError('Expected a number between 0 and 20 for instances[0].box[2] but received 21 of type number'),
    );
    expect(() => instancePrompts([{ ...instances[0], peak: null }] as never, 20, 10, maskOnly)).toThrow(
      new TypeError('Expected an object {x, y} for instances[0].peak but received null of type null'),
    );
    expect(() => instancePrompts([{ ...instances[0], meanResponse: NaN }], 20, 10, maskOnly)).toThrow(RangeError);
    expect(() => instancePrompts([null] as never, 20, 10, maskOnly)).toThrow(/for instances\[0\] but received null/);
    expect(() => instancePrompts(null as never, 20, 10, maskOnly)).toThrow(
      new TypeError('Expected an array of instances (findInstances) for instances but received null of type null'),
    );
    expect(() => instancePrompts(instances, 0, 10, maskOnly)).toThrow(new RangeError('Expected an integer >= 1 for width but received 0 of type number'));
    expect(() => instancePrompts(instances, 20, 10, { peakPoint: 1 } as never)).toThrow(
      new TypeError('Expected a boolean for settings.peakPoint but received 1 of type number'),
    );
    expect(() => instancePrompts(instances, 20, 10, maskOnly, { positives: [{ x: 1, y: 1, label: 0 }], negatives: [] })).toThrow(
      new RangeError('Expected 1 for target.positives[0].label but received 0 of type number'),
    );
    expect(() => instancePrompts(instances, 20, 10, maskOnly, { positives: [], negatives: [], box: [0, 0, 30, 1] })).toThrow(
      /for target\.box\[2\] but received 30/,
    );
    // findInstances' runs of a 20 × 10 heat map given for a 40 × 20 image: refused, as its mask is
    expect(() => instancePrompts(findInstances(heat, 20, 10, { minArea: 0 }), 40, 20, maskOnly)).toThrow(
      new RangeError('Expected a Uint8Array of width × height = 800 bytes for instances[0].mask but received Uint8Array(200) of type Uint8Array'),
    );
    // and at the right size the runs give what the mask gives
    const [{ prompt: own }] = instancePrompts(findInstances(heat, 20, 10, { minArea: 0 }), 20, 10, { peakPoint: false, maskPrompt: true });
    const viaRuns = await pack(own);
    const viaData = await pack({ boxes: own.boxes, mask: { data: instances[0].mask, width: 20, height: 10 } });
    expect(viaRuns.maskInput).toEqual(viaData.maskInput);
  });
});

describe('referSegment on the tiny models', () => {
  let segmenter: Segmenter;
  let referrer: Referrer;
  /** A threshold halfway between the heat map's mean and maximum: some pixels above it. */
  let threshold: number;

  beforeAll(async () => {
    segmenter = await Segmenter.load({ model: SAM_DIR, device: 'cpu', threads: 2 });
    referrer = await Referrer.load({ model: CLIPSEG_DIR, device: 'cpu', threads: 2 });
    const heat = (await referrer.heatmap(WIDE, { text: 'a red cat' })).data;
    const max = heat.reduce((m, v) => Math.max(m, v), 0);
    const mean = heat.reduce((s, v) => s + v, 0) / heat.length;
    threshold = (mean + max) / 2;
  });
  afterAll(() => {
    segmenter?.dispose();
    referrer?.dispose();
  });

  /** segment() spied: the prompts that reach SAM, in order. */
  function spySegment(): Prompt[] {
    const prompts: Prompt[] = [];
    const original = segmenter.segment.bind(segmenter);
    vi.spyOn(segmenter, 'segment').mockImplementation(async (input, prompt, options) => {
      prompts.push(prompt);
      return original(input, prompt, options);
    });
    return prompts;
  }

  it('one SAM prompt set per instance, with the instances\' boxes, peaks and pixels', async () => {
    const prompts = spySegment();
    const encode = vi.spyOn(segmenter, 'encode');
    try {
      const result = await referSegment(segmenter, referrer, WIDE, { text: 'a red cat', threshold, minArea: 0 });
      expect(result.heatmap).toMatchObject({ width: 150, height: 100 });
      expect(result.candidates.length).toBeGreaterThan(0);
      expect(encode).toHaveBeenCalledTimes(1);
      const sets = prompts.flatMap((p) => p.boxes as Box[]);
      expect(sets).toEqual(result.candidates.map((i) => i.box));
      expect(prompts.map((p) => p.points)).toEqual(result.candidates.map((i) => [{ ...i.peak, label: 1 }]));
      expect(prompts.map((p) => p.mask?.data)).toEqual(result.candidates.map((i) => i.mask));
      expect(result.noTarget).toBe(false);
      expect(result.masks.length).toBeGreaterThan(0);
      expect(result.masks.length).toBeLessThanOrEqual(result.candidates.length);
      expect(result.scores).toHaveLength(result.masks.length);
      result.masks.forEach((m, k) => {
        expect(result.candidates).toContain(result.instances[k]);
        expect(result.scores[k]).toBeCloseTo(m.score * result.instances[k].meanResponse, 6);
        expect([m.width, m.height]).toEqual([150, 100]);
      });
      expect([...result.scores].sort((a, b) => b - a)).toEqual(result.scores);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('an instance\'s pixels reach SAM as its runs, without making its mask: the same masks as from its pixels', async () => {
    const embedding = await segmenter.encode(WIDE);
    try {
      const heat = await referrer.heatmap(WIDE, { text: 'a red cat' });
      const candidates = findInstances(heat.data, heat.width, heat.height, { threshold, minArea: 0 });
      expect(candidates.length).toBeGreaterThan(0);
      const fromRuns = await instanceMasks(segmenter, embedding, candidates, { nmsIoU: 1 });
      expect(candidates.every((i) => instanceRuns(i)?.runs instanceof Int32Array)).toBe(true); // (no mask made)
      const copies = candidates.map((i) => ({ ...i, mask: i.mask.slice() }));
      const fromPixels = await instanceMasks(segmenter, embedding, copies, { nmsIoU: 1 });
      expect(fromRuns.masks.length).toBe(candidates.length);
      expect(fromRuns.masks.map((m) => m.lowResLogits)).toEqual(fromPixels.masks.map((m) => m.lowResLogits));
      // a mask assigned to an instance is what its prompt reads from then on
      const assigned = new Uint8Array(150 * 100).fill(1, 0, 150 * 10);
      candidates[0].mask = assigned;
      expect(instanceRuns(candidates[0])).toBeUndefined();
      const [{ prompt }] = instancePrompts(candidates.slice(0, 1), 150, 100, { peakPoint: false, maskPrompt: true });
      const viaAssigned = await segmenter.segment(embedding, prompt);
      const viaData = await segmenter.segment(embedding, { boxes: prompt.boxes, mask: { data: assigned, width: 150, height: 100 } });
      expect(viaAssigned.masks[0].lowResLogits).toEqual(viaData.masks[0].lowResLogits);
    } finally {
      embedding.dispose();
    }
  });

  it('without peak or mask prompts: one SAM call carrying every instance\'s box', async () => {
    const prompts = spySegment();
    try {
      const result = await referSegment(segmenter, referrer, WIDE, {
        text: 'a red cat',
        threshold,
        minArea: 0,
        peakPoint: false,
        maskPrompt: false,
        nmsIoU: 1,
      });
      expect(prompts).toEqual([{ boxes: result.candidates.map((i) => i.box) }]);
      expect(result.masks).toHaveLength(result.candidates.length);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('raw pixels: copied once when called, that copy shared by the heat map and the encoder', async () => {
    const decoded = await decodeImage(WIDE);
    const expected = await referSegment(segmenter, referrer, { ...decoded, channels: 3 }, { text: 'a red cat', threshold, minArea: 0 });
    const heatInputs: unknown[] = [];
    const encodeInputs: unknown[] = [];
    const heatmap = referrer.heatmap.bind(referrer);
    const encode = segmenter.encode.bind(segmenter);
    vi.spyOn(referrer, 'heatmap').mockImplementation((image, options) => (heatInputs.push(image), heatmap(image, options)));
    vi.spyOn(segmenter, 'encode').mockImplementation((image, options) => (encodeInputs.push(image), encode(image, options)));
    try {
      const data = decoded.data.slice();
      const pending = referSegment(segmenter, referrer, { data, width: decoded.width, height: decoded.height, channels: 3 }, { text: 'a red cat', threshold, minArea: 0 });
      data.fill(7); // the caller reuses its buffer at once
      structuredClone(data.buffer, { transfer: [data.buffer] }); // or detaches it
      const got = await pending;
      expect(got.masks.map((m) => m.toRLE())).toEqual(expected.masks.map((m) => m.toRLE()));
      expect(Buffer.from(got.heatmap.data.buffer).equals(Buffer.from(expected.heatmap.data.buffer))).toBe(true);
      const pixels = (input: unknown) => (input as { data: Uint8Array }).data;
      expect(heatInputs).toHaveLength(1);
      expect(encodeInputs).toHaveLength(1);
      expect(pixels(encodeInputs[0])).toBe(pixels(heatInputs[0]));
      // the library's own copy (decodeForEncoder's): the referrer and the encoder take it as it is
      const own = heatInputs[0] as { data: Uint8Array; width: number; height: number; channels: 3 };
      expect(own.data).not.toBe(data);
      expect((await decodeForEncoder(own)).data).toBe(own.data);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('no target with a threshold of 1: no masks, SAM not run', async () => {
    const encode = vi.spyOn(segmenter, 'encode');
    const segment = vi.spyOn(segmenter, 'segment');
    try {
      const result = await referSegment(segmenter, referrer, WIDE, { text: 'a red cat', threshold: 1 });
      expect(result).toMatchObject({ masks: [], scores: [], instances: [], candidates: [], noTarget: true });
      expect(result.timings.encodeMs).toBe(0);
      expect(encode).not.toHaveBeenCalled();
      expect(segment).not.toHaveBeenCalled();
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('NMS removes the duplicate of two identical instances', async () => {
    const heat = (await referrer.heatmap(WIDE, { text: 'a red cat' })).data;
    const [inst] = findInstances(heat, 150, 100, { threshold, minArea: 0 });
    const embedding = await segmenter.encode(WIDE);
    try {
      // A logit threshold far below SAM's outputs: non-empty masks whatever the random weights give.
      const maskThreshold = -1e6;
      const kept = await instanceMasks(segmenter, embedding, [inst, inst], { maskThreshold });
      const all = await instanceMasks(segmenter, embedding, [inst, inst], { maskThreshold, nmsIoU: 1 });
      expect(all.masks).toHaveLength(2);
      expect(all.masks[0].area).toBeGreaterThan(0);
      expect(all.masks[0].data).toEqual(all.masks[1].data);
      expect(kept.masks).toHaveLength(1);
      expect(kept.instances).toEqual([inst]);
      expect(kept.noTarget).toBe(false);
    } finally {
      embedding.dispose();
    }
  });

  it('instanceMasks refuses what is not a segmenter, an embedding, instances or options, before decoding', async () => {
    const embedding = await segmenter.encode(WIDE);
    const segment = vi.spyOn(segmenter, 'segment');
    try {
      const instances = findInstances(new Float32Array(embedding.width * embedding.height).fill(0.9), embedding.width, embedding.height);
      await expect(instanceMasks({} as never, embedding, instances)).rejects.toThrow(
        new TypeError('Expected a Segmenter (Segmenter.load) for segmenter but received {} of type object'),
      );
      await expect(instanceMasks(segmenter, { width: 1, height: 1 } as never, instances)).rejects.toThrow(
        /^Expected an ImageEmbedding \(segmenter\.encode\) for embedding/,
      );
      await expect(instanceMasks(segmenter, embedding, 'x' as never)).rejects.toThrow(/for instances but received "x"/);
      await expect(instanceMasks(segmenter, embedding, instances, null as never)).rejects.toThrow(/for options but received null/);
      await expect(instanceMasks(segmenter, embedding, instances, { signal: {} as never })).rejects.toThrow(
        new TypeError('Expected an AbortSignal for options.signal but received {} of type object'),
      );
      await expect(instanceMasks(segmenter, embedding, instances, {}, { positives: 1 } as never)).rejects.toThrow(
        /for target\.positives but received 1/,
      );
      expect(segment).not.toHaveBeenCalled();
      // and with them right it decodes
      expect((await instanceMasks(segmenter, embedding, instances)).masks.length).toBeGreaterThan(0);
    } finally {
      vi.restoreAllMocks();
      embedding.dispose();
    }
  });

  it('validates options before running any model', async () => {
    const heatmap = vi.spyOn(referrer, 'heatmap');
    try {
      await expect(referSegment(segmenter, referrer, WIDE, { text: 'x', nmsIoU: -1 })).rejects.toThrow(
        'Expected a number between 0 and 1 for options.nmsIoU but received -1',
      );
      await expect(referSegment(segmenter, referrer, WIDE, { text: 'x', peakPoint: 1 as unknown as boolean })).rejects.toThrow(
        'Expected a boolean for options.peakPoint',
      );
      // a misspelt option is refused by name (it left the default threshold in place)
      await expect(referSegment(segmenter, referrer, WIDE, { text: 'x', treshold: 0.9 } as never)).rejects.toThrow(
        /^Expected an option referSegment takes \(text, refImage, .*, box\) for options but received "treshold" of type string$/,
      );
      await expect(referSegmentEach(segmenter, referrer, WIDE, [{ text: 'x' }], { maxInstance: 2 } as never)).rejects.toThrow(
        /^Expected an option referSegmentEach takes \(.*\) for options but received "maxInstance"/,
      );
      expect(heatmap).not.toHaveBeenCalled();
      await expect(referSegment(segmenter, referrer, WIDE, {})).rejects.toThrow(TypeError);
    } finally {
      vi.restoreAllMocks();
    }
  });
});
