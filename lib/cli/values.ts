// The value syntax of omniseg's options: numbers, points, scribbles, boxes and choices, each
// refused with a UsageError whose message names the option.
import { argumentMessage } from '../errors.js';
import type { Box, Point, Scribble } from '../types.js';

/** A command-line mistake: reported in one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly exitCode = 2;
}

/** A number in [0, 1]. */
export function fraction(raw: string, flag: string): number {
  const n = parseNumber(raw);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new UsageError(argumentMessage('a number from 0 to 1', flag, raw));
  return n;
}

/** An integer in [0, max]. */
export function integerUpTo(raw: string, flag: string, max: number): number {
  const n = /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n > max) throw new UsageError(argumentMessage(`an integer from 0 to ${max}`, flag, raw));
  return n;
}

export function optionalNonNegativeNumber(raw: string | undefined, flag: string, max = Infinity): number | undefined {
  if (raw === undefined) return undefined;
  const n = parseNumber(raw);
  if (!Number.isFinite(n) || n < 0 || n > max) {
    throw new UsageError(argumentMessage(max === Infinity ? 'a number >= 0' : `a number from 0 to ${max}`, flag, raw));
  }
  return n;
}

/** An integer ≥ 1 (and ≤ max when given). */
export function optionalPositiveInteger(raw: string | undefined, flag: string, max?: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || (max !== undefined && n > max)) {
    throw new UsageError(argumentMessage(max === undefined ? 'a positive integer' : `an integer from 1 to ${max}`, flag, raw));
  }
  return n;
}

export function optionalChoice<T extends string>(raw: string | undefined, flag: string, choices: readonly T[]): T | undefined {
  if (raw === undefined) return undefined;
  if (!(choices as readonly string[]).includes(raw)) {
    throw new UsageError(argumentMessage(`one of ${choices.join(', ')}`, flag, raw));
  }
  return raw as T;
}

/** A decimal number ("12", "-3.5", ".5", "1e3"); NaN for anything else (hex, binary, "Infinity"). */
export function parseNumber(raw: string): number {
  const s = raw.trim();
  return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(s) ? Number(s) + 0 : NaN; // + 0: "-0" is 0
}

/** "x,y,label" with label 0 or 1. */
export function parsePoint(raw: string): Point {
  const parts = raw.split(',');
  const [x, y] = parts.slice(0, 2).map(parseNumber);
  const label = parts[2]?.trim();
  if (parts.length !== 3 || !Number.isFinite(x) || !Number.isFinite(y) || (label !== '0' && label !== '1')) {
    throw new UsageError(argumentMessage('x,y,label (numbers, label 0 or 1)', '--point', raw));
  }
  return { x, y, label: label === '1' ? 1 : 0 };
}

/** "x0,y0;x1,y1;...:label": vertices separated by ';', label 0 or 1 after the last ':'. */
export function parseScribble(raw: string): Scribble {
  const colon = raw.lastIndexOf(':');
  const label = raw.slice(colon + 1).trim();
  const vertices = colon < 0 ? [] : raw.slice(0, colon).split(';');
  const path = vertices.map((v) => v.split(',').map(parseNumber));
  if (
    colon < 0 ||
    (label !== '0' && label !== '1') ||
    !path.every((xy) => xy.length === 2 && xy.every(Number.isFinite))
  ) {
    throw new UsageError(argumentMessage('x0,y0;x1,y1;...:label (number pairs, label 0 or 1)', '--scribble', raw));
  }
  return { path: path.map(([x, y]) => [x, y]), label: label === '1' ? 1 : 0 };
}

/** "x0,y0,x1,y1" (`flag` names the option in the error). */
export function parseBox(raw: string, flag = '--box'): Box {
  const values = raw.split(',').map(parseNumber);
  if (values.length !== 4 || !values.every(Number.isFinite)) {
    throw new UsageError(argumentMessage('x0,y0,x1,y1 (4 numbers)', flag, raw));
  }
  const [x0, y0, x1, y1] = values;
  return [x0, y0, x1, y1];
}
