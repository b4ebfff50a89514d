// The CUDA probe where no child process can be started (Node's permission model without
// --allow-child-process makes execFile / spawnSync throw ERR_ACCESS_DENIED): the probe gives a
// verdict instead of throwing, every time, and device 'auto' stays on the CPU.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { writeFakeCudaBuild } from './helpers/fake-cuda.js';

vi.mock('node:child_process', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:child_process')>();
  const denied = () => {
    throw Object.assign(new Error('Access to this API has been restricted'), { code: 'ERR_ACCESS_DENIED' });
  };
  return { ...real, execFile: denied, spawnSync: denied };
});

const dir = mkdtempSync(path.join(tmpdir(), 'omniseg-probe-spawn-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  vi.unstubAllEnvs();
});

describe('a probe that cannot start a process', () => {
  it('is a verdict, asynchronously and synchronously, and stays one', async () => {
    const { probeCudaAddon, probeCudaAddonSync } = await import('../lib/cuda-probe.js');
    const file = writeFakeCudaBuild(dir, 'available', 'denied-async');
    const reason = `cannot start a process to probe the CUDA build ${file} (Access to this API has been restricted)`;
    expect(await probeCudaAddon(file)).toEqual({ ok: false, reason });
    expect(await probeCudaAddon(file)).toEqual({ ok: false, reason });
    const other = writeFakeCudaBuild(dir, 'available', 'denied-sync');
    expect(probeCudaAddonSync(other)).toEqual({
      ok: false,
      reason: `cannot start a process to probe the CUDA build ${other} (Access to this API has been restricted)`,
    });
  });

  it("leaves device 'auto' on the CPU and cudaStatus() answering", async () => {
    const file = writeFakeCudaBuild(dir, 'available', 'denied-backends');
    vi.stubEnv('OMNISEG_CUDA_ADDON', file);
    vi.resetModules();
    const { cudaStatus, resolveBinding } = await import('../lib/backends.js');
    expect((await resolveBinding('auto')).device).toBe('cpu');
    expect(cudaStatus()).toMatchObject({ compiled: true, available: false, reason: expect.stringContaining('cannot start a process') });
  });
});
