// `omniseg heatmap` and `omniseg segment --referrer` end to end on the tiny SAM and CLIPSeg
// fixtures. Skipped when the native addon is not built.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRLE } from '../lib/rle.js';
import { jet } from '../lib/cli/overlay.js';
import { run } from './helpers/cli.js';
import { FIXTURES, MODEL_DIR as SAM, relL2, addonAvailable } from './helpers/fixtures.js';

const floats = (b: Buffer): Float32Array => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

const IMAGE = path.join(FIXTURES, 'wide.png');
const REF_IMAGE = path.join(FIXTURES, 'small.png');
const CLIPSEG = path.join(FIXTURES, '..', 'clipseg-tiny', 'model');
const BACKEND = ['--device', 'cpu', '--threads', '2'];

interface HeatmapJson {
  width: number;
  height: number;
  size: number;
  max: number;
  mean: number;
  timings: Record<string, number>;
}

interface ReferJson {
  width: number;
  height: number;
  masks: Array<{
    score: number;
    box: number[];
    area: number;
    rle: { size: [number, number]; counts: string };
    instance: number;
    referScore: number;
    prompt: number;
    label?: string;
    labels?: Array<{ label: string; probability: number }>;
  }>;
  timings: Record<string, number>;
  noTarget: boolean;
  prompts: Array<{ texts: string[]; refImages: string[]; noTarget: boolean }>;
}
const REFER_KEYS = ['width', 'height', 'masks', 'timings', 'noTarget', 'prompts'];

