// sharp, loaded on first use rather than when omniseg is imported: where sharp's own binaries are
// missing (installed with --omit=optional, node_modules copied from another platform) importing
// omniseg and `omniseg info` still work, and the first image operation throws sharp's own message,
// which says how to install it.
import { createRequire } from 'node:module';
import type Sharp from 'sharp';

let loaded: typeof Sharp | undefined;

/** sharp(input, options), as the default export of the 'sharp' package. */
export function sharp(...args: Parameters<typeof Sharp>): ReturnType<typeof Sharp> {
  loaded ??= createRequire(import.meta.url)('sharp') as typeof Sharp;
  return loaded(...args);
}
