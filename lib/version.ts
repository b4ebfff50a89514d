// The package's version, read from its package.json.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from './package-root.js';

let cached: string | undefined;

/** omniseg's version (package.json "version"). */
export function packageVersion(): string {
  if (cached === undefined) {
    const file = path.join(packageRoot(import.meta.url), 'package.json');
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown };
    cached = typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  }
  return cached;
}
