// Finding and loading the addon. packageRoot: omniseg's own package.json found above a module (sources, dist/), or through an
// application's node_modules when the module is a bundle living elsewhere; an application's own
// package.json or binding.gyp is never taken for omniseg's. addonLoadError: what a failed load
// says. assertElfComplete: a truncated addon is refused before dlopen maps it.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { assertElfComplete } from '../lib/elf-check.js';
import { addonLoadError } from '../lib/native.js';
import { packageRoot } from '../lib/package-root.js';

const dir = mkdtempSync(path.join(tmpdir(), 'omniseg-package-root-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(file: string, text: string): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}
const url = (file: string) => pathToFileURL(file).href;

describe('packageRoot', () => {
  it('is this checkout from its sources', () => {
    expect(packageRoot(import.meta.url)).toBe(path.resolve(import.meta.dirname, '..'));
  });

  it("finds omniseg through an application's node_modules from a bundle, past the application's own files", () => {
    const app = path.join(dir, 'app');
    write(path.join(app, 'package.json'), JSON.stringify({ name: 'my-app', version: '1.0.0' }));
    write(path.join(app, 'binding.gyp'), '{}');
    write(path.join(app, 'node_modules', 'omniseg', 'package.json'), JSON.stringify({ name: 'omniseg', version: '0.1.0' }));
    const bundle = write(path.join(app, 'dist', 'server.mjs'), '');
    expect(packageRoot(url(bundle))).toBe(path.join(app, 'node_modules', 'omniseg'));
  });

  it('says where it looked when omniseg is nowhere', () => {
    const lone = write(path.join(dir, 'lone', 'bundle.mjs'), '');
    expect(() => packageRoot(url(lone))).toThrow(
      `Cannot find the omniseg package: no package.json named "omniseg" above ${path.dirname(lone)}, and "omniseg/package.json" does not resolve from there`,
    );
  });
});

describe('addonLoadError', () => {
  it('names the file once, the first line of the cause, and the remedy', () => {
    const file = '/app/node_modules/omniseg/prebuilds/linux-x64/omniseg.glibc.node';
    const message = addonLoadError(new Error(`${file}: invalid ELF header\nstack`), file);
    expect(message).toMatch(new RegExp(`^Cannot load the omniseg native addon ${file} \\(invalid ELF header\\)\\. `));
    expect(message).toContain('"npm rebuild omniseg"');
    expect(message).toContain('"pnpm approve-builds"');
    expect(addonLoadError(new Error('libopenblas.so.0: cannot open shared object file'), file)).toContain(
      `${file} (libopenblas.so.0: cannot open shared object file)`,
    );
    expect(addonLoadError(new Error('No native build was found for platform=linux arch=x64\n    loaded from: /x'), undefined)).toMatch(
      /^Cannot load the omniseg native addon \(No native build was found for platform=linux arch=x64\)\. /,
    );
  });
});

describe('assertElfComplete', () => {
  const addon = path.join(import.meta.dirname, '..', 'build', 'Release', 'omniseg.node');

  it('passes the built addon and leaves files that are not ELF to the loader', () => {
    expect(() => assertElfComplete(addon)).not.toThrow();
    expect(() => assertElfComplete(write(path.join(dir, 'text.node'), 'not a shared object'))).not.toThrow();
    expect(() => assertElfComplete(path.join(dir, 'missing.node'))).not.toThrow();
  });

  it('refuses a truncated copy, which dlopen would map and SIGBUS on', () => {
    const bytes = readFileSync(addon);
    for (const keep of [4096, bytes.length >> 1, bytes.length - 1]) {
      const file = path.join(dir, `truncated-${keep}.node`);
      writeFileSync(file, bytes.subarray(0, keep));
      expect(() => assertElfComplete(file)).toThrow(new RegExp(`^${file}: truncated \\(${keep} bytes; its headers and loadable segments end at ${bytes.length}\\)$`));
    }
  });
});
