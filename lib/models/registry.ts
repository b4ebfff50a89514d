// The model registry: ids that `omniseg pull <id>` and `Segmenter.load({ model: id })` know, each
// a Hugging Face repo at a pinned revision with the files omniseg needs and their size and SHA-256
// (null where none is published). The built-in list is models/registry.json; OMNISEG_REGISTRY
// names a file in the same format whose models are added to it (same id: that file wins).
import path from 'node:path';
import { describeValue } from '../errors.js';
import { readModelText } from '../model-text.js';
import { packageRoot } from '../package-root.js';

export type ModelFamily = 'sam' | 'clipseg';

/** One file of a model: its path in the repo, byte size and SHA-256 (null: not published). */
export interface RegistryFile {
  path: string;
  size: number | null;
  sha256: string | null;
}

/** A registry entry. */
export interface RegistryModel {
  id: string;
  /** Which loader reads it: 'sam' (Segmenter) or 'clipseg' (Referrer). */
  family: ModelFamily;
  architecture: string;
  /** Hugging Face repo, "owner/name". */
  repo: string;
  /** Commit (or other git revision) the files are fetched at. */
  revision: string;
  license: string;
  files: RegistryFile[];
  note?: string;
  /** Where the revision, sizes and checksums were read. */
  sources?: string[];
}

const ID = /^[a-z0-9][a-z0-9._-]*$/;
/** A relative path of plain segments: none starting with "." (so no "." or ".."), no absolute path, no backslash. */
const FILE_PATH = /^[\w-][\w.-]*(\/[\w-][\w.-]*)*$/;
const REPO = /^[A-Za-z0-9][\w.-]*\/[\w-][\w.-]*$/;
/** A commit or a ref: plain segments too (it becomes a cache directory and a URL path). */
const REVISION = FILE_PATH;
const SHA256 = /^[0-9a-f]{64}$/;
const FAMILIES: readonly ModelFamily[] = ['sam', 'clipseg'];

/** The built-in registry file (models/registry.json in the package). */
export function builtinRegistryFile(): string {
  return path.join(packageRoot(import.meta.url), 'models', 'registry.json');
}

let builtin: Promise<RegistryModel[]> | undefined;

/**
 * The registry: the built-in models plus those of `env.OMNISEG_REGISTRY` (a file), by id.
 * @throws Error naming the file and the entry for an unreadable or malformed registry.
 */
export async function modelRegistry(env: NodeJS.ProcessEnv = process.env): Promise<Map<string, RegistryModel>> {
  const files = [builtinRegistryFile()];
  if (env.OMNISEG_REGISTRY) files.push(path.resolve(env.OMNISEG_REGISTRY));
  const byId = new Map<string, RegistryModel>();
  for (const file of files) {
    for (const model of await readRegistryFile(file)) byId.set(model.id, model);
  }
  return byId;
}

/** The registry entry of `id`, or undefined when there is none. */
export async function findRegistryModel(id: string, env: NodeJS.ProcessEnv = process.env): Promise<RegistryModel | undefined> {
  return (await modelRegistry(env)).get(id);
}

/** Reads and checks one registry file (the built-in one once per process). */
function readRegistryFile(file: string): Promise<RegistryModel[]> {
  if (file !== builtinRegistryFile()) return load(file);
  builtin ??= load(file);
  return builtin;
}

async function load(file: string): Promise<RegistryModel[]> {
  let json: unknown;
  try {
    const text = await readModelText(file);
    if (text === undefined) throw new Error('no such file');
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`Cannot read the model registry ${file}: ${(error as Error).message}`);
  }
  return parseRegistry(json, file);
}

/**
 * Checks a parsed registry document ({ models: [...] }) and returns its models.
 * @param where names the document in errors
 * @throws Error naming the entry and the field that is wrong
 */
export function parseRegistry(json: unknown, where: string): RegistryModel[] {
  const models = isObject(json) ? json.models : undefined;
  if (!Array.isArray(models)) throw new Error(`Model registry ${where}: expected an object with a "models" array`);
  const seen = new Set<string>();
  return models.map((entry: unknown, i) => {
    const fail = (what: string): never => {
      throw new Error(`Model registry ${where}: models[${i}]${what}`);
    };
    if (!isObject(entry)) return fail(' must be an object');
    const field = (name: string, pattern?: RegExp): string => {
      const value = entry[name];
      if (typeof value !== 'string' || value === '' || (pattern !== undefined && !pattern.test(value))) {
        return fail(`.${name} is missing or malformed: ${describeValue(value)}`);
      }
      return value;
    };
    const id = field('id', ID);
    if (seen.has(id)) fail(`.id ${JSON.stringify(id)} appears twice`);
    seen.add(id);
    const family = field('family');
    if (!(FAMILIES as readonly string[]).includes(family)) fail(`.family must be one of ${FAMILIES.join(', ')}`);
    if (!Array.isArray(entry.files) || entry.files.length === 0) return fail('.files must be a non-empty array');
    const files = entry.files.map((f: unknown, j) => parseFile(f, (what) => fail(`.files[${j}]${what}`)));
    if (new Set(files.map((f) => f.path)).size !== files.length) fail('.files lists a path twice');
    const optionalStrings = (name: string): string[] | undefined =>
      Array.isArray(entry[name]) ? (entry[name] as unknown[]).map(String) : undefined;
    return {
      id,
      family: family as ModelFamily,
      architecture: field('architecture'),
      repo: field('repo', REPO),
      revision: field('revision', REVISION),
      license: field('license'),
      files,
      ...(typeof entry.note === 'string' ? { note: entry.note } : {}),
      ...(optionalStrings('sources') === undefined ? {} : { sources: optionalStrings('sources') }),
    };
  });
}

function parseFile(value: unknown, fail: (what: string) => never): RegistryFile {
  if (!isObject(value)) return fail(' must be an object {path, size, sha256}');
  const { path: file, size, sha256 } = value;
  if (typeof file !== 'string' || !FILE_PATH.test(file)) return fail(`.path must be a relative path: ${describeValue(file)}`);
  if (size !== null && !(typeof size === 'number' && Number.isSafeInteger(size) && size >= 0)) {
    return fail(`.size must be a byte count or null: ${describeValue(size)}`);
  }
  if (sha256 !== null && !(typeof sha256 === 'string' && SHA256.test(sha256))) {
    return fail(`.sha256 must be 64 lowercase hex digits or null: ${describeValue(sha256)}`);
  }
  return { path: file, size, sha256 };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
