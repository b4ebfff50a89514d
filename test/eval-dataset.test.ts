// omniseg eval --dataset: argument parsing, the dataset format's errors, and runs on the tiny SAM
// and CLIPSeg fixtures (when the addon is built) with ground truth taken from a first run.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { progress } from '../lib/cli/eval-dataset.js';
import { helpText } from '../lib/cli/help.js';
import { parseDataset } from '../lib/eval/dataset.js';
import { Referrer } from '../lib/referrer.js';
import { referSegment } from '../lib/referring/index.js';
import { decodeRLE, encodeRLE, rleArea, rleMerge } from '../lib/rle.js';
import { Segmenter } from '../lib/segmenter.js';
import type { RLEInput } from '../lib/types.js';
import { expectUsage, parse, run } from './helpers/cli.js';
import { FIXTURES, MODEL_DIR as SAM, addonAvailable } from './helpers/fixtures.js';

const CLIPSEG = path.join(FIXTURES, '..', 'clipseg-tiny', 'model');
const BACKEND = ['--device', 'cpu', '--threads', '2'];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'omniseg-dataset-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('eval --dataset arguments', () => {
  it('parses', () => {
    expect(parse('eval --dataset d.jsonl --model m --referrer r --out o.jsonl --json --device cpu')).toEqual({
      command: 'eval',
      dataset: 'd.jsonl',
      clicks: false,
      model: 'm',
      referrer: 'r',
      out: 'o.jsonl',
      device: 'cpu',
      precision: 'fp32',
      maxClicks: 20,
      json: true,
    });
  });

  it('usage errors', () => {
    expectUsage('eval --dataset d.jsonl', 'Missing required option --model (for --dataset)');
    expectUsage('eval --dataset d.jsonl --model m --gt g.json', 'Option --gt does not go with --dataset');
    expectUsage('eval --dataset d.jsonl --model m --pred p.json', 'Option --pred does not go with --dataset');
    expectUsage('eval --dataset d.jsonl --model m --clicks', 'Option --clicks does not go with --dataset');
    expectUsage('eval --dataset d.jsonl --model m --max-clicks 3', 'Option --max-clicks does not go with --dataset');
    expectUsage('eval --gt g.json --pred p.json --referrer r', 'Option --referrer goes with --dataset');
    expectUsage('eval --gt g.json --pred p.json --out o', 'Option --out goes with --dataset');
    expectUsage('eval --dataset d.jsonl --model', 'Option --model requires a value');
    expectUsage('eval --gt g.json --heatmaps h --report r.html', 'Option --report goes with --pred or --dataset');
    expectUsage('eval --gt g.json --clicks --model m --report r.html', 'Option --report goes with --pred or --dataset');
    expect(parse('eval --dataset d.jsonl --model m --report r.html')).toMatchObject({ dataset: 'd.jsonl', report: 'r.html' });
    expect(parse('eval --gt g.json --pred p.json --report r.html')).toMatchObject({ gt: 'g.json', pred: 'p.json', report: 'r.html' });
  });

  it('progress: a counter, behind a bar on a terminal', () => {
    expect(progress(1, 4, false)).toBe('\r1/4 samples');
    expect(progress(1, 4, true)).toBe(`\r[${'#'.repeat(8)}${'.'.repeat(22)}] 1/4 samples`);
    expect(progress(4, 4, true)).toBe(`\r[${'#'.repeat(30)}] 4/4 samples`);
  });

  it('help documents the dataset format', () => {
    expect(helpText('eval')).toContain('omniseg eval --dataset <file.jsonl> --model <dir> [--referrer <dir>] [--out <file>]\n                    [--report <file.html>] [--json]');
    expect(helpText('eval')).toContain('omniseg eval --convert grefcoco --grefs <grefs(unc).json>');
  });
});

