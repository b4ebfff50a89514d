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
import { builtAddon } from './helpers/addon.js';

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
  const installed = '/app/node_modules/omniseg';
  const prebuild = `${installed}/prebuilds/linux-x64/omniseg.glibc.node`;

  it('names the file once and the first line of the cause', () => {
    expect(addonLoadError(new Error(`${prebuild}: invalid ELF header\nstack`), prebuild, installed)).toMatch(
      new RegExp(`^Cannot load the omniseg native addon ${prebuild} \\(invalid ELF header\\)\\. `),
    );
    expect(addonLoadError(new Error('libopenblas.so.0: cannot open shared object file'), prebuild, installed)).toContain(
      `${prebuild} (libopenblas.so.0: cannot open shared object file)`,
    );
  });

  it('gives the remedy that works where omniseg is', () => {
    // a damaged or unfit prebuild: npm rebuild cannot fetch it again, a reinstall does
    expect(addonLoadError(new Error('file too short'), prebuild, installed)).toContain('reinstall omniseg (remove node_modules/omniseg');
    // no build, or a local build that no longer loads: the install script
    const local = `${installed}/build/Release/omniseg.node`;
    for (const file of [undefined, local]) {
      const message = addonLoadError(new Error('No native build was found\n    loaded from: /x'), file, installed);
      expect(message).toContain('"npm rebuild omniseg"');
      expect(message).toContain('"pnpm approve-builds"');
    }
    // a checkout of the repository, where npm rebuild omniseg builds nothing
    expect(addonLoadError(new Error('No native build was found'), undefined, '/src/omniseg')).toMatch(
      /^Cannot load the omniseg native addon \(No native build was found\)\. Build it with "npm run build:native"/,
    );
  });
});

describe('assertElfComplete', () => {
  const addon = builtAddon();

  it('passes the built addon and leaves files that are not ELF to the loader', () => {
    expect(() => assertElfComplete(addon)).not.toThrow();
    expect(() => assertElfComplete(write(path.join(dir, 'text.node'), 'not a shared object'))).not.toThrow();
    expect(() => assertElfComplete(path.join(dir, 'missing.node'))).not.toThrow();
  });

  it('checks the loadable segments where the file has no section headers', () => {
    // e_shoff and e_shnum zeroed (as some tools write shared objects): only the program headers
    // bound the file, and a copy cut inside its last loadable segment is refused.
    const bytes = Buffer.from(readFileSync(addon));
    bytes.writeBigUInt64LE(0n, 40);
    bytes.writeUInt16LE(0, 60);
    const whole = path.join(dir, 'no-sections.node');
    writeFileSync(whole, bytes);
    expect(() => assertElfComplete(whole)).not.toThrow();
    const cut = path.join(dir, 'no-sections-cut.node');
    writeFileSync(cut, bytes.subarray(0, bytes.length >> 1));
    expect(() => assertElfComplete(cut)).toThrow(/truncated/);
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
