// Reads the SAM fixtures written by models/sam/generate_fixtures.py (transformers on random,
// jittered weights at a small configuration). See that script for the format.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { native } from '../../lib/native.js';

/**
 * The linear-layer arithmetic the image encoders run on this CPU when asked for 'bf16x3': that,
 * where the CPU has AMX (Linux reports amx_bf16), else fp32. Tests run the fixtures in both modes,
 * each at its own tolerance (fp32: 1e-5; bf16x3: the parity threshold, 1e-4).
 */
export const CPU_MATMUL_BF16X3: 'bf16x3' | 'fp32' = (() => {
  try {
    return /\bamx_bf16\b/.test(readFileSync('/proc/cpuinfo', 'utf8')) ? 'bf16x3' : 'fp32';
  } catch {
    return 'fp32';
  }
})();

/** Relative L2 bound of fixture parity per requested cpuMatmul. */
export const MATMUL_TOL = { fp32: 1e-5, bf16x3: 1e-4 } as const;

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'sam-tiny');
export const MODEL_DIR = path.join(FIXTURES, 'model');

export interface FixtureImage {
  file: string;
  width: number;
  height: number;
  resized: [number, number];
  embedding: string;
}

export interface FixtureCase {
  name: string;
  image: string;
  points: number[][][] | null;
  labels: number[][] | null;
  boxes: number[][] | null;
  maskInput: string | null;
  multimask: boolean;
  lowres: string;
  iou: string;
  masks: string;
  shape: { P: number; M: number; H: number; W: number };
}

export const cases = JSON.parse(readFileSync(path.join(FIXTURES, 'cases.json'), 'utf8')) as {
  images: FixtureImage[];
  cases: FixtureCase[];
};

export function f32(file: string): Float32Array {
  const b = readFileSync(path.join(FIXTURES, file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function u8(file: string): Uint8Array {
  return new Uint8Array(readFileSync(path.join(FIXTURES, file)));
}

/** ‖a − b‖ / ‖b‖ */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} ≠ ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

export function mismatches(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} ≠ ${b.length}`);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

/** Whether the native addon loads (tests that need it are skipped otherwise). */
export function addonAvailable(): boolean {
  try {
    native();
    return true;
  } catch {
    return false;
  }
}
