import { describe, expect, it } from 'vitest';
import { Mask } from '../lib/mask.js';
import { countsFromString, countsToMask, countsToString, decodeRLE, encodeRLE, maskToCounts, mergeRuns, overlapRuns, rleArea, rleIoU, rleMerge } from '../lib/rle.js';
import { seededRandom } from './helpers/random.js';

/** Row-major mask of height × width with the given (row, column) pixels set. */
function maskWith(height: number, width: number, pixels: Array<[number, number]>): Uint8Array {
  const mask = new Uint8Array(height * width);
  for (const [y, x] of pixels) mask[y * width + x] = 1;
  return mask;
}

describe('encodeRLE (pycocotools-compatible, hand-computed)', () => {
  it('all-zero 3x3 mask: one run of 9 zeros', () => {
    expect(encodeRLE(new Uint8Array(9), 3, 3)).toEqual({ size: [3, 3], counts: '9' });
  });

  it('all-one 2x2 mask: an empty zero run, then 4 ones (pycocotools gives b"04")', () => {
    expect(encodeRLE(new Uint8Array(4).fill(1), 2, 2)).toEqual({ size: [2, 2], counts: '04' });
  });

  it('single pixel at row 1, column 1 of 3x3: column-major index 4', () => {
    const mask = maskWith(3, 3, [[1, 1]]);
    expect(maskToCounts(mask, 3, 3)).toEqual([4, 1, 4]);
    expect(encodeRLE(mask, 3, 3).counts).toBe('414');
  });

  it('counts run down the columns, not along the rows', () => {
    // Top row of a 2x3 mask: each column is [1, 0].
    const mask = maskWith(2, 3, [
      [0, 0],
      [0, 1],
      [0, 2],
    ]);
    expect(maskToCounts(mask, 2, 3)).toEqual([0, 1, 1, 1, 1, 1, 1]);
    // From i = 3 on, each count is stored as its difference from counts[i - 2] (here 0).
    expect(encodeRLE(mask, 2, 3).counts).toBe('0110000');
  });

  it('vertical bars: whole columns are single runs', () => {
    // 2 x 5, columns 1 and 3 set → counts [2, 2, 2, 2, 2] → "222" then deltas 0, 0.
    const mask = maskWith(2, 5, [
      [0, 1],
      [1, 1],
      [0, 3],
      [1, 3],
    ]);
    expect(maskToCounts(mask, 2, 5)).toEqual([2, 2, 2, 2, 2]);
    expect(encodeRLE(mask, 2, 5).counts).toBe('22200');
  });

  it('the native encoder gives the runs of the column walk (the definition) on random masks', () => {
    // pycocotools rleEncode: down each column, then the next; any non-zero byte is inside
    const columnWalk = (mask: Uint8Array, h: number, w: number): number[] => {
      const counts: number[] = [];
      let [value, run] = [0, 0];
      for (let x = 0; x < w; x++) {
        for (let y = 0; y < h; y++) {
          const v = mask[y * w + x] === 0 ? 0 : 1;
          if (v !== value) [counts[counts.length], run, value] = [run, 0, v];
          run++;
        }
      }
      return [...counts, run];
    };
    let state = 99;
    const random = () => (state = (state * 48271) % 2147483647) / 2147483647;
    for (let trial = 0; trial < 300; trial++) {
      const [h, w] = [1 + Math.floor(random() * 40), 1 + Math.floor(random() * 40)];
      const density = random();
      // blobs of whole columns and noise, values other than 1 inside
      const mask = Uint8Array.from({ length: h * w }, (_, i) => (random() < density || (i % w) % 7 === 3 ? Math.ceil(random() * 255) : 0));
      expect(maskToCounts(mask, h, w), `${h}x${w}`).toEqual(columnWalk(mask, h, w));
    }
    expect(maskToCounts(new Uint8Array(0), 0, 5)).toEqual([0]);
    // masks without pixels, whatever their sides, round-trip
    const empty = encodeRLE(new Uint8Array(0), 0, 1e12);
    expect(empty).toEqual({ size: [0, 1e12], counts: '0' });
    expect(decodeRLE(empty)).toEqual(new Uint8Array(0));
    expect(countsToMask([0], 3e9, 0)).toEqual(new Uint8Array(0));
    expect(() => countsToMask([1], 3e9, 0)).toThrow(RangeError);
    expect(new Mask({ counts: Uint32Array.of(0), width: 0, height: 3e9, score: 1, lowResLogits: new Float32Array(1) }).box).toEqual([0, 0, 0, 0]);
  });

  it('the native string writer is the JS definition: random counts, large and negative deltas', () => {
    // rleToString as lib/rle.ts wrote it in JS: base-32 groups of each count (its difference from
    // the count two before, from the third on), floor division for values beyond int32
    const definition = (counts: ArrayLike<number>): string => {
      let out = '';
      for (let i = 0; i < counts.length; i++) {
        let x = i > 2 ? counts[i] - counts[i - 2] : counts[i];
        for (let more = true; more; ) {
          const high = Math.floor(x / 32);
          let c = x - high * 32;
          x = high;
          more = c & 0x10 ? x !== -1 : x !== 0;
          if (more) c |= 0x20;
          out += String.fromCharCode(c + 48);
        }
      }
      return out;
    };
    let state = 7;
    const random = () => (state = (state * 48271) % 2147483647) / 2147483647;
    for (let trial = 0; trial < 200; trial++) {
      const scale = [10, 1000, 2 ** 32 - 1, 2 ** 40][trial % 4];
      const counts = Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * scale));
      expect(countsToString(counts), String(counts)).toBe(definition(counts));
      if (scale < 2 ** 32) expect(countsToString(Uint32Array.from(counts))).toBe(definition(counts));
    }
    expect(countsToString([])).toBe('');
    expect(() => countsToString([1.5])).toThrow(RangeError);
    expect(() => countsToString([Infinity])).toThrow(RangeError); // (the JS looped forever)
    expect(() => countsToString([NaN])).toThrow(RangeError);
  });

  it('counts >= 32 take several characters with the continuation bit', () => {
    // 100 = 3·32 + 4: low group 4 | 0x20 → 'T' (84), then 3 → '3'.
    expect(encodeRLE(new Uint8Array(100), 10, 10).counts).toBe('T3');
  });

  it('negative deltas are sign-extended groups', () => {
    // counts [10, 40, 45, 5] in a 10x10 mask: 10 → ':'; 40 → 'X1'; 45 → ']1';
    // 5 - 40 = -35 → groups 29 | 0x20 → 'm', then 30 (sign bit 0x10 set, last) → 'N'.
    const mask = new Uint8Array(100);
    for (let k = 10; k < 50; k++) mask[(k % 10) * 10 + Math.floor(k / 10)] = 1;
    for (let k = 95; k < 100; k++) mask[(k % 10) * 10 + Math.floor(k / 10)] = 1;
    expect(maskToCounts(mask, 10, 10)).toEqual([10, 40, 45, 5]);
    expect(encodeRLE(mask, 10, 10).counts).toBe(':X1]1mN');
    expect(countsFromString(':X1]1mN')).toEqual([10, 40, 45, 5]);
  });

  it('treats any non-zero byte as foreground', () => {
    const mask = new Uint8Array([0, 255, 7, 0]);
    expect(encodeRLE(mask, 2, 2)).toEqual(encodeRLE(new Uint8Array([0, 1, 1, 0]), 2, 2));
  });

  it('an empty (0 x 0) mask has the single count 0', () => {
    expect(encodeRLE(new Uint8Array(0), 0, 0)).toEqual({ size: [0, 0], counts: '0' });
  });
});

