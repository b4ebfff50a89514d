// runCli: exit codes, one-line errors, help, info, and the CLI's file helpers. Nothing here
// needs the native addon.
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { lstat, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { median } from '../lib/cli/format.js';
import { helpText } from '../lib/cli/help.js';
import { concatFloat32, readFloat32File, WholeFile, writeFloat32File } from '../lib/cli/io.js';
import { run } from './helpers/cli.js';
import { onClosedPipe } from '../lib/cli/main.js';
import { CPU_MATMUL_BF16X3 } from './helpers/fixtures.js';
import { maskOutline } from '../lib/cli/overlay.js';
import { packageVersion } from '../lib/version.js';


let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'omniseg-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('runCli', () => {
  it('--help prints the overview, <command> --help the command help', async () => {
    expect(await run(['--help'])).toEqual({ code: 0, stdout: helpText(), stderr: '' });
    expect(await run(['segment', '--help'])).toEqual({ code: 0, stdout: helpText('segment'), stderr: '' });
    expect(helpText('segment')).toContain('--mask-input <file>');
  });

  it('--version prints the package version', async () => {
    expect(await run(['--version'])).toEqual({ code: 0, stdout: `${packageVersion()}\n`, stderr: '' });
    expect(packageVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('usage errors: one line on stderr, exit code 2', async () => {
    expect(await run(['info', '--bogus'])).toEqual({
      code: 2,
      stdout: '',
      stderr: 'omniseg: Unknown option --bogus for omniseg info; see omniseg info --help\n',
    });
    expect((await run([])).code).toBe(2);
  });

  it('refuses an output that is one of the inputs or another output, and an overlay sharp cannot write, before any work', async () => {
    const image = path.join(dir, 'in.png');
    const usage = (line: string) => ({ code: 2, stdout: '', stderr: `omniseg: ${line}\n` });
    // (each of these replaced the file the run was reading: the image with the overlay or the embedding)
    expect(await run(['segment', image, '--model', 'm', '--point', '1,1,1', '--out', image])).toEqual(
      usage(`--out ${image} is also <image>: it would be overwritten; write elsewhere`),
    );
    expect(await run(['encode', image, '--model', 'm', '--save-embedding', path.relative(process.cwd(), image)])).toEqual(
      usage(`--save-embedding ${path.relative(process.cwd(), image)} is also <image>: it would be overwritten; write elsewhere`),
    );
    const logits = path.join(dir, 'l.f32');
    expect(await run(['heatmap', image, '--model', 'c', '--text', 'a', '--save', logits, '--save-f32', logits])).toEqual(
      usage(`--save-f32 ${logits} is also --save: it would be overwritten; write elsewhere`),
    );
    expect(await run(['segment', image, '--model', 'm', '--point', '1,1,1', '--out', path.join(dir, 'o.txt')])).toEqual(
      usage(`--out ${path.join(dir, 'o.txt')}: the overlay is written as an image, by its extension: one of .png, .jpg, .jpeg, .webp, .tif, .tiff, .avif, .gif`),
    );
    // --mask-input and --save-logits may be one file (a loop feeding each round's logits to the next),
    // however its path is written
    await writeFile(logits, Buffer.alloc(0));
    const relative = path.relative(process.cwd(), logits);
    const loop = await run(['segment', image, '--model', 'm', '--point', '1,1,1', '--mask-input', logits, '--save-logits', `./${relative}`]);
    expect(loop.stderr).not.toMatch(/overwritten/);
  });

  it('refuses a missing output directory and a missing late input by option, before loading a model', async () => {
    const image = path.join(dir, 'in.png');
    await writeFile(image, 'x'); // (only looked at by name before the model loads)
    const out = path.join(dir, 'missing', 'o.png');
    expect(await run(['segment', image, '--model', 'no-such-model', '--point', '1,1,1', '--out', out])).toEqual({
      code: 1,
      stdout: '',
      stderr: `omniseg: Cannot write --out ${out}: ${path.join(dir, 'missing')} is not an existing directory\n`,
    });
    expect(await run(['heatmap', image, '--model', 'no-such-model', '--ref-image', path.join(dir, 'nope.png')])).toEqual({
      code: 1,
      stdout: '',
      stderr: `omniseg: Cannot read --ref-image ${path.join(dir, 'nope.png')}: no such file\n`,
    });
    expect((await run(['heatmap', image, '--model', 'no-such-model', '--ref-image', image, '--ref-mask', dir])).stderr).toBe(
      `omniseg: Cannot read --ref-mask ${dir}: a directory\n`,
    );
    // a pipe or a device is read as a file (<(echo dog), /dev/stdin): past the check, to the model
    const piped = await run(['segment', image, '--model', 'no-such-model', '--referrer', 'c', '--text', 'a', '--vocabulary-file', '/dev/null']);
    expect(piped.stderr).not.toMatch(/Cannot read --vocabulary-file/);
  });

  it('a reader that closes the pipe early (| head) ends the run quietly, with no stack trace', async () => {
    const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'lib', 'cli.js');
    const child = spawn(process.execPath, [cli, 'help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // (before the child has written anything: its writes fail with EPIPE)
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  });

  it('a closed pipe ends a command quietly, but not serve (it goes on without its log reader)', () => {
    const exits: number[] = [];
    const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    for (const command of ['segment', 'serve']) {
      const stream = new EventEmitter();
      onClosedPipe(stream, command, (code) => exits.push(code));
      stream.emit('error', epipe);
    }
    expect(exits).toEqual([0]);
    const stream = new EventEmitter();
    onClosedPipe(stream, 'segment', (code) => exits.push(code));
    expect(() => stream.emit('error', Object.assign(new Error('disk full'), { code: 'ENOSPC' }))).toThrow('disk full');
  });

  it('runtime errors: one line on stderr, exit code 1, no stack', async () => {
    const missing = path.join(dir, 'missing.png');
    expect(await run(['segment', missing, '--model', dir, '--point', '1,2,1'])).toEqual({
      code: 1,
      stdout: '',
      stderr: `omniseg: Image file not found: ${missing}\n`,
    });
  });

  it('OMNISEG_DEBUG=1 adds the stack', async () => {
    const missing = path.join(dir, 'missing.png');
    const { code, stderr } = await run(['segment', missing, '--model', dir, '--point', '1,2,1'], { OMNISEG_DEBUG: '1' });
    expect(code).toBe(1);
    const lines = stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(`omniseg: Image file not found: ${missing}`);
    expect(lines[1]).toBe(`Error: Image file not found: ${missing}`);
    expect(lines[2]).toMatch(/^ {4}at /);
  });

  it('info --json has the contract shape', async () => {
    const { code, stdout } = await run(['info', '--json']);
    expect(code).toBe(0);
    expect(stdout.endsWith('\n')).toBe(true);
    const info = JSON.parse(stdout) as Record<string, unknown>;
    expect(info).toMatchObject({ version: packageVersion(), node: process.version, platform: process.platform });
    expect(info.hardwareThreads).toBeGreaterThanOrEqual(1);
    expect(info.backends).toMatchObject({
      cpu: { available: expect.any(Boolean) as boolean },
      cuda: { compiled: expect.any(Boolean) as boolean, available: expect.any(Boolean) as boolean,
        devices: expect.any(Array) as unknown[] },
    });
    const cuda = (info.backends as { cuda: { available: boolean; reason?: string } }).cuda;
    if (!cuda.available) expect(cuda.reason).toMatch(/\S/);  // unavailable always says why
    // amx: what cpuMatmul 'bf16x3' needs (the fixtures helper reads the CPU's amx_bf16 flag)
    const cpu = (info.backends as { cpu: { available: boolean; amx?: boolean } }).cpu;
    if (cpu.available) expect(cpu.amx).toBe(CPU_MATMUL_BF16X3 === 'bf16x3');
  });
});

describe('WholeFile', () => {
  it('takes the name only when committed; a discarded one leaves the file as it was and no temporary file', async () => {
    const sub = await mkdtemp(path.join(dir, 'whole-'));
    const file = path.join(sub, 'out.jsonl');
    await writeFile(file, 'old\n');
    const failed = await WholeFile.open(file);
    await failed.write('half\n');
    expect(await readFile(file, 'utf8')).toBe('old\n');
    await failed.discard();
    expect(await readdir(sub)).toEqual(['out.jsonl']);
    expect(await readFile(file, 'utf8')).toBe('old\n');
    const done = await WholeFile.open(file);
    await done.write('new\n');
    await done.commit();
    expect([await readdir(sub), await readFile(file, 'utf8')]).toEqual([['out.jsonl'], 'new\n']);
  });

  it('writes through a link to its target, and a file that is not a regular file (a pipe, a device) in place', async () => {
    const sub = await mkdtemp(path.join(dir, 'whole-'));
    const target = path.join(sub, 'real.jsonl');
    const link = path.join(sub, 'link.jsonl');
    await writeFile(target, 'old\n');
    await symlink(target, link);
    const viaLink = await WholeFile.open(link);
    await viaLink.write('new\n');
    await viaLink.commit();
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect(await readFile(target, 'utf8')).toBe('new\n');
    const device = await WholeFile.open('/dev/null'); // (a rename would have replaced it)
    await device.write('x');
    await device.commit();
    expect((await stat('/dev/null')).isCharacterDevice()).toBe(true);
  });
});

describe('float32 files', () => {
  it('round-trip little-endian float32', async () => {
    const file = path.join(dir, 'a.f32');
    const data = new Float32Array([1.5, -2, 3e-8, 65504]);
    await writeFloat32File(file, data);
    expect(await readFloat32File(file, 4, '--mask-input')).toEqual(data);
  });

  it('a file of the wrong size is a clear error', async () => {
    const file = path.join(dir, 'short.f32');
    await writeFile(file, Buffer.alloc(12));
    await expect(readFloat32File(file, 65536, '--mask-input')).rejects.toThrow(
      new Error(`--mask-input file ${file} must hold exactly 65536 float32 values (262144 bytes) but has 12 bytes`),
    );
  });

  it('a missing file', async () => {
    const file = path.join(dir, 'none.f32');
    await expect(readFloat32File(file, 4, '--mask-input')).rejects.toThrow(
      new Error(`Cannot read --mask-input file ${file}: no such file or directory`),
    );
  });

  it('concatFloat32 joins in order', () => {
    expect(concatFloat32([new Float32Array([1]), new Float32Array([2, 3])])).toEqual(new Float32Array([1, 2, 3]));
  });
});

describe('helpers', () => {
  it('median', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('maskOutline marks the inner border, not the image edge', () => {
    // 5 × 4 mask, columns 0..3 of rows 0..3 set.
    const mask = new Uint8Array(20);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) mask[y * 5 + x] = 1;
    const outline = maskOutline(mask, 5, 4, 1);
    // Only column 3 borders background (column 4); the image edges do not count.
    const expected = new Uint8Array(20);
    for (let y = 0; y < 4; y++) expected[y * 5 + 3] = 1;
    expect(outline).toEqual(expected);
    // Two pixels thick: columns 2 and 3.
    for (let y = 0; y < 4; y++) expected[y * 5 + 2] = 1;
    expect(maskOutline(mask, 5, 4, 2)).toEqual(expected);
  });
});
