// The five OmniRIS scenarios and SEEM-style composition (lib/referring/index.ts, compose.ts) on
// constructed cases: the referrer's heat maps are constructed blobs and SAM is an exact stand-in
// that returns the instance's own pixels as its mask (the tiny models have random weights, so
// what a real model would segment is not the point here; the fixture-backed paths are tested in
// referring.test.ts and referring-prompts.test.ts). Many-to-one runs the real tiny models.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ImageEmbedding } from '../lib/embedding.js';
import { Mask, maskSource } from '../lib/mask.js';
import { maskToCounts } from '../lib/rle.js';
import type { Prompt } from '../lib/prompt.js';
import { Referrer, type Heatmap, type HeatmapOptions } from '../lib/referrer.js';
import { instanceClicks, instancesInBox, selectedByClicks, targetSettings } from '../lib/referring/compose.js';
import { fuseEmbeddings, referSegment, referSegmentEach, type Instance } from '../lib/referring/index.js';
import { findInstances, instanceRuns } from '../lib/referring/instances.js';
import { Segmenter } from '../lib/segmenter.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const SAM_DIR = path.join(FIXTURES, 'sam-tiny', 'model');
const CLIPSEG_DIR = path.join(FIXTURES, 'clipseg-tiny', 'model');
const WIDE = path.join(FIXTURES, 'sam-tiny', 'wide.png'); // 150 × 100
const [W, H] = [150, 100];

type Blob = [x0: number, y0: number, x1: number, y1: number, value: number];

/** A heat map over wide.png: 0.1 everywhere, `value` inside each blob [x0, x1] × [y0, y1]. */
function heat(blobs: Blob[]): Heatmap {
  const data = new Float32Array(W * H).fill(0.1);
  for (const [x0, y0, x1, y1, v] of blobs) {
    for (let y = y0; y <= y1; y++) data.fill(v, y * W + x0, y * W + x1 + 1);
  }
  const timings = { preprocessMs: 0, modelMs: 0, postprocessMs: 0, totalMs: 0 };
  return { width: W, height: H, data, size: 0, logits: new Float32Array(0), conditional: new Float32Array(0), timings };
}

const CAT: Blob = [10, 10, 39, 39, 0.9]; // 900 px
const DOG: Blob = [90, 40, 139, 89, 0.8]; // 2500 px

