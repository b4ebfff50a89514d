// The CLI contract end to end on the tiny SAM fixture, against the reference outputs of
// transformers (test/helpers/fixtures.ts). Skipped when the native addon is not built.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './helpers/cli.js';
import { cudaStatus } from '../lib/backends.js';
import { decodeRLE } from '../lib/rle.js';
import { cases, f32, FIXTURES, MODEL_DIR as MODEL, mismatches, u8, addonAvailable } from './helpers/fixtures.js';

const IMAGE = path.join(FIXTURES, 'wide.png');
/** The reference for `--point 75,50,1 --multimask` on wide.png. */
const POINT_CASE = cases.cases.find((c) => c.name === 'point' && c.image === 'wide.png');

const ready = POINT_CASE !== undefined && addonAvailable();


async function readF32(file: string): Promise<Float32Array> {
  const b = await readFile(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

interface SegmentJson {
  width: number;
  height: number;
  masks: Array<{ score: number; box: number[]; area: number; rle: { size: [number, number]; counts: string } }>;
  timings: { encodeMs: number; decodeMs: number };
}

describe.skipIf(!ready)('omniseg CLI on the sam-tiny fixture', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'omniseg-e2e-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('segment --json matches the reference masks and IoU, in decoder order', async () => {
    const logits = path.join(dir, 'logits.f32');
    const out = path.join(dir, 'overlay.png');
    const [[x, y]] = POINT_CASE!.points![0];
    // --cpu-matmul fp32: the exact path, whose masks match the reference pixel for pixel (bf16x3 may
    // flip a pixel whose logit is within its rounding of 0; test/native-sam.test.ts bounds that)
    const args = ['segment', IMAGE, '--model', MODEL, '--point', `${x},${y},1`, '--multimask', '--json', '--cpu-matmul', 'fp32'];
    const { code, stdout, stderr } = await run([...args, '--save-logits', logits, '--out', out]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.trimEnd().split('\n')).toHaveLength(1);
    const result = JSON.parse(stdout) as SegmentJson;
    expect(Object.keys(result)).toEqual(['width', 'height', 'masks', 'timings']);
    expect([result.width, result.height]).toEqual([150, 100]);
    expect(result.masks).toHaveLength(3);

    const refIou = f32(POINT_CASE!.iou);
    const refMasks = u8(POINT_CASE!.masks);
    result.masks.forEach((m, i) => {
      expect(Object.keys(m)).toEqual(['score', 'box', 'area', 'rle']);
      expect(m.score).toBeCloseTo(refIou[i], 4);
      expect(m.rle.size).toEqual([100, 150]);
      const decoded = decodeRLE(m.rle);
      expect(mismatches(decoded, refMasks.subarray(i * 15000, (i + 1) * 15000))).toBe(0);
      expect(m.area).toBe(decoded.reduce((s, v) => s + v, 0));
    });
    expect((await stat(logits)).size).toBe(3 * 64 * 64 * 4);
    const meta = await sharp(out).metadata();
    expect([meta.width, meta.height]).toEqual([150, 100]);
  });

  it('--mask-input takes back what --save-logits wrote, and rejects other sizes', async () => {
    const masksOf = (stdout: string) => (JSON.parse(stdout) as SegmentJson).masks;
    // the reference's point + mask-input case
    const MASK_CASE = cases.cases.find((c) => c.name === 'mask_point' && c.image === 'wide.png')!;
    const [[px, py]] = MASK_CASE.points![0];
    const fixture = await run(['segment', IMAGE, '--model', MODEL, '--point', `${px},${py},1`, '--mask-input', path.join(FIXTURES, MASK_CASE.maskInput!), '--json']);
    expect([fixture.code, fixture.stderr]).toEqual([0, '']);
    const [only] = masksOf(fixture.stdout);
    expect(mismatches(decodeRLE(only.rle), u8(MASK_CASE.masks))).toBe(0);

    // what --save-logits wrote goes back in (and changes the answer to the point alone)
    const logits = path.join(dir, 'one.f32');
    expect((await run(['segment', IMAGE, '--model', MODEL, '--box', '30,20,120,85', '--save-logits', logits])).code).toBe(0);
    const fed = await run(['segment', IMAGE, '--model', MODEL, '--point', '75,50,1', '--mask-input', logits, '--json']);
    const alone = await run(['segment', IMAGE, '--model', MODEL, '--point', '75,50,1', '--json']);
    expect([fed.code, alone.code]).toEqual([0, 0]);
    expect(masksOf(fed.stdout)).toHaveLength(1);
    expect(masksOf(fed.stdout)[0].rle).not.toEqual(masksOf(alone.stdout)[0].rle);

    const three = path.join(dir, 'three.f32');
    await run(['segment', IMAGE, '--model', MODEL, '--box', '30,20,120,85', '--multimask', '--save-logits', three]);
    expect(await run(['segment', IMAGE, '--model', MODEL, '--mask-input', three])).toEqual({
      code: 1,
      stdout: '',
      stderr: `omniseg: --mask-input file ${three} must hold exactly 4096 float32 values (16384 bytes) but has 49152 bytes\n`,
    });
  });

  it('encode writes [C, E, E] float32 and prints the contract JSON', async () => {
    const file = path.join(dir, 'emb.f32');
    const { code, stdout } = await run(['encode', IMAGE, '--model', MODEL, '--save-embedding', file, '--json']);
    expect(code).toBe(0);
    const json = JSON.parse(stdout) as Record<string, unknown>;
    expect(Object.keys(json)).toEqual(['width', 'height', 'embeddingShape', 'timings']);
    expect(json).toMatchObject({ width: 150, height: 100, embeddingShape: [32, 16, 16] });
    const embedding = await readF32(file);
    const reference = f32('wide.embedding.f32');
    expect(embedding.length).toBe(reference.length);
    let maxDiff = 0;
    for (let i = 0; i < embedding.length; i++) maxDiff = Math.max(maxDiff, Math.abs(embedding[i] - reference[i]));
    expect(maxDiff).toBeLessThan(1e-4);
  });

  it('bench --json prints the three medians, the device and the precision', async () => {
    const { code, stdout } = await run(['bench', '--model', MODEL, '--image', IMAGE, '--runs', '2', '--json']);
    expect(code).toBe(0);
    const { device, precision, cpuMatmul, ...timings } = JSON.parse(stdout) as Record<string, number | string>;
    expect(Object.keys(JSON.parse(stdout) as object)).toEqual(['encodeMs', 'decodeMs', 'peakRssMB', 'device', 'precision', 'cpuMatmul']);
    for (const v of Object.values(timings)) expect(v).toBeGreaterThan(0);
    expect(['cpu', 'cuda']).toContain(device);
    expect(['fp32', 'fp16', 'bf16']).toContain(precision);
    expect(['bf16x3', 'fp32']).toContain(cpuMatmul);
  });

  it('--device cpu runs on the CPU in fp32, whatever --precision asks', async () => {
    const bench = await run(['bench', '--model', MODEL, '--image', IMAGE, '--runs', '1', '--device', 'cpu', '--precision', 'fp16', '--json']);
    expect([bench.code, bench.stderr]).toEqual([0, '']);
    expect(JSON.parse(bench.stdout)).toMatchObject({ device: 'cpu', precision: 'fp32' });
    const text = await run(['bench', '--model', MODEL, '--image', IMAGE, '--runs', '1', '--device', 'cpu']);
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n')[0]).toMatch(/\(150x100\), cpu fp32, \d+ threads, 1 runs \(median\)$/);

    const args = ['segment', IMAGE, '--model', MODEL, '--point', '75,50,1', '--multimask', '--json', '--cpu-matmul', 'fp32'];
    const cpu = await run([...args, '--device', 'cpu']);
    expect([cpu.code, cpu.stderr]).toEqual([0, '']);
    const masks = (stdout: string) => (JSON.parse(stdout) as SegmentJson).masks;
    const refMasks = u8(POINT_CASE!.masks);
    expect(masks(cpu.stdout)).toHaveLength(3);
    masks(cpu.stdout).forEach((m, i) => {
      expect(mismatches(decodeRLE(m.rle), refMasks.subarray(i * 15000, (i + 1) * 15000))).toBe(0);
    });

    const file = path.join(dir, 'emb-cpu.f32');
    const encode = await run(['encode', IMAGE, '--model', MODEL, '--save-embedding', file, '--device', 'cpu']);
    expect([encode.code, encode.stderr]).toEqual([0, '']);
    expect((await stat(file)).size).toBe(32 * 16 * 16 * 4);
  });

  it('--scribble gives the masks of the clicks sampled along it', async () => {
    const withoutTimings = (stdout: string) => {
      const { timings: _timings, ...rest } = JSON.parse(stdout) as SegmentJson;
      return rest;
    };
    // 70 px on a 150-px-wide image → 8 clicks 10 px apart (see scribbleToPoints); then a negative flick.
    const scribble = await run([
      'segment', IMAGE, '--model', MODEL, '--multimask', '--json',
      '--scribble', '10,40;80,40:1', '--scribble', '120,90;126,98:0',
    ]);
    const clicks = [10, 20, 30, 40, 50, 60, 70, 80].flatMap((x) => ['--point', `${x},40,1`]);
    const points = await run([
      'segment', IMAGE, '--model', MODEL, '--multimask', '--json',
      ...clicks, '--point', '120,90,0', '--point', '123,94,0', '--point', '126,98,0',
    ]);
    expect([scribble.code, scribble.stderr]).toEqual([0, '']);
    expect(points.code).toBe(0);
    expect(withoutTimings(scribble.stdout)).toEqual(withoutTimings(points.stdout));
    const endpoints = await run(['segment', IMAGE, '--model', MODEL, '--multimask', '--json', '--point', '10,40,1', '--point', '80,40,1']);
    expect(withoutTimings(endpoints.stdout)).not.toEqual(withoutTimings(scribble.stdout));
  });

  it('a scribble outside the image is a one-line RangeError, exit code 1', async () => {
    expect(await run(['segment', IMAGE, '--model', MODEL, '--scribble', '10,10;10,101:1'])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'omniseg: Expected a number between 0 and 100 for prompt.scribbles[0].path[1][1] but received 101 of type number\n',
    });
  });

  it('a point outside the image is a one-line RangeError, exit code 1', async () => {
    expect(await run(['segment', IMAGE, '--model', MODEL, '--point', '151,10,1'])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'omniseg: Expected a number between 0 and 150 for prompt.points[0].x but received 151 of type number\n',
    });
  });
});

// Where CUDA is unusable (no CUDA build, or no GPU), --device cuda is a one-line error, exit 1.
// Needs neither build: the check comes before any model is loaded.
describe.skipIf(cudaStatus().available)('--device cuda without a usable CUDA backend', () => {
  it('encode, segment and bench fail in one line naming the CUDA backend, no stack', async () => {
    const commands = [
      ['encode', IMAGE, '--model', MODEL, '--save-embedding', path.join(tmpdir(), 'omniseg-never-written.f32')],
      ['segment', IMAGE, '--model', MODEL, '--point', '75,50,1'],
      ['bench', '--model', MODEL, '--image', IMAGE, '--runs', '1'],
    ];
    for (const args of commands) {
      for (const precision of [[], ['--precision', 'fp16']]) {
        const { code, stdout, stderr } = await run([...args, '--device', 'cuda', ...precision]);
        expect(code).toBe(1);
        expect(stdout).toBe('');
        expect(stderr).toMatch(/^omniseg: The CUDA backend is not available: \S[^\n]*\n$/);
        expect(stderr).not.toMatch(/\bat /);
      }
    }
  });
});
