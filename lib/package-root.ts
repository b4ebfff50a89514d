// Locates omniseg's package root (its prebuilds, registry and package.json) from a module's own
// file, so that the same code works from the .ts sources (lib/, run by vitest), from the compiled
// output (dist/lib/, run by the CLI), and from an application's bundle (esbuild, webpack), where
// the module's file is the bundle and omniseg is found through the application's node_modules.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Whether `dir` holds omniseg's own package.json (not an application's or a dependency's). */
function isOmnisegRoot(dir: string): boolean {
  const file = path.join(dir, 'package.json');
  if (!existsSync(file)) return false;
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown }).name === 'omniseg';
  } catch {
    return false;
  }
}

/**
 * omniseg's package root: the first directory at or above `moduleUrl`'s directory whose
 * package.json is named "omniseg", else where `omniseg/package.json` resolves from there.
 * @throws Error when neither finds it.
 */
export function packageRoot(moduleUrl: string): string {
  const start = path.dirname(fileURLToPath(moduleUrl));
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (isOmnisegRoot(dir)) return dir;
    if (path.dirname(dir) === dir) break;
  }
  try {
    return path.dirname(createRequire(moduleUrl).resolve('omniseg/package.json'));
  } catch {
    throw new Error(
      `Cannot find the omniseg package: no package.json named "omniseg" above ${start}, and "omniseg/package.json" does not resolve from there`,
    );
  }
}
