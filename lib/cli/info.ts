// omniseg info [--json]
import { availableParallelism } from 'node:os';
import { loadBinding } from '../binding.js';
import { packageVersion } from '../version.js';
import type { InfoCommand } from './args.js';
import { jsonLine } from './format.js';
import type { CliIO } from './io.js';

export async function runInfo(args: InfoCommand, io: CliIO): Promise<void> {
  let hardwareThreads = availableParallelism();
  let cpu: { available: boolean; error?: string };
  try {
    hardwareThreads = loadBinding().hardwareThreads();
    cpu = { available: true };
  } catch (error) {
    cpu = { available: false, error: error instanceof Error ? error.message : String(error) };
  }
  const info = {
    version: packageVersion(),
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    hardwareThreads,
    backends: { cpu, cuda: { compiled: false, available: false, devices: [] } },
  };
  if (args.json) {
    io.stdout(jsonLine(info));
    return;
  }
  io.stdout(
    `omniseg ${info.version}\n` +
      `node ${info.node} on ${info.platform}-${info.arch}, ${hardwareThreads} hardware threads\n` +
      `cpu backend: ${cpu.available ? 'available' : `not available (${cpu.error})`}\n` +
      'cuda backend: not compiled in this build\n',
  );
}
