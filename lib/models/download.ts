// Downloads one file over HTTP(S) with Node's fetch: streamed to <file>.partial while hashing,
// resumed with a Range request after a dropped connection (206: append; 200: start over; 416
// with the partial file's length: it was whole; another 416: start over),
// verified (size and SHA-256, when known), fsynced and renamed into place, so that <file> only
// ever exists complete and verified.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface DownloadTarget {
  url: string;
  /** Final path; the download goes to `${dest}.partial` until it is verified. */
  dest: string;
  /** Expected byte size, or null when unknown. */
  size: number | null;
  /** Expected SHA-256 (lowercase hex), or null when unknown (the file is not verified). */
  sha256: string | null;
  /** How errors and progress name the file, e.g. "sam-vit-base/model.safetensors". */
  label: string;
  /** With no known size: refuse a body longer than this. Default: no limit. */
  maxBytes?: number;
}

export interface DownloadOptions {
  signal?: AbortSignal;
  /** A request (re)starts: `from` bytes are already on disk; `total` is null when unknown. */
  onStart?: (from: number, total: number | null) => void;
  /** Bytes on disk so far, after each chunk. */
  onProgress?: (received: number, total: number | null) => void;
  /** A transient failure (network error, HTTP 5xx/408/429) before retry number `attempt`. */
  onRetry?: (attempt: number, error: Error) => void;
  /** Retries after transient failures. Default 4. */
  retries?: number;
  /** Delay before the first retry, doubled after each. Default 1000 ms. */
  retryDelayMs?: number;
}

export interface DownloadResult {
  size: number;
  sha256: string;
}

/** A failure worth retrying (the partial file is kept for the next attempt to resume). */
class Transient extends Error {
  constructor(readonly reason: Error) {
    super(reason.message);
  }
}

/** More bytes than the registry's size: the download is deleted, not resumed. */
class Oversize extends Error {}

/** What the caller's onProgress threw: passed on as it is, never taken for a dropped connection. */
class CallbackFailure extends Error {
  constructor(readonly error: unknown) {
    super('onProgress threw');
  }
}

/**
 * Downloads `target.url` to `target.dest`.
 * @throws Error naming the file and the URL: an HTTP error status, a size or checksum mismatch
 *   (the partial download is deleted), or a network failure that outlasted the retries.
 */
export async function downloadFile(target: DownloadTarget, options: DownloadOptions = {}): Promise<DownloadResult> {
  const retries = options.retries ?? 4;
  const delay = options.retryDelayMs ?? 1000;
  await mkdir(path.dirname(target.dest), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      return await attemptDownload(target, options);
    } catch (error) {
      if (!(error instanceof Transient)) throw error;
      if (attempt >= retries) {
        throw new Error(
          `Cannot download ${target.label} from ${target.url} after ${attempt + 1} attempts: ${describe(error.reason)}`,
          { cause: error.reason },
        );
      }
      options.onRetry?.(attempt + 1, error.reason);
      await sleep(Math.min(delay * 2 ** attempt, 2 ** 31 - 1), undefined, { signal: options.signal });
    }
  }
}

