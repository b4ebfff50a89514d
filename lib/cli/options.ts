// Parsed options of one command and the option groups several commands share (model, backend,
// threads), for the command parsers of lib/cli/args.ts and lib/cli/eval-args.ts.
import { CPU_MATMULS, DEVICES, PRECISIONS } from '../backends.js';
import type { CpuMatmul, Device, Precision } from '../segmenter.js';
import type { ModelOptions } from './commands.js';
import { optionalChoice, optionalPositiveInteger, UsageError } from './values.js';

export { CPU_MATMULS, DEVICES, PRECISIONS };

/** Parsed options of one command: strings (or lists of strings) and booleans. */
export class Values {
  constructor(
    private readonly strings: Map<string, string[]>,
    private readonly flags: Set<string>,
    readonly positionals: string[],
  ) {}

  string(name: string): string | undefined {
    return this.strings.get(name)?.[0];
  }

  required(name: string): string {
    const value = this.string(name);
    if (value === undefined) throw new UsageError(`Missing required option --${name}`);
    return value;
  }

  list(name: string): string[] {
    return this.strings.get(name) ?? [];
  }

  flag(name: string): boolean {
    return this.flags.has(name);
  }
}

/** An optional string option as `{ [key]: value }`, or `{}` when absent. */
export function optionalString<K extends string>(values: Values, option: string, key: K): Partial<Record<K, string>> {
  const value = values.string(option);
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

/** --model (required), --device, --precision, --cpu-matmul, --threads. */
export function modelOptions(values: Values): ModelOptions {
  return { model: values.required('model'), ...backend(values), ...threads(values) };
}

/**
 * --device (default 'auto'), --precision (default 'fp32') and --cpu-matmul (absent: the
 * library's default).
 */
export function backend(values: Values): { device: Device; precision: Precision; cpuMatmul?: CpuMatmul } {
  return {
    device: optionalChoice(values.string('device'), '--device', DEVICES) ?? 'auto',
    precision: optionalChoice(values.string('precision'), '--precision', PRECISIONS) ?? 'fp32',
    ...cpuMatmul(values),
  };
}

/** --cpu-matmul as `{ cpuMatmul }`, or `{}` when absent. */
export function cpuMatmul(values: Values): { cpuMatmul?: CpuMatmul } {
  const value = optionalChoice(values.string('cpu-matmul'), '--cpu-matmul', CPU_MATMULS);
  return value === undefined ? {} : { cpuMatmul: value };
}

export function threads(values: Values): { threads?: number } {
  const n = optionalPositiveInteger(values.string('threads'), '--threads');
  return n === undefined ? {} : { threads: n };
}
