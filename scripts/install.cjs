#!/usr/bin/env node
// npm install hook: use a prebuilt addon when one matches this platform and loads here; otherwise
// build from source with node-gyp. A source build needs OpenBLAS (cblas) and nlohmann-json headers;
// on Debian/Ubuntu as root they are installed with apt-get, elsewhere the missing packages are named.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const log = (message) => console.error(`omniseg: ${message}`);

// The prebuild node-gyp-build picks for this platform (PREBUILDS_ONLY, read when node-gyp-build is
// first required: a local build in build/ does not count), resolved here, where the package
// manager's resolution works (Yarn's Plug'n'Play), and loaded in a child process: a prebuild that
// cannot load here (an older glibc) or that kills the process mapping it (a truncated file:
// SIGBUS) costs a source build, never this install. (main() sets PREBUILDS_ONLY.)

/** Loads `file` in a child process (without NODE_OPTIONS preloads); why it did not load, or undefined. */
function loadFails(file) {
  const r = spawnSync(process.execPath, ['-e', 'require(process.argv[1])', file], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
    timeout: 60_000,
  });
  if (r.status === 0) return undefined;
  if (r.error) return r.error.message;
  if (r.signal) return `the process that loaded it died of ${r.signal}: the file is damaged or truncated`;
  const line = (r.stderr || '').split('\n').find((l) => /Error/.test(l));
  return line ? line.trim() : `exit code ${r.status}`;
}

function prebuiltLoads() {
  let file;
  try {
    file = require('node-gyp-build').resolve(root);
  } catch {
    log(`no prebuilt binary for ${process.platform}-${process.arch}; building from source`);
    return false;
  }
  const why = loadFails(file);
  if (why !== undefined) {
    log(`the prebuilt binary ${path.relative(root, file)} does not load here (${why}); building from source`);
    return false;
  }
  // `npm rebuild` after the libraries a local build linked went away: node-gyp-build would keep
  // taking the broken local build over the prebuild.
  const local = path.join(root, 'build', 'Release', 'omniseg.node');
  if (fs.existsSync(local) && loadFails(local) !== undefined) {
    log(`removing ${path.relative(root, local)}, a local build that no longer loads; the prebuilt binary serves instead`);
    fs.rmSync(local, { force: true });
  }
  return true;
}

const SYSTEM_DEPS = [
  {
    deb: 'libopenblas-dev',
    rpm: 'openblas-devel',
    files: ['/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/cblas.h', '/usr/include/aarch64-linux-gnu/cblas.h', '/usr/include/openblas/cblas.h'],
  },
  { deb: 'nlohmann-json3-dev', rpm: 'json-devel', files: ['/usr/include/nlohmann/json.hpp'] },
];

function missingDeps() {
  return SYSTEM_DEPS.filter((d) => !d.files.some((f) => fs.existsSync(f)));
}

/** Runs a command with inherited output; a command that cannot start is said, not silently failed. */
function run(cmd, args, hint = '') {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, shell: false });
  if (r.error) log(`cannot run ${cmd} (${r.error.message})${hint}`);
  return r.status === 0;
}

/** Parallel compile jobs: JOBS / npm_config_jobs if set, else the cores, at most one per 512 MiB. */
function buildJobs() {
  const asked = Number.parseInt(process.env.JOBS || process.env.npm_config_jobs || '', 10);
  if (asked > 0) return asked;
  const constrained = process.constrainedMemory?.() || 0; // a container's limit (0: none known)
  const memory = constrained > 0 ? Math.min(constrained, os.totalmem()) : os.totalmem();
  return Math.max(1, Math.min(os.availableParallelism?.() ?? os.cpus().length, Math.floor(memory / 2 ** 29)));
}

/** node-gyp: the one npm runs install scripts with (npm_config_node_gyp), else from PATH. */
function nodeGyp(args) {
  const bundled = process.env.npm_config_node_gyp;
  if (bundled && fs.existsSync(bundled)) return run(process.execPath, [bundled, ...args]);
  return run('node-gyp', args, '; run the install through npm ("npm rebuild omniseg"), or put node-gyp on PATH');
}

function main() {
  if (process.env.OMNISEG_SKIP_BUILD === '1') process.exit(0);
  process.env.PREBUILDS_ONLY = '1';
  if (prebuiltLoads()) process.exit(0);

  let missing = missingDeps();
  if (missing.length > 0) {
    const canApt = process.getuid && process.getuid() === 0 && fs.existsSync('/usr/bin/apt-get');
    if (canApt) {
      const pkgs = missing.map((d) => d.deb);
      log(`installing build dependencies with apt-get: ${pkgs.join(' ')}`);
      run('apt-get', ['update', '-qq']);
      run('apt-get', ['install', '-y', '-qq', ...pkgs]);
      missing = missingDeps();
    }
    if (missing.length > 0) {
      log(
        `building from source needs the headers of OpenBLAS (cblas.h) and nlohmann-json; missing here:\n` +
          `  Debian/Ubuntu: sudo apt-get install ${missing.map((d) => d.deb).join(' ')}\n` +
          `  Fedora/RHEL:   sudo dnf install ${missing.map((d) => d.rpm).join(' ')}\n` +
          `then run: npm rebuild omniseg`,
      );
      process.exit(1);
    }
  }

  if (!nodeGyp(['rebuild', '-j', String(buildJobs())])) process.exit(1);
}

// Run by npm; required by the tests for the headers a source build needs.
if (require.main === module) main();
else module.exports = { missingDeps };
