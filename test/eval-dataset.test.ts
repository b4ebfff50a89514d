// omniseg eval --dataset: argument parsing, the dataset format's errors, and runs on the tiny SAM
// and CLIPSeg fixtures (when the addon is built) with ground truth taken from a first run.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { helpText } from '../lib/cli/help.js';
import { parseDataset } from '../lib/eval/dataset.js';
import { native } from '../lib/native.js';
import { rleArea, rleMerge } from '../lib/rle.js';
import type { RLEInput } from '../lib/types.js';
import { expectUsage, parse, run } from './helpers/cli.js';
import { FIXTURES, MODEL_DIR as SAM } from './helpers/fixtures.js';

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
  });

  it('help documents the dataset format', () => {
    expect(helpText('eval')).toContain('omniseg eval --dataset <file.jsonl> --model <dir> [--referrer <dir>] [--out <file>] [--json]');
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

  it('errors name the line', () => {
    error({ ...base }, 'no prompt: give "points", "boxes" or "text"');
    error({ ...base, text: 'a', points: [[0, 0, 1]] }, '"text" does not go with "points" or "boxes" (a sample is prompted by one or the other)');
    error({ ...base, points: [[0, 0, 2]] }, 'Expected an array of [x, y, label] (label 0 or 1) for points but received [[0, 0, 2]] of type array');
    error({ ...base, image: undefined, text: 'a' }, 'Expected a file path for image but received undefined of type undefined');
    expect(() => parseDataset('{"id": 1,', 'd.jsonl')).toThrow(/^d\.jsonl: line 1: invalid JSON: /);
    const line = JSON.stringify({ ...base, text: 'a' });
    expect(() => parseDataset(`${line}\n${line}`, 'd.jsonl')).toThrow(new Error('d.jsonl: line 2: duplicate id 1'));
  });
});

function addonAvailable(): boolean {
  try {
    native();
    return true;
  } catch {
    return false;
  }
}

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
});
