// Mask.toPolygons / traceContours (the native tracer) on constructed masks: exact rings for small shapes, and
// invariants (areas, even-odd refill, one polygon per 4-connected region) on random masks.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ringArea, traceContours, traceContoursAsync, traceContoursJsonAsync, type MaskPolygon, type Ring } from '../lib/contours.js';
import { Mask } from '../lib/mask.js';
import { countsToMask } from '../lib/rle.js';
import { native } from '../lib/native.js';
import { builtAddon } from './helpers/addon.js';

/** A deterministic xorshift32 generator of numbers in [0, 1) from `seed`. */
function xorshift32(seed: number): () => number {
  let state = seed;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

/** A mask from rows of '#' (foreground) and '.' (background). */
function parse(rows: string[]): { data: Uint8Array; width: number; height: number } {
  const height = rows.length;
  const width = rows[0].length;
  const data = new Uint8Array(width * height);
  rows.forEach((row, y) => {
    for (let x = 0; x < width; x++) data[y * width + x] = row[x] === '#' ? 1 : 0;
  });
  return { data, width, height };
}

function polygons(rows: string[]): MaskPolygon[] {
  const { data, width, height } = parse(rows);
  return new Mask({ data, width, height, score: 1, lowResLogits: new Float32Array(1) }).toPolygons();
}

/** Pixel area of a polygon: its outer ring's shoelace area minus its holes'. */
const polygonArea = (p: MaskPolygon): number => ringArea(p.outer) + p.holes.reduce((sum, h) => sum + ringArea(h), 0);

/** Fills rings even-odd at pixel centres: the mask the polygons describe. */
function rasterize(all: MaskPolygon[], width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const rings = all.flatMap((p) => [p.outer, ...p.holes]);
  for (let y = 0; y < height; y++) {
    const cy = y + 0.5;
    for (let x = 0; x < width; x++) {
      const cx = x + 0.5;
      let inside = false;
      for (const ring of rings) {
        for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
          const [xi, yi] = ring[i];
          const [xj, yj] = ring[j];
          if (yi > cy !== yj > cy && cx < ((xj - xi) * (cy - yi)) / (yj - yi) + xi) inside = !inside;
        }
      }
      out[y * width + x] = inside ? 1 : 0;
    }
  }
  return out;
}

/** Sizes of the 4-connected foreground regions, in raster order of their first pixel (an independent flood fill). */
function regionSizes(data: Uint8Array, width: number, height: number): number[] {
  const seen = new Uint8Array(data.length);
  const sizes: number[] = [];
  for (let i = 0; i < data.length; i++) {
    if (data[i] === 0 || seen[i] === 1) continue;
    let size = 0;
    const queue = [i];
    seen[i] = 1;
    while (queue.length > 0) {
      const p = queue.pop()!;
      size++;
      const x = p % width;
      const y = Math.floor(p / width);
      for (const [nx, ny] of [[x - 1, y], [x + 1, y], [x, y - 1], [x, y + 1]]) {
        const q = ny * width + nx;
        if (nx >= 0 && ny >= 0 && nx < width && ny < height && data[q] !== 0 && seen[q] === 0) {
          seen[q] = 1;
          queue.push(q);
        }
      }
    }
    sizes.push(size);
  }
  return sizes;
}

/** Every edge axis-aligned and no two consecutive edges collinear (only corners kept). */
function expectCornersOnly(ring: Ring): void {
  expect(ring.length).toBeGreaterThanOrEqual(4);
  for (let i = 0; i < ring.length; i++) {
    const a = ring[(i + ring.length - 1) % ring.length];
    const b = ring[i];
    const c = ring[(i + 1) % ring.length];
    expect(a[0] === b[0] || a[1] === b[1]).toBe(true);
    const cross = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]);
    expect(cross).not.toBe(0);
  }
}

function expectInvariants(data: Uint8Array, width: number, height: number): MaskPolygon[] {
  const result = traceContours(data, width, height);
  const sizes = regionSizes(data, width, height);
  expect(result.map(polygonArea)).toEqual(sizes);
  for (const p of result) {
    expect(ringArea(p.outer)).toBeGreaterThan(0);
    expectCornersOnly(p.outer);
    for (const hole of p.holes) {
      expect(ringArea(hole)).toBeLessThan(0);
      expectCornersOnly(hole);
    }
  }
  expect(rasterize(result, width, height)).toEqual(data);
  return result;
}

