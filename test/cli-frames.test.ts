// omniseg segment-frames without the addon: argument parsing, help, and how <frames> is listed
// (directory, glob, file). The command end to end is in test/stream-sam.test.ts.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { helpText } from '../lib/cli/help.js';
import { listFrames } from '../lib/cli/segment-frames.js';
import { UsageError } from '../lib/cli/values.js';
import { expectUsage, parse, run } from './helpers/cli.js';


describe('segment-frames arguments', () => {
  it('parses every flag', () => {
    expect(
      parse(
        'segment-frames clips/*.png --model m --point 10,20,1 --point 3,4,0 --scribble 1,2;3,4:1 --box 1,2,3,4 ' +
          '--follow --multimask --out-dir masks --json --threads 2 --device cpu --precision fp16',
      ),
    ).toEqual({
      command: 'segment-frames',
      frames: 'clips/*.png',
      model: 'm',
      device: 'cpu',
      precision: 'fp16',
      threads: 2,
      points: [
        { x: 10, y: 20, label: 1 },
        { x: 3, y: 4, label: 0 },
      ],
      scribbles: [{ path: [[1, 2], [3, 4]], label: 1 }],
      box: [1, 2, 3, 4],
      follow: true,
      multimask: true,
      outDir: 'masks',
      json: true,
    });
  });

  it('defaults', () => {
    expect(parse('segment-frames d --model m --box 1,2,3,4 --out-dir o')).toEqual({
      command: 'segment-frames',
      frames: 'd',
      model: 'm',
      device: 'auto',
      precision: 'fp32',
      points: [],
      scribbles: [],
      box: [1, 2, 3, 4],
      follow: false,
      multimask: false,
      outDir: 'o',
      json: false,
    });
  });

  it('usage errors', () => {
    expectUsage('segment-frames d --model m --out-dir o', 'Missing prompt: give at least one --point, --scribble or --box');
    expectUsage('segment-frames d --model m --point 1,2,1', 'Missing required option --out-dir');
    expectUsage('segment-frames d --point 1,2,1 --out-dir o', 'Missing required option --model');
    expectUsage('segment-frames --model m --point 1,2,1 --out-dir o', 'Missing the <frames> argument; see omniseg segment-frames --help');
    // An unquoted glob expanded by the shell arrives as several arguments.
    expectUsage('segment-frames a.png b.png --model m --point 1,2,1 --out-dir o', 'Unexpected argument "b.png" for omniseg segment-frames');
    expectUsage(
      'segment-frames d --model m --point 1,2,1 --out-dir o --mask-input x.f32',
      'Unknown option --mask-input for omniseg segment-frames; see omniseg segment-frames --help',
    );
    expectUsage(
      'segment-frames d --model m --point 1,2 --out-dir o',
      'Expected x,y,label (numbers, label 0 or 1) for --point but received "1,2" of type string',
    );
  });

  it('help', async () => {
    expect(await run(['segment-frames', '--help'])).toEqual({ code: 0, stdout: helpText('segment-frames'), stderr: '' });
    expect(helpText()).toContain('segment-frames');
    expect(helpText('segment-frames')).toContain('--out-dir <dir>');
    expect(helpText('segment-frames')).toContain('--follow');
  });
});

describe('listFrames', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'omniseg-list-'));
    for (const name of ['f10.png', 'f2.png', 'f1.PNG', 'f3.jpg', 'notes.txt', 'g1.png']) await writeFile(path.join(dir, name), '');
    await mkdir(path.join(dir, 'sub.png'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const at = (...names: string[]) => names.map((n) => path.join(dir, n));

  it('a directory: its image files by extension, in natural order, no subdirectories', async () => {
    expect(await listFrames(dir)).toEqual(at('f1.PNG', 'f2.png', 'f3.jpg', 'f10.png', 'g1.png'));
  });

  it('a glob in the file name: *, ? and [...] (and [!...])', async () => {
    expect(await listFrames(path.join(dir, 'f*.png'))).toEqual(at('f2.png', 'f10.png'));
    expect(await listFrames(path.join(dir, 'f?.*'))).toEqual(at('f1.PNG', 'f2.png', 'f3.jpg'));
    expect(await listFrames(path.join(dir, '[fg]1*'))).toEqual(at('f1.PNG', 'f10.png', 'g1.png'));
    expect(await listFrames(path.join(dir, '[!f]*'))).toEqual(at('g1.png', 'notes.txt'));
  });

  it('one file', async () => {
    expect(await listFrames(path.join(dir, 'f2.png'))).toEqual(at('f2.png'));
  });

  it('errors', async () => {
    await expect(listFrames(path.join(dir, 'x*.png'))).rejects.toThrow(new Error(`No frames found in ${path.join(dir, 'x*.png')}`));
    await expect(listFrames(path.join(dir, '*', 'a.png'))).rejects.toThrow(
      new Error(`Cannot read frames ${path.join(dir, '*', 'a.png')}: wildcards are allowed in the file name only`),
    );
    // a class the RegExp refuses is a usage error naming the argument (not V8's message, exit 1)
    const reversed = path.join(dir, '[z-a]*.png');
    await expect(listFrames(reversed)).rejects.toBeInstanceOf(UsageError);
    await expect(listFrames(reversed)).rejects.toThrow(`Cannot read frames ${reversed}: invalid character class in the glob [z-a]*.png`);
    const missing = path.join(dir, 'missing');
    await expect(listFrames(missing)).rejects.toThrow(new Error(`Frames not found: ${missing} is neither a directory, a file nor a glob`));
    await expect(listFrames(path.join(dir, 'nodir', '*.png'))).rejects.toThrow(/^Cannot read frames .*nodir.*: ENOENT/);
    // a path that exists but cannot be looked at says why (it read as "not found")
    const loop = path.join(dir, 'loop');
    await symlink(loop, loop);
    await expect(listFrames(loop)).rejects.toThrow(/^Cannot read frames .*loop: ELOOP/);
  });
});
