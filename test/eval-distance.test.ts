// The exact Euclidean distance transform: hand-computed cases and brute force on random masks.
import { describe, expect, it } from 'vitest';
import { squaredDistanceTransform } from '../lib/eval/distance.js';
import { seededRandom } from './helpers/random.js';

/** Squared distance to the nearest 0 pixel, pixels outside the image counting as 0, by brute force. */
function bruteForce(mask: Uint8Array, width: number, height: number): Float64Array {
  const out = new Float64Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (mask[y * width + x] === 0) continue;
      let best = Infinity;
      for (let v = -1; v <= height; v++) {
        for (let u = -1; u <= width; u++) {
          const inside = u >= 0 && v >= 0 && u < width && v < height;
          if (inside && mask[v * width + u] !== 0) continue;
          best = Math.min(best, (u - x) ** 2 + (v - y) ** 2);
        }
      }
      out[y * width + x] = best;
    }
  }
  return out;
}

describe('squaredDistanceTransform', () => {
  it('refuses a mask of the wrong type or size, by name', () => {
    expect(() => squaredDistanceTransform(new Uint8Array(5), 2, 2)).toThrow(
      new RangeError('Expected a Uint8Array of width × height = 4 bytes for mask but received Uint8Array(5) of type Uint8Array'),
    );
    expect(() => squaredDistanceTransform([1, 1] as never, 2, 1)).toThrow(TypeError);
    expect(() => squaredDistanceTransform(new Uint8Array(0), -1, 0)).toThrow(/integer >= 0 for width/);
    expect(Array.from(squaredDistanceTransform(new Uint8Array(0), 0, 5))).toEqual([]);
  });

  it('a 5x5 square in a 7x7 image: 1 on its edge, 4 inside, 9 at the centre', () => {
    const mask = new Uint8Array(49);
    for (let y = 1; y <= 5; y++) for (let x = 1; x <= 5; x++) mask[y * 7 + x] = 1;
    const d = squaredDistanceTransform(mask, 7, 7);
    expect(d[3 * 7 + 3]).toBe(9);
    expect(d[2 * 7 + 2]).toBe(4);
    expect(d[1 * 7 + 3]).toBe(1);
    expect(d[0]).toBe(0);
  });

  it('the image edge is a boundary; a full image measures to it', () => {
    expect(Array.from(squaredDistanceTransform(new Uint8Array(5).fill(1), 5, 1))).toEqual([1, 1, 1, 1, 1]);
    expect(Array.from(squaredDistanceTransform(new Uint8Array(5).fill(1), 1, 5))).toEqual([1, 1, 1, 1, 1]);
    expect(Array.from(squaredDistanceTransform(new Uint8Array(9).fill(1), 3, 3))).toEqual([1, 1, 1, 1, 4, 1, 1, 1, 1]);
    expect(squaredDistanceTransform(new Uint8Array(0), 0, 4)).toHaveLength(0);
  });

  it('diagonal distances are Euclidean: a lone background pixel at (0,0) of a large field', () => {
    // 12x12 all foreground except (0, 0). Pixel (x 2, y 3): to (0, 0) 4 + 9 = 13, to the image edge
    // (3 columns to x = -1) 9. Pixel (1, 1): to (0, 0) 1 + 1 = 2, to the edge 4.
    const mask = new Uint8Array(144).fill(1);
    mask[0] = 0;
    const d = squaredDistanceTransform(mask, 12, 12);
    expect(d[3 * 12 + 2]).toBe(9);
    expect(d[1 * 12 + 1]).toBe(2);
  });

  it('equals brute force on random masks of many shapes', () => {
    const random = seededRandom(7);
    for (let trial = 0; trial < 60; trial++) {
      const width = 1 + Math.floor(random() * 24);
      const height = 1 + Math.floor(random() * 24);
      const density = random();
      const mask = Uint8Array.from({ length: width * height }, () => (random() < density ? 1 : 0));
      expect(squaredDistanceTransform(mask, width, height)).toEqual(bruteForce(mask, width, height));
    }
  });
});
