// Pulls a registry model into the cache: every file downloaded (resumable, verified, renamed into
// place), then a manifest that marks the directory complete. One pull per model at a time (a lock
// file); OMNISEG_OFFLINE uses the cache only; files without a published SHA-256 are refused
// unless the caller opts in.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { acquireLock, fileUrl, hubSettings, isComplete, modelCacheDir, writeManifest, type Manifest } from './cache.js';
import { invalidType } from '../errors.js';
import { abortSignal, boolean, nonEmptyString, numberInRange, optionalObject } from '../validate.js';
import { downloadFile } from './download.js';
import { modelRegistry, type RegistryFile, type RegistryModel } from './registry.js';

/** What a pull reports as it goes (for a progress display). */
export type PullEvent =
  | { type: 'cached' }
  | { type: 'wait'; pid: number }
  | { type: 'warning'; message: string }
  | { type: 'start'; file: string; from: number; total: number | null }
  | { type: 'progress'; file: string; received: number; total: number | null }
  | { type: 'retry'; file: string; attempt: number; error: Error }
  | { type: 'done'; file: string; size: number; verified: boolean };

export interface PullOptions {
  /** Environment to read OMNISEG_* / HF_ENDPOINT from. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Accept files without a published SHA-256 (as OMNISEG_ALLOW_UNVERIFIED=1 does). */
  allowUnverified?: boolean;
  signal?: AbortSignal;
  onEvent?: (model: RegistryModel, event: PullEvent) => void;
  /** Delay before the first retry of a failed request (doubled after each). Default 1000 ms. */
  retryDelayMs?: number;
}

export interface PullResult {
  model: RegistryModel;
  /** The model directory (transformers layout), ready for Segmenter.load / Referrer.load. */
  dir: string;
  /** False when the cache already held the model. */
  downloaded: boolean;
}

/**
 * Makes registry model `id` available in the cache, downloading what is missing.
 * `onEvent` is called synchronously as the pull goes; an error it throws ends the pull with that
 * error (a file being downloaded keeps its partial download, which the next pull resumes).
 * @throws TypeError / RangeError for invalid arguments (before anything is read or fetched);
 *   Error for an unknown id, a model missing from the cache with OMNISEG_OFFLINE set,
 *   unverified files without the opt-in, or a failed download (naming the file and URL).
 */
export async function pullModel(id: string, options: PullOptions = {}): Promise<PullResult> {
  nonEmptyString(id, 'id');
  checkPullOptions(options);
  const env = options.env ?? process.env;
  const settings = hubSettings(env);
  const registry = await modelRegistry(env);
  const model = registry.get(id);
  if (model === undefined) {
    throw new Error(`Unknown model ${JSON.stringify(id)}; the registry has ${[...registry.keys()].join(', ')}`);
  }
  const emit = (event: PullEvent) => options.onEvent?.(model, event);
  const dir = modelCacheDir(settings.cacheDir, model);
  if (await isComplete(dir, model)) {
    emit({ type: 'cached' });
    return { model, dir, downloaded: false };
  }
  if (settings.offline) {
    throw new Error(
      `Model ${id} is not in the cache (${dir}) and OMNISEG_OFFLINE is set: run "omniseg pull ${id}" where ` +
        `${settings.endpoint} is reachable, or point OMNISEG_CACHE at a cache that has it`,
    );
  }
  const unverified = model.files.filter(needsOptIn).map((f) => f.path);
  const metadata = model.files.filter((f) => f.sha256 === null && !needsOptIn(f)).map((f) => f.path);
  if (metadata.length > 0) {
    emit({
      type: 'warning',
      message:
        `${id}: ${metadata.join(', ')} have no published SHA-256 (small files outside Git LFS): taken at the pinned ` +
        `revision, at most ${MAX_UNVERIFIED_METADATA_BYTES >> 20} MiB each, checked by the model loaders`,
    });
  }
  if (unverified.length > 0) {
    if (!(settings.allowUnverified || options.allowUnverified === true)) {
      throw new Error(
        `Refusing to download ${id}: the registry has no SHA-256 for ${unverified.join(', ')}, so they cannot be ` +
          `verified; set OMNISEG_ALLOW_UNVERIFIED=1 (or run omniseg pull ${id} --allow-unverified) to accept them unverified`,
      );
    }
    emit({
      type: 'warning',
      message: `${id}: ${unverified.join(', ')} will not be verified (no published SHA-256); what was downloaded is recorded in the manifest`,
    });
  }

  await mkdir(path.dirname(dir), { recursive: true });
  const lock = await acquireLock(dir, { signal: options.signal, onWait: (pid) => emit({ type: 'wait', pid }) });
  try {
    if (await isComplete(dir, model)) {
      emit({ type: 'cached' }); // another pull finished it while this one waited
      return { model, dir, downloaded: false };
    }
    const files: Manifest['files'] = [];
    let downloaded = false;
    for (const file of model.files) {
      const [entry, fetched] = await pullFile(model, file, dir, settings.endpoint, options, emit);
      files.push(entry);
      downloaded ||= fetched;
    }
    await writeManifest(dir, { id: model.id, repo: model.repo, revision: model.revision, files });
    return { model, dir, downloaded };
  } finally {
    await lock.release();
  }
}