describe('referring scenarios (constructed heat maps, exact SAM stand-in)', () => {
  let segmenter: Segmenter;
  let referrer: Referrer;
  /** What each heat-map query answers: the blobs of its text. */
  const scene: Record<string, Blob[]> = { cat: [CAT], dog: [DOG], animal: [CAT, DOG], unicorn: [] };
  const prompts: Prompt[] = [];

  beforeAll(async () => {
    segmenter = await Segmenter.load({ model: SAM_DIR, device: 'cpu', threads: 2 });
    referrer = await Referrer.load({ model: CLIPSEG_DIR, device: 'cpu', threads: 2 });
  });
  afterAll(() => {
    segmenter?.dispose();
    referrer?.dispose();
  });
  afterEach(() => {
    vi.restoreAllMocks();
    prompts.length = 0;
  });

  function stub(): { encode: ReturnType<typeof vi.spyOn> } {
    const mapOf = (q: HeatmapOptions): Heatmap => heat(scene[q.text as string]);
    vi.spyOn(referrer, 'heatmap').mockImplementation(async (_image, q) => mapOf(q));
    vi.spyOn(referrer, 'heatmaps').mockImplementation(async (_image, qs) => qs.map(mapOf));
    const encode = vi.spyOn(segmenter, 'encode').mockImplementation(
      async () => Object.assign(Object.create(ImageEmbedding.prototype) as ImageEmbedding, { width: W, height: H, dispose: () => {} }),
    );
    // SAM stand-in: the mask prompt's pixels, minus a 3-pixel square around each negative click
    vi.spyOn(segmenter, 'segment').mockImplementation(async (_e, prompt) => {
      prompts.push(prompt);
      const data = Uint8Array.from((prompt as Prompt).mask!.data);
      for (const p of (prompt as Prompt).points ?? []) {
        if (p.label !== 0) continue;
        for (let y = p.y - 1; y <= p.y + 1; y++) data.fill(0, y * W + p.x - 1, y * W + p.x + 2);
      }
      const mask = new Mask({ data, width: W, height: H, score: 0.9, lowResLogits: new Float32Array(256 * 256) });
      return { masks: [mask], timings: { encodeMs: 0, decodeMs: 0 } };
    });
    return { encode };
  }

  it('one-to-one: one prompt, one instance, one mask', async () => {
    stub();
    const r = await referSegment(segmenter, referrer, WIDE, { text: 'cat' });
    expect(r.noTarget).toBe(false);
    expect(r.masks.map((m) => [m.area, m.box])).toEqual([[900, [10, 10, 39, 39]]]);
    expect(r.scores[0]).toBeCloseTo(0.9 * 0.9, 6);
  });

  it('one-to-many: one prompt, two instances, two masks by descending score', async () => {
    stub();
    const r = await referSegment(segmenter, referrer, WIDE, { text: 'animal' });
    expect(r.masks.map((m) => m.box)).toEqual([[10, 10, 39, 39], [90, 40, 139, 89]]);
    expect(r.scores).toEqual([expect.closeTo(0.81, 6), expect.closeTo(0.72, 6)]);
    expect(r.candidates).toHaveLength(2);
  });

  it('no target: nothing above the threshold gives no masks and noTarget, SAM not run', async () => {
    const { encode } = stub();
    const r = await referSegment(segmenter, referrer, WIDE, { text: 'unicorn' });
    expect(r).toMatchObject({ masks: [], noTarget: true, candidates: [] });
    expect(encode).not.toHaveBeenCalled();
    // the decision is the documented threshold: raise it above a blob's response and it is gone
    const high = await referSegment(segmenter, referrer, WIDE, { text: 'dog', threshold: 0.85 });
    expect(high.noTarget).toBe(true);
    const low = await referSegment(segmenter, referrer, WIDE, { text: 'dog', threshold: 0.75 });
    expect(low.noTarget).toBe(false);
  });

  it('many-to-many: a result per query, one heat-map batch and one SAM encoding', async () => {
    const { encode } = stub();
    const each = await referSegmentEach(segmenter, referrer, WIDE, [{ text: 'dog' }, { text: 'unicorn' }, { text: 'animal' }]);
    expect(referrer.heatmaps).toHaveBeenCalledTimes(1);
    expect(encode).toHaveBeenCalledTimes(1);
    expect(each.noTarget).toBe(false);
    expect(each.results.map((r) => r.noTarget)).toEqual([false, true, false]);
    expect(each.results.map((r) => r.masks.map((m) => m.box))).toEqual([
      [[90, 40, 139, 89]],
      [],
      [[10, 10, 39, 39], [90, 40, 139, 89]],
    ]);
    const none = await referSegmentEach(segmenter, referrer, WIDE, [{ text: 'unicorn' }]);
    expect(none.noTarget).toBe(true);
    expect(encode).toHaveBeenCalledTimes(1);
  });

  it('composition: a positive click selects among the instances and joins their prompt', async () => {
    stub();
    const r = await referSegment(segmenter, referrer, WIDE, { text: 'animal', points: [{ x: 100, y: 50, label: 1 }] });
    expect(r.masks.map((m) => m.box)).toEqual([[90, 40, 139, 89]]);
    // the click went to the dog's prompt only (inside its box), after the peak
    const dog = prompts.find((p) => p.boxes![0][0] === 90)!;
    const cat = prompts.find((p) => p.boxes![0][0] === 10)!;
    expect(dog.points).toEqual([{ x: 90, y: 40, label: 1 }, { x: 100, y: 50, label: 1 }]);
    expect(cat.points).toEqual([{ x: 10, y: 10, label: 1 }]);
    // a click on neither: no target
    const miss = await referSegment(segmenter, referrer, WIDE, { text: 'animal', points: [{ x: 70, y: 5, label: 1 }] });
    expect(miss.noTarget).toBe(true);
  });

  it('composition: a box keeps the instances it meets, their boxes clipped to it', async () => {
    stub();
    const r = await referSegment(segmenter, referrer, WIDE, { text: 'animal', box: [0, 0, 30, 30] });
    expect(r.candidates).toHaveLength(2);
    expect(prompts.map((p) => p.boxes)).toEqual([[[10, 10, 29, 29]]]);
    expect(r.masks).toHaveLength(1);
    const empty = await referSegment(segmenter, referrer, WIDE, { text: 'animal', box: [50, 0, 80, 100] });
    expect(empty.noTarget).toBe(true);
  });

  it('composition: negative clicks and scribbles reach every instance\'s prompt', async () => {
    stub();
    const r = await referSegment(segmenter, referrer, WIDE, {
      text: 'animal',
      points: [{ x: 20, y: 20, label: 0 }],
      scribbles: [{ path: [[100, 60], [100, 60]], label: 0 }],
    });
    for (const p of prompts) expect(p.points!.slice(1)).toEqual([{ x: 20, y: 20, label: 0 }, { x: 100, y: 60, label: 0 }]);
    expect(r.masks.map((m) => m.area).sort((a, b) => a - b)).toEqual([900 - 9, 2500 - 9]);
  });

  it('validates target prompts and queries before any model runs', async () => {
    stub();
    await expect(referSegment(referrer as never, segmenter as never, WIDE, { text: 'cat' })).rejects.toThrow(
      /^Expected a Segmenter \(Segmenter\.load\) for segmenter but received /,
    );
    await expect(referSegmentEach(segmenter, {} as never, WIDE, [{ text: 'cat' }])).rejects.toThrow(
      new TypeError('Expected a Referrer (Referrer.load) for referrer but received {} of type object'),
    );
    await expect(referSegment(segmenter, referrer, WIDE, { text: 'cat', points: [{ x: 151, y: 0, label: 1 }] })).rejects.toThrow(
      new RangeError('Expected a number between 0 and 150 for options.points[0].x but received 151 of type number'),
    );
    await expect(referSegment(segmenter, referrer, WIDE, { text: 'cat', box: [0, 0, 10] as never })).rejects.toThrow(RangeError);
    await expect(referSegmentEach(segmenter, referrer, WIDE, [])).rejects.toThrow(
      new RangeError('Expected a non-empty array for queries but received [] of type array'),
    );
    await expect(referSegmentEach(segmenter, referrer, WIDE, [{ text: 'cat' }, {}])).rejects.toThrow(
      new TypeError('Expected an object with text and/or refImage for queries[1] but received {} of type object'),
    );
    await expect(referSegmentEach(segmenter, referrer, WIDE, [{ text: 'cat' }], { text: 'dog' } as never)).rejects.toThrow(
      new TypeError('Expected undefined (text goes in queries[i]) for options.text but received "dog" of type string'),
    );
    expect(referrer.heatmap).not.toHaveBeenCalled();
    expect(referrer.heatmaps).not.toHaveBeenCalled();
  });
});