describe('Mask.toPolygons', () => {
  it('an empty mask has no polygons', () => {
    expect(polygons(['....', '....'])).toEqual([]);
    expect(new Mask({ data: new Uint8Array(0), width: 0, height: 0, score: 0, lowResLogits: new Float32Array(1) }).toPolygons()).toEqual([]);
  });

  it('a single pixel is its unit square, clockwise on screen from its top-left corner', () => {
    const [p, ...rest] = polygons(['....', '..#.', '....']);
    expect(rest).toEqual([]);
    expect(p).toEqual({ outer: [[2, 1], [3, 1], [3, 2], [2, 2]], holes: [] });
    expect(ringArea(p.outer)).toBe(1);
  });

  it('a square', () => {
    const result = polygons(['.....', '.###.', '.###.', '.###.', '.....']);
    expect(result).toEqual([{ outer: [[1, 1], [4, 1], [4, 4], [1, 4]], holes: [] }]);
    expect(polygonArea(result[0])).toBe(9);
  });

  it('a square with a hole: the hole runs counter-clockwise and subtracts', () => {
    const result = polygons(['.....', '.###.', '.#.#.', '.###.', '.....']);
    expect(result).toEqual([{ outer: [[1, 1], [4, 1], [4, 4], [1, 4]], holes: [[[2, 3], [3, 3], [3, 2], [2, 2]]] }]);
    expect(ringArea(result[0].holes[0])).toBe(-1);
    expect(polygonArea(result[0])).toBe(8);
  });

  it('two separate blobs, in raster order of their first pixel', () => {
    const result = polygons(['...##', '#..##', '#....']);
    expect(result).toEqual([
      { outer: [[3, 0], [5, 0], [5, 2], [3, 2]], holes: [] },
      { outer: [[0, 1], [1, 1], [1, 3], [0, 3]], holes: [] },
    ]);
  });

  it('pixels touching at a corner are separate polygons sharing a vertex', () => {
    expect(polygons(['#.', '.#'])).toEqual([
      { outer: [[0, 0], [1, 0], [1, 1], [0, 1]], holes: [] },
      { outer: [[1, 1], [2, 1], [2, 2], [1, 2]], holes: [] },
    ]);
    expect(polygons(['.#', '#.'])).toEqual([
      { outer: [[1, 0], [2, 0], [2, 1], [1, 1]], holes: [] },
      { outer: [[0, 1], [1, 1], [1, 2], [0, 2]], holes: [] },
    ]);
  });

  it('a diagonal ring encloses no hole: its middle touches the outside at corners', () => {
    const result = polygons(['.##', '#.#', '##.']);
    expect(result).toHaveLength(2);
    expect(result.every((p) => p.holes.length === 0)).toBe(true);
    expect(result.map(polygonArea)).toEqual([3, 3]);
  });

  it('a hole touching the region only at a corner stays one hole (background is 8-connected)', () => {
    const result = polygons(['#####', '#.###', '##.##', '#####']);
    expect(result).toHaveLength(1);
    expect(result[0].holes).toHaveLength(1);
    expect(ringArea(result[0].holes[0])).toBe(-2);
    expect(polygonArea(result[0])).toBe(18);
  });

  it('a mask touching the image border, and a full mask', () => {
    expect(polygons(['###', '###'])).toEqual([{ outer: [[0, 0], [3, 0], [3, 2], [0, 2]], holes: [] }]);
    const result = polygons(['##..', '#...', '...#']);
    expect(result).toEqual([
      { outer: [[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2]], holes: [] },
      { outer: [[3, 2], [4, 2], [4, 3], [3, 3]], holes: [] },
    ]);
  });

  it('nested regions: a blob inside the hole of another is its own polygon', () => {
    const result = polygons(['#######', '#.....#', '#..#..#', '#.....#', '#######']);
    expect(result).toEqual([
      { outer: [[0, 0], [7, 0], [7, 5], [0, 5]], holes: [[[1, 4], [6, 4], [6, 1], [1, 1]]] },
      { outer: [[3, 2], [4, 2], [4, 3], [3, 3]], holes: [] },
    ]);
    expect(result.map(polygonArea)).toEqual([20, 1]);
  });

  it('a region with several holes and concave outline', () => {
    const rows = ['.#######.', '##.##.###', '.#######.', '.#.#..##.', '.####.##.'];
    const { data, width, height } = parse(rows);
    const result = expectInvariants(data, width, height);
    expect(result).toHaveLength(1);
    // The holes at (2,1), (5,1) and (2,3) are enclosed; (4..5, 3..4) opens to the bottom edge.
    expect(result[0].holes.map(ringArea)).toEqual([-1, -1, -1]);
  });

  it('a checkerboard is one polygon per pixel', () => {
    const rows = ['#.#.#', '.#.#.', '#.#.#'];
    const result = polygons(rows);
    expect(result).toHaveLength(8);
    expect(result.every((p) => polygonArea(p) === 1 && p.holes.length === 0)).toBe(true);
  });

  it('random masks: areas, refill and regions agree with the pixels', () => {
    // Densities from sparse to dense give isolated pixels, saddles and holes.
    const random = xorshift32(0x9e3779b9);
    let holes = 0;
    for (let trial = 0; trial < 200; trial++) {
      const width = 1 + Math.floor(random() * 24);
      const height = 1 + Math.floor(random() * 24);
      const density = 0.2 + 0.6 * random();
      const data = Uint8Array.from({ length: width * height }, () => (random() < density ? 1 : 0));
      holes += expectInvariants(data, width, height).reduce((n, p) => n + p.holes.length, 0);
    }
    expect(holes).toBeGreaterThan(50); // the trials did exercise holes
  });

  it('their JSON text, made natively, is JSON.stringify of the polygons, byte for byte', async () => {
    const random = xorshift32(0x2545f491);
    const cases: Array<[Uint8Array | Uint32Array, number, number]> = [
      [new Uint8Array(0), 0, 0],
      [new Uint8Array(12), 4, 3],
      [new Uint8Array(12).fill(1), 4, 3],
      [Uint32Array.of(5, 2, 2, 2, 5), 4, 4],
    ];
    for (let trial = 0; trial < 60; trial++) {
      const width = 1 + Math.floor(random() * 40);
      const height = 1 + Math.floor(random() * 40);
      const density = 0.1 + 0.8 * random();
      cases.push([Uint8Array.from({ length: width * height }, () => (random() < density ? 1 : 0)), width, height]);
    }
    const wide = new Uint8Array(12000 * 2); // coordinates of five digits
    wide.fill(1, 10990, 11990);
    cases.push([wide, 12000, 2]);
    for (const [source, width, height] of cases) {
      const json = Buffer.from(await traceContoursJsonAsync(source, width, height)).toString();
      expect(json).toBe(JSON.stringify(traceContours(source, width, height)));
    }
  });

  it('non-zero values other than 1 count as foreground', () => {
    const data = new Uint8Array([0, 255, 7, 0]);
    expect(traceContours(data, 2, 2)).toEqual([
      { outer: [[1, 0], [2, 0], [2, 1], [1, 1]], holes: [] },
      { outer: [[0, 1], [1, 1], [1, 2], [0, 2]], holes: [] },
    ]);
  });
});