/** PullOptions checked field by field, so that a bad one fails before any file or request. */
function checkPullOptions(options: unknown): void {
  const opts = optionalObject(options, 'options', 'an object {env?, allowUnverified?, signal?, onEvent?, retryDelayMs?}');
  if (opts.env !== undefined && (typeof opts.env !== 'object' || opts.env === null || Array.isArray(opts.env))) {
    throw invalidType('an object of environment variables (as process.env)', 'options.env', opts.env);
  }
  if (opts.allowUnverified !== undefined) boolean(opts.allowUnverified, 'options.allowUnverified');
  if (opts.signal !== undefined) abortSignal(opts.signal, 'options.signal');
  if (opts.onEvent !== undefined && typeof opts.onEvent !== 'function') {
    throw invalidType('a function (model, event) => void', 'options.onEvent', opts.onEvent);
  }
  // (setTimeout's longest delay; the retries double it)
  if (opts.retryDelayMs !== undefined) numberInRange(opts.retryDelayMs, 'options.retryDelayMs', 0, 2 ** 31 - 1);
}

/**
 * One file and whether it was downloaded: kept when an earlier (interrupted) pull already put it
 * in place, else downloaded.
 */
async function pullFile(
  model: RegistryModel,
  file: RegistryFile,
  dir: string,
  endpoint: string,
  options: PullOptions,
  emit: (event: PullEvent) => void,
): Promise<[Manifest['files'][number], boolean]> {
  const dest = path.join(dir, file.path);
  const verified = file.sha256 !== null;
  const size = await stat(dest).then((s) => s.size, () => -1);
  if (size >= 0 && (file.size === null || size === file.size)) {
    // Pulls rename files into place only after verifying them, but a file put there otherwise is
    // not taken on trust: hashed again, kept when it matches, else downloaded again.
    const sha256 = await sha256File(dest);
    if (file.sha256 === null || sha256 === file.sha256) return [{ path: file.path, size, sha256, verified }, false];
    await rm(dest, { force: true });
  }
  const result = await downloadFile(
    {
      url: fileUrl(endpoint, model, file.path),
      dest,
      size: file.size,
      sha256: file.sha256,
      label: `${model.id}/${file.path}`,
      ...(file.sha256 === null && !needsOptIn(file) ? { maxBytes: MAX_UNVERIFIED_METADATA_BYTES } : {}),
    },
    {
      signal: options.signal,
      retryDelayMs: options.retryDelayMs,
      onStart: (from, total) => emit({ type: 'start', file: file.path, from, total }),
      onProgress: (received, total) => emit({ type: 'progress', file: file.path, received, total }),
      onRetry: (attempt, error) => emit({ type: 'retry', file: file.path, attempt, error }),
    },
  );
  emit({ type: 'done', file: file.path, size: result.size, verified });
  return [{ path: file.path, size: result.size, sha256: result.sha256, verified }, true];
}

/**
 * Most bytes of a metadata file without a published SHA-256 (config and tokenizer files are a
 * few KB to a few MB; CLIP's tokenizer.json is ~3.5 MB).
 */
export const MAX_UNVERIFIED_METADATA_BYTES = 16 << 20;

/** Metadata files: read and validated by omniseg's own parsers, never executed or memory-mapped. */
const METADATA = /\.(json|txt)$/;

/**
 * Whether downloading a file needs OMNISEG_ALLOW_UNVERIFIED: it has no published SHA-256 and is
 * not a metadata file. Small JSON/text files outside Git LFS have no SHA-256 on the Hub; they are
 * fetched at the pinned commit, capped in size, and validated by the config and tokenizer readers.
 * Weights without a SHA-256 (not in this registry's published models but for CLIPSeg's
 * safetensors conversion) need the opt-in.
 */
export function needsOptIn(file: RegistryFile): boolean {
  return file.sha256 === null && !METADATA.test(file.path);
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
