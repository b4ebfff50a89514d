// Where pulled models live and how a process claims one: the settings read from the environment,
// the cache layout (<cache>/models/<id>/<revision>/), the manifest written once every file of a
// model is in place, and a lock file so that two pulls of one model (in one process or several)
// download it once.
import { open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, hostname } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RegistryModel } from './registry.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

/** The download settings of the environment. */
export interface HubSettings {
  /** OMNISEG_CACHE, default ~/.cache/omniseg. */
  cacheDir: string;
  /** OMNISEG_ENDPOINT, else HF_ENDPOINT, else https://huggingface.co (no trailing slash). */
  endpoint: string;
  /** OMNISEG_OFFLINE: use the cache only. */
  offline: boolean;
  /** OMNISEG_ALLOW_UNVERIFIED: accept files the registry has no SHA-256 for. */
  allowUnverified: boolean;
}

export function hubSettings(env: NodeJS.ProcessEnv = process.env): HubSettings {
  const endpoint = env.OMNISEG_ENDPOINT || env.HF_ENDPOINT || DEFAULT_ENDPOINT;
  return {
    cacheDir: path.resolve(env.OMNISEG_CACHE || path.join(homedir(), '.cache', 'omniseg')),
    endpoint: endpoint.replace(/\/+$/, ''),
    offline: flag(env.OMNISEG_OFFLINE),
    allowUnverified: flag(env.OMNISEG_ALLOW_UNVERIFIED),
  };
}

/** Set, non-empty and not "0" / "false". */
export function flag(value: string | undefined): boolean {
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

/** The directory a model's files are stored in. */
export function modelCacheDir(cacheDir: string, model: RegistryModel): string {
  return path.join(cacheDir, 'models', model.id, model.revision.replaceAll('/', '--'));
}

/** The download URL of one file of a model. */
export function fileUrl(endpoint: string, model: RegistryModel, file: string): string {
  const segments = (s: string) => s.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${segments(model.repo)}/resolve/${segments(model.revision)}/${segments(file)}`;
}

const MANIFEST = '.omniseg-model.json';

/** What a complete model directory records about its files. */
export interface Manifest {
  id: string;
  repo: string;
  revision: string;
  files: { path: string; size: number; sha256: string; verified: boolean }[];
}

/**
 * Whether `dir` holds every file of `model`: its manifest names the same repo and revision and
 * each file is there with the recorded size (the files were verified before they were renamed
 * into place; this check does not read them again).
 */
export async function isComplete(dir: string, model: RegistryModel): Promise<boolean> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(path.join(dir, MANIFEST), 'utf8')) as Manifest;
  } catch {
    return false;
  }
  if (manifest.repo !== model.repo || manifest.revision !== model.revision || !Array.isArray(manifest.files)) return false;
  for (const file of model.files) {
    const entry = manifest.files.find((f) => f.path === file.path);
    if (entry === undefined || (file.sha256 !== null && entry.sha256 !== file.sha256)) return false;
    const size = await stat(path.join(dir, file.path)).then((s) => s.size, () => -1);
    if (size !== entry.size) return false;
  }
  return true;
}

/** Writes the manifest (atomically: a temporary file renamed over it). */
export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  const file = path.join(dir, MANIFEST);
  await writeFile(`${file}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

/** A lock file that cannot be read for this long was left by a process that died writing it. */
const UNREADABLE_LOCK_MS = 30_000;

/** A held lock; release() removes it. */
export interface Lock {
  release(): Promise<void>;
}

/** Tokens of the locks this process holds (a lock with this pid and another token is stale). */
const heldTokens = new Set<string>();

/**
 * Takes `<dir>.lock` (created exclusively). While another live process (or another pull in this
 * process) holds it, waits, calling `onWait` once with the holder's pid; a lock left by a process
 * of this host that no longer runs is taken over, as is one with this process's pid that this
 * process does not hold (left by an earlier process given the same pid: a restarted container).
 */
export async function acquireLock(
  dir: string,
  options: { signal?: AbortSignal; onWait?: (pid: number) => void; pollMs?: number } = {},
): Promise<Lock> {
  const file = `${dir}.lock`;
  const own = { pid: process.pid, hostname: hostname(), token: `${process.pid}-${Math.random().toString(36).slice(2)}` };
  let waited = false;
  for (;;) {
    options.signal?.throwIfAborted();
    // Counted as held from before the file exists: another pull of this process that reads it
    // while it is being written must not take it for a stale one.
    heldTokens.add(own.token);
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(JSON.stringify(own));
      await handle.close();
      return { release: () => releaseLock(file, own.token) };
    } catch (error) {
      heldTokens.delete(own.token);
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await readLock(file);
    const stale =
      holder === undefined
        ? await stat(file).then((s) => Date.now() - s.mtimeMs > UNREADABLE_LOCK_MS, () => false)
        : holder.hostname === own.hostname &&
          (holder.pid === process.pid ? !heldTokens.has(holder.token) : !processAlive(holder.pid));
    // (removed only if it is still the lock judged stale: another pull may have replaced it since)
    if (stale && (holder === undefined || (await readLock(file))?.token === holder.token)) {
      await rm(file, { force: true });
      continue;
    }
    if (!waited && holder !== undefined) options.onWait?.(holder.pid);
    waited = true;
    await sleep(options.pollMs ?? 250, undefined, { signal: options.signal });
  }
}

async function readLock(file: string): Promise<{ pid: number; hostname: string; token: string } | undefined> {
  try {
    const holder = JSON.parse(await readFile(file, 'utf8')) as { pid: unknown; hostname: unknown; token: unknown };
    // (anything else is unreadable: taken over once it is old)
    const ok = typeof holder.pid === 'number' && typeof holder.hostname === 'string' && typeof holder.token === 'string';
    return ok ? (holder as { pid: number; hostname: string; token: string }) : undefined;
  } catch {
    return undefined; // being written, or just removed
  }
}

async function releaseLock(file: string, token: string): Promise<void> {
  const holder = await readLock(file);
  if (holder?.token === token) await rm(file, { force: true });
  heldTokens.delete(token); // (after the file is gone: until then it is held)
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