describe('the native tracer (native/masks/polygons.cc)', () => {
  const square = parse(['....', '.##.', '.##.', '....']);
  const squarePolygons = [{ outer: [[1, 1], [3, 1], [3, 3], [1, 3]], holes: [] }];

  it('reads run lengths as well as pixels', async () => {
    // column-major runs of the square: 5 off, 2 on, 2 off, 2 on, 5 off
    const counts = Uint32Array.of(5, 2, 2, 2, 5);
    expect(traceContours(counts, 4, 4)).toEqual(squarePolygons);
    expect(await traceContoursAsync(counts, 4, 4)).toEqual(squarePolygons);
    // and row runs ([start, end) row-major pairs, findInstances' form)
    const rows = Int32Array.of(5, 7, 9, 11);
    expect(native().tracePolygons(rows, 4, 4)).toEqual(native().tracePolygons(square.data, 4, 4));
    await expect(native().tracePolygonsAsync(Int32Array.of(5, 17), 4, 4)).rejects.toThrow(RangeError);
  });

  /** The definition: each run of ones set pixel by pixel down its columns (rle.ts's JS decoder until the native one). */
  function columnWalk(counts: Uint32Array, height: number, width: number): Uint8Array {
    const mask = new Uint8Array(height * width);
    for (let i = 0, k = 0; i < counts.length; k += counts[i], i++) {
      if (i % 2 === 1) for (let j = k; j < k + counts[i]; j++) mask[(j % height) * width + Math.floor(j / height)] = 1;
    }
    return mask;
  }

  it('decodes run lengths as walking down the columns does: empty runs, runs across columns', async () => {
    const random = xorshift32(0x1234567);
    for (let trial = 0; trial < 100; trial++) {
      const [width, height] = [1 + Math.floor(random() * 30), 1 + Math.floor(random() * 30)];
      const counts: number[] = [];
      for (let left = width * height; left > 0; ) {
        // runs of 0 to 2 columns' length, a fifth of them empty
        const run = random() < 0.2 ? 0 : Math.min(left, 1 + Math.floor(random() * 2 * height));
        counts.push(run);
        left -= run;
      }
      if (counts.length % 2 === 1 && random() < 0.5) counts.push(0);
      const source = Uint32Array.from(counts);
      const ones = columnWalk(source, height, width);
      expect(countsToMask(source, height, width), `${width}x${height} ${counts}`).toEqual(ones);
      expect(countsToMask(counts, height, width)).toEqual(ones);
      const expected = ones.map((v) => v * 255);
      expect(await native().maskGreyAsync(source, width, height)).toEqual(expected);
      expect(await native().maskGreyAsync(ones, width, height)).toEqual(expected);
    }
  });

  it('traces a copy of the source: changing it after the call does not change the result', async () => {
    const data = square.data.slice();
    const pending = traceContoursAsync(data, 4, 4);
    data.fill(1);
    expect(await pending).toEqual(squarePolygons);
  });

  it('throws on malformed calls instead of reading out of bounds', async () => {
    const addon = native();
    const call = (...args: unknown[]) => () => (addon.tracePolygons as (...a: unknown[]) => unknown)(...args);
    expect(call(new Uint8Array(15), 4, 4)).toThrow(TypeError);
    expect(call(new Float32Array(16), 4, 4)).toThrow(TypeError);
    expect(call(square.data, 4.5, 4)).toThrow(TypeError);
    expect(call(square.data, -4, -4)).toThrow(TypeError);
    expect(call(square.data, 4)).toThrow(TypeError);
    expect(call(Uint32Array.of(5, 2), 4, 4)).toThrow(RangeError);
    expect(call(Uint32Array.of(2 ** 32 - 1, 17), 4, 4)).toThrow(RangeError);
    expect(call(new Uint32Array(0), 4, 4)).toThrow(RangeError);
    expect(call(Uint32Array.of(5), 0, 5)).toThrow(RangeError); // runs of a mask without pixels sum to 0
    expect(call(Uint32Array.of(0), 0, 5)()).toEqual({ xy: new Int32Array(0), ringSizes: new Uint32Array(0), ringsPerPolygon: new Uint32Array(0) });
    await expect(addon.tracePolygonsAsync(Uint32Array.of(5, 2), 4, 4)).rejects.toThrow(RangeError);
  });
});

