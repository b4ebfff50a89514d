// CPU or CUDA: the decisions of cudaStatus() / bindingFor() / resolveBinding() for each way a
// CUDA build can end up on a machine (fake builds named by OMNISEG_CUDA_ADDON, see
// helpers/fake-cuda.ts), and OMNISEG_DEVICE=cpu. The CPU build is the real addon; the CUDA
// build's probe is real too (a child process per build).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { loadsOf, writeFakeCudaBuild, type FakeCudaBuild } from './helpers/fake-cuda.js';

const dir = mkdtempSync(path.join(tmpdir(), 'omniseg-backends-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  vi.unstubAllEnvs();
});

let fresh = 0;
/** lib/backends.ts in a fresh module graph (no cached CUDA decision), with `kind` as the CUDA build. */
async function backendsWith(kind: FakeCudaBuild | 'none') {
  const file = kind === 'none' ? path.join(dir, 'not-built.node') : writeFakeCudaBuild(dir, kind, `${kind}-${fresh++}`);
  vi.stubEnv('OMNISEG_CUDA_ADDON', file);
  vi.resetModules();
  const { native } = await import('../lib/native.js');
  return { file, cpu: { binding: native(), device: 'cpu' }, ...(await import('../lib/backends.js')) };
}

describe('a CUDA build with a usable device', () => {
  it('is what auto and cuda pick, loaded in this process after the probe passed', async () => {
    const { file, cudaStatus, bindingFor } = await backendsWith('available');
    expect(cudaStatus()).toMatchObject({ compiled: true, available: true, devices: [{ name: 'Fake H100' }] });
    for (const device of ['auto', 'cuda'] as const) {
      const chosen = bindingFor(device);
      expect(chosen.device).toBe('cuda');
      expect(chosen.binding.hardwareThreads()).toBe(99);
    }
    const loads = loadsOf(file);
    expect(loads).toHaveLength(2); // the probe's child, then this process
    expect(loads[0]).not.toBe(process.pid);
    expect(loads[1]).toBe(process.pid);
  });

  it('is never used for device cpu', async () => {
    const { file, cpu, bindingFor } = await backendsWith('available');
    expect(bindingFor('cpu')).toEqual(cpu);
    expect(loadsOf(file)).toEqual([]);
  });

  it('is probed without blocking the event loop by resolveBinding', async () => {
    const { file, resolveBinding } = await backendsWith('available');
    const chosen = await resolveBinding('auto');
    expect(chosen.device).toBe('cuda');
    expect(loadsOf(file)).toHaveLength(2);
  });

  it('is reported by cudaStatusAsync without blocking the event loop', async () => {
    const { file, cudaStatusAsync } = await backendsWith('slow'); // 400 ms of blocking work in the child
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const status = await cudaStatusAsync();
    clearInterval(timer);
    expect(status).toEqual({ compiled: true, available: false, reason: 'slow and no device', devices: [] });
    expect(ticks).toBeGreaterThanOrEqual(10);
    expect(loadsOf(file)).toHaveLength(1); // the probe's child only: no usable device
  });
});

describe('falling back to the CPU', () => {
  const cases: { kind: FakeCudaBuild; reason: (file: string) => string }[] = [
    { kind: 'noDevice', reason: () => 'no CUDA-capable device is detected' },
    {
      kind: 'missingLibrary',
      reason: (f) => `cannot load the CUDA build ${f} (libcublasLt.so.13: cannot open shared object file: No such file or directory)`,
    },
    { kind: 'crash', reason: (f) => `the CUDA build ${f} crashed the process that probed it (SIGSEGV)` },
    { kind: 'exits', reason: (f) => `probing the CUDA build ${f} failed (exit code 3: fatal: driver mismatch)` },
  ];

  it.each(cases)('$kind: auto picks the CPU, cuda throws, cudaStatus() says why', async ({ kind, reason }) => {
    const { file, cpu, cudaStatus, bindingFor, resolveBinding } = await backendsWith(kind);
    expect(cudaStatus()).toEqual({ compiled: true, available: false, reason: reason(file), devices: [] });
    expect(bindingFor('auto')).toEqual(cpu);
    expect(await resolveBinding('auto')).toEqual(cpu);
    expect(() => bindingFor('cuda')).toThrow(new Error(`The CUDA backend is not available: ${reason(file)}`));
    // One probe, in a child process; this process never loaded the build.
    expect(loadsOf(file)).toHaveLength(1);
    expect(loadsOf(file)).not.toContain(process.pid);
  });

  it('no CUDA build installed: not compiled, and the reason names what is missing', async () => {
    const { file, cudaStatus, bindingFor } = await backendsWith('none');
    const reason = `OMNISEG_CUDA_ADDON names ${file}, which does not exist`;
    expect(cudaStatus()).toEqual({ compiled: false, available: false, reason, devices: [] });
    expect(bindingFor('auto').device).toBe('cpu');
    expect(() => bindingFor('cuda')).toThrow(`The CUDA backend is not available: ${reason}`);
  });
});

describe('OMNISEG_DEVICE=cpu', () => {
  it('turns the CUDA backend off without probing it, even with a usable device', async () => {
    const { file, cpu, cudaStatus, bindingFor, resolveBinding } = await backendsWith('available');
    vi.stubEnv('OMNISEG_DEVICE', 'cpu');
    // compiled: a CUDA build is installed (found, not probed), as CudaInfo.compiled documents.
    expect(cudaStatus()).toEqual({ compiled: true, available: false, reason: 'OMNISEG_DEVICE=cpu', devices: [] });
    expect(bindingFor('auto')).toEqual(cpu);
    expect(await resolveBinding('auto')).toEqual(cpu);
    expect(() => bindingFor('cuda')).toThrow('The CUDA backend is not available: OMNISEG_DEVICE=cpu');
    expect(loadsOf(file)).toEqual([]);
  });
});

describe('OMNISEG_DEVICE=cpu without a CUDA build', () => {
  it('reports compiled: false', async () => {
    const { cudaStatus } = await backendsWith('none');
    vi.stubEnv('OMNISEG_DEVICE', 'cpu');
    expect(cudaStatus()).toEqual({ compiled: false, available: false, reason: 'OMNISEG_DEVICE=cpu', devices: [] });
  });
});
