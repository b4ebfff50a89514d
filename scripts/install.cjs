#!/usr/bin/env node
// npm install hook: use a prebuilt addon when one matches this platform; otherwise build from
// source with node-gyp. A source build needs OpenBLAS (cblas) and nlohmann-json headers; on
// Debian/Ubuntu as root they are installed with apt-get, elsewhere the missing packages are named.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function prebuiltLoads() {
  let file;
  try {
    file = require('node-gyp-build').resolve(root);
  } catch {
    return false; // no prebuild for this platform, architecture and libc
  }
  // node-gyp-build.resolve also finds a previous local build; only a prebuild counts here.
  if (!file.includes(`${path.sep}prebuilds${path.sep}`)) return false;
  try {
    require(file);
    return true;
  } catch (error) {
    // e.g. a glibc older than the one the prebuild was linked against
    const reason = String(error && error.message ? error.message : error).split('\n', 1)[0];
    console.error(`omniseg: the prebuilt binary ${path.relative(root, file)} does not load here (${reason}); building from source`);
    return false;
  }
}

const SYSTEM_DEPS = [
  { pkg: 'libopenblas-dev', files: ['/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/cblas.h', '/usr/include/aarch64-linux-gnu/cblas.h', '/usr/include/openblas/cblas.h'] },
  { pkg: 'nlohmann-json3-dev', files: ['/usr/include/nlohmann/json.hpp'] },
];

function missingDeps() {
  return SYSTEM_DEPS.filter((d) => !d.files.some((f) => fs.existsSync(f))).map((d) => d.pkg);
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, shell: false });
  return r.status === 0;
}

if (process.env.OMNISEG_SKIP_BUILD === '1') process.exit(0);
if (prebuiltLoads()) process.exit(0);

let missing = missingDeps();
if (missing.length > 0) {
  const canApt = process.getuid && process.getuid() === 0 && fs.existsSync('/usr/bin/apt-get');
  if (canApt) {
    console.log(`omniseg: installing build dependencies with apt-get: ${missing.join(' ')}`);
    run('apt-get', ['update', '-qq']);
    run('apt-get', ['install', '-y', '-qq', ...missing]);
    missing = missingDeps();
  }
  if (missing.length > 0) {
    console.error(
      `omniseg: no prebuilt binary for ${process.platform}-${process.arch}, and building from source ` +
        `needs these system packages: ${missing.join(' ')}\n` +
        `  Debian/Ubuntu: sudo apt-get install ${missing.join(' ')}`,
    );
    process.exit(1);
  }
}

const jobs = String(Math.max(1, require('node:os').availableParallelism?.() ?? 2));
if (!run('node-gyp', ['rebuild', '-j', jobs])) process.exit(1);