describe('compose helpers', () => {
  const inst = (box: Instance['box'], pixels: Array<[number, number]>): Instance => {
    const mask = new Uint8Array(W * H);
    for (const [x, y] of pixels) mask[y * W + x] = 1;
    return { peak: { x: box[0], y: box[1] }, box, area: pixels.length, maxResponse: 1, meanResponse: 1, mask };
  };

  it('a box meets an instance only where its component has a pixel (pixel centres inside the box)', () => {
    const diagonal = inst([0, 0, 9, 9], [[0, 0], [9, 9]]);
    expect(instancesInBox([diagonal], { positives: [], negatives: [], box: [2, 2, 8, 8] }, W)).toEqual([]);
    expect(instancesInBox([diagonal], { positives: [], negatives: [], box: [8, 8, 10, 10] }, W).map((i) => i.box)).toEqual([[8, 8, 9, 9]]);
    // a box edge through a pixel's centre includes it; one short of the centre does not
    expect(instancesInBox([diagonal], { positives: [], negatives: [], box: [0, 0, 0.5, 0.5] }, W)).toHaveLength(1);
    expect(instancesInBox([diagonal], { positives: [], negatives: [], box: [0, 0, 0.4, 0.4] }, W)).toHaveLength(0);
    expect(instancesInBox([diagonal], undefined, W)).toEqual([diagonal]);
  });

  it("findInstances' instances are met from their runs: the same instances and boxes as from their masks, no mask made", () => {
    // an L, a diagonal staircase (8-connected) and a ring: boxes that meet their bounds but not their pixels
    const data = heat([[10, 10, 14, 60, 0.9], [10, 56, 70, 60, 0.9], [120, 10, 140, 12, 0.8], [120, 28, 140, 30, 0.8], [120, 10, 122, 30, 0.8], [138, 10, 140, 30, 0.8]]).data;
    for (let i = 0; i < 30; i++) data[(40 + i) * W + 80 + i] = 0.7;
    const options = { minArea: 0 };
    const found = findInstances(data, W, H, options);
    expect(found).toHaveLength(3);
    const boxes: Array<[number, number, number, number]> = [[20, 20, 60, 50], [20, 20, 60, 58], [0, 0, 149, 99], [125, 15, 135, 25], [125, 15, 139, 25], [85, 40, 90, 44], [90, 40, 99, 48], [14.5, 59.5, 15, 60], [14.6, 59.5, 15, 60], [15, 20, 30, 50], [100, 15, 120.5, 25], [100, 15, 120.4, 25]];
    const copies: Instance[] = [];
    for (const box of boxes) {
      const target = { positives: [], negatives: [], box };
      // the same instances with their masks made (the pixel test)
      const made = findInstances(data, W, H, options);
      made.forEach((m) => void m.mask);
      const kept = instancesInBox(found, target, W);
      expect(kept.map((k) => k.box), `box ${box}`).toEqual(instancesInBox(made, target, W).map((k) => k.box));
      copies.push(...kept);
    }
    expect(copies.length).toBeGreaterThan(5);
    // no mask made, by the test or for the copies (their SAM prompts come from the runs)
    for (const i of [...found, ...copies]) expect(instanceRuns(i)).toBeDefined();
    for (const k of copies) {
      const original = found.find((f) => f.peak === k.peak)!;
      expect(Array.from(k.mask)).toEqual(Array.from(original.mask));
      expect(instanceRuns(k)).toBeUndefined();
    }
    // as {...instance, box}: the caller's own fields kept, the mask as it was when clipped
    const [first] = findInstances(data, W, H, options);
    const labelled = Object.assign(first, { label: 'cat' });
    const clipped = instancesInBox([labelled], { positives: [], negatives: [], box: [0, 0, 149, 99] }, W)[0] as typeof labelled;
    expect(clipped.label).toBe('cat');
    expect(Object.keys(clipped)).toEqual(Object.keys({ ...labelled }));
    const before = Array.from(first.mask);
    first.mask = new Uint8Array(W * H);
    expect(Array.from(clipped.mask)).toEqual(before);
  });

  it('clicks per instance, selection by positive clicks, scribbles as clicks', () => {
    const t = targetSettings({ points: [{ x: 5, y: 5, label: 1 }, { x: 50, y: 50, label: 0 }] }, W, H)!;
    const a = inst([0, 0, 9, 9], [[5, 5]]);
    expect(instanceClicks(a, t)).toEqual([{ x: 5, y: 5, label: 1 }, { x: 50, y: 50, label: 0 }]);
    expect(instanceClicks(inst([20, 20, 30, 30], [[25, 25]]), t)).toEqual([{ x: 50, y: 50, label: 0 }]);
    expect(selectedByClicks({ data: a.mask, width: W, height: H }, t)).toBe(true);
    expect(selectedByClicks({ data: new Uint8Array(W * H), width: W, height: H }, t)).toBe(false);
    // a click on the image's far edge reads the last pixel
    const edge = targetSettings({ points: [{ x: 150, y: 100, label: 1 }] }, W, H)!;
    const last = new Uint8Array(W * H);
    last[W * H - 1] = 1;
    expect(selectedByClicks({ data: last, width: W, height: H }, edge)).toBe(true);
    expect(targetSettings({}, W, H)).toBeUndefined();
    // a Mask still held as run lengths is read from them, not decoded (each kept W × H bytes)
    const mask = (data: Uint8Array) => new Mask({ data, width: W, height: H, score: 1, lowResLogits: new Float32Array(1) });
    for (const [data, clicks] of [[a.mask, t], [new Uint8Array(W * H), t], [last, edge]] as const) {
      const runs = new Mask({ counts: Uint32Array.from(maskToCounts(data, H, W)), width: W, height: H, score: 1, lowResLogits: new Float32Array(1) });
      expect(selectedByClicks(runs, clicks)).toBe(selectedByClicks(mask(data), clicks));
      expect(maskSource(runs)).toBeInstanceOf(Uint32Array);
    }
    const s = targetSettings({ scribbles: [{ path: [[0, 0], [140, 0]], label: 1 }] }, W, H)!;
    expect(s.positives.length).toBeGreaterThan(1);
    expect(s.negatives).toEqual([]);
  });
});

describe('many-to-one on the tiny models', () => {
  it('several prompts for one target: one fused heat map, one result', async () => {
    const segmenter = await Segmenter.load({ model: SAM_DIR, device: 'cpu', threads: 2 });
    const referrer = await Referrer.load({ model: CLIPSEG_DIR, device: 'cpu', threads: 2 });
    try {
      const prompts = [{ text: 'a red cat' }, { refImage: WIDE, refRegion: { box: [10, 10, 60, 60] as [number, number, number, number] } }];
      const r = await referSegment(segmenter, referrer, WIDE, { prompts, weights: [3, 1], threshold: 0 });
      const parts = [await referrer.embed(prompts[0]), await referrer.embed(prompts[1])];
      expect(Array.from(r.heatmap.conditional)).toEqual(Array.from(fuseEmbeddings(parts, [0.75, 0.25])));
      const fused = await referrer.heatmap(WIDE, { prompts, weights: [3, 1] });
      expect(Array.from(r.heatmap.logits)).toEqual(Array.from(fused.logits));
      expect(r.candidates.length).toBeGreaterThan(0); // threshold 0: the whole image is one instance
    } finally {
      segmenter.dispose();
      referrer.dispose();
    }
  });
});
