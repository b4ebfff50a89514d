// Locates the package root from a module's own file, so that the same code works from the .ts
// sources (lib/, run by vitest) and from the compiled output (dist/lib/, run by the CLI).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The first directory at or above `moduleUrl`'s directory that contains `marker`.
 * @throws Error when no such directory exists up to the file-system root.
 */
export function findPackageRoot(moduleUrl: string, marker: string): string {
  const start = path.dirname(fileURLToPath(moduleUrl));
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, marker))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`Cannot find the omniseg package root (no ${marker} above ${start})`);
  }
}