describe('countsToString / countsFromString', () => {
  it('round-trips large counts and large negative deltas', () => {
    const counts = [0, 1_000_000, 3, 268_402_689, 1, 0, 31, 32, 33, 1023, 1024, 5];
    expect(countsFromString(countsToString(counts))).toEqual(counts);
  });

  it('encodes any delta as 5-bit two\'s-complement groups, beyond 2^31 and 2^53 too', () => {
    // Reference: the groups of the (float64) delta from BigInt arithmetic (exact; >> on a BigInt floors).
    const reference = (counts: number[]): string => {
      let s = '';
      counts.forEach((count, i) => {
        let x = BigInt(i > 2 ? count - counts[i - 2] : count);
        for (let more = true; more; ) {
          let c = Number(x & 31n);
          x >>= 5n;
          more = c & 16 ? x !== -1n : x !== 0n;
          if (more) c |= 32;
          s += String.fromCharCode(c + 48);
        }
      });
      return s;
    };
    const cases = [
      [2 ** 31, 2 ** 31 + 1, 1, 2 ** 32 - 1],
      [5, 2 ** 53, 3, 1],
      [1, 2, 3, 2 ** 70, 4, 2 ** 100],
      [2 ** 100, 2 ** 90, 2 ** 80, 1, 3], // ~20 characters a count; deltas down to about -2^90
      Array.from({ length: 300 }, (_, i) => 2 ** (i % 80) + (i % 7)),
    ];
    for (const counts of cases) {
      expect(countsToString(counts)).toBe(reference(counts));
      expect(countsToString(Float64Array.from(counts))).toBe(reference(counts));
    }
    expect(countsFromString(countsToString([2 ** 31, 2 ** 32 - 1, 7]))).toEqual([2 ** 31, 2 ** 32 - 1, 7]);
  });

  it('refuses what is not a list of run lengths (integers >= 0), by name', () => {
    // (a negative run was written as its delta before: [-1] gave "O", which decodes to nothing valid)
    expect(() => countsToString([3, -1])).toThrow(new RangeError('Expected an integer >= 0 for counts[1] but received -1 of type number'));
    expect(() => countsToString(Float64Array.of(1.5))).toThrow(new RangeError('Expected an integer >= 0 for counts[0] but received 1.5 of type number'));
    expect(() => countsToString([NaN])).toThrow(RangeError);
    expect(() => countsToString(null as never)).toThrow(new TypeError('Expected an array of run lengths for counts but received null of type null'));
    expect(() => countsToString(['1'] as never)).toThrow(TypeError);
  });

  it('uses only the characters 48..111', () => {
    const s = countsToString([123456, 7, 1, 99999, 2, 3]);
    for (const ch of s) expect(ch.charCodeAt(0)).toBeGreaterThanOrEqual(48);
    for (const ch of s) expect(ch.charCodeAt(0)).toBeLessThanOrEqual(111);
  });

  it('rejects characters outside the alphabet', () => {
    expect(() => countsFromString('9 ')).toThrow(
      new RangeError(
        'Expected a COCO compressed RLE string (characters 0 to o) for rle.counts but received "9 " of type string',
      ),
    );
  });

  it('rejects a string that ends inside a number', () => {
    // 'T' has the continuation bit set.
    expect(() => countsFromString('T')).toThrow(
      new RangeError('Expected a COCO compressed RLE string for rle.counts but received "T" of type string'),
    );
  });
});