async function attemptDownload(target: DownloadTarget, options: DownloadOptions): Promise<DownloadResult> {
  const partial = `${target.dest}.partial`;
  let offset = await stat(partial).then((s) => s.size, () => 0);
  if (target.size !== null && offset > target.size) {
    await rm(partial, { force: true });
    offset = 0;
  }
  let hash = createHash('sha256');
  if (offset > 0) await hashFile(partial, hash);
  if (target.size !== null && offset === target.size) return finish(target, partial, offset, hash);

  const response = await request(target.url, offset, options.signal);
  if (response.status === 416) {
    // Nothing from `offset` on: the partial file is the whole file when the server says so (a
    // body whose end came with a dropped connection); otherwise it is dropped and the next
    // attempt starts over.
    await response.body?.cancel();
    if (unsatisfiedRangeTotal(response.headers.get('content-range')) === offset) {
      await syncFile(partial); // (an attempt that dropped closed it without a sync)
      return finish(target, partial, offset, hash);
    }
    await rm(partial, { force: true });
    throw new Transient(new Error(`HTTP 416 for bytes=${offset}-`));
  }
  let append = false;
  let total: number | null;
  if (response.status === 206) {
    const range = contentRange(response.headers.get('content-range'));
    append = range !== undefined && range.start === offset;
    total = range?.total ?? target.size;
    if (!append) {
      // A range we did not ask for: drop what we have and start over on the next attempt.
      await response.body?.cancel();
      await rm(partial, { force: true });
      throw new Transient(new Error(`unexpected Content-Range ${response.headers.get('content-range')}`));
    }
  } else {
    offset = 0; // 200: the whole file, whatever was asked
    hash = createHash('sha256');
    total = contentLength(response) ?? target.size;
  }
  if (target.size !== null && total !== null && total !== target.size) {
    await response.body?.cancel();
    await rm(partial, { force: true });
    throw new Error(`Size mismatch for ${target.label}: expected ${target.size} bytes but ${target.url} serves ${total}`);
  }

  options.onStart?.(offset, total);
  const handle = await open(partial, append ? 'a' : 'w');
  let received = offset;
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      received += chunk.byteLength;
      if (target.size !== null && received > target.size) {
        throw new Oversize(`Size mismatch for ${target.label}: ${target.url} sends more than the expected ${target.size} bytes`);
      }
      if (target.size === null && target.maxBytes !== undefined && received > target.maxBytes) {
        throw new Oversize(`${target.label}: ${target.url} sends more than ${target.maxBytes} bytes, the most an unverified metadata file may have`);
      }
      hash.update(chunk);
      await handle.write(chunk);
      try {
        options.onProgress?.(received, total);
      } catch (error) {
        throw new CallbackFailure(error);
      }
    }
    await handle.sync();
  } catch (error) {
    await handle.close();
    if (error instanceof CallbackFailure) throw error.error; // (the partial file is kept: a later pull resumes it)
    if (options.signal?.aborted) throw error;
    if (error instanceof Oversize) {
      await rm(partial, { force: true });
      throw error;
    }
    throw new Transient(error as Error); // the connection dropped mid-body: resume from the partial
  }
  await handle.close();
  if (total !== null && received < total) throw new Transient(new Error(`connection closed after ${received} of ${total} bytes`));
  return finish(target, partial, received, hash);
}

/** Verifies the complete partial file and renames it into place. */
async function finish(target: DownloadTarget, partial: string, size: number, hash: Hash): Promise<DownloadResult> {
  const sha256 = hash.digest('hex');
  if (target.size !== null && size !== target.size) {
    await rm(partial, { force: true });
    throw new Error(`Size mismatch for ${target.label}: expected ${target.size} bytes but the download from ${target.url} has ${size}; it was deleted`);
  }
  if (target.sha256 !== null && sha256 !== target.sha256) {
    await rm(partial, { force: true });
    throw new Error(
      `Checksum mismatch for ${target.label}: expected SHA-256 ${target.sha256} but the download from ${target.url} ` +
        `has ${sha256}; it was deleted`,
    );
  }
  await rename(partial, target.dest);
  await syncDirectory(path.dirname(target.dest));
  return { size, sha256 };
}

/**
 * GET `url` (from byte `offset`); HTTP errors become Errors, transient ones Transient, but a 416
 * to a range request is returned (attemptDownload reads it).
 */
async function request(url: string, offset: number, signal: AbortSignal | undefined): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { headers: offset > 0 ? { range: `bytes=${offset}-` } : {}, redirect: 'follow', signal });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new Transient(error as Error);
  }
  if (response.ok || (response.status === 416 && offset > 0)) return response;
  await response.body?.cancel();
  const status = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  if (response.status >= 500 || response.status === 408 || response.status === 429) {
    throw new Transient(new Error(`${status} from ${url}`));
  }
  throw new Error(`${status} from ${url}`);
}

function contentLength(response: Response): number | null {
  const value = response.headers.get('content-length');
  return value !== null && /^\d+$/.test(value) ? Number(value) : null;
}

/** "bytes start-end/total" (total may be "*"). */
function contentRange(value: string | null): { start: number; total: number | null } | undefined {
  const match = value === null ? null : /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim());
  if (match === null) return undefined;
  return { start: Number(match[1]), total: match[3] === '*' ? null : Number(match[3]) };
}

/** N of a 416's "bytes *\/N" (the file's length), or undefined. */
function unsatisfiedRangeTotal(value: string | null): number | undefined {
  const match = value === null ? null : /^bytes \*\/(\d+)$/.exec(value.trim());
  return match === null ? undefined : Number(match[1]);
}

async function hashFile(file: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
}

/** fsync a file (its data) or a directory (a rename in it), so that it survives a crash. */
async function syncFile(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** syncFile of a directory, a no-op where unsupported. */
async function syncDirectory(dir: string): Promise<void> {
  try {
    await syncFile(dir);
  } catch {
    // Windows cannot open directories; the rename is still atomic.
  }
}

/** An error's message with its cause (fetch puts the socket error there). */
function describe(error: Error): string {
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}
