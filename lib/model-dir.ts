// The checks on a checkpoint directory that come before the native loader (which reports what
// is wrong inside it).
import { stat } from 'node:fs/promises';

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
