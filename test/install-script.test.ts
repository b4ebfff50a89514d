// scripts/install.cjs, the package's install hook, on a copy of the package with a stand-in
// node-gyp (npm_config_node_gyp, as npm and pnpm set it) that records how it was called: a
// prebuild that loads is kept; one that does not (truncated: it would kill the process mapping
// it) or none at all leads to a source build, said on stderr; JOBS sets its parallelism; a local
// build that no longer loads is removed when the prebuild serves; a node-gyp that cannot start is
// named with what to do.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtAddon } from './helpers/addon.js';

const root = path.resolve(import.meta.dirname, '..');
const dir = mkdtempSync(path.join(tmpdir(), 'omniseg-install-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const fakeNodeGyp = path.join(dir, 'fake-node-gyp.cjs');
writeFileSync(fakeNodeGyp, "require('node:fs').writeFileSync(process.env.NODE_GYP_CALLS, JSON.stringify(process.argv.slice(2)));\n");

let count = 0;
/** A copy of the package: the install script, package.json, node_modules, and the given prebuild. */
function pkg(prebuild: Buffer | undefined, localBuild?: string): string {
  const p = path.join(dir, `pkg-${count++}`);
  mkdirSync(path.join(p, 'scripts'), { recursive: true });
  copyFileSync(path.join(root, 'scripts', 'install.cjs'), path.join(p, 'scripts', 'install.cjs'));
  writeFileSync(path.join(p, 'package.json'), JSON.stringify({ name: 'omniseg', version: '0.0.0' }));
  symlinkSync(path.join(root, 'node_modules'), path.join(p, 'node_modules'));
  if (prebuild !== undefined) {
    mkdirSync(path.join(p, 'prebuilds', `${process.platform}-${process.arch}`), { recursive: true });
    writeFileSync(path.join(p, 'prebuilds', `${process.platform}-${process.arch}`, 'omniseg.glibc.node'), prebuild);
  }
  if (localBuild !== undefined) {
    mkdirSync(path.join(p, 'build', 'Release'), { recursive: true });
    writeFileSync(path.join(p, 'build', 'Release', 'omniseg.node'), localBuild);
  }
  return p;
}

/** Runs the install script in `p`; node-gyp's arguments, if it was called. */
function install(p: string, env: Record<string, string | undefined> = {}) {
  const calls = path.join(p, 'node-gyp-calls.json');
  const r = spawnSync(process.execPath, ['scripts/install.cjs'], {
    cwd: p,
    encoding: 'utf8',
    env: { ...process.env, npm_config_node_gyp: fakeNodeGyp, NODE_GYP_CALLS: calls, JOBS: undefined, npm_config_jobs: undefined, ...env },
  });
  const nodeGyp = existsSync(calls) ? (JSON.parse(readFileSync(calls, 'utf8')) as string[]) : undefined;
  return { status: r.status, stderr: r.stderr, nodeGyp };
}

const addon = readFileSync(builtAddon());
// CI and this machine have the source build's headers; elsewhere the script stops before node-gyp.
const { missingDeps } = createRequire(import.meta.url)('../scripts/install.cjs') as { missingDeps(): unknown[] };
const headers = missingDeps().length === 0;

describe('scripts/install.cjs', () => {
  it('keeps a prebuild that loads, building nothing', () => {
    expect(install(pkg(addon))).toEqual({ status: 0, stderr: '', nodeGyp: undefined });
  });

  it.runIf(headers)('builds from source when the prebuild would kill the process that loads it', () => {
    const r = install(pkg(addon.subarray(0, 4096)));
    expect(r.stderr).toContain(
      `the prebuilt binary prebuilds/${process.platform}-${process.arch}/omniseg.glibc.node does not load here (the process that loaded it died of SIGBUS: the file is damaged or truncated); building from source`,
    );
    expect(r.nodeGyp?.slice(0, 2)).toEqual(['rebuild', '-j']);
    expect(Number(r.nodeGyp?.[2])).toBeGreaterThanOrEqual(1);
    expect(r.status).toBe(0);
  });

  it.runIf(headers)('builds from source without a prebuild, with JOBS jobs', () => {
    const r = install(pkg(undefined), { JOBS: '3' });
    expect(r.stderr).toContain(`no prebuilt binary for ${process.platform}-${process.arch}; building from source`);
    expect(r.nodeGyp).toEqual(['rebuild', '-j', '3']);
  });

  it('removes a local build that no longer loads when the prebuild serves', () => {
    const p = pkg(addon, 'not a shared object');
    const r = install(p);
    expect(r.stderr).toContain('removing build/Release/omniseg.node, a local build that no longer loads');
    expect(existsSync(path.join(p, 'build', 'Release', 'omniseg.node'))).toBe(false);
    expect(r.nodeGyp).toBeUndefined();
    // a local build that loads stays
    const kept = pkg(addon);
    mkdirSync(path.join(kept, 'build', 'Release'), { recursive: true });
    copyFileSync(builtAddon(), path.join(kept, 'build', 'Release', 'omniseg.node'));
    expect(install(kept).stderr).toBe('');
    expect(existsSync(path.join(kept, 'build', 'Release', 'omniseg.node'))).toBe(true);
  });

  it.runIf(headers)('says what to do when node-gyp cannot start', () => {
    const r = install(pkg(undefined), { npm_config_node_gyp: '', PATH: path.dirname(process.execPath) });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot run node-gyp \(spawnSync node-gyp ENOENT\); run the install through npm \("npm rebuild omniseg"\)/);
  });
});