describe('the native heat-map quantizer (native/addon/rasters.cc)', () => {
  it('is round(255 · clamp(p, 0, 1)) as Math.round computes it, NaN giving 0', async () => {
    const edges = [-1, 0, 0.5 / 255, 1.5 / 255, 127.5 / 255, 254.5 / 255, 1 - 1e-7, 1, 2, NaN, Infinity, -Infinity, 1e-30];
    let state = 12345;
    const values = Float32Array.from([...edges, ...Array.from({ length: 5000 }, () => ((state = (state * 48271) % 2147483647) / 2147483647) * 1.2 - 0.1)]);
    const expected = Uint8Array.from(values, (p) => Math.round(Math.min(1, Math.max(0, p)) * 255));
    expect(await native().quantizeUnitAsync(values)).toEqual(expected);
    expect(await native().quantizeUnitAsync(new Float32Array(0))).toEqual(new Uint8Array(0));
  });

  it('reads a copy of its input, and refuses other element types', async () => {
    const values = new Float32Array(64).fill(1);
    const pending = native().quantizeUnitAsync(values);
    values.fill(0);
    expect(await pending).toEqual(new Uint8Array(64).fill(255));
    const call = (v: unknown) => () => (native().quantizeUnitAsync as (v: unknown) => unknown)(v);
    expect(call(new Float64Array(4))).toThrow(TypeError);
    expect(call([0.5])).toThrow(TypeError);
  });
});

describe('the native raster tools out of memory', () => {
  it('reject with an Error when copying their input fails, instead of terminating the process', () => {
    // A 3 GB input under a 6 GB address-space cap: the input itself fits (allocated lazily), a
    // copy of it beside the process's own mappings cannot (std::bad_alloc before the worker starts).
    const addon = builtAddon();
    const script = `
      const n = require(${JSON.stringify(addon)});
      const values = new Float32Array(750 * 1024 * 1024);
      try { n.quantizeUnitAsync(values).then(() => console.log('resolved'), (e) => console.log('rejected', e.message)); }
      catch (e) { console.log('threw', e.constructor.name, e.message); }`;
    const run = spawnSync('bash', ['-c', 'ulimit -v 6000000 && exec "$0" -e "$1"', process.execPath, script], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe('threw Error std::bad_alloc');
  });
});
