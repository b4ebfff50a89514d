// The HTML report (--report): the histogram's bins, the worst-first order, thumbnails whose pixels
// are the masks, and `eval --gt --pred --report` end to end (masks only, no images), the file
// parsed rather than snapshotted.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { histogramSvg, iouHistogram, worstFirst } from '../lib/eval/report.js';
import { sampleThumbnails, thumbnailSize, THUMBNAIL_SIZE } from '../lib/eval/thumbnails.js';
import { encodeRLE } from '../lib/rle.js';
import { run } from './helpers/cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'omniseg-report-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The RGB pixels of a PNG data: URI. */
async function pngPixels(uri: string): Promise<{ data: Buffer; width: number; height: number }> {
  const bytes = Buffer.from(uri.replace(/^data:image\/png;base64,/, ''), 'base64');
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

describe('report parts', () => {
  it('bins IoU in tenths (1 in the last bin), target and no-target apart', () => {
    const h = iouHistogram([
      { iou: 0, target: true },
      { iou: 0.0999, target: true },
      { iou: 0.1, target: true },
      { iou: 0.95, target: true },
      { iou: 1, target: true },
      { iou: 1, target: false },
      { iou: 0, target: false },
    ]);
    expect(h.target).toEqual([2, 1, 0, 0, 0, 0, 0, 0, 0, 2]);
    expect(h.noTarget).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    const svg = histogramSvg(h);
    expect(svg.match(/<rect /g)).toHaveLength(5); // bins 0 and 9 have both kinds, bin 1 targets only
    expect(svg).toContain('<title>IoU 0.9–1.0: 2 target samples</title>');
  });

  it('worst first, ties in their order', () => {
    const order = worstFirst([
      { id: 'a', iou: 0.5 },
      { id: 'b', iou: 0.2 },
      { id: 'c', iou: 0.5 },
      { id: 'd', iou: 0 },
    ]);
    expect(order.map((s) => s.id)).toEqual(['d', 'b', 'a', 'c']);
  });

  it('thumbnails: masks painted pixel for pixel at small sizes, the longest side capped', async () => {
    const [w, h] = [6, 4];
    const gt = Uint8Array.from({ length: w * h }, (_, i) => (i % w < 3 ? 1 : 0));
    const pred = Uint8Array.from({ length: w * h }, (_, i) => (Math.floor(i / w) === 0 ? 1 : 0));
    const thumbs = await sampleThumbnails(gt, pred, w, h);
    expect(thumbs.image).toBeUndefined();
    for (const [uri, mask] of [[thumbs.gt, gt], [thumbs.pred, pred]] as const) {
      const png = await pngPixels(uri);
      expect([png.width, png.height]).toEqual([w, h]);
      const inside = Array.from({ length: w * h }, (_, i) => (png.data[3 * i] + png.data[3 * i + 1] + png.data[3 * i + 2] > 300 ? 1 : 0));
      expect(inside).toEqual(Array.from(mask));
    }
    expect(thumbnailSize(1000, 500)).toEqual([THUMBNAIL_SIZE, THUMBNAIL_SIZE / 2]);
    expect(thumbnailSize(3, 900)).toEqual([1, THUMBNAIL_SIZE]);
  });

  it('with an image: the image thumbnail, the prompts drawn on it', async () => {
    const [w, h] = [40, 20];
    const image = { data: new Uint8Array(w * h * 3).fill(128), width: w, height: h };
    const empty = new Uint8Array(w * h);
    const thumbs = await sampleThumbnails(empty, empty, w, h, image, { points: [{ x: 10, y: 10, label: 1 }], boxes: [[20, 2, 35, 15]] });
    const png = await pngPixels(thumbs.image as string);
    const at = (x: number, y: number) => Array.from(png.data.subarray(3 * (y * w + x), 3 * (y * w + x) + 3));
    expect(at(10, 10)).toEqual([40, 230, 90]); // a positive click
    expect(at(20, 2)).toEqual([255, 220, 0]); // the box's corner
    expect(at(2, 2)).toEqual([128, 128, 128]);
    expect(await pngPixels(thumbs.gt)).toEqual(await pngPixels(thumbs.pred)); // both masks empty: the image
  });
});

describe('eval --gt --pred --report', () => {
  const mask = (h: number, w: number, on: (x: number, y: number) => boolean) =>
    encodeRLE(Uint8Array.from({ length: h * w }, (_, i) => (on(i % w, Math.floor(i / w)) ? 1 : 0)), h, w);
  const rowsOf = (html: string) => [...html.matchAll(/<tr class="sample" data-id="([^"]*)" data-iou="([^"]*)">(.*?)<\/tr>/g)];

  it('writes the metrics, the histogram and, worst first, a row with ground truth and prediction per sample', async () => {
    const gt = [
      { id: 'half', height: 8, width: 10, masks: [mask(8, 10, (x) => x < 4)] },
      { id: 'exact', height: 8, width: 10, masks: [mask(8, 10, (x, y) => y < 3)] },
      { id: 'none', height: 5, width: 5, masks: [] },
      { id: 'fp', height: 5, width: 5, masks: [] },
    ];
    const pred = [
      { id: 'half', masks: [mask(8, 10, (x) => x < 2)] },
      { id: 'exact', masks: gt[1].masks },
      { id: 'fp', masks: [mask(5, 5, (x, y) => x === y)] },
    ];
    const gtFile = path.join(dir, 'gt.jsonl');
    const predFile = path.join(dir, 'pred.json');
    const report = path.join(dir, 'report.html');
    await writeFile(gtFile, gt.map((g) => JSON.stringify(g)).join('\n'));
    await writeFile(predFile, JSON.stringify(pred));
    const out = await run(['eval', '--gt', gtFile, '--pred', predFile, '--report', report, '--json']);
    expect(out.code).toBe(0);
    const metrics = JSON.parse(out.stdout) as { cIoU: number; gIoU: number; mIoU: number; nAcc: number; count: number };
    const html = await readFile(report, 'utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script|<link|src="http/);
    for (const key of ['cIoU', 'gIoU', 'mIoU', 'nAcc'] as const) {
      expect(html).toContain(`<td data-metric="${key}">${metrics[key].toFixed(4)}</td>`);
    }
    expect(html).toContain('<td data-metric="precision.0.5">0.5000</td>');
    expect(html).toContain('<svg class="histogram"');
    const rows = rowsOf(html);
    expect(rows.map((r) => [JSON.parse(r[1].replace(/&#34;/g, '"')), Number(r[2])])).toEqual([
      ['fp', 0],
      ['half', 0.5],
      ['exact', 1],
      ['none', 1],
    ]);
    for (const r of rows) {
      expect([...r[3].matchAll(/<img class="thumb" data-kind="(\w+)" src="(data:image\/png;base64,[^"]+)"/g)].map((m) => m[1])).toEqual(['gt', 'pred']);
    }
    // the "half" row's thumbnails are its masks
    const [gtThumb, predThumb] = [...rows[1][3].matchAll(/src="([^"]+)"/g)].map((m) => m[1]);
    const lit = async (uri: string) => {
      const png = await pngPixels(uri);
      return Array.from({ length: png.width * png.height }, (_, i) => (png.data[3 * i] + png.data[3 * i + 1] + png.data[3 * i + 2] > 300 ? 1 : 0));
    };
    expect(await lit(gtThumb)).toEqual(Array.from({ length: 80 }, (_, i) => (i % 10 < 4 ? 1 : 0)));
    expect(await lit(predThumb)).toEqual(Array.from({ length: 80 }, (_, i) => (i % 10 < 2 ? 1 : 0)));
  });

  it('shows at most 100 samples, the worst', async () => {
    const gt = Array.from({ length: 120 }, (_, i) => ({ id: i, height: 4, width: 30, masks: [mask(4, 30, (x) => x <= (i % 30))] }));
    const pred = gt.map((g) => ({ id: g.id, masks: [mask(4, 30, (x) => x <= 14)] }));
    const [gtFile, predFile, report] = ['gt2.json', 'pred2.json', 'report2.html'].map((f) => path.join(dir, f));
    await writeFile(gtFile, JSON.stringify(gt));
    await writeFile(predFile, JSON.stringify(pred));
    expect((await run(['eval', '--gt', gtFile, '--pred', predFile, '--report', report])).code).toBe(0);
    const html = await readFile(report, 'utf8');
    expect(html).toContain('Samples, worst first (100 of 120)');
    const ious = rowsOf(html).map((r) => Number(r[2]));
    expect(ious).toHaveLength(100);
    const all = gt.map((g) => ((g.id % 30) + 1 <= 15 ? (g.id % 30) + 1 : 15) / Math.max((g.id % 30) + 1, 15)).sort((a, b) => a - b);
    expect(ious).toEqual(all.slice(0, 100));
  });

  it('cannot write the report: an error naming the option and the directory, before any work', async () => {
    const gtFile = path.join(dir, 'gt3.json');
    await writeFile(gtFile, JSON.stringify([{ id: 1, height: 1, width: 1, masks: [] }]));
    const report = path.join(dir, 'missing', 'r.html');
    const out = await run(['eval', '--gt', gtFile, '--pred', gtFile, '--report', report]);
    expect(out.code).toBe(1);
    expect(out.stderr).toBe(`omniseg: Cannot write --report ${report}: ${path.join(dir, 'missing')} is not an existing directory\n`);
    expect(out.stdout).toBe('');
  });
});
