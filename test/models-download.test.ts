// downloadFile against a local HTTP server: verified success, resume after a dropped connection,
// a server without Range support, a corrupted body, a 404, an oversized body, and a network that
// stays down.
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { downloadFile, type DownloadTarget } from '../lib/models/download.js';
import { bytes, sha256, startHubServer, type HubServer } from './helpers/hub-server.js';

const DATA = bytes(3_000_017); // several chunks of a fetch body
const FILE = '/org/repo/resolve/abc/model.safetensors';

let hub: HubServer;
let dir: string;
beforeAll(async () => {
  hub = await startHubServer();
});
afterAll(async () => {
  await hub.close();
});
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'omniseg-dl-'));
  hub.files.set(FILE, DATA);
});
afterEach(async () => {
  hub.requests.length = 0;
  hub.dropOnce.clear();
  hub.corrupt.clear();
  hub.redirect.clear();
  hub.ignoreRange = false;
  await rm(dir, { recursive: true, force: true });
});

const target = (overrides: Partial<DownloadTarget> = {}): DownloadTarget => ({
  url: `${hub.url}${FILE}`,
  dest: path.join(dir, 'model.safetensors'),
  size: DATA.length,
  sha256: sha256(DATA),
  label: 'm/model.safetensors',
  ...overrides,
});

describe('downloadFile', () => {
  it('downloads, verifies and renames into place, reporting progress', async () => {
    const progress: number[] = [];
    const result = await downloadFile(target(), { onProgress: (received) => progress.push(received) });
    expect(result).toEqual({ size: DATA.length, sha256: sha256(DATA) });
    expect((await readFile(target().dest)).equals(DATA)).toBe(true);
    expect(await readdir(dir)).toEqual(['model.safetensors']); // no .partial left
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toBe(DATA.length);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  });

  it('follows a redirect (the Hub sends LFS files to its CDN)', async () => {
    hub.redirect.add(FILE);
    await downloadFile(target());
    expect(hub.requests.map((r) => [r.path, r.status])).toEqual([
      [FILE, 302],
      [`/cdn${FILE}`, 200],
    ]);
    expect((await readFile(target().dest)).equals(DATA)).toBe(true);
  });

  it('resumes with a Range request after the connection drops mid-body', async () => {
    hub.dropOnce.add(FILE);
    const retries: string[] = [];
    const starts: number[] = [];
    await downloadFile(target(), {
      retryDelayMs: 1,
      onRetry: (attempt, error) => retries.push(`${attempt}: ${error.message}`),
      onStart: (from) => starts.push(from),
    });
    expect((await readFile(target().dest)).equals(DATA)).toBe(true);
    expect(retries).toHaveLength(1);
    expect(hub.requests).toHaveLength(2);
    const [first, second] = hub.requests;
    expect(first).toMatchObject({ range: undefined, status: 200 });
    expect(second.status).toBe(206);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(second.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThan(DATA.length);
    expect(starts).toEqual([0, resumedAt]);
  });

  it('resumes a partial file left by an earlier process', async () => {
    await writeFile(`${target().dest}.partial`, DATA.subarray(0, 1000));
    await downloadFile(target());
    expect(hub.requests).toEqual([{ path: FILE, range: 'bytes=1000-', status: 206 }]);
    expect((await readFile(target().dest)).equals(DATA)).toBe(true);
  });

  it('starts over when the server answers a Range request with the whole file (200)', async () => {
    hub.ignoreRange = true;
    await writeFile(`${target().dest}.partial`, Buffer.from('stale bytes that are not the file'));
    await downloadFile(target());
    expect(hub.requests).toEqual([{ path: FILE, range: 'bytes=33-', status: 200 }]);
    expect((await readFile(target().dest)).equals(DATA)).toBe(true);
  });

  it('a corrupted body fails the checksum and leaves no file behind', async () => {
    hub.corrupt.add(FILE);
    const error = (await downloadFile(target()).then(
      () => new Error('resolved'),
      (e: unknown) => e,
    )) as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toMatch(
      new RegExp(`^Checksum mismatch for m/model.safetensors: expected SHA-256 ${sha256(DATA)} but the download from ${hub.url}${FILE} has [0-9a-f]{64}; it was deleted$`),
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('a wrong partial file is caught by the checksum too (resume hashes what is on disk)', async () => {
    const wrong = Buffer.from(DATA.subarray(0, 5000));
    wrong[10] ^= 1;
    await writeFile(`${target().dest}.partial`, wrong);
    await expect(downloadFile(target())).rejects.toThrow(/^Checksum mismatch for m\/model.safetensors/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('a 404 is an error naming the URL, without retries', async () => {
    const url = `${hub.url}/org/repo/resolve/abc/missing.json`;
    await expect(downloadFile(target({ url }), { retryDelayMs: 1 })).rejects.toThrow(
      new Error(`HTTP 404 Not Found from ${url}`),
    );
    expect(hub.requests).toHaveLength(1);
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses a file larger than the registry says', async () => {
    await expect(downloadFile(target({ size: 1000, sha256: null }))).rejects.toThrow(
      new Error(`Size mismatch for m/model.safetensors: expected 1000 bytes but ${hub.url}${FILE} serves ${DATA.length}`),
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('finishes a partial file that is already whole when the server has nothing past it (416 with its length)', async () => {
    // a body whose end came with a dropped connection: with no published size, only the server can tell
    await writeFile(`${target().dest}.partial`, DATA);
    const result = await downloadFile(target({ size: null, sha256: null }));
    expect(result).toEqual({ size: DATA.length, sha256: sha256(DATA) });
    expect(hub.requests).toEqual([{ path: FILE, range: `bytes=${DATA.length}-`, status: 416 }]);
    expect((await readFile(target().dest)).equals(DATA)).toBe(true);
    expect(await readdir(dir)).toEqual(['model.safetensors']);
  });

  it('drops a partial file longer than the file (416 with another length) and downloads it again', async () => {
    await writeFile(`${target().dest}.partial`, Buffer.concat([DATA, Buffer.from('more')]));
    const result = await downloadFile(target({ size: null, sha256: null }), { retryDelayMs: 1 });
    expect(result).toEqual({ size: DATA.length, sha256: sha256(DATA) });
    expect(hub.requests).toEqual([
      { path: FILE, range: `bytes=${DATA.length + 4}-`, status: 416 },
      { path: FILE, range: undefined, status: 200 },
    ]);
    expect((await readFile(target().dest)).equals(DATA)).toBe(true);
  });

  it('without a known size or checksum, keeps what the server sent', async () => {
    const result = await downloadFile(target({ size: null, sha256: null }));
    expect(result).toEqual({ size: DATA.length, sha256: sha256(DATA) });
    expect((await stat(target().dest)).size).toBe(DATA.length);
  });

  it('gives up after the retries when the server cannot be reached', async () => {
    const url = 'http://127.0.0.1:9/model.safetensors'; // discard port: connection refused
    const retries: number[] = [];
    await expect(
      downloadFile(target({ url }), { retries: 2, retryDelayMs: 1, onRetry: (attempt) => retries.push(attempt) }),
    ).rejects.toThrow(/^Cannot download m\/model.safetensors from http:\/\/127.0.0.1:9\/model.safetensors after 3 attempts: fetch failed: /);
    expect(retries).toEqual([1, 2]);
  });

  it('stops when aborted', async () => {
    hub.delayMs = 200;
    try {
      await expect(downloadFile(target(), { signal: AbortSignal.timeout(20) })).rejects.toThrow(/aborted|timeout/i);
    } finally {
      hub.delayMs = 0;
    }
  });
});
