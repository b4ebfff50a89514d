// Which native build runs a model: the default CPU build, or the CUDA-enabled build when a usable
// GPU is present. The CUDA build is probed in a child process first (lib/cuda-probe.ts) and
// loaded only when a caller asks for CUDA ('cuda' or 'auto'); every reason it is not used is
// reported by cudaStatus().reason.
import { findCudaAddon, probeCudaAddon } from './cuda-probe.js';
import { DEFAULT_LIMIT_INPUT_PIXELS } from './image.js';
import { native, nativeCuda, type CudaInfo, type NativeBinding } from './native.js';
import type { CpuMatmul, Device, Precision } from './segmenter.js';
import { integerInRange, oneOf } from './validate.js';

/** Values of the `device` option (and --device); the default is 'auto'. */
export const DEVICES: readonly Device[] = ['cpu', 'cuda', 'auto'];
/** Values of the `precision` option (and --precision); the default is 'fp32'. */
export const PRECISIONS: readonly Precision[] = ['fp32', 'fp16', 'bf16'];
/** Values of the `cpuMatmul` option (and --cpu-matmul); the default is 'bf16x3'. */
export const CPU_MATMULS: readonly CpuMatmul[] = ['bf16x3', 'fp32'];
/** The most CPU threads a model may ask for (each is an OS thread the model keeps). */
export const MAX_THREADS = 1024;

/**
 * The load options Segmenter.load and Referrer.load share, validated, with their defaults:
 * device ('auto'), cpuMatmul ('bf16x3'), threads (undefined: the machine's), limitInputPixels
 * (sharp's).
 * @throws TypeError / RangeError naming the option
 */
export function loadSettings(opts: Record<string, unknown>): {
  device: Device;
  cpuMatmul: CpuMatmul;
  threads: number | undefined;
  limitInputPixels: number;
} {
  return {
    device: opts.device === undefined ? 'auto' : oneOf(opts.device, 'device', DEVICES),
    cpuMatmul: opts.cpuMatmul === undefined ? 'bf16x3' : oneOf(opts.cpuMatmul, 'cpuMatmul', CPU_MATMULS),
    threads: opts.threads === undefined ? undefined : integerInRange(opts.threads, 'threads', 1, MAX_THREADS),
    limitInputPixels:
      opts.limitInputPixels === undefined
        ? DEFAULT_LIMIT_INPUT_PIXELS
        : integerInRange(opts.limitInputPixels, 'limitInputPixels', 0),
  };
}

/** The CUDA backend as this installation sees it (never throws). */
export function cudaStatus(): CudaInfo {
  try {
    if (process.env.OMNISEG_DEVICE === 'cpu') {
      // Not probed: whether a CUDA build is installed is all that is known.
      return { compiled: findCudaAddon().file !== undefined, available: false, reason: 'OMNISEG_DEVICE=cpu', devices: [] };
    }
    const cuda = nativeCuda();
    if (cuda.binding !== undefined) return cuda.binding.cudaInfo();
    if (cuda.info !== undefined) return cuda.info;
    return { compiled: cuda.file !== undefined, available: false, reason: cuda.error ?? 'not built', devices: [] };
  } catch (error) {
    // e.g. no omniseg package root in a bundle that left node_modules behind
    return { compiled: false, available: false, reason: error instanceof Error ? error.message : String(error), devices: [] };
  }
}

/**
 * cudaStatus() for callers that can await: the CUDA build's child-process probe (the first time in
 * this process; up to 30 s when a build hangs) runs without blocking the event loop. Never throws.
 */
export async function cudaStatusAsync(): Promise<CudaInfo> {
  await probeInstalledCuda();
  return cudaStatus();
}

/** Probes the installed CUDA build, if any, asynchronously (cached), unless OMNISEG_DEVICE=cpu. */
async function probeInstalledCuda(): Promise<void> {
  if (process.env.OMNISEG_DEVICE === 'cpu') return;
  let found: ReturnType<typeof findCudaAddon> | undefined;
  try {
    found = findCudaAddon();
  } catch {
    return; // cudaStatus() reports why
  }
  if (found.file !== undefined) await probeCudaAddon(found.file);
}

/**
 * The binding and device for a requested device. 'auto' picks CUDA when the CUDA build loads
 * and reports a usable device, CPU otherwise.
 * @throws Error when 'cuda' is requested and unusable, naming the reason.
 */
export function bindingFor(device: 'cpu' | 'cuda' | 'auto'): { binding: NativeBinding; device: 'cpu' | 'cuda' } {
  if (device !== 'cpu') {
    const status = cudaStatus();
    if (status.available) {
      const binding = nativeCuda().binding;
      if (binding !== undefined) return { binding, device: 'cuda' };
    }
    if (device === 'cuda') {
      throw new Error(`The CUDA backend is not available: ${status.reason ?? 'no usable device'}`);
    }
  }
  return { binding: native(), device: 'cpu' };
}

/**
 * bindingFor() for callers that can await: the CUDA build's child-process probe (the first time
 * in this process) runs without blocking the event loop.
 * @throws Error when 'cuda' is requested and unusable, naming the reason.
 */
export async function resolveBinding(
  device: 'cpu' | 'cuda' | 'auto',
): Promise<{ binding: NativeBinding; device: 'cpu' | 'cuda' }> {
  if (device !== 'cpu') await probeInstalledCuda();
  return bindingFor(device);
}
