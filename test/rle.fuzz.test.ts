// Property-based fuzzing of the COCO RLE parsers and codecs (lib/rle.ts); see test/helpers/fuzz.ts
// for the contract. Regressions it found: a sparse counts array was accepted (its holes skipped by
// the validation, then read as undefined: an area of 5 for a mask decoded empty), run lengths
// beyond 2^53 could sum "exactly" to height × width, and encodeRLE of an empty mask walked every
// column of its width (an hour for a width of 10^12).
import { describe, expect } from 'vitest';
import { fc, it } from '@fast-check/vitest';
import { countsFromString, countsToString, decodeRLE, encodeRLE, rleArea, rleIoU, rleMerge, rleRuns } from '../lib/rle.js';
import type { RLEInput } from '../lib/types.js';
import { FUZZ_RUNS, FUZZ_TIMEOUT_MS, namesParam, outcome } from './helpers/fuzz.js';

const ARGUMENT_ERRORS = [TypeError, RangeError];
const runs = { numRuns: FUZZ_RUNS };

/** Column-major run lengths of a row-major mask, written independently of lib/rle.ts. */
function oracleCounts(mask: Uint8Array, height: number, width: number): number[] {
  const column: number[] = [];
  for (let x = 0; x < width; x++) for (let y = 0; y < height; y++) column.push(mask[y * width + x] ? 1 : 0);
  const counts = [0];
  let value = 0;
  for (const v of column) {
    if (v !== value) {
      counts.push(0);
      value = v;
    }
    counts[counts.length - 1]++;
  }
  return counts;
}

const popcount = (m: Uint8Array): number => m.reduce((s, v) => s + (v ? 1 : 0), 0);

/** A small binary mask: [height, width, row-major 0/1 bytes]. */
const maskArb = fc
  .tuple(fc.nat({ max: 12 }), fc.nat({ max: 12 }))
  .chain(([h, w]) =>
    fc.tuple(fc.constant(h), fc.constant(w), fc.uint8Array({ minLength: h * w, maxLength: h * w, max: 1 })),
  );

/** COCO compressed strings: mostly the alphabet '0'..'o', sometimes just outside it. */
const countsStringArb = fc.string({
  unit: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 48, max: 111 }) }, fc.integer({ min: 32, max: 126 })).map((c) =>
    String.fromCharCode(c),
  ),
  maxLength: 24,
});

const countArb = fc.oneof(
  { weight: 6, arbitrary: fc.nat({ max: 30 }) },
  fc.integer(),
  fc.double(),
  fc.constantFrom(NaN, Infinity, -1, -0, 2 ** 53, 2 ** 60, Number.MAX_SAFE_INTEGER),
);

/** Everything an RLE parser may be handed: near-valid RLEs of real masks, mutated ones, and junk. */
const rleInputArb: fc.Arbitrary<unknown> = fc.oneof(
  // valid, then possibly mutated: a count changed, a hole punched, a character flipped
  maskArb.chain(([h, w, mask]) => {
    const counts = oracleCounts(mask, h, w);
    return fc.oneof(
      fc.constant({ size: [h, w], counts }),
      fc.constant({ size: [h, w], counts: countsToString(counts) }),
      fc.tuple(fc.nat({ max: counts.length - 1 }), countArb).map(([i, c]) => ({ size: [h, w], counts: Object.assign(counts.slice(), { [i]: c }) })),
      fc.nat({ max: counts.length - 1 }).map((i) => {
        const sparse = counts.slice();
        delete sparse[i];
        return { size: [h, w], counts: sparse };
      }),
      fc.tuple(fc.nat(), countsStringArb).map(([i, junk]) => {
        const s = countsToString(counts);
        const at = i % (s.length + 1);
        return { size: [h, w], counts: s.slice(0, at) + junk + s.slice(at + 1) };
      }),
    );
  }),
  // random shapes
  fc.record({
    size: fc.oneof(fc.tuple(fc.nat({ max: 12 }), fc.nat({ max: 12 })), fc.array(countArb, { maxLength: 3 }), fc.anything()),
    counts: fc.oneof(countsStringArb, fc.array(countArb, { maxLength: 8 }), fc.sparseArray(fc.nat({ max: 30 }), { maxLength: 8 }), fc.anything()),
  }),
  fc.anything(),
);