describe('dataset format', () => {
  const base = { id: 1, image: 'a.png', height: 2, width: 2, masks: [] };
  const error = (record: unknown, message: string) =>
    expect(() => parseDataset(`\n${JSON.stringify(record)}\n`, 'd.jsonl')).toThrow(new Error(`d.jsonl: line 2: ${message}`));

  it('resolves images against the dataset folder and reads the prompts', () => {
    const [s] = parseDataset(JSON.stringify({ ...base, points: [[1, 0, 1]], boxes: [[0, 0, 1, 1]] }), path.join('data', 'd.jsonl'));
    expect(s).toEqual({ ...base, image: path.resolve('data', 'a.png'), points: [{ x: 1, y: 0, label: 1 }], boxes: [[0, 0, 1, 1]], line: 1 });
  });

  it('reads COCO polygons as pycocotools rasterises them, beside RLEs', () => {
    const square = [0, 0, 1, 0, 1, 1, 0, 1]; // pixel (0, 0)
    const corner = [1, 1, 2, 1, 2, 2, 1, 2]; // pixel (1, 1)
    const rle = { size: [2, 2], counts: [2, 1, 1] }; // pixel (0, 1): column 1, row 0
    const [s] = parseDataset(JSON.stringify({ ...base, masks: [[square, corner], rle, []], points: [[0, 0, 1]] }), 'd.jsonl');
    expect(s.masks.map((m) => Array.from(decodeRLE(m)))).toEqual([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]]);
  });

  it('reads referring prompts: text and reference image with a region, narrowed by points and a box', () => {
    const mask = { size: [2, 2], counts: [1, 2, 1] };
    const record = { ...base, text: 'a cat', refImage: 'ref/b.png', refRegion: { mask }, points: [[1, 1, 0]], boxes: [[0, 0, 1, 1]] };
    const [s] = parseDataset(JSON.stringify(record), path.join('data', 'd.jsonl'));
    expect(s).toEqual({
      ...base,
      image: path.resolve('data', 'a.png'),
      text: 'a cat',
      refImage: path.resolve('data', 'ref', 'b.png'),
      refRegion: { mask },
      points: [{ x: 1, y: 1, label: 0 }],
      boxes: [[0, 0, 1, 1]],
      line: 1,
    });
    const [r] = parseDataset(JSON.stringify({ ...base, refImage: 'b.png', refRegion: { scribble: [[0, 1], [2, 2]] } }), 'd.jsonl');
    expect(r.refRegion).toEqual({ scribble: [[0, 1], [2, 2]] });
    expect(r.text).toBeUndefined();
  });

  it('errors name the line', () => {
    error({ ...base }, 'no prompt: give "points", "boxes", "text" or "refImage"');
    error({ ...base, text: 'a', boxes: [[0, 0, 1, 1], [0, 0, 1, 1]] }, 'a referring sample ("text" / "refImage") takes at most one box, not 2');
    error({ ...base, text: 'a', refRegion: { box: [0, 0, 1, 1] } }, '"refRegion" needs "refImage"');
    const region = 'an object with exactly one of box [x0, y0, x1, y1], scribble [[x, y], ...] or mask (a COCO RLE)';
    error({ ...base, refImage: 'b.png', refRegion: { box: [0, 0, 1] } }, `Expected ${region} for refRegion but received {box: [0, 0, 1]} of type object`);
    error(
      { ...base, refImage: 'b.png', refRegion: { box: [0, 0, 1, 1], scribble: [[0, 0]] } },
      `Expected ${region} for refRegion but received {box: [0, 0, 1, 1], scribble: [[...]]} of type object`,
    );
    expect(() => parseDataset(JSON.stringify({ ...base, refImage: 'b.png', refRegion: { mask: { size: [2, 2], counts: [5] } } }), 'd.jsonl')).toThrow(
      /^d\.jsonl: line 1: refRegion\.mask: Expected run lengths summing to height × width = 4/,
    );
    error({ ...base, refImage: '', text: 'a' }, 'Expected a file path for refImage but received "" of type string');
    error(
      { ...base, masks: [[[0, 0, 1, 1]]], points: [[0, 0, 1]] },
      'Expected a polygon [x0, y0, x1, y1, ...] of at least 3 vertices (an even count of numbers within ±1000000) for masks[0][0] but received [0, 0, 1, 1] of type array',
    );
    error({ ...base, points: [[0, 0, 2]] }, 'Expected an array of [x, y, label] (label 0 or 1) for points but received [[0, 0, 2]] of type array');
    error({ ...base, image: undefined, text: 'a' }, 'Expected a file path for image but received undefined of type undefined');
    expect(() => parseDataset('{"id": 1,', 'd.jsonl')).toThrow(/^d\.jsonl: line 1: invalid JSON: /);
    // a byte order mark (as Windows editors write) is no part of the first line
    expect(parseDataset(`\uFEFF${JSON.stringify({ ...base, text: 'a' })}`, 'd.jsonl')).toHaveLength(1);
    const line = JSON.stringify({ ...base, text: 'a' });
    expect(() => parseDataset(`${line}\n${line}`, 'd.jsonl')).toThrow(new Error('d.jsonl: line 2: duplicate id 1'));
  });
});

interface ResultLine {
  id: string;
  masks: RLEInput[];
  iou: number;
  timings: Record<string, number>;
}

