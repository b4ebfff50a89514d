// omniseg eval: argument parsing, the --json contract, warnings, PointM heat maps and --clicks
// end to end on the tiny SAM fixture (when the addon is built).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { helpText } from '../lib/cli/help.js';
import { writeFloat32File } from '../lib/cli/io.js';
import { samClickSegmenter, simulateClicks, summarizeClicks } from '../lib/eval/clicks.js';
import { encodeRLE } from '../lib/rle.js';
import { Segmenter } from '../lib/segmenter.js';
import { FIXTURES, MODEL_DIR, addonAvailable } from './helpers/fixtures.js';
import { expectUsage, parse, run } from './helpers/cli.js';


let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'omniseg-eval-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('eval arguments', () => {
  it('parses the three modes', () => {
    expect(parse('eval --gt g.json --pred p.json --json')).toEqual({
      command: 'eval',
      gt: 'g.json',
      pred: 'p.json',
      clicks: false,
      device: 'auto',
      precision: 'fp32',
      maxClicks: 20,
      json: true,
    });
    expect(parse('eval --gt g.json --heatmaps h')).toMatchObject({ heatmaps: 'h', clicks: false, json: false });
    expect(parse('eval --gt g.json --clicks --model m --max-clicks 5 --device cpu --threads 2')).toMatchObject({
      clicks: true,
      model: 'm',
      maxClicks: 5,
      device: 'cpu',
      threads: 2,
    });
    expect(parse('eval --help')).toEqual({ command: 'help', topic: 'eval' });
  });

  it('usage errors', () => {
    expectUsage('eval --pred p.json', 'Missing required option --gt');
    const modes = 'Give exactly one of --pred (masks), --heatmaps (PointM) or --clicks (NoC, with --model)';
    expectUsage('eval --gt g.json', modes);
    expectUsage('eval --gt g.json --pred p.json --heatmaps h', modes);
    expectUsage('eval --gt g.json --clicks', 'Missing required option --model (for --clicks)');
    expectUsage('eval --gt g.json --pred p.json --model m', 'Option --model goes with --clicks');
    expectUsage('eval --gt g.json --clicks --model m --max-clicks 0', 'Expected a positive integer for --max-clicks but received "0" of type string');
  });

  it('help lists eval and its JSON keys', () => {
    expect(helpText()).toContain('eval      score predictions');
    expect(helpText('eval')).toContain('{"cIoU","gIoU","precision":{"0.5",...,"0.9"},');
  });
});

const h = 2;
const w = 2;
const gtRecords = [
  { id: 'a', height: h, width: w, masks: [{ size: [h, w], counts: [0, 2, 2] }] }, // column 0
  { id: 'b', height: h, width: w, masks: [] },
  { id: 'c', height: h, width: w, masks: [{ size: [h, w], counts: '31' }] }, // pixel (1, 1)
];

describe('omniseg eval --pred', () => {
  it('--json prints exactly the metric keys; a missing prediction is a warning on stderr', async () => {
    const gt = path.join(dir, 'gt.jsonl');
    const pred = path.join(dir, 'pred.json');
    await writeFile(gt, gtRecords.map((r) => JSON.stringify(r)).join('\n'));
    // a: pixel (0, 0) → IoU 1/2; b: empty → TN; c: missing → FN.
    await writeFile(pred, JSON.stringify([{ id: 'b', masks: [] }, { id: 'a', masks: [{ size: [h, w], counts: '013' }] }, { id: 'z', masks: [] }]));
    const out = await run(['eval', '--gt', gt, '--pred', pred, '--json']);
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({
      cIoU: 1 / 3,
      gIoU: (1 / 2 + 1 + 0) / 3,
      precision: { '0.5': 0, '0.6': 0, '0.7': 0, '0.8': 0, '0.9': 0 },
      nAcc: 1,
      tAcc: 1 / 2,
      count: 3,
      mIoU: 1 / 4,
    });
    expect(out.stdout.endsWith('}\n')).toBe(true);
    expect(out.stderr).toBe(
      'omniseg: warning: 1 ground-truth sample without a prediction, scored as empty: "c"\n' +
        'omniseg: warning: 1 prediction with an id not in the ground truth, ignored: "z"\n',
    );
    const text = await run(['eval', '--gt', gt, '--pred', pred]);
    expect(text.stdout).toContain('3 samples (2 with a target, 1 without)');
    expect(text.stdout).toContain('  cIoU    0.3333\n');
    expect(text.stdout).toContain('  P@0.5   0.0000\n');
  });

  it('errors are one line, exit code 1', async () => {
    const missing = path.join(dir, 'nope.json');
    expect(await run(['eval', '--gt', missing, '--pred', missing])).toEqual({
      code: 1,
      stdout: '',
      stderr: `omniseg: Cannot read ground-truth file ${missing}: no such file or directory\n`,
    });
    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, '[{"id": 1, "height": 2, "width": 2, "masks": [{"size": [2, 2], "counts": [5]}]}]');
    const out = await run(['eval', '--gt', bad, '--pred', bad]);
    expect(out.code).toBe(1);
    expect(out.stderr).toBe(
      `omniseg: ${bad}: record 1: masks[0]: Expected run lengths summing to height × width = 4 (they sum to 5) for rle.counts but received [5] of type array\n`,
    );
  });
});