describe('decodeRLE', () => {
  it('decodes compressed and uncompressed counts to a row-major mask', () => {
    const expected = maskWith(3, 3, [[1, 1]]);
    expect(decodeRLE({ size: [3, 3], counts: '414' })).toEqual(expected);
    expect(decodeRLE({ size: [3, 3], counts: [4, 1, 4] })).toEqual(expected);
  });

  it('decodes column-major runs into rows', () => {
    expect(decodeRLE({ size: [2, 3], counts: '0110000' })).toEqual(new Uint8Array([1, 1, 1, 0, 0, 0]));
  });

  it('rejects counts that do not cover the mask', () => {
    expect(() => decodeRLE({ size: [3, 3], counts: [4, 1, 3] })).toThrow(
      new RangeError(
        'Expected run lengths summing to height × width = 9 (they sum to 8) for rle.counts but received [4, 1, 3] of type array',
      ),
    );
  });

  it('rejects negative and fractional run lengths', () => {
    expect(() => decodeRLE({ size: [1, 2], counts: [3, -1] })).toThrow(
      new RangeError('Expected an integer >= 0 for rle.counts[1] but received -1 of type number'),
    );
    expect(() => decodeRLE({ size: [1, 2], counts: [1.5, 0.5] })).toThrow(
      new RangeError('Expected an integer >= 0 for rle.counts[0] but received 1.5 of type number'),
    );
  });

  it('rejects a malformed size', () => {
    expect(() => decodeRLE({ size: [3], counts: '9' })).toThrow(
      new RangeError('Expected an array [height, width] for rle.size but received [3] of type array'),
    );
    expect(() => decodeRLE({ size: [3, -1], counts: '9' })).toThrow(
      new RangeError('Expected an integer >= 0 for rle.size[1] but received -1 of type number'),
    );
  });

  it('rejects counts of the wrong type', () => {
    const rle = { size: [1, 1], counts: 5 } as unknown as { size: number[]; counts: string };
    expect(() => decodeRLE(rle)).toThrow(
      new TypeError('Expected a string or an array of run lengths for rle.counts but received 5 of type number'),
    );
  });
});

describe('rleArea', () => {
  it('sums the runs of ones', () => {
    expect(rleArea({ size: [10, 10], counts: ':X1]1mN' })).toBe(45);
    expect(rleArea({ size: [3, 3], counts: '9' })).toBe(0);
    expect(rleArea({ size: [2, 2], counts: [0, 4] })).toBe(4);
  });
});

describe('encodeRLE argument errors', () => {
  it('rejects a mask of the wrong size', () => {
    expect(() => encodeRLE(new Uint8Array(5), 2, 3)).toThrow(
      new RangeError('Expected a Uint8Array of height × width = 6 bytes for mask but received Uint8Array(5) of type Uint8Array'),
    );
  });

  it('rejects a mask that is not a Uint8Array', () => {
    expect(() => encodeRLE([0, 1] as unknown as Uint8Array, 1, 2)).toThrow(
      new TypeError('Expected a Uint8Array of height × width = 2 bytes for mask but received [0, 1] of type array'),
    );
  });

  it('rejects non-integer dimensions', () => {
    expect(() => encodeRLE(new Uint8Array(4), 2.5, 2)).toThrow(
      new RangeError('Expected an integer >= 0 for height but received 2.5 of type number'),
    );
  });
});

