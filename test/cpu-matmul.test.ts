// The cpuMatmul load option (LoadOptions / ReferrerLoadOptions, --cpu-matmul) on the real addon
// with the tiny fixtures: validated in TypeScript before the addon is touched, passed through,
// and reported as what runs: 'fp32' when asked for, and for the default 'bf16x3' only on a CPU
// with AMX (so either value here, the same as an explicit 'bf16x3'). Numerical parity of the two
// paths is the native tests' job. Skipped when the native addon is not built.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Referrer, Segmenter, type CpuMatmul } from '../lib/index.js';
import { createServer } from '../lib/server/index.js';
import { run } from './helpers/cli.js';
import { CPU_MATMUL_BF16X3, FIXTURES, MODEL_DIR, addonAvailable } from './helpers/fixtures.js';

const CLIPSEG_DIR = path.join(FIXTURES, '..', 'clipseg-tiny', 'model');
const IMAGE = path.join(FIXTURES, 'small.png');
const BAD_VALUE = new RangeError("Expected one of 'bf16x3', 'fp32' for cpuMatmul but received \"bf16\" of type string");
const BAD_TYPE = new TypeError("Expected one of 'bf16x3', 'fp32' for cpuMatmul but received 1 of type number");

describe.skipIf(!addonAvailable())('cpuMatmul on the real addon', () => {
  /** What the CPU runs for the default (the same for every load in this process). */
  let defaultMatmul: CpuMatmul;
  beforeAll(async () => {
    const segmenter = await Segmenter.load({ model: MODEL_DIR, device: 'cpu', threads: 1 });
    defaultMatmul = segmenter.cpuMatmul;
    segmenter.dispose();
  });

  describe('Segmenter.load cpuMatmul', () => {
    const loaded: Segmenter[] = [];
    const load = async (cpuMatmul?: CpuMatmul) => {
      const segmenter = await Segmenter.load({ model: MODEL_DIR, device: 'cpu', threads: 1, cpuMatmul });
      loaded.push(segmenter);
      return segmenter;
    };
    afterAll(() => loaded.forEach((s) => s.dispose()));

    it("'fp32' runs fp32, and the model config says so", async () => {
      const segmenter = await load('fp32');
      expect(segmenter.cpuMatmul).toBe('fp32');
      expect(segmenter.config.cpuMatmul).toBe('fp32');
    });

    it("the default is 'bf16x3', which runs as bf16x3 on an AMX CPU and as fp32 elsewhere", async () => {
      expect(defaultMatmul).toBe(CPU_MATMUL_BF16X3); // (bf16x3 exactly where /proc/cpuinfo lists amx_bf16)
      expect((await load('bf16x3')).cpuMatmul).toBe(defaultMatmul);
      expect((await load(undefined)).cpuMatmul).toBe(defaultMatmul);
    });

    it('validates the option before loading', async () => {
      await expect(Segmenter.load({ model: MODEL_DIR, cpuMatmul: 'bf16' as CpuMatmul })).rejects.toThrow(BAD_VALUE);
      await expect(Segmenter.load({ model: MODEL_DIR, cpuMatmul: 1 as never })).rejects.toThrow(BAD_TYPE);
    });
  });

  describe('Referrer.load cpuMatmul', () => {
    it("'fp32' runs fp32; the default runs what Segmenter's does", async () => {
      const fp32 = await Referrer.load({ model: CLIPSEG_DIR, device: 'cpu', threads: 1, cpuMatmul: 'fp32' });
      const byDefault = await Referrer.load({ model: CLIPSEG_DIR, device: 'cpu', threads: 1 });
      try {
        expect([fp32.cpuMatmul, fp32.config.cpuMatmul]).toEqual(['fp32', 'fp32']);
        expect(byDefault.cpuMatmul).toBe(defaultMatmul);
      } finally {
        fp32.dispose();
        byDefault.dispose();
      }
    });

    it('validates the option before loading', async () => {
      await expect(Referrer.load({ model: CLIPSEG_DIR, cpuMatmul: 'bf16' as CpuMatmul })).rejects.toThrow(BAD_VALUE);
      await expect(Referrer.load({ model: CLIPSEG_DIR, cpuMatmul: 1 as never })).rejects.toThrow(BAD_TYPE);
    });
  });

  describe('createServer cpuMatmul', () => {
    it('loads SAM and the referrer with it', async () => {
      const sam = vi.spyOn(Segmenter, 'load');
      const clipseg = vi.spyOn(Referrer, 'load');
      const server = await createServer({
        model: MODEL_DIR,
        referrer: CLIPSEG_DIR,
        device: 'cpu',
        cpuMatmul: 'fp32',
        threads: 1,
        processMetrics: false,
      });
      try {
        await server.loaded;
        expect(sam).toHaveBeenCalledWith(expect.objectContaining({ cpuMatmul: 'fp32' }));
        expect(clipseg).toHaveBeenCalledWith(expect.objectContaining({ cpuMatmul: 'fp32' }));
        expect((await sam.mock.results[0]!.value as Segmenter).cpuMatmul).toBe('fp32');
        expect((await clipseg.mock.results[0]!.value as Referrer).cpuMatmul).toBe('fp32');
      } finally {
        await server.close();
        sam.mockRestore();
        clipseg.mockRestore();
      }
    });
  });

  describe('omniseg bench --cpu-matmul', () => {
    const bench = (...extra: string[]) =>
      run(['bench', '--model', MODEL_DIR, '--image', IMAGE, '--runs', '1', '--device', 'cpu', '--threads', '1', '--json', ...extra]);

    it('reports what ran in the JSON, next to device and precision', async () => {
      const fp32 = await bench('--cpu-matmul', 'fp32');
      expect([fp32.code, fp32.stderr]).toEqual([0, '']);
      expect(JSON.parse(fp32.stdout)).toMatchObject({ device: 'cpu', precision: 'fp32', cpuMatmul: 'fp32' });
      const byDefault = await bench();
      expect(byDefault.code).toBe(0);
      expect(JSON.parse(byDefault.stdout)).toMatchObject({ device: 'cpu', cpuMatmul: defaultMatmul });
    });
  });
});
