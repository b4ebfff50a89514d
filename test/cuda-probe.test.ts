// The CUDA build's child-process probe: each way a build can end up on a machine (usable, no
// device, missing library, crash, hang, garbage, error exit) gives the right verdict, in a child
// process, never in this one; verdicts are cached per file; findCudaAddon's search order.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { findCudaAddon, probeCudaAddon, probeCudaAddonSync, type CudaProbe } from '../lib/cuda-probe.js';
import { loadsOf, writeFakeCudaBuild, type FakeCudaBuild } from './helpers/fake-cuda.js';

const dir = mkdtempSync(path.join(tmpdir(), 'omniseg-cuda-probe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  vi.unstubAllEnvs();
});

const variants = [
  { name: 'probeCudaAddon', probe: (file: string, timeoutMs?: number) => probeCudaAddon(file, timeoutMs) },
  { name: 'probeCudaAddonSync', probe: (file: string, timeoutMs?: number) => Promise.resolve(probeCudaAddonSync(file, timeoutMs)) },
];

describe.each(variants)('$name', ({ name, probe }) => {
  /** Probes a fresh copy of fake build `kind` and checks that only a child process loaded it. */
  async function probeFake(kind: FakeCudaBuild, timeoutMs?: number): Promise<{ file: string; verdict: CudaProbe }> {
    const file = writeFakeCudaBuild(dir, kind, `${name}-${kind}`);
    const verdict = await probe(file, timeoutMs);
    const loads = loadsOf(file);
    if (kind !== 'hang') expect(loads).toHaveLength(1);
    expect(loads).not.toContain(process.pid);
    return { file, verdict };
  }

  it('reports the build\'s own CudaInfo when it loads', async () => {
    const { verdict } = await probeFake('available');
    expect(verdict).toEqual({
      ok: true,
      info: expect.objectContaining({ compiled: true, available: true, devices: [expect.objectContaining({ name: 'Fake H100' })] }),
    });
  });

  it('passes on a loaded build that finds no device', async () => {
    const { verdict } = await probeFake('noDevice');
    expect(verdict).toEqual({
      ok: true,
      info: { compiled: true, available: false, reason: 'no CUDA-capable device is detected', devices: [] },
    });
  });

  it('names the load error (first line) when the build cannot load', async () => {
    const { file, verdict } = await probeFake('missingLibrary');
    expect(verdict).toEqual({
      ok: false,
      reason: `cannot load the CUDA build ${file} (libcublasLt.so.13: cannot open shared object file: No such file or directory)`,
    });
  });

  it('names dlopen\'s reason for a file that is not a shared library', async () => {
    const file = path.join(dir, `${name}-not-elf.node`);
    writeFileSync(file, 'This is a text file, not an ELF shared object; dlopen must refuse it.\n'.repeat(4));
    expect(await probe(file)).toEqual({ ok: false, reason: `cannot load the CUDA build ${file} (invalid ELF header)` });
  });

  it('survives a build that crashes the probing process, naming the signal', async () => {
    const { file, verdict } = await probeFake('crash');
    expect(verdict).toEqual({ ok: false, reason: `the CUDA build ${file} crashed the process that probed it (SIGSEGV)` });
  });

  it('gives up on a build that hangs after the timeout', async () => {
    const started = performance.now();
    const { file, verdict } = await probeFake('hang', 500);
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(verdict).toEqual({
      ok: false,
      reason: `the CUDA build ${file} did not finish loading within 0.5 s (probed in a child process)`,
    });
  });

  it('finds the verdict after what else the child printed', async () => {
    const { verdict } = await probeFake('chatty');
    expect(verdict).toEqual({ ok: true, info: expect.objectContaining({ available: true }) });
  });

  it('keeps NODE_OPTIONS preloads out of the probing process', async () => {
    const preload = path.join(dir, `${name}-preload.cjs`);
    writeFileSync(preload, "process.stdout.write('preloaded\\n'); process.exit(4);\n");
    vi.stubEnv('NODE_OPTIONS', `--require ${preload}`);
    const { verdict } = await probeFake('available');
    expect(verdict).toMatchObject({ ok: true });
  });

  it('rejects output that is not a verdict', async () => {
    const { file, verdict } = await probeFake('garbage');
    expect(verdict).toEqual({ ok: false, reason: `probing the CUDA build ${file} gave no verdict (output: "hello")` });
  });

  it('names the exit code and message of a probe that exits with an error', async () => {
    const { file, verdict } = await probeFake('exits');
    expect(verdict).toEqual({
      ok: false,
      reason: `probing the CUDA build ${file} failed (exit code 3: fatal: driver mismatch)`,
    });
  });

  it('probes each file once per process', async () => {
    const file = writeFakeCudaBuild(dir, 'noDevice', `${name}-cached`);
    const first = await probe(file);
    const second = await probe(file);
    expect(second).toBe(first);
    expect(loadsOf(file)).toHaveLength(1);
  });
});

