// The checks on a checkpoint directory that come before the native loader (which reports what
// is wrong inside it), and the one place a `model` option becomes a directory: a path that exists
// is used as it is; otherwise a model registry id resolves to its cache directory, pulled on
// first use (lib/models).
import { stat } from 'node:fs/promises';
import { findRegistryModel, modelRegistry, type ModelFamily } from './models/registry.js';
import { pullModel } from './models/pull.js';
import { progressReporter } from './models/progress.js';

/** A clear error for a model path that is missing or not a directory. */
export async function assertModelDirectory(dir: string): Promise<void> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(dir)).isDirectory();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`Model directory not found: ${dir}`);
    throw new Error(`Cannot read model directory ${dir}: ${(error as Error).message}`);
  }
  if (!isDirectory) throw new Error(`Model path is not a directory: ${dir}`);
}

const LOADERS: Record<ModelFamily, string> = { sam: 'Segmenter', clipseg: 'Referrer' };

/**
 * For a bare name that is neither a directory nor a registry id (a mistyped id, most likely):
 * the ids the loader takes, and the nearest one when it is a few edits away.
 */
async function registryHint(model: string, family: ModelFamily): Promise<string> {
  const ids = [...(await modelRegistry()).values()].filter((m) => m.family === family).map((m) => m.id);
  if (ids.length === 0) return '';
  const nearest = ids
    .map((id) => ({ id, distance: editDistance(model.toLowerCase(), id.toLowerCase()) }))
    .sort((a, b) => a.distance - b.distance)[0];
  const guess = nearest.distance <= Math.max(2, Math.floor(nearest.id.length / 4)) ? `; did you mean ${nearest.id}?` : '';
  return ` (nor a registry id: ${LOADERS[family]} takes ${ids.join(', ')}${guess})`;
}

/** Levenshtein distance (insertions, deletions, substitutions). */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length];
}

/**
 * The checkpoint directory of `model`: the path itself when it exists, else the cache directory
 * of the registry model of that id (downloaded on first use, with progress on stderr; a model
 * already in the cache loads silently).
 * @param family the loader's model family; a registry id of another family is an error
 * @throws Error for a path that is neither a directory nor a registry id, or a failed pull
 */
export async function resolveModelDirectory(model: string, family: ModelFamily): Promise<string> {
  const exists = await stat(model).then(() => true, () => false);
  let entry;
  try {
    entry = exists ? undefined : await findRegistryModel(model);
  } catch (error) {
    // a mistyped path is the likelier mistake; the broken registry is said too
    throw new Error(`Model directory not found: ${model} (nor a registry id: ${(error as Error).message})`);
  }
  if (entry === undefined) {
    if (!exists && !/[\\/]/.test(model)) throw new Error(`Model directory not found: ${model}${await registryHint(model, family)}`);
    await assertModelDirectory(model);
    return model;
  }
  if (entry.family !== family) {
    throw new Error(`Model ${model} is a ${entry.family} model: load it with ${LOADERS[entry.family]}, not ${LOADERS[family]}`);
  }
  const stderr = process.stderr;
  const report = progressReporter({ write: (text) => stderr.write(text), tty: stderr.isTTY === true });
  const { dir } = await pullModel(model, { onEvent: (m, event) => event.type !== 'cached' && report(m, event) });
  return dir;
}