/**
 * Huge sizes: pixel counts just under 2^53 (accepted when the counts sum to them), and at or past
 * it (always refused), with counts near those sums: float sums of such counts round.
 */
const UNDER_2_53 = [[2 ** 26, 2 ** 26], [2 ** 52, 1], [3, 2 ** 50], [1, 2 ** 53 - 1]];
const hugeRleArb = fc.record({
  size: fc.constantFrom(...UNDER_2_53, [2 ** 30, 2 ** 30], [2 ** 26, 2 ** 27], [2 ** 53, 1], [3, 2 ** 51]),
  counts: fc.oneof(
    fc.array(fc.constantFrom(0, 1, 2, 2 ** 50, 2 ** 51, 2 ** 52 - 1, 2 ** 52, 2 ** 53, 2 ** 60, 2 ** 60 - 2 ** 8), { maxLength: 4 }),
    // runs that sum to the size, one of them nudged by -1, 0 or +1
    fc.tuple(fc.constantFrom(...UNDER_2_53), fc.nat({ max: 3 }), fc.integer({ min: -1, max: 1 })).map(([[h, w], split, nudge]) => {
      const n = h * w;
      const parts = [Math.floor(n / 2), n - Math.floor(n / 2)].slice(0, split === 0 ? 1 : 2);
      if (parts.length === 1) parts[0] = n;
      parts[parts.length - 1] += nudge;
      return split === 3 ? [0, ...parts] : parts;
    }),
  ),
});

