// The example dataset (examples/eval, written by examples/eval/make-dataset.mjs from the shared
// photographs): its ground truth is what the script says it is (horse.png's dark pixels), its
// prompts fit its masks, and `omniseg eval --dataset` runs it end to end on the tiny SAM and
// CLIPSeg fixtures (random weights: the metrics are poor, the run and its report are checked).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDataset, type DatasetSample } from '../lib/eval/dataset.js';
import { decodeRLE } from '../lib/rle.js';
import { run } from './helpers/cli.js';
import { FIXTURES, MODEL_DIR as SAM, addonAvailable } from './helpers/fixtures.js';

const EXAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'eval');
const CLIPSEG = path.join(FIXTURES, '..', 'clipseg-tiny', 'model');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'omniseg-example-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const united = (s: DatasetSample): Uint8Array => {
  const out = new Uint8Array(s.height * s.width);
  for (const m of s.masks) decodeRLE(m).forEach((v, i) => (out[i] |= v));
  return out;
};

describe('the example dataset', () => {
  it("horse.png's ground truth is its pixels darker than mid-grey", async () => {
    const { data, info } = await sharp(path.join(EXAMPLE, 'images', 'horse.png')).greyscale().raw().toBuffer({ resolveWithObject: true });
    const dark = Uint8Array.from(data, (v) => (v < 128 ? 1 : 0));
    const samples = (await readDataset(path.join(EXAMPLE, 'horse.jsonl'))).filter((s) => s.image.endsWith('horse.png'));
    expect(samples).toHaveLength(3);
    for (const s of samples) {
      expect([s.width, s.height]).toEqual([info.width, info.height]);
      expect(united(s)).toEqual(dark);
    }
  });

  it('prompts fit the masks: positive clicks inside, negative outside, boxes tight; no-target samples are horse-free images', async () => {
    const all = [...(await readDataset(path.join(EXAMPLE, 'horse.jsonl'))), ...(await readDataset(path.join(EXAMPLE, 'referring.jsonl')))];
    expect(all).toHaveLength(12);
    for (const s of all) {
      const mask = united(s);
      const at = (x: number, y: number) => mask[Math.floor(y) * s.width + Math.floor(x)];
      for (const p of s.points) expect(at(p.x, p.y)).toBe(p.label);
      for (const [x0, y0, x1, y1] of s.boxes) {
        let [minX, minY, maxX, maxY] = [Infinity, Infinity, -1, -1];
        mask.forEach((v, i) => {
          if (v === 0) return;
          const [x, y] = [i % s.width, Math.floor(i / s.width)];
          [minX, minY, maxX, maxY] = [Math.min(minX, x), Math.min(minY, y), Math.max(maxX, x), Math.max(maxY, y)];
        });
        expect([x0, y0, x1, y1]).toEqual([minX, minY, maxX + 1, maxY + 1]);
      }
      expect(s.masks.length === 0).toBe(s.image.endsWith('coffee.jpg'));
    }
  });
});

describe.runIf(addonAvailable())('omniseg eval --dataset examples/eval (tiny SAM and CLIPSeg)', () => {
  const rows = (html: string) => [...html.matchAll(/<tr class="sample" data-id="[^"]*" data-iou="([^"]*)">(.*?)<\/tr>/g)];

  it('horse.jsonl runs with --model alone: per-sample results, metrics and a report with a row of thumbnails per sample', async () => {
    const [out, report] = [path.join(dir, 'horse-results.jsonl'), path.join(dir, 'horse.html')];
    const r = await run(['eval', '--dataset', path.join(EXAMPLE, 'horse.jsonl'), '--model', SAM, '--device', 'cpu', '--threads', '2', '--out', out, '--report', report, '--json']);
    expect(r.code).toBe(0);
    const metrics = JSON.parse(r.stdout) as { count: number; nAcc: number | null; mIoU: number };
    expect(metrics.count).toBe(6);
    expect(metrics.nAcc).toBeNull(); // every sample has a target
    const ious = (await readFile(out, 'utf8')).trimEnd().split('\n').map((l) => (JSON.parse(l) as { iou: number }).iou);
    expect(ious).toHaveLength(6);
    expect(metrics.mIoU).toBeCloseTo(ious.reduce((a, b) => a + b, 0) / 6, 12);
    const html = await readFile(report, 'utf8');
    const shown = rows(html);
    expect(shown.map((m) => Number(m[1]))).toEqual([...ious].sort((a, b) => a - b));
    for (const m of shown) expect(m[2].match(/<img class="thumb"/g)).toHaveLength(3);
  });

  it('referring.jsonl runs with --referrer: two no-target samples', async () => {
    const r = await run(['eval', '--dataset', path.join(EXAMPLE, 'referring.jsonl'), '--model', SAM, '--referrer', CLIPSEG, '--device', 'cpu', '--threads', '2']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('referring.jsonl with ');
    expect(r.stdout).toContain(': 6 samples (4 with a target, 2 without)\n');
  });
});