describe.runIf(addonAvailable())('omniseg eval --dataset (tiny SAM and CLIPSeg)', () => {
  const samples = () => {
    const image = (name: string) => path.relative(dir, path.join(FIXTURES, name));
    return [
      { id: 'point', image: image('wide.png'), height: 100, width: 150, masks: [] as RLEInput[], points: [[75, 50, 1]] },
      { id: 'box', image: image('small.png'), height: 70, width: 90, masks: [] as RLEInput[], boxes: [[10, 10, 60, 50]] },
      { id: 'text', image: image('wide.png'), height: 100, width: 150, masks: [] as RLEInput[], text: 'a cat' },
      { id: 'none', image: image('wide.png'), height: 100, width: 150, masks: [] as RLEInput[], points: [[30, 20, 1]] },
    ];
  };
  const writeDataset = (file: string, records: unknown[]) => writeFile(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');

  it('runs SAM and referSegment per sample; predictions equal to the ground truth score IoU 1', async () => {
    const first = path.join(dir, 'first.jsonl');
    const results = path.join(dir, 'results.jsonl');
    await writeDataset(first, samples());
    const run1 = await run(['eval', '--dataset', first, '--model', SAM, '--referrer', CLIPSEG, ...BACKEND, '--out', results, '--json']);
    expect(run1.stderr).toBe('\r1/4 samples\r2/4 samples\r3/4 samples\r4/4 samples\n');
    expect(run1.code).toBe(0);
    const lines = (await readFile(results, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as ResultLine);
    expect(lines.map((l) => l.id)).toEqual(['point', 'box', 'text', 'none']);
    expect(Object.keys(lines[0])).toEqual(['id', 'masks', 'iou', 'timings']);
    expect(Object.keys(lines[0].timings)).toEqual(['encodeMs', 'decodeMs']);
    expect(Object.keys(lines[2].timings)).toEqual(['heatmapMs', 'encodeMs', 'decodeMs']);
    const area = (l: ResultLine, size: [number, number]) => (l.masks.length === 0 ? 0 : rleArea(rleMerge(l.masks, false, size)));
    const areas = lines.map((l, i) => area(l, i === 1 ? [70, 90] : [100, 150]));
    expect(areas[0]).toBeGreaterThan(0);
    expect(areas[1]).toBeGreaterThan(0);
    expect(areas[3]).toBeGreaterThan(0);

    // Ground truth = the first run's predictions, but "none" has no target (its prediction is a false positive).
    const second = path.join(dir, 'second.jsonl');
    await writeDataset(
      second,
      samples().map((s, i) => ({ ...s, masks: s.id === 'none' ? [] : lines[i].masks })),
    );
    const run2 = await run(['eval', '--dataset', second, '--model', SAM, '--referrer', CLIPSEG, ...BACKEND, '--out', results, '--json']);
    expect(run2.code).toBe(0);
    const targetArea = areas[0] + areas[1] + areas[2];
    const textTarget = areas[2] > 0;
    const targets = textTarget ? 3 : 2;
    expect(JSON.parse(run2.stdout)).toEqual({
      cIoU: targetArea / (targetArea + areas[3]),
      gIoU: 3 / 4,
      precision: { '0.5': 1, '0.6': 1, '0.7': 1, '0.8': 1, '0.9': 1 },
      nAcc: textTarget ? 0 : 1 / 2, // "none" is a false positive; "text" a true negative when it found nothing
      tAcc: 1,
      count: 4,
      mIoU: 1,
    });
    const ious = (await readFile(results, 'utf8')).trimEnd().split('\n').map((l) => (JSON.parse(l) as ResultLine).iou);
    expect(ious).toEqual([1, 1, 1, 0]);

    const text = await run(['eval', '--dataset', second, '--model', SAM, '--referrer', CLIPSEG, ...BACKEND]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`${second} with ${SAM}: 4 samples (${targets} with a target, ${4 - targets} without)\n`);
    expect(text.stdout).toContain('  mIoU    1.0000\n');
  });

  it('referring samples (text + clicks + box, reference image + region) run as referSegment with those options; --report', async () => {
    const file = path.join(dir, 'refer.jsonl');
    const results = path.join(dir, 'refer-results.jsonl');
    const report = path.join(dir, 'report.html');
    const small = path.relative(dir, path.join(FIXTURES, 'small.png'));
    const block = new Uint8Array(70 * 90);
    for (let y = 20; y < 50; y++) block.fill(1, y * 90 + 10, y * 90 + 60);
    const regionMask = encodeRLE(block, 70, 90);
    const records = [
      { ...samples()[2], id: 'compose', points: [[75, 50, 1], [20, 80, 0]], boxes: [[5, 5, 145, 95]] },
      { ...samples()[2], id: 'ref-box', text: undefined, refImage: small, refRegion: { box: [10, 10, 60, 50] } },
      { ...samples()[2], id: 'ref-mask', refImage: small, refRegion: { mask: regionMask } },
    ];
    await writeDataset(file, records);
    const out = await run(['eval', '--dataset', file, '--model', SAM, '--referrer', CLIPSEG, ...BACKEND, '--out', results, '--report', report, '--json']);
    expect(out.code).toBe(0);
    const lines = (await readFile(results, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as ResultLine);

    const segmenter = await Segmenter.load({ model: SAM, device: 'cpu', threads: 2 });
    const referrer = await Referrer.load({ model: CLIPSEG, device: 'cpu', threads: 2 });
    try {
      const wide = path.join(FIXTURES, 'wide.png');
      const smallFile = path.join(FIXTURES, 'small.png');
      const direct = [
        await referSegment(segmenter, referrer, wide, { text: 'a cat', points: [{ x: 75, y: 50, label: 1 }, { x: 20, y: 80, label: 0 }], box: [5, 5, 145, 95] }),
        await referSegment(segmenter, referrer, wide, { refImage: smallFile, refRegion: { box: [10, 10, 60, 50] } }),
        await referSegment(segmenter, referrer, wide, { text: 'a cat', refImage: smallFile, refRegion: { mask: { data: block, width: 90, height: 70 } } }),
      ];
      expect(lines.map((l) => l.masks)).toEqual(direct.map((r) => r.masks.map((m) => m.toRLE())));
    } finally {
      referrer.dispose();
      segmenter.dispose();
    }

    // the report: the metrics printed, and one row with three thumbnails per sample, worst first
    const html = await readFile(report, 'utf8');
    const metrics = JSON.parse(out.stdout) as { gIoU: number; count: number };
    expect(html).toContain(`<td data-metric="gIoU">${metrics.gIoU.toFixed(4)}</td>`);
    expect(html).toContain('<td data-metric="count">3</td>');
    const rows = [...html.matchAll(/<tr class="sample" data-id="([^"]*)" data-iou="([^"]*)">(.*?)<\/tr>/g)];
    expect(rows.map((r) => Number(r[2]))).toEqual([...lines.map((l) => l.iou)].sort((a, b) => a - b));
    for (const r of rows) {
      expect([...r[3].matchAll(/<img class="thumb" data-kind="(\w+)" src="data:image\/png;base64,/g)].map((m) => m[1])).toEqual(['image', 'gt', 'pred']);
    }
  });

  it('a "text" sample without --referrer is an error naming its line; so is a size mismatch', async () => {
    const file = path.join(dir, 'text.jsonl');
    await writeDataset(file, samples());
    expect(await run(['eval', '--dataset', file, '--model', SAM, ...BACKEND])).toEqual({
      code: 1,
      stdout: '',
      stderr: `omniseg: ${file}: line 3: sample "text" has a "text" prompt: give --referrer <clipseg-dir>\n`,
    });
    const [point] = samples();
    await writeDataset(file, [{ ...point, width: 151 }]);
    const out = await run(['eval', '--dataset', file, '--model', SAM, ...BACKEND]);
    expect(out.code).toBe(1);
    expect(out.stderr).toBe(
      `omniseg: ${file}: line 1: sample "point": ${path.join(FIXTURES, 'wide.png')} is 150x100 but the sample is 151x100\n`,
    );
  });

  it('a run that fails on a later sample ends its progress line, and leaves --out as it was (no truncated results)', async () => {
    const file = path.join(dir, 'later.jsonl');
    const results = path.join(dir, 'later-results.jsonl');
    const [point, box] = samples();
    await writeDataset(file, [point, box, { ...point, id: 'bad', width: 151 }]);
    await writeFile(results, 'earlier results\n');
    const out = await run(['eval', '--dataset', file, '--model', SAM, ...BACKEND, '--out', results]);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/^\r1\/3 samples\r2\/3 samples\nomniseg: .*line 3: sample "bad": /);
    expect(await readFile(results, 'utf8')).toBe('earlier results\n');
    expect(await readdir(dir)).not.toContain('later-results.jsonl.partial');
  });

  it('refuses an --out that is the dataset (it was overwritten by the results), before loading anything', async () => {
    const file = path.join(dir, 'self.jsonl');
    await writeDataset(file, samples().slice(0, 1));
    const before = await readFile(file, 'utf8');
    const out = await run(['eval', '--dataset', file, '--model', 'no-such-model', '--out', path.relative(process.cwd(), file)]);
    expect(out).toEqual({ code: 2, stdout: '', stderr: `omniseg: --out ${path.relative(process.cwd(), file)} is also --dataset: it would be overwritten; write elsewhere\n` });
    expect(await readFile(file, 'utf8')).toBe(before);
  });
});
