// Reading a model's text files (JSON configs, tokenizer files, a model registry) so that a file
// that is not one cannot hang or exhaust the process.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/** The largest checkpoint text file read (configs are KiB; CLIP's vocab.json ~1 MB, tokenizer.json ~3 MB). */
export const MAX_MODEL_TEXT_BYTES = 64 * 1024 * 1024;

/**
 * A checkpoint's text file (JSON config, tokenizer file) as UTF-8, or undefined where it does not
 * exist. Only a regular file of at most MAX_MODEL_TEXT_BYTES is read, opened non-blocking: a FIFO
 * in its place cannot hang the load, nor a link to /dev/zero fill memory.
 * @throws Error naming the file when it cannot be read, is not a regular file or is too large
 */
export async function readModelText(file: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${file}: cannot read the file (${(error as Error).message})`);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new Error(`${file}: cannot read the file (not a regular file)`);
    if (info.size > MAX_MODEL_TEXT_BYTES) {
      throw new Error(`${file}: ${info.size} bytes, more than the ${MAX_MODEL_TEXT_BYTES} bytes a model's text file may have`);
    }
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * Refuses a checkpoint whose config.json names another model_type, before any other of its files
 * is read: a SAM directory given to the CLIPSeg loader is named as such, rather than reported by
 * the first CLIPSeg file it lacks. A missing or malformed config.json is left to the native
 * loader, which reports it. (The message is the native loader's, config.cc.)
 * @throws Error naming config.json and its model_type
 */
export async function checkModelType(dir: string, expected: string, name: string): Promise<void> {
  const file = `${dir}/config.json`;
  let modelType: unknown;
  try {
    modelType = (JSON.parse((await readModelText(file)) ?? '{}') as { model_type?: unknown }).model_type;
  } catch {
    return;
  }
  if (typeof modelType === 'string' && modelType !== expected) {
    throw new Error(`${file}: model_type ${JSON.stringify(modelType)} is not a ${name} checkpoint (expected ${JSON.stringify(expected)})`);
  }
}