describe('RLE parsers on arbitrary input', { timeout: FUZZ_TIMEOUT_MS }, () => {
  it.prop([rleInputArb], runs)('decodeRLE returns a 0/1 mask of height × width whose ones rleArea counts, or refuses by name', (rle) => {
    const r = outcome(() => decodeRLE(rle as RLEInput), ARGUMENT_ERRORS, namesParam('rle'));
    const area = outcome(() => rleArea(rle as RLEInput), ARGUMENT_ERRORS, namesParam('rle'));
    expect(area.ok).toBe(r.ok);
    if (!r.ok || !area.ok) return;
    const { height, width, counts } = rleRuns(rle as RLEInput);
    expect(r.value).toBeInstanceOf(Uint8Array);
    expect(r.value.length).toBe(height * width);
    expect(r.value.every((v) => v === 0 || v === 1)).toBe(true);
    expect(area.value).toBe(popcount(r.value));
    // the runs describe exactly this mask (up to zero-length runs, which carry no pixels)
    expect(mergeZeroRuns(counts)).toEqual(oracleCounts(r.value, height, width));
  });

  it.prop([hugeRleArb], runs)('accepted run lengths sum exactly (in integers) to height × width; 2^53 pixels or more are refused', (rle) => {
    const r = outcome(() => rleRuns(rle), ARGUMENT_ERRORS, namesParam('rle'));
    const pixels = BigInt(rle.size[0]) * BigInt(rle.size[1]);
    const sum = rle.counts.reduce((s, c) => s + BigInt(c), 0n);
    // accepted exactly when the size is under 2^53 and the runs sum to it
    expect(r.ok).toBe(pixels < 2n ** 53n && sum === pixels);
    if (r.ok) expect(r.value.counts.reduce((s, c) => s + BigInt(c), 0n)).toBe(pixels);
  });

  it.prop([fc.anything({ withTypedArray: true }), fc.oneof(fc.nat({ max: 4 }), fc.anything()), fc.oneof(fc.nat({ max: 4 }), fc.anything())], runs)(
    'encodeRLE refuses bad arguments by name, and encodes only a mask of height × width bytes',
    (mask, h, w) => {
      const r = outcome(() => encodeRLE(mask as Uint8Array, h as number, w as number), ARGUMENT_ERRORS, /^Expected .+ for (mask|height|width) but received/s);
      if (r.ok) {
        expect(mask).toBeInstanceOf(Uint8Array);
        expect((h as number) * (w as number)).toBe((mask as Uint8Array).length);
        expect(r.value.size).toEqual([h, w]);
      }
    },
  );

  it.prop([fc.array(rleInputArb, { maxLength: 3 }), fc.boolean()], runs)('rleMerge and rleIoU refuse bad RLEs by name', (rles, intersect) => {
    const merged = outcome(() => rleMerge(rles as RLEInput[], intersect), ARGUMENT_ERRORS, /^Expected .+ for rles(\[\d+\])?(\.|\[| but)/s);
    if (merged.ok) expect(() => decodeRLE(merged.value)).not.toThrow();
    if (rles.length === 2) {
      const iou = outcome(() => rleIoU(rles[0] as RLEInput, rles[1] as RLEInput), ARGUMENT_ERRORS, /^Expected .+ for (a|b)(\.|\[| but)/s);
      if (iou.ok) expect(iou.value >= 0 && iou.value <= 1).toBe(true);
    }
  });

  it('an empty mask encodes at once whatever its width', () => {
    const t0 = performance.now();
    expect(encodeRLE(new Uint8Array(0), 0, 1e12)).toEqual({ size: [0, 1e12], counts: '0' });
    expect(performance.now() - t0).toBeLessThan(100);
  });

  it('the counterexamples found, refused', () => {
    expect(() => rleArea({ size: [1, 5], counts: [, 5] } as unknown as RLEInput)).toThrow(namesParam('rle.counts[0]'));
    expect(() => rleArea({ size: [2 ** 30, 2 ** 30], counts: [1, 2 ** 60] })).toThrow(namesParam('rle.size'));
    expect(() => rleMerge([, { size: [1, 1], counts: [1] }] as RLEInput[])).toThrow(namesParam('rle'));
  });
});

describe('RLE codecs on arbitrary masks', { timeout: FUZZ_TIMEOUT_MS }, () => {
  it.prop([maskArb], runs)('encodeRLE → decodeRLE is the identity, with the oracle counts', ([h, w, mask]) => {
    const rle = encodeRLE(mask, h, w);
    expect(countsFromString(rle.counts)).toEqual(oracleCounts(mask, h, w));
    expect(decodeRLE(rle)).toEqual(mask);
    expect(rleArea(rle)).toBe(popcount(mask));
  });

  it.prop([fc.array(fc.nat({ max: Number.MAX_SAFE_INTEGER }), { maxLength: 12 })], runs)(
    'countsFromString inverts countsToString for any non-negative safe integers',
    (counts) => {
      expect(countsFromString(countsToString(counts))).toEqual(counts);
    },
  );

  it.prop([maskArb, fc.uint8Array({ maxLength: 144, max: 1 })], runs)('union, intersection and IoU agree with the masks', ([h, w, a], bits) => {
    const b = Uint8Array.from(a, (_, i) => bits[i] ?? 0);
    const [ra, rb] = [encodeRLE(a, h, w), encodeRLE(b, h, w)];
    expect(decodeRLE(rleMerge([ra, rb]))).toEqual(a.map((v, i) => v | b[i]));
    expect(decodeRLE(rleMerge([ra, rb], true))).toEqual(a.map((v, i) => v & b[i]));
    const union = popcount(a.map((v, i) => v | b[i]));
    expect(rleIoU(ra, rb)).toBeCloseTo(union === 0 ? 0 : popcount(a.map((v, i) => v & b[i])) / union, 12);
  });
});

/** Run lengths with their zero-length inner runs folded into their neighbours (same pixels; −0 is 0). */
function mergeZeroRuns(counts: readonly number[]): number[] {
  const out = [(counts[0] ?? 0) + 0];
  for (let i = 1; i < counts.length; i++) {
    if (counts[i] === 0 && i + 1 < counts.length) {
      out[out.length - 1] += counts[++i];
    } else {
      out.push(counts[i] + 0);
    }
  }
  while (out.length > 1 && out[out.length - 1] === 0) out.pop();
  return out;
}
