// Stand-ins for a CUDA build of the addon, for the tests of the CUDA loader (lib/cuda-probe.ts,
// lib/backends.ts). Each is a CommonJS file that `require` loads like the real .node would, and
// behaves like one way a real build ends up on a machine: a usable GPU, no device, a missing
// libcublasLt, a crash while the driver initialises, a hang, garbage on stdout. Every load
// appends the loading process's pid to <dir>/<name>.loads, so a test can tell whether the probe's
// child process or the test process itself loaded the build.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const RECORD = `require('node:fs').appendFileSync(__filename.replace(/\\.js$/, '.loads'), process.pid + '\\n');\n`;

const DEVICE = {
  index: 0,
  name: 'Fake H100',
  computeCapability: '9.0',
  totalMemory: 80 * 2 ** 30,
  freeMemory: 79 * 2 ** 30,
  multiprocessors: 132,
};

export const FAKE_CUDA_BUILDS = {
  /** Loads and reports one device; hardwareThreads() is 99 so a test can tell it from the CPU build. */
  available:
    `module.exports = { hardwareThreads: () => 99, cudaInfo: () => (${JSON.stringify({
      compiled: true,
      available: true,
      driverVersion: 13000,
      runtimeVersion: 13000,
      devices: [DEVICE],
    })}) };\n`,
  /** Loads; the driver finds no device. */
  noDevice:
    `module.exports = { hardwareThreads: () => 99, cudaInfo: () => (${JSON.stringify({
      compiled: true,
      available: false,
      reason: 'no CUDA-capable device is detected',
      devices: [],
    })}) };\n`,
  /** As noDevice, after 400 ms of blocking work while loading. */
  slow:
    `Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 400);\n` +
    `module.exports = { cudaInfo: () => ({ compiled: true, available: false, reason: 'slow and no device', devices: [] }) };\n`,
  /** dlopen fails, as it does for a build whose libcublasLt is not on the loader path. */
  missingLibrary: `throw new Error('libcublasLt.so.13: cannot open shared object file: No such file or directory\\nmore');\n`,
  /** The process dies of a signal while loading (a crash in driver initialisation). */
  crash: `process.kill(process.pid, 'SIGSEGV');\n`,
  /** Never finishes loading. */
  hang: `for (;;) {}\n`,
  /** As available, after a banner on stdout while loading (as a library's or a preload's). */
  chatty:
    `process.stdout.write('[banner] injecting env (2) from .env\\n{"ok":false}\\n');\n` +
    `module.exports = { cudaInfo: () => ({ compiled: true, available: true, devices: [${JSON.stringify(DEVICE)}] }) };\n`,
  /** Writes something that is not a verdict and exits cleanly. */
  garbage: `process.stdout.write('hello'); process.exit(0);\n`,
  /** Exits with a status and a message before any verdict. */
  exits: `console.error('fatal: driver mismatch'); process.exit(3);\n`,
} as const;

export type FakeCudaBuild = keyof typeof FAKE_CUDA_BUILDS;

/** Writes fake build `kind` as <dir>/<name>.js (name defaults to kind) and returns its path. */
export function writeFakeCudaBuild(dir: string, kind: FakeCudaBuild, name: string = kind): string {
  const file = path.join(dir, `${name}.js`);
  writeFileSync(file, RECORD + FAKE_CUDA_BUILDS[kind]);
  return file;
}

/** Pids of the processes that loaded the fake build at `file`, in order. */
export function loadsOf(file: string): number[] {
  const log = file.replace(/\.js$/, '.loads');
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8').split('\n').filter(Boolean).map(Number);
}