describe('omniseg eval --heatmaps', () => {
  it('PointM from <dir>/<id>.f32, no-target samples skipped', async () => {
    const gt = path.join(dir, 'gt-heat.json');
    await writeFile(gt, JSON.stringify(gtRecords));
    const maps = path.join(dir, 'maps');
    await mkdir(maps);
    // Row-major 2x2: a peaks at (row 1, col 0), inside column 0 → hit; c peaks at (0, 0) → miss.
    await writeFloat32File(path.join(maps, 'a.f32'), Float32Array.of(0, 0.5, 0.9, 0.1));
    await writeFloat32File(path.join(maps, 'c.f32'), Float32Array.of(3, 0, 0, 2));
    const out = await run(['eval', '--gt', gt, '--heatmaps', maps, '--json']);
    expect(out).toEqual({ code: 0, stdout: '{"PointM":0.5,"hits":1,"misses":1}\n', stderr: '' });
    await writeFloat32File(path.join(maps, 'c.f32'), Float32Array.of(3, 0, 0));
    const short = await run(['eval', '--gt', gt, '--heatmaps', maps, '--json']);
    expect(short.code).toBe(1);
    expect(short.stderr).toBe(
      `omniseg: heat map file ${path.join(maps, 'c.f32')} must hold exactly 4 float32 values (16 bytes) but has 12 bytes\n`,
    );
  });
});

describe.runIf(addonAvailable())('omniseg eval --clicks (tiny SAM fixture)', () => {
  it('runs the click protocol over samples with images and prints NoC', async () => {
    const gt = path.join(dir, 'gt-clicks.json');
    const mask = new Uint8Array(100 * 150);
    for (let y = 30; y < 70; y++) for (let x = 40; x < 110; x++) mask[y * 150 + x] = 1;
    const image = path.relative(dir, path.join(FIXTURES, 'wide.png'));
    await writeFile(
      gt,
      JSON.stringify([
        { id: 1, height: 100, width: 150, masks: [encodeRLE(mask, 100, 150)], image },
        { id: 2, height: 100, width: 150, masks: [] },
      ]),
    );
    const out = await run(['eval', '--gt', gt, '--clicks', '--model', MODEL_DIR, '--device', 'cpu', '--max-clicks', '3', '--json']);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const result = JSON.parse(out.stdout) as Record<string, number>;
    expect(Object.keys(result)).toEqual(['NoC@85', 'NoC@90', 'NoF@85', 'NoF@90', 'count']);
    expect(result.count).toBe(1);
    // the same protocol through the API: the CLI reports its summary of sample 1
    const sam = await Segmenter.load({ model: MODEL_DIR, device: 'cpu' });
    try {
      const embedding = await sam.encode(path.join(FIXTURES, 'wide.png'));
      const clicks = await simulateClicks(samClickSegmenter(sam, embedding), mask, 150, 100, { maxClicks: 3 });
      embedding.dispose();
      expect(result).toEqual(summarizeClicks([clicks]));
    } finally {
      await sam.dispose();
    }
  });

  it('refuses an image of another size than its ground truth before encoding it', async () => {
    const gt = path.join(dir, 'gt-clicks-size.json');
    const mask = new Uint8Array(90 * 150).fill(1);
    const image = path.join(FIXTURES, 'wide.png'); // 150 x 100
    await writeFile(gt, JSON.stringify([{ id: 7, height: 90, width: 150, masks: [encodeRLE(mask, 90, 150)], image }]));
    const encode = vi.spyOn(Segmenter.prototype, 'encode');
    try {
      const out = await run(['eval', '--gt', gt, '--clicks', '--model', MODEL_DIR, '--device', 'cpu']);
      expect(out.stderr).toBe(`omniseg: Sample 7: ${image} is 150x100 but the ground truth is 150x90\n`);
      expect(out.code).not.toBe(0);
      expect(encode).not.toHaveBeenCalled();
      // a missing image names its sample too
      const missing = path.join(dir, 'no-such.png');
      await writeFile(gt, JSON.stringify([{ id: 8, height: 90, width: 150, masks: [encodeRLE(mask, 90, 150)], image: missing }]));
      const gone = await run(['eval', '--gt', gt, '--clicks', '--model', MODEL_DIR, '--device', 'cpu']);
      expect(gone).toEqual({ code: 1, stdout: '', stderr: `omniseg: Sample 8: Image file not found: ${missing}\n` });
    } finally {
      encode.mockRestore();
    }
  });
});