describe('round trip', () => {
  it('decodeRLE(encodeRLE(m)) === m for random masks of random sizes and densities', () => {
    const random = seededRandom(42);
    for (let trial = 0; trial < 200; trial++) {
      const height = 1 + Math.floor(random() * 40);
      const width = 1 + Math.floor(random() * 40);
      const density = random();
      // Blobby masks (long runs) half of the time, salt-and-pepper the other half.
      const blobby = trial % 2 === 0;
      const mask = new Uint8Array(height * width);
      let value = 0;
      for (let i = 0; i < mask.length; i++) {
        if (!blobby || random() < 0.05) value = random() < density ? 1 : 0;
        mask[i] = value;
      }
      const rle = encodeRLE(mask, height, width);
      expect(rle.size).toEqual([height, width]);
      expect(decodeRLE(rle)).toEqual(mask);
      expect(rleArea(rle)).toBe(mask.reduce((sum, v) => sum + v, 0));
      expect(countsFromString(rle.counts)).toEqual(maskToCounts(mask, height, width));
    }
  });

  it('handles a large mask (1000 x 1000) with long runs', () => {
    const mask = new Uint8Array(1000 * 1000);
    for (let y = 100; y < 900; y++) mask.fill(1, y * 1000 + 250, y * 1000 + 750);
    const rle = encodeRLE(mask, 1000, 1000);
    expect(rleArea(rle)).toBe(800 * 500);
    // Buffer comparison: toEqual walks a million elements one by one.
    expect(Buffer.from(decodeRLE(rle)).equals(Buffer.from(mask))).toBe(true);
  });
});

describe('run-length arguments', () => {
  it('mergeRuns / overlapRuns refuse run lengths that are not integers >= 0 of one total (they looped forever on NaN)', () => {
    expect(() => mergeRuns([NaN], [1])).toThrow(new RangeError('Expected an integer >= 0 for a[0] but received NaN of type number'));
    expect(() => overlapRuns([Infinity], [Infinity])).toThrow(/for a\[0\] but received Infinity/);
    expect(() => mergeRuns(['a'] as unknown as number[], [1])).toThrow(TypeError);
    expect(() => overlapRuns([2, 1], [1, -1, 3])).toThrow(/for b\[1\] but received -1/);
    expect(() => mergeRuns([1, 2], [2])).toThrow(new RangeError("Expected run lengths summing to 3, as a's do for b but received [2] of type array"));
    expect(mergeRuns([1, 2], [2, 1])).toEqual([1, 2]);
    expect(overlapRuns([1, 2], [2, 1])).toEqual({ intersection: 1, union: 2 });
  });

  it('countsToMask refuses counts that do not fill height × width exactly, and bad sides', () => {
    expect(() => countsToMask([4294967297], 1, 1)).toThrow(/summing to height × width = 1 for counts/); // (wrapped to 1 before)
    expect(() => countsToMask([1.5], 1, 1)).toThrow(/an integer >= 0 for counts\[0\] but received 1.5/); // (truncated to 1 before)
    expect(() => countsToMask([1], Number.NaN, 1)).toThrow(new RangeError('Expected an integer >= 0 for height but received NaN of type number'));
    expect(() => countsToMask([0, 1], 0, 5)).toThrow(/summing to height × width = 0/);
    expect(countsToMask([0, 0], 0, 1e12)).toEqual(new Uint8Array(0));
    expect(countsToMask([1, 1], 1, 2)).toEqual(Uint8Array.of(0, 1));
  });
});

describe('rleMerge / rleIoU name the RLE at fault', () => {
  it('by its place in the list, or as a / b', () => {
    const ok = { size: [1, 2] as [number, number], counts: [1, 1] };
    expect(() => rleMerge([ok, { size: [1], counts: [1] } as never])).toThrow(
      new RangeError('Expected an array [height, width] for rles[1].size but received [1] of type array'),
    );
    expect(() => rleMerge([ok, { size: [1, 2], counts: [3] }])).toThrow(/for rles\[1\]\.counts but received \[3\]/);
    expect(() => rleIoU(ok, null as never)).toThrow(new TypeError('Expected an object {size, counts} for b but received null of type null'));
    expect(() => rleIoU({ size: [1, 2], counts: 'x~' }, ok)).toThrow(/for a\.counts but received "x~"/);
    expect(() => countsFromString(123 as never)).toThrow(new TypeError('Expected a COCO compressed RLE string for rle.counts but received 123 of type number'));
  });
});
