// Property-based fuzzing of the CLI value parsers (lib/cli/values.ts): any string either parses to
// a valid value or is refused with a UsageError naming the option. See test/helpers/fuzz.ts.
import { describe, expect } from 'vitest';
import { fc, it } from '@fast-check/vitest';
import {
  UsageError,
  fraction,
  integerUpTo,
  optionalNonNegativeNumber,
  optionalPositiveInteger,
  parseBox,
  parseNumber,
  parsePoint,
  parseScribble,
} from '../lib/cli/values.js';
import { FUZZ_RUNS, FUZZ_TIMEOUT_MS, namesParam, outcome } from './helpers/fuzz.js';

const runs = { numRuns: FUZZ_RUNS };

/** Number-like tokens: decimals, exponents, hex, signs, whitespace, and near misses. */
const tokenArb = fc.oneof(
  { weight: 4, arbitrary: fc.double({ noNaN: true }).map(String) },
  { weight: 4, arbitrary: fc.integer({ min: -5, max: 2000 }).map(String) },
  fc.constantFrom('', ' ', '0', '1', '-0', '+1', '1e3', '1e400', '0x10', '0b1', '.5', '5.', 'NaN', 'Infinity', '-Infinity', '1_000', '١', ' 2 ', '\t3\n'),
  fc.string({ maxLength: 4 }),
);
/** Strings built like option values (tokens joined by the separators the parsers split on). */
const valueArb = fc.oneof(
  { weight: 6, arbitrary: fc.array(fc.tuple(tokenArb, fc.constantFrom(',', ';', ':', ',', ',')), { maxLength: 8 }).map((parts) => parts.map(([t, sep], i) => (i ? sep : '') + t).join('')) },
  { weight: 3, arbitrary: fc.array(tokenArb, { minLength: 2, maxLength: 3 }).chain((t) => fc.constantFrom(0, 1, 2).map((l) => [...t, String(l)].join(','))) },
  { weight: 3, arbitrary: fc.array(fc.tuple(tokenArb, tokenArb).map((xy) => xy.join(',')), { maxLength: 4 }).chain((p) => fc.constantFrom('0', '1', ' 1', '').map((l) => `${p.join(';')}:${l}`)) },
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
);

function parsed<T>(fn: () => T, flag: string) {
  return outcome(fn, [UsageError], namesParam(flag));
}

describe('parseNumber', () => {
  it('reads decimal numbers only (Number() also took hex, binary, octal and "Infinity")', () => {
    for (const [raw, value] of [['12', 12], ['-3.5', -3.5], ['+1', 1], ['.5', 0.5], ['5.', 5], ['1e3', 1000], ['2E-1', 0.2], [' 2 ', 2], ['-0', 0]] as const) {
      expect(parseNumber(raw)).toBe(value);
    }
    for (const raw of ['0x10', '0b1', '0o7', 'Infinity', '-Infinity', 'NaN', '1_000', '', ' ', '1e', 'e3', '.', '1.2.3', '١']) {
      expect(parseNumber(raw)).toBeNaN();
    }
  });
});

describe('CLI value parsers on arbitrary strings', { timeout: FUZZ_TIMEOUT_MS }, () => {
  it.prop([valueArb], runs)('--point: finite x, y and label 0 or 1, or a UsageError', (raw) => {
    const r = parsed(() => parsePoint(raw), '--point');
    if (!r.ok) return;
    const { x, y, label } = r.value;
    expect(Number.isFinite(x) && Number.isFinite(y) && (label === 0 || label === 1)).toBe(true);
    expect(parsePoint(`${x},${y},${label}`)).toEqual(r.value);
  });

  it.prop([valueArb], runs)('--box: four finite numbers, or a UsageError', (raw) => {
    const r = parsed(() => parseBox(raw), '--box');
    if (r.ok) expect(r.value.length === 4 && r.value.every(Number.isFinite)).toBe(true);
  });

  it.prop([valueArb], runs)('--scribble: a non-empty path of finite pairs and a label, or a UsageError', (raw) => {
    const r = parsed(() => parseScribble(raw), '--scribble');
    if (!r.ok) return;
    expect(r.value.path.length).toBeGreaterThan(0);
    expect(r.value.path.every((v) => v.length === 2 && v.every(Number.isFinite))).toBe(true);
    expect([0, 1]).toContain(r.value.label);
  });

  it.prop([valueArb, fc.nat({ max: 100 })], runs)('numbers stay in their ranges, or a UsageError', (raw, max) => {
    const f = parsed(() => fraction(raw, '--iou'), '--iou');
    if (f.ok) expect(f.value >= 0 && f.value <= 1).toBe(true);
    const i = parsed(() => integerUpTo(raw, '--max', max), '--max');
    if (i.ok) expect(Number.isInteger(i.value) && i.value >= 0 && i.value <= max).toBe(true);
    const n = parsed(() => optionalNonNegativeNumber(raw, '--t'), '--t');
    if (n.ok) expect(n.value! >= 0 && Number.isFinite(n.value)).toBe(true);
    const p = parsed(() => optionalPositiveInteger(raw, '--threads'), '--threads');
    if (p.ok) expect(Number.isSafeInteger(p.value) && p.value! >= 1).toBe(true);
  });
});
