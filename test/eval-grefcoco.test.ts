// eval --convert grefcoco: a hand-made release in gRefCOCO's layout (test/fixtures/eval/grefcoco:
// grefs(unc).json with a no-target ref "ann_id": [-1], a single int ann_id, an empty "raw", a
// crowd annotation and a 4-number polygon, both skipped as ReLA's loader skips them) converted to
// the --dataset JSONL, the masks checked pixel by pixel against hand-drawn grids.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDataset } from '../lib/eval/dataset.js';
import { convertGrefcoco } from '../lib/eval/grefcoco.js';
import { readGroundTruth } from '../lib/eval/samples.js';
import { decodeRLE } from '../lib/rle.js';
import type { RLE } from '../lib/types.js';
import { expectUsage, parse, run } from './helpers/cli.js';

const FIXTURE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'eval', 'grefcoco');
const GREFS = path.join(FIXTURE, 'grefs(unc).json');
const INSTANCES = path.join(FIXTURE, 'instances.json');

interface Line {
  id: number;
  image: string;
  height: number;
  width: number;
  masks: RLE[];
  text: string;
  refId: number;
}

/** A mask as rows of 0/1 digits. */
function grid(rle: RLE): string[] {
  const [h, w] = rle.size;
  const m = decodeRLE(rle);
  return Array.from({ length: h }, (_, y) => Array.from(m.subarray(y * w, (y + 1) * w)).join(''));
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'omniseg-grefcoco-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('eval --convert grefcoco', () => {
  const convert = (out: string, ...extra: string[]) =>
    run(['eval', '--convert', 'grefcoco', '--grefs', GREFS, '--instances', INSTANCES, '--images', path.join(dir, 'train2014'), '--out', out, ...extra]);
  const read = async (file: string) => (await readFile(file, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as Line);

  it('one sample per (ref, sentence): raw text, the union of the non-crowd annotations, no mask without a target', async () => {
    const out = path.join(dir, 'all.jsonl');
    expect(await convert(out)).toEqual({ code: 0, stdout: `${out}: 5 samples from 4 refs (1 without a target)\n`, stderr: '' });
    const lines = await read(out);
    expect(lines.map((l) => [l.id, l.refId, l.text, l.image, l.height, l.width, l.masks.length])).toEqual([
      [1000, 100, 'The two boxes.', 'train2014/COCO_train2014_000000000001.jpg', 6, 8, 1],
      [1001, 100, 'left and right', 'train2014/COCO_train2014_000000000001.jpg', 6, 8, 1],
      [1002, 101, 'the dog', 'train2014/COCO_train2014_000000000001.jpg', 6, 8, 0],
      [1003, 102, 'the top row', 'train2014/COCO_train2014_000000000002.jpg', 3, 4, 1],
      [1004, 103, 'the box but not the crowd', 'train2014/COCO_train2014_000000000001.jpg', 6, 8, 1],
    ]);
    // annotations 10 (a square) and 11 (two squares; its 4-number polygon dropped)
    expect(grid(lines[0].masks[0])).toEqual(['00000110', '01100110', '01100000', '00000000', '11000000', '11000000']);
    expect(lines[1].masks).toEqual(lines[0].masks);
    expect(grid(lines[3].masks[0])).toEqual(['1111', '0000', '0000']); // an RLE segmentation, as it is
    expect(grid(lines[4].masks[0])).toEqual(['00000000', '01100000', '01100000', '00000000', '00000000', '00000000']); // crowd 12 skipped
    expect(typeof lines[0].masks[0].counts).toBe('string');

    // the output is a --dataset file (images resolved against it) and a --gt file
    const samples = parseDataset(await readFile(out, 'utf8'), out);
    expect(samples[0].image).toBe(path.join(dir, 'train2014', 'COCO_train2014_000000000001.jpg'));
    expect(samples.map((s) => s.text)).toEqual(lines.map((l) => l.text));
    expect((await readGroundTruth(out)).map((g) => g.masks.length)).toEqual([1, 1, 0, 1, 1]);
  });

  it('--split keeps one split; an unknown split names the available ones', async () => {
    const out = path.join(dir, 'val.jsonl');
    expect((await convert(out, '--split', 'val')).stdout).toBe(`${out}: 3 samples from 2 refs (1 without a target) of split val\n`);
    expect((await read(out)).map((l) => l.id)).toEqual([1000, 1001, 1002]);
    expect(await convert(path.join(dir, 'x.jsonl'), '--split', 'testB')).toEqual({
      code: 1,
      stdout: '',
      stderr: 'omniseg: No ref has split "testB"; the splits are: val, train, testA\n',
    });
  });

  it('errors name the ref or annotation', async () => {
    const grefs = JSON.parse(await readFile(GREFS, 'utf8')) as Array<Record<string, unknown>>;
    const instances = JSON.parse(await readFile(INSTANCES, 'utf8')) as Record<string, unknown>;
    const fails = (g: unknown, i: unknown) => expect(convertGrefcoco(g, i)).rejects;
    await fails([{ ...grefs[0], ann_id: [10, 99] }], instances).toThrow(new Error('ref 100: annotation 99 is not in instances.json'));
    await fails([{ ...grefs[0], ann_id: [-1, 10] }], instances).toThrow(new Error('ref 100: ann_id mixes -1 (no target) with annotations: [-1,10]'));
    await fails([{ ...grefs[0], image_id: 2 }], instances).toThrow(new Error('ref 100: annotation 10 is on image 1, not 2'));
    await fails([{ ...grefs[0], image_id: 7 }], instances).toThrow(new Error("ref 100: image_id 7 is not in instances.json's images"));
    await fails([{ ...grefs[0], sentences: [{ sent_id: 5, raw: ' ' }] }], instances).toThrow(new Error('ref 100: sentence 5 has no text ("raw" or "sent")'));
    await fails([{ ...grefs[2], ann_id: 12 }], instances).toThrow(new Error('ref 102: annotation 12 is on image 1, not 2'));
    await fails({}, instances).toThrow(new Error('grefs: Expected an array of refs for the file but received {} of type object'));
    await fails(grefs, { images: [] }).toThrow(new Error('instances: missing "annotations"'));
    const badRle = { ...instances, annotations: [{ id: 20, image_id: 2, iscrowd: 0, segmentation: { size: [4, 4], counts: [16] } }] };
    await fails([grefs[2]], badRle).toThrow(new Error('ref 102: annotation 20: segmentation: its RLE is 4x4 but the image is 4x3'));
    const missing = await run(['eval', '--convert', 'grefcoco', '--grefs', path.join(dir, 'none.json'), '--instances', INSTANCES, '--images', dir, '--out', path.join(dir, 'o.jsonl')]);
    expect(missing.stderr).toBe(`omniseg: Cannot read ${path.join(dir, 'none.json')}: no such file or directory\n`);
    await writeFile(path.join(dir, 'bad.json'), '[{');
    const bad = await run(['eval', '--convert', 'grefcoco', '--grefs', path.join(dir, 'bad.json'), '--instances', INSTANCES, '--images', dir, '--out', path.join(dir, 'o.jsonl')]);
    expect(bad.stderr).toMatch(/^omniseg: .*bad\.json: invalid JSON: /);
  });

  it('arguments', () => {
    expect(parse('eval --convert grefcoco --grefs g.json --instances i.json --images im --split val --out o.jsonl')).toMatchObject({
      command: 'eval',
      convert: { format: 'grefcoco', grefs: 'g.json', instances: 'i.json', images: 'im', split: 'val' },
      out: 'o.jsonl',
    });
    const base = 'eval --convert grefcoco --grefs g --instances i --images im --out o';
    expectUsage('eval --convert refcoco --grefs g --instances i --images im --out o', 'Invalid value for --convert: "refcoco"; expected grefcoco');
    expectUsage('eval --convert grefcoco --instances i --images im --out o', 'Missing required option --grefs');
    expectUsage('eval --convert grefcoco --grefs g --instances i --images im', 'Missing required option --out');
    expectUsage(`${base} --model m`, 'Option --model does not go with --convert');
    expectUsage(`${base} --json`, 'Option --json does not go with --convert');
    // it runs no model: the backend options are refused as with --pred
    for (const option of ['--device cuda', '--precision fp16', '--cpu-matmul fp32', '--threads 2']) {
      expectUsage(`${base} ${option}`, `Option ${option.split(' ')[0]} does not go with --convert`);
    }
    expectUsage('eval --gt g --pred p --split val', 'Option --split goes with --convert');
  });
});
