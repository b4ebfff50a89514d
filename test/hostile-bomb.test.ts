// Hostile input, class 5: decompression bombs. A 30000 × 30000 single-colour PNG of about 110 KB
// (9 × 10⁸ pixels: 2.7 GB once decoded to RGB) and an SVG claiming the same size must be refused
// from their headers, before any pixel is decoded (limitInputPixels, default 268402689), with
// the process's peak RSS under 800 MB — through the API and through the CLI. Each runs in a
// child process (the compiled dist/lib: `npm run build:ts` first) whose peak RSS is its own.
// Measured: the PNG is 109 KB; peak RSS 79 MB for the API run (model loaded, both bombs through
// every entry point, 27 ms), 73–78 MB for the CLI runs.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createDeflate } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_DIR } from './helpers/fixtures.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = path.join(ROOT, 'dist', 'lib', 'index.js');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli.js');
const SIDE = 30000;
const PEAK_RSS_LIMIT_MB = 800;
const LIMIT = 268402689;

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 8 + data.length);
  return out;
}

/** A side × side PNG, 1-bit greyscale, every pixel black: the rows are deflated as a stream. */
async function pngBomb(side: number): Promise<Buffer> {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 0; // greyscale
  const row = Buffer.alloc(1 + Math.ceil(side / 8)); // filter byte 0, then zero bits
  const deflate = createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (b: Buffer) => parts.push(b));
  const done = new Promise((resolve, reject) => deflate.on('end', resolve).on('error', reject));
  for (let y = 0; y < side; y++) if (!deflate.write(row)) await new Promise((r) => deflate.once('drain', r));
  deflate.end();
  await done;
  const signature = Buffer.from('89504e470d0a1a0a', 'hex');
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', Buffer.concat(parts)), chunk('IEND', Buffer.alloc(0))]);
}

const refusal = (label: string) =>
  `Error: Cannot decode image ${label}: ${SIDE}x${SIDE} = ${SIDE * SIDE} pixels exceeds the limit of ${LIMIT} (limitInputPixels)`;

describe('decompression bombs', () => {
  let dir: string;
  let png: string;
  let svg: string;
  beforeAll(async () => {
    expect(existsSync(ENTRY), `${ENTRY} is missing: run "npm run build:ts"`).toBe(true);
    dir = await mkdtemp(path.join(tmpdir(), 'omniseg-bomb-'));
    png = path.join(dir, 'bomb.png');
    await writeFile(png, await pngBomb(SIDE));
    svg = path.join(dir, 'bomb.svg');
    await writeFile(
      svg,
      `<svg xmlns="http://www.w3.org/2000/svg" width="${SIDE}" height="${SIDE}"><rect width="100%" height="100%" fill="#000"/></svg>`,
    );
  }, 30_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('the PNG is a real 30000 × 30000 PNG under 1 MB', async () => {
    const size = (await stat(png)).size;
    expect(size).toBeLessThan(1 << 20);
    const bytes = await readFile(png);
    expect(bytes.readUInt32BE(16)).toBe(SIDE);
    expect(bytes.readUInt32BE(20)).toBe(SIDE);
    const { default: sharp } = await import('sharp');
    expect(await sharp(bytes, { limitInputPixels: false }).metadata()).toMatchObject({ format: 'png', width: SIDE, height: SIDE });
  });

  it('API: refused before decoding by decodeImage, encode, segment and segmentStream; peak RSS < 800 MB', { timeout: 30_000 }, () => {
    const child = spawnSync(
      process.execPath,
      [path.join(ROOT, 'test', 'helpers', 'decode-bomb.mjs'), pathToFileURL(ENTRY).href, MODEL_DIR, png, svg],
      { encoding: 'utf8', timeout: 25_000 },
    );
    expect({ status: child.status, signal: child.signal, stderr: child.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
    const report = JSON.parse(child.stdout) as {
      results: Array<Record<string, string>>;
      afterwards: number;
      ms: number;
      peakRssMB: number;
    };
    for (const [i, file] of [png, svg].entries()) {
      expect(report.results[i]).toEqual({
        file,
        decodeFile: refusal(file),
        decodeBuffer: refusal('buffer'),
        encode: refusal(file),
        segment: refusal('buffer'),
        stream: `Error: frame 0: ${refusal(file).slice('Error: '.length)}`,
      });
    }
    expect(report.afterwards).toBe(1);
    expect(report.peakRssMB).toBeLessThan(PEAK_RSS_LIMIT_MB);
  });

  for (const command of ['segment', 'encode', 'segment-frames'] as const) {
    it(`CLI ${command}: one line on stderr, exit code 1, peak RSS < 800 MB`, { timeout: 30_000 }, async () => {
      const rssFile = path.join(dir, `${command}.rss`);
      const args = {
        segment: ['segment', png, '--model', MODEL_DIR, '--point', '1,1,1'],
        encode: ['encode', png, '--model', MODEL_DIR, '--save-embedding', path.join(dir, 'e.f32')],
        'segment-frames': ['segment-frames', path.join(dir, '*.png'), '--model', MODEL_DIR, '--point', '1,1,1', '--out-dir', path.join(dir, 'masks')],
      }[command];
      const child = spawnSync(process.execPath, ['--import', pathToFileURL(path.join(ROOT, 'test', 'helpers', 'report-peak-rss.mjs')).href, CLI, ...args], {
        encoding: 'utf8',
        timeout: 25_000,
        env: { ...process.env, OMNISEG_DEBUG: '', OMNISEG_TEST_PEAK_RSS_FILE: rssFile },
      });
      expect(child.signal).toBeNull();
      expect(child.status).toBe(1);
      const prefix = command === 'segment-frames' ? 'frame 0: ' : '';
      expect(child.stderr).toBe(`omniseg: ${prefix}${refusal(png).slice('Error: '.length)}\n`);
      expect(Number(await readFile(rssFile, 'utf8'))).toBeLessThan(PEAK_RSS_LIMIT_MB);
    });
  }
});