describe.skipIf(!addonAvailable())('omniseg heatmap and segment --referrer on the tiny fixtures', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'omniseg-refer-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function heatmapJson(extra: string[]): Promise<HeatmapJson> {
    const { code, stdout, stderr } = await run(['heatmap', IMAGE, '--model', CLIPSEG, ...BACKEND, ...extra, '--json']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.trimEnd().split('\n')).toHaveLength(1);
    return JSON.parse(stdout) as HeatmapJson;
  }

  it('heatmap --json prints the contract keys; --save writes the raw logits, --save-f32 the map, --out an overlay', async () => {
    const out = path.join(dir, 'heat.png');
    const f32 = path.join(dir, 'heat.f32');
    const logitsFile = path.join(dir, 'logits.f32');
    const result = await heatmapJson(['--text', 'a red cat', '--out', out, '--save-f32', f32, '--save', logitsFile]);
    expect(Object.keys(result)).toEqual(['width', 'height', 'size', 'max', 'mean', 'timings']);
    expect(Object.keys(result.timings)).toEqual(['preprocessMs', 'modelMs', 'postprocessMs', 'totalMs']);
    expect([result.width, result.height, result.size]).toEqual([150, 100, 96]);
    expect(result.max).toBeGreaterThan(0);
    expect(result.max).toBeLessThanOrEqual(1);
    expect(result.mean).toBeGreaterThan(0);
    expect(result.mean).toBeLessThanOrEqual(result.max);

    // --save: the model's own logits ([size, size], no resizing): transformers' for the same input
    const logits = floats(await readFile(logitsFile));
    const reference = floats(await readFile(path.join(CLIPSEG, '..', 'e2e_text.logits.f32')));
    expect(logits.length).toBe(96 * 96);
    expect(relL2(logits, reference)).toBeLessThan(1e-4);

    // --save-f32: the heat map at image size; --out: the image with it blended in jet colours
    const heat = floats(await readFile(f32));
    expect(heat.length).toBe(150 * 100);
    expect(Math.max(...heat)).toBeCloseTo(result.max, 6);
    const meta = await sharp(out).metadata();
    expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['png', 150, 100, 3]);
    const overlay = await sharp(out).raw().toBuffer();
    const image = await sharp(IMAGE).removeAlpha().raw().toBuffer();
    const expected = (i: number, c: number): number => Math.round(0.5 * image[3 * i + c] + 0.5 * jet(heat[i])[c]);
    expect(Array.from({ length: 150 * 100 * 3 }, (_, k) => overlay[k] === expected(Math.floor(k / 3), k % 3)).every(Boolean)).toBe(true);
  });

  it('heatmap: several --text fuse into one map; --referrer names the checkpoint too', async () => {
    const one = await heatmapJson(['--text', 'a red cat']);
    const viaReferrer = await run(['heatmap', IMAGE, '--referrer', CLIPSEG, ...BACKEND, '--text', 'a red cat', '--json']);
    expect((JSON.parse(viaReferrer.stdout) as HeatmapJson).mean).toBe(one.mean);
    const fused = await heatmapJson(['--text', 'a red cat', '--text', 'the dog']);
    expect(fused.mean).not.toBe(one.mean);
  });

  it('heatmap takes a reference image, alone or mixed with a text', async () => {
    const visual = await heatmapJson(['--ref-image', REF_IMAGE]);
    const mixed = await heatmapJson(['--ref-image', REF_IMAGE, '--text', 'a red cat', '--text-weight', '0.3']);
    expect([visual.width, visual.height, mixed.width, mixed.height]).toEqual([150, 100, 150, 100]);
    expect(mixed.mean).not.toBe(visual.mean);
  });

  it('heatmap --ref-box / --ref-mask: the visual prompt of the region, the same for a box and its mask', async () => {
    const whole = await heatmapJson(['--ref-image', REF_IMAGE]);
    const boxed = await heatmapJson(['--ref-image', REF_IMAGE, '--ref-box', '20,10,60,50']);
    expect([boxed.width, boxed.height]).toEqual([150, 100]);
    expect(boxed.mean).not.toBe(whole.mean);
    // small.png is 90 × 70; the mask of the box's pixels 20..59 × 10..49
    const mask = Buffer.alloc(90 * 70);
    for (let y = 10; y < 50; y++) mask.fill(255, y * 90 + 20, y * 90 + 60);
    const maskFile = path.join(dir, 'ref-mask.png');
    await sharp(mask, { raw: { width: 90, height: 70, channels: 1 } }).png().toFile(maskFile);
    const masked = await heatmapJson(['--ref-image', REF_IMAGE, '--ref-mask', maskFile]);
    expect([masked.max, masked.mean]).toEqual([boxed.max, boxed.mean]);

    const wrong = await run(['heatmap', IMAGE, '--referrer', CLIPSEG, ...BACKEND, '--ref-image', REF_IMAGE, '--ref-box', '0,0,91,70']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/for options\.refRegion\.box\[2\] but received 91/);
  });

  it('segment --referrer --ref-box runs referSegment on the region: as its mask does, not as the whole image', async () => {
    const segment = async (extra: string[]) => {
      const { code, stdout, stderr } = await run(['segment', IMAGE, '--model', SAM, '--referrer', CLIPSEG, '--ref-image', REF_IMAGE,
        ...extra, ...BACKEND, '--json']);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      const result = JSON.parse(stdout) as ReferJson;
      expect(Object.keys(result)).toEqual(REFER_KEYS);
      return { ...result, timings: undefined };
    };
    const boxed = await segment(['--ref-box', '20,10,60,50']);
    expect(boxed.masks.length).toBeGreaterThan(0);
    // the box's pixels 20..59 × 10..49 of small.png (90 × 70) as a mask
    const mask = Buffer.alloc(90 * 70);
    for (let y = 10; y < 50; y++) mask.fill(255, y * 90 + 20, y * 90 + 60);
    const maskFile = path.join(dir, 'ref-box-mask.png');
    await sharp(mask, { raw: { width: 90, height: 70, channels: 1 } }).png().toFile(maskFile);
    expect(await segment(['--ref-mask', maskFile])).toEqual(boxed);
    expect((await segment([])).masks).not.toEqual(boxed.masks);
  });

  it('heatmap: a missing reference image is a one-line error, exit code 1', async () => {
    const { code, stdout, stderr } = await run(['heatmap', IMAGE, '--referrer', CLIPSEG, ...BACKEND, '--ref-image', path.join(dir, 'none.png')]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^omniseg: /);
  });

  const refer = (extra: string[]) =>
    run(['segment', IMAGE, '--model', SAM, '--referrer', CLIPSEG, '--text', 'a red cat', ...BACKEND, ...extra, '--json']);

  it('segment --referrer --threshold-heat 1: noTarget, no masks', async () => {
    const { code, stdout, stderr } = await refer(['--threshold-heat', '1']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as ReferJson;
    expect(Object.keys(result)).toEqual(REFER_KEYS);
    expect(result).toMatchObject({ width: 150, height: 100, masks: [], noTarget: true });
    expect(result.prompts).toEqual([{ texts: ['a red cat'], refImages: [], noTarget: true }]);
    expect(result.timings.encodeMs).toBe(0);
  });

  it('segment --referrer: masks with their instance and score, by descending score', async () => {
    const { max, mean } = await heatmapJson(['--text', 'a red cat']);
    const threshold = (max + mean) / 2;
    const { code, stdout, stderr } = await refer(['--threshold-heat', String(threshold), '--min-area', '0']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as ReferJson;
    expect(Object.keys(result)).toEqual(REFER_KEYS);
    expect(Object.keys(result.timings)).toEqual(['encodeMs', 'decodeMs', 'heatmapMs']);
    expect(result.noTarget).toBe(false);
    expect(result.masks.length).toBeGreaterThan(0);
    result.masks.forEach((m) => {
      expect(Object.keys(m)).toEqual(['score', 'box', 'area', 'rle', 'instance', 'referScore', 'prompt']);
      expect(m.prompt).toBe(0);
      expect(Number.isInteger(m.instance) && m.instance >= 0).toBe(true);
      expect(m.referScore).toBeLessThanOrEqual(m.score + 1e-6);
      expect(m.rle.size).toEqual([100, 150]);
      expect(m.area).toBe(decodeRLE(m.rle).reduce((s, v) => s + v, 0));
    });
    const scores = result.masks.map((m) => m.referScore);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    expect(new Set(result.masks.map((m) => m.instance)).size).toBe(result.masks.length);

    const text = await run(['segment', IMAGE, '--model', SAM, '--referrer', CLIPSEG, '--text', 'a red cat', ...BACKEND,
      '--threshold-heat', String(threshold), '--min-area', '0']);
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n')[0]).toMatch(/\(150x100\): \d+ masks? for 1 query \(heat map/);
  });

  it('segment --referrer --each: a result per prompt, masks carrying their prompt; --vocabulary labels them', async () => {
    const { code, stdout, stderr } = await refer([
      '--text', 'the dog', '--ref-image', REF_IMAGE, '--each', '--threshold-heat', '0', '--vocabulary', 'cat,dog,zebra',
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as ReferJson;
    expect(result.prompts.map((p) => [p.texts, p.refImages])).toEqual([
      [['a red cat'], []],
      [['the dog'], []],
      [[], [REF_IMAGE]],
    ]);
    // threshold 0: every pixel is foreground, one instance per prompt, one mask each
    expect(result.masks.map((m) => m.prompt)).toEqual([0, 1, 2]);
    for (const m of result.masks) {
      expect(m.labels!.map((l) => l.label).sort()).toEqual(['cat', 'dog', 'zebra']);
      expect(m.label).toBe(m.labels![0].label);
      expect(m.labels!.reduce((s, l) => s + l.probability, 0)).toBeCloseTo(1, 5);
    }
    const fused = JSON.parse((await refer(['--text', 'the dog', '--threshold-heat', '0'])).stdout) as ReferJson;
    expect(fused.prompts).toEqual([{ texts: ['a red cat', 'the dog'], refImages: [], noTarget: false }]);
    expect(fused.masks.map((m) => m.prompt)).toEqual([0]);
  });

  it('segment --referrer with --point / --box: target-image prompts narrow the instances', async () => {
    const { max, mean } = await heatmapJson(['--text', 'a red cat']);
    const threshold = String((max + mean) / 2);
    const base = JSON.parse((await refer(['--threshold-heat', threshold, '--min-area', '0'])).stdout) as ReferJson;
    expect(base.masks.length).toBeGreaterThan(0);
    // a positive click inside the best mask keeps it; a box in a corner with a click there leaves none
    const m = base.masks[0];
    const bits = decodeRLE(m.rle);
    const inside = bits.findIndex((v) => v === 1); // column-major (COCO): index = x · height + y
    const [x, y] = [Math.floor(inside / 100), inside % 100];
    const kept = JSON.parse((await refer(['--threshold-heat', threshold, '--min-area', '0', '--point', `${x},${y},1`])).stdout) as ReferJson;
    expect(kept.noTarget).toBe(false);
    expect(kept.masks.map((k) => k.rle)).toContainEqual(m.rle);
    const none = JSON.parse(
      (await refer(['--threshold-heat', threshold, '--min-area', '0', '--box', '0,0,1,1', '--point', '0,0,1'])).stdout,
    ) as ReferJson;
    expect(none.noTarget).toBe(true);
  });
});
