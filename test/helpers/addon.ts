// The addon file this checkout loads: the local build, or the prebuild after `npm run prebuild`
// moved it (as node-gyp-build picks them).
import { createRequire } from 'node:module';
import { packageRoot } from '../../lib/package-root.js';

export function builtAddon(): string {
  const nodeGypBuild = createRequire(import.meta.url)('node-gyp-build') as { resolve(dir: string): string };
  return nodeGypBuild.resolve(packageRoot(import.meta.url));
}
