// Frame streams on the real addon with the tiny random checkpoint, over frames synthesised from a
// photograph (test/helpers/frames.ts): an object moving a few pixels per frame. The random
// model's masks mean nothing, so this checks the mechanics — order, count, what `follow` feeds
// the decoder, the files the CLI writes — not tracking quality.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { listFrames } from '../lib/cli/segment-frames.js';
import { Segmenter, type FrameResult } from '../lib/index.js';
import { run } from './helpers/cli.js';
import { MODEL_DIR } from './helpers/fixtures.js';
import { native } from '../lib/native.js';
import { HAVE_SHARED_IMAGES, writeSyntheticFrames, type SyntheticFrames } from './helpers/frames.js';

const COUNT = 12;

describe.skipIf(!HAVE_SHARED_IMAGES)('frame streams on the sam-tiny checkpoint', () => {
  let dir: string;
  let frames: SyntheticFrames;
  let segmenter: Segmenter;
  /** A click on the object in frame 0. */
  let click: { points: Array<{ x: number; y: number; label: 1 }> };
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'omniseg-frames-'));
    frames = await writeSyntheticFrames(path.join(dir, 'frames'), COUNT);
    const [x, y] = frames.offsets[0];
    click = { points: [{ x: x + frames.object[0] / 2, y: y + frames.object[1] / 2, label: 1 }] };
    segmenter = await Segmenter.load({ model: MODEL_DIR, threads: 2 });
  });
  afterAll(async () => {
    segmenter?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  async function collect(stream: AsyncIterable<FrameResult>): Promise<FrameResult[]> {
    const out: FrameResult[] = [];
    for await (const r of stream) out.push(r);
    return out;
  }

  it('the synthetic frames: the object moves between frames over a fixed background', async () => {
    expect(frames.files).toHaveLength(COUNT);
    const first = await sharp(frames.files[0]).raw().toBuffer({ resolveWithObject: true });
    expect([first.info.width, first.info.height]).toEqual([frames.width, frames.height]);
    const second = await sharp(frames.files[1]).raw().toBuffer();
    expect(Buffer.compare(first.data, second)).not.toBe(0);
    expect(frames.offsets[1][0] - frames.offsets[0][0]).toBe(3);
  });

  it('one result per frame in order, each the same as segmenting that frame alone', async () => {
    const results = await collect(segmenter.segmentStream(frames.files, click, { multimask: true }));
    expect(results.map((r) => r.index)).toEqual([...Array(COUNT).keys()]);
    for (const i of [0, 5, COUNT - 1]) {
      const alone = await segmenter.segment(frames.files[i], click, { multimask: true });
      expect(results[i].masks.map((m) => m.toRLE())).toEqual(alone.masks.map((m) => m.toRLE()));
      expect(results[i].masks.map((m) => m.score)).toEqual(alone.masks.map((m) => m.score));
    }
    expect(results.every((r) => r.width === frames.width && r.height === frames.height)).toBe(true);
  });

  it('a mask prompt with dense scribbles: converted once for the stream, each frame as segment() alone gives; frame prompts keep the mask', async () => {
    const { width, height } = frames;
    const data = new Uint8Array(width * height);
    for (let y = 5; y < height / 2; y++) data.fill(1, y * width + 5, y * width + Math.floor(width / 2));
    const prompt = {
      mask: { data, width, height },
      scribbles: [
        { path: [[2, height - 3], [width - 3, height - 3]] as Array<[number, number]>, label: 1 as const, dense: true },
        { path: [[width - 10, 4], [width - 4, 8]] as Array<[number, number]>, label: 0 as const },
      ],
      ...click,
    };
    const coverage = vi.spyOn(native(), 'maskCoverageAsync');
    const results = await collect(segmenter.segmentStream(frames.files.slice(0, 4), prompt, { multimask: true }));
    expect(coverage).toHaveBeenCalledTimes(1); // (once per frame before)
    coverage.mockRestore();
    for (const [i, r] of results.entries()) {
      const alone = await segmenter.segment(frames.files[i], prompt, { multimask: true });
      expect(r.masks.map((m) => m.toRLE())).toEqual(alone.masks.map((m) => m.toRLE()));
      expect(r.masks.map((m) => m.score)).toEqual(alone.masks.map((m) => m.score));
      expect(Array.from(r.prompt.mask!.data)).toEqual(Array.from(data));
      expect(r.prompt.scribbles).toEqual(prompt.scribbles);
    }
    expect(results[0].prompt.mask!.data).not.toBe(results[1].prompt.mask!.data);
    expect(results[0].prompt.mask!.data).not.toBe(data);
  });

  it('a maskInput prompt with a negative dense scribble (clicks only): each frame as segment() alone gives', async () => {
    const maskInput = new Float32Array(segmenter.config.lowResSize ** 2).fill(-2);
    maskInput.fill(4, 0, maskInput.length / 2);
    const prompt = { maskInput, scribbles: [{ path: [[2, 2], [20, 10]] as Array<[number, number]>, label: 0 as const, dense: true }], ...click };
    const results = await collect(segmenter.segmentStream(frames.files.slice(0, 2), prompt));
    for (const [i, r] of results.entries()) {
      const alone = await segmenter.segment(frames.files[i], prompt);
      expect(r.masks.map((m) => [m.score, m.toRLE()])).toEqual(alone.masks.map((m) => [m.score, m.toRLE()]));
    }
  });

  it('follow: each frame is decoded from the previous best mask, as segment() with that box and logits gives', async () => {
    const source = Readable.from(frames.files); // a Readable in object mode
    const results = await collect(segmenter.segmentStream(source, click, { follow: true, maxFramesInFlight: 2 }));
    expect(results).toHaveLength(COUNT);
    expect(results[0].prompt).toEqual(click);
    for (let k = 1; k < COUNT; k++) {
      const before = results[k - 1].best;
      const expected = before.area === 0 ? click : { boxes: [before.box], maskInput: before.lowResLogits };
      expect(results[k].prompt).toEqual(expected);
    }
    // Frame 4 again, by hand: the same prompt on the same frame gives the same masks.
    const k = 4;
    const again = await segmenter.segment(frames.files[k], results[k].prompt);
    expect(again.masks[0].toRLE()).toEqual(results[k].best.toRLE());
    expect(again.masks[0].lowResLogits).toEqual(results[k].best.lowResLogits);
  });

  it('listFrames: a directory or a glob, in natural order', async () => {
    const frameDir = path.dirname(frames.files[0]);
    expect(await listFrames(frameDir)).toEqual(frames.files);
    expect(await listFrames(path.join(frameDir, 'frame_*.png'))).toEqual(frames.files);
    expect(await listFrames(path.join(frameDir, 'frame_?.png'))).toEqual(frames.files.slice(0, 9));
    expect(await listFrames(path.join(frameDir, 'frame_1[0-2].png'))).toEqual(frames.files.slice(9));
    await expect(listFrames(path.join(frameDir, '*.jpg'))).rejects.toThrow(
      new Error(`No frames found in ${path.join(frameDir, '*.jpg')}`),
    );
  });

  it('CLI segment-frames writes one mask PNG per frame and prints frames/s', async () => {
    const outDir = path.join(dir, 'masks');
    const args = ['segment-frames', path.dirname(frames.files[0]), '--model', MODEL_DIR, '--threads', '2'];
    const { x, y } = click.points[0];
    const { code, stdout, stderr } = await run([...args, '--point', `${x},${y},1`, '--follow', '--out-dir', outDir]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const names = frames.files.map((f) => path.basename(f));
    expect((await readdir(outDir)).sort()).toEqual([...names].sort());
    const lines = stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(COUNT + 1);
    lines.slice(0, COUNT).forEach((line, i) => {
      expect(line.startsWith(`${frames.files[i]} -> ${path.join(outDir, names[i])}  score `)).toBe(true);
    });
    expect(lines[COUNT]).toMatch(new RegExp(`^${COUNT} frames in \\d+\\.\\d\\d s: \\d+\\.\\d\\d frames/s$`));
    // Each mask: the frame's size, one grey channel, 0 and 255 only.
    for (const file of [names[0], names[COUNT - 1]]) {
      const meta = await sharp(path.join(outDir, file)).metadata();
      expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['png', frames.width, frames.height, 1]);
      const data = await sharp(path.join(outDir, file)).extractChannel(0).raw().toBuffer();
      expect(data.every((v) => v === 0 || v === 255)).toBe(true);
    }
  });

  it('CLI segment-frames --json: the masks are those of the API', async () => {
    const outDir = path.join(dir, 'masks-json');
    const glob = path.join(path.dirname(frames.files[0]), 'frame_*.png');
    const { code, stdout } = await run(['segment-frames', glob, '--model', MODEL_DIR, '--box', '20,15,80,70', '--out-dir', outDir, '--json']);
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as { frames: number; seconds: number; framesPerSecond: number; masks: Array<Record<string, unknown>> };
    expect(out.frames).toBe(COUNT);
    expect(out.framesPerSecond).toBeGreaterThan(0);
    const api = await collect(segmenter.segmentStream(frames.files, { boxes: [[20, 15, 80, 70]] }));
    expect(out.masks).toEqual(
      api.map((r, i) => ({
        frame: frames.files[i],
        mask: path.join(outDir, path.basename(frames.files[i])),
        score: r.best.score,
        area: r.best.area,
        box: r.best.box,
      })),
    );
    const written = await sharp(path.join(outDir, path.basename(frames.files[3]))).extractChannel(0).raw().toBuffer();
    expect(written.equals(Buffer.from(api[3].best.data.map((v) => v * 255)))).toBe(true);
  });

  it('CLI segment-frames errors: usage (exit 2) and runtime (exit 1), one line each', async () => {
    const frameDir = path.dirname(frames.files[0]);
    const outDir = path.join(dir, 'unused');
    expect(await run(['segment-frames', frameDir, '--model', MODEL_DIR, '--out-dir', outDir])).toEqual({
      code: 2,
      stdout: '',
      stderr: 'omniseg: Missing prompt: give at least one --point, --scribble or --box\n',
    });
    expect(await run(['segment-frames', frameDir, '--model', MODEL_DIR, '--point', '1,1,1'])).toEqual({
      code: 2,
      stdout: '',
      stderr: 'omniseg: Missing required option --out-dir\n',
    });
    expect((await run(['segment-frames', '--model', MODEL_DIR, '--point', '1,1,1', '--out-dir', outDir])).code).toBe(2);
    const missing = path.join(dir, 'nothing-here');
    expect(await run(['segment-frames', missing, '--model', MODEL_DIR, '--point', '1,1,1', '--out-dir', outDir])).toEqual({
      code: 1,
      stdout: '',
      stderr: `omniseg: Frames not found: ${missing} is neither a directory, a file nor a glob\n`,
    });
    // Writing the masks next to PNG frames of the same names would overwrite them.
    const clash = await run(['segment-frames', frameDir, '--model', MODEL_DIR, '--point', '1,1,1', '--out-dir', frameDir]);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toBe(`omniseg: The mask of ${frames.files[0]} would overwrite a frame: choose another --out-dir\n`);
    // A point outside the frames: the library's error, naming the frame.
    const outside = await run(['segment-frames', frameDir, '--model', MODEL_DIR, '--point', '999,1,1', '--out-dir', outDir]);
    expect(outside.code).toBe(1);
    expect(outside.stderr).toBe(
      `omniseg: frame 0: Expected a number between 0 and ${frames.width} for prompt.points[0].x but received 999 of type number\n`,
    );
  });
});
