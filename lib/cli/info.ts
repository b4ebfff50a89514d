// omniseg info [--json]
import { availableParallelism } from 'node:os';
import { cudaStatusAsync } from '../backends.js';
import { packageVersion } from '../version.js';
import { hubSettings, isComplete, modelCacheDir } from '../models/cache.js';
import { modelRegistry } from '../models/registry.js';
import { native, type CudaInfo } from '../native.js';
import type { InfoCommand } from './args.js';
import { jsonLine } from './format.js';
import type { CliIO } from './io.js';

export async function runInfo(args: InfoCommand, io: CliIO): Promise<void> {
  let hardwareThreads = availableParallelism();
  let cpu: { available: boolean; amx?: boolean; error?: string };
  try {
    const binding = native();
    hardwareThreads = binding.hardwareThreads();
    cpu = { available: true, amx: binding.cpuInfo?.().amx ?? false };
  } catch (error) {
    cpu = { available: false, error: error instanceof Error ? error.message : String(error) };
  }
  const info = {
    version: packageVersion(),
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    hardwareThreads,
    backends: { cpu, cuda: await cudaStatusAsync() },
    ...(await registryStatus(io.env)),
  };
  if (args.json) {
    io.stdout(jsonLine(info));
    return;
  }
  io.stdout(
    `omniseg ${info.version}\n` +
      `node ${info.node} on ${info.platform}-${info.arch}, ${hardwareThreads} hardware threads\n` +
      `cpu backend: ${cpu.available ? `available${cpu.amx ? ' (AMX: bf16x3 image encoders)' : ''}` : `not available (${cpu.error})`}\n` +
      `cuda backend: ${describeCuda(info.backends.cuda)}\n` +
      `models (omniseg pull <id>; cache ${hubSettings(io.env).cacheDir}):\n` +
      (info.registryError !== undefined ? `  the model registry cannot be read: ${info.registryError}\n` : '') +
      info.models.map((m) => `  ${m.id.padEnd(22)} ${m.family.padEnd(8)} ${m.repo}${m.cached ? '  [cached]' : ''}\n`).join(''),
  );
}

/**
 * The registry's models and whether the cache holds each (a few stat calls per model); a registry
 * that cannot be read is reported beside the rest (`registryError`), not instead of it.
 */
async function registryStatus(env: CliIO['env']) {
  const { cacheDir } = hubSettings(env);
  let registry;
  try {
    registry = await modelRegistry(env);
  } catch (error) {
    return { models: [], registryError: (error as Error).message };
  }
  const models = await Promise.all(
    [...registry.values()].map(async (m) => {
      const dir = modelCacheDir(cacheDir, m);
      return { id: m.id, family: m.family, repo: m.repo, revision: m.revision, cached: await isComplete(dir, m), dir };
    }),
  );
  return { models, registryError: undefined as string | undefined };
}

function describeCuda(c: CudaInfo): string {
  if (!c.compiled) return `not compiled in this build (${c.reason ?? 'npm run build:cuda'})`;
  if (!c.available) return `compiled, not available (${c.reason ?? 'no usable device'})`;
  const gb = (b: number) => `${(b / 2 ** 30).toFixed(0)} GiB`;
  return c.devices.map((d) => `${d.name} (compute ${d.computeCapability}, ${gb(d.totalMemory)})`).join(', ');
}
