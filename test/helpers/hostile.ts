// Shared body of the hostile-image tests (test/hostile-*.test.ts, one file per class of input):
// every case is refused with one clear Error — by decodeImage, encode, segment, session and
// segmentStream, and by the CLI (one line on stderr, no stack, exit code 1) — and the process
// and the Segmenter keep working afterwards.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, Segmenter } from '../../lib/index.js';
import { run } from './cli.js';
import { MODEL_DIR } from './fixtures.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(ROOT, 'dist', 'lib', 'cli.js');

export interface HostileCase {
  /** Names the case and its file (letters, digits, dashes). */
  name: string;
  /** The file's bytes. */
  bytes: () => Buffer | Promise<Buffer>;
  /**
   * What follows "Cannot decode image <file or 'buffer'>: " in the error; `kind` says which
   * (sharp words some messages "Input file ..." or "Input buffer ...").
   */
  reason: (kind: 'file' | 'buffer') => string | RegExp;
}

/** A valid 40 × 30 PNG. */
export function validPng(): Promise<Buffer> {
  return sharp({ create: { width: 40, height: 30, channels: 3, background: '#4080c0' } }).png().toBuffer();
}

/** Deterministic pseudo-random bytes. */
export function noise(length: number, seed = 1): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A regular expression for the whole message "Cannot decode image <label>: <reason>". */
function messageFor(label: string, reason: string | RegExp): RegExp {
  const body = typeof reason === 'string' ? escape(reason) : reason.source;
  return new RegExp(`^(frame \\d+: )?Cannot decode image ${escape(label)}: ${body}$`);
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

/** Defines the tests of one class of hostile input. */
export function hostileImageSuite(title: string, cases: HostileCase[]): void {
  describe(title, () => {
    let dir: string;
    let segmenter: Segmenter;
    const files = new Map<string, { file: string; bytes: Buffer }>();
    const click = { points: [{ x: 5, y: 5, label: 1 as const }] };

    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'omniseg-hostile-'));
      for (const c of cases) {
        const bytes = await c.bytes();
        const file = path.join(dir, `${c.name}.png`);
        await writeFile(file, bytes);
        files.set(c.name, { file, bytes });
      }
      segmenter = await Segmenter.load({ model: MODEL_DIR, threads: 1 });
    });
    afterAll(async () => {
      segmenter?.dispose();
      await rm(dir, { recursive: true, force: true });
    });

    for (const c of cases) {
      it(`${c.name}: a clear Error from decodeImage, encode, segment, session and segmentStream`, async () => {
        const { file, bytes } = files.get(c.name)!;
        const fromFile = messageFor(file, c.reason('file'));
        const fromBuffer = messageFor('buffer', c.reason('buffer'));
        const errors: Array<[Error, RegExp]> = [
          [await rejection(decodeImage(file)), fromFile],
          [await rejection(decodeImage(bytes)), fromBuffer],
          [await rejection(segmenter.encode(file)), fromFile],
          [await rejection(segmenter.encode(bytes)), fromBuffer],
          [await rejection(segmenter.segment(file, click)), fromFile],
          [await rejection(segmenter.session(bytes)), fromBuffer],
        ];
        // In a stream: the frames before it are segmented, then the stream rejects at it.
        const seen: number[] = [];
        const streamed = await rejection(
          (async () => {
            for await (const r of segmenter.segmentStream([await validPng(), file, await validPng()], click)) seen.push(r.index);
          })(),
        );
        expect(seen).toEqual([0]);
        // Frames decode concurrently, and libvips keeps one error buffer for the process: the
        // reason can come out vaguer ("Warning treated as error due to failOn setting") when
        // another decode runs at the same time. The file is named in any case.
        errors.push([streamed, messageFor(file, /\S.*/)]);
        expect(streamed.message.startsWith(`frame 1: Cannot decode image ${file}: `)).toBe(true);
        for (const [error, expected] of errors) {
          expect(error).toBeInstanceOf(Error);
          expect(error.name).toBe('Error');
          expect(error.message).toMatch(expected);
          expect(error.message).not.toContain('\n');
        }
        // The Segmenter is unharmed.
        const { masks } = await segmenter.segment(await validPng(), click);
        expect(masks[0].width).toBe(40);
      });

      it(`${c.name}: the CLI prints one line and exits with code 1 (segment, encode, segment-frames)`, async () => {
        const { file } = files.get(c.name)!;
        const line = new RegExp(`^omniseg: ${messageFor(file, c.reason('file')).source.slice(1, -1)}\\n$`);
        const segment = await run(['segment', file, '--model', MODEL_DIR, '--point', '5,5,1']);
        expect(segment).toMatchObject({ code: 1, stdout: '' });
        expect(segment.stderr).toMatch(line);
        const encode = await run(['encode', file, '--model', MODEL_DIR, '--save-embedding', path.join(dir, 'e.f32')]);
        expect(encode).toMatchObject({ code: 1, stdout: '' });
        expect(encode.stderr).toMatch(line);
        // segment-frames: a directory holding a valid frame (0.png) and this file (1.png).
        const frames = path.join(dir, `frames-${c.name}`);
        await mkdir(frames, { recursive: true });
        await writeFile(path.join(frames, '0.png'), await validPng());
        const bad = path.join(frames, '1.png');
        await writeFile(bad, files.get(c.name)!.bytes);
        const stream = await run(['segment-frames', frames, '--model', MODEL_DIR, '--point', '5,5,1', '--out-dir', path.join(dir, `masks-${c.name}`)]);
        expect(stream.code).toBe(1);
        // (Concurrent decodes: the reason may be vaguer, as in the stream test above.)
        expect(stream.stderr).toMatch(new RegExp(`^omniseg: ${messageFor(bad, /\S.*/).source.slice(1, -1)}\\n$`));
      });
    }

    it('the omniseg executable: one line on stderr, no stack trace, exit code 1', () => {
      expect(existsSync(CLI), `${CLI} is missing: run "npm run build:ts"`).toBe(true);
      const { file } = files.get(cases[0].name)!;
      const child = spawnSync(process.execPath, [CLI, 'segment', file, '--model', MODEL_DIR, '--point', '5,5,1'], {
        encoding: 'utf8',
        timeout: 20_000,
        env: { ...process.env, OMNISEG_DEBUG: '' },
      });
      expect(child.signal).toBeNull();
      expect(child.status).toBe(1);
      expect(child.stdout).toBe('');
      expect(child.stderr).toMatch(new RegExp(`^omniseg: ${messageFor(file, cases[0].reason('file')).source.slice(1, -1)}\\n$`));
      expect(child.stderr).not.toMatch(/^\s+at /m);
    });
  });
}