describe('probeCudaAddon', () => {
  it('shares one child process between concurrent probes of a file', async () => {
    const file = writeFakeCudaBuild(dir, 'noDevice', 'concurrent');
    const [a, b] = await Promise.all([probeCudaAddon(file), probeCudaAddon(file)]);
    expect(b).toBe(a);
    expect(loadsOf(file)).toHaveLength(1);
  });

  it('keeps the event loop running while the child loads the build', async () => {
    const file = writeFakeCudaBuild(dir, 'slow');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const verdict = await probeCudaAddon(file);
    clearInterval(timer);
    expect(verdict.ok).toBe(true);
    expect(ticks).toBeGreaterThanOrEqual(10);
  });

  it('answers the synchronous probe from the cache it filled', async () => {
    const file = writeFakeCudaBuild(dir, 'available', 'async-then-sync');
    const verdict = await probeCudaAddon(file);
    expect(probeCudaAddonSync(file)).toBe(verdict);
    expect(loadsOf(file)).toHaveLength(1);
  });
});

describe('findCudaAddon', () => {
  it('takes OMNISEG_CUDA_ADDON when it names a file', () => {
    const file = writeFakeCudaBuild(dir, 'noDevice', 'named');
    vi.stubEnv('OMNISEG_CUDA_ADDON', file);
    expect(findCudaAddon()).toEqual({ file });
  });

  it('says so when OMNISEG_CUDA_ADDON names a missing file', () => {
    const file = path.join(dir, 'nowhere.node');
    vi.stubEnv('OMNISEG_CUDA_ADDON', file);
    expect(findCudaAddon()).toEqual({ reason: `OMNISEG_CUDA_ADDON names ${file}, which does not exist` });
  });

  it('looks for the local CUDA build, then the CUDA prebuild', () => {
    vi.stubEnv('OMNISEG_CUDA_ADDON', '');
    const root = mkdtempSync(path.join(dir, 'root-'));
    const local = path.join(root, 'build-cuda', 'Release', 'omniseg.node');
    const prebuild = path.join(root, 'prebuilds', 'cuda', `${process.platform}-${process.arch}`, 'omniseg.node');
    expect(findCudaAddon(root)).toEqual({
      reason: `no CUDA build (build-cuda/Release/omniseg.node) or CUDA prebuild (prebuilds/cuda/${process.platform}-${process.arch}/omniseg.node) found in ${root}`,
    });
    for (const file of [prebuild, local]) {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, '');
    }
    expect(findCudaAddon(root)).toEqual({ file: local }); // both: the local build
    rmSync(local);
    expect(findCudaAddon(root)).toEqual({ file: prebuild });
    // and this package's own root by default
    const own = path.resolve(import.meta.dirname, '..');
    expect(findCudaAddon()).toEqual(findCudaAddon(own));
  });
});
