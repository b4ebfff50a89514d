// COCO polygons → RLE against pycocotools: the fixture written by models/eval/generate_polygons.py
// (frPyObjects per polygon, and merged per object), and small cases whose pixels can be checked
// by hand (a pixel is in when its centre is inside, with pycocotools' tie-breaking on edges).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkPolygon, polygonRuns, polygonsToRLE } from '../lib/eval/polygon.js';
import { countsToString, decodeRLE } from '../lib/rle.js';

interface PolygonCase {
  height: number;
  width: number;
  polygons: number[][];
  single: string[];
  union: string;
}

const FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'eval', 'polygons.json');
const { cases } = JSON.parse(readFileSync(FILE, 'utf8')) as { cases: PolygonCase[] };

/** The mask of one polygon as rows of 0/1 digits. */
function rows(xy: number[], height: number, width: number): string[] {
  const mask = decodeRLE({ size: [height, width], counts: polygonRuns(xy, height, width) });
  return Array.from({ length: height }, (_, y) => Array.from(mask.subarray(y * width, (y + 1) * width)).join(''));
}

describe('polygons vs pycocotools', () => {
  it(`rasterises ${cases.length} cases (${cases.reduce((n, c) => n + c.polygons.length, 0)} polygons) bit for bit`, () => {
    for (const c of cases) {
      c.polygons.forEach((p, i) => expect(countsToString(polygonRuns(p, c.height, c.width))).toBe(c.single[i]));
      expect(polygonsToRLE(c.polygons, c.height, c.width)).toEqual({ size: [c.height, c.width], counts: c.union });
    }
  });

  it('pixels whose centre is inside', () => {
    expect(rows([1, 1, 3, 1, 3, 4, 1, 4], 5, 5)).toEqual(['00000', '01100', '01100', '01100', '00000']);
    expect(rows([0, 0, 2, 0, 2, 2, 0, 2], 3, 3)).toEqual(['110', '110', '000']);
    // centres on the left/top edges are out, on the right/bottom edges in
    expect(rows([0.5, 0.5, 2.5, 0.5, 2.5, 2.5, 0.5, 2.5], 3, 3)).toEqual(['000', '011', '011']);
    expect(rows([0, 0, 4, 0, 0, 4], 4, 4)).toEqual(['1110', '1100', '1000', '0000']);
    // clipped to the image; outside entirely: empty
    expect(rows([-5, -5, 10, -5, 10, 1, -5, 1], 2, 3)).toEqual(['111', '000']);
    expect(rows([10, 10, 20, 10, 20, 20], 2, 2)).toEqual(['00', '00']);
  });

  it('an object of several polygons is their union', () => {
    const rle = polygonsToRLE([[0, 0, 1, 0, 1, 1, 0, 1], [2, 1, 3, 1, 3, 2, 2, 2]], 2, 3);
    expect(Array.from(decodeRLE(rle))).toEqual([1, 0, 0, 0, 0, 1]);
    expect(polygonsToRLE([], 2, 3)).toEqual({ size: [2, 3], counts: countsToString([6]) });
  });

  it('checkPolygon refuses what is not a polygon', () => {
    expect(checkPolygon([0, 0, 1, 0, 1, 1], 'p')).toEqual([0, 0, 1, 0, 1, 1]);
    const what =
      'Expected a polygon [x0, y0, x1, y1, ...] of at least 3 vertices (an even count of numbers within ±1000000) for p but received';
    expect(() => checkPolygon([0, 0, 1, 1], 'p')).toThrow(new Error(`${what} [0, 0, 1, 1] of type array`));
    expect(() => checkPolygon([0, 0, 1, 0, 1, 1, 2], 'p')).toThrow(what);
    expect(() => checkPolygon([0, 0, 1, 0, 1, NaN], 'p')).toThrow(what);
    expect(() => checkPolygon([0, 0, 1, 0, 1, 2e6], 'p')).toThrow(what);
    expect(() => checkPolygon('0 0 1 0 1 1', 'p')).toThrow(what);
  });
});

describe('polygon arguments', () => {
  it('polygonRuns and polygonsToRLE check polygons and the grid first (a NaN height hung, a 1e9 vertex exhausted memory)', () => {
    expect(() => polygonRuns([0, 0, 1e9, 0, 0, 1e9], 10, 10)).toThrow(/ for xy but received \[0, 0, 1000000000/);
    expect(() => polygonsToRLE([[0, 0, 5, 0, 0, 5], [0, 0, 5, 0, 0, 5]], Number.NaN, 10)).toThrow(
      new RangeError('Expected an integer >= 0 for height but received NaN of type number'),
    );
    expect(() => polygonsToRLE([[0, 0, 5, 0, 0, 5], [1, 2]], 10, 10)).toThrow(/ for polygons\[1\] but received \[1, 2\]/);
    expect(() => polygonsToRLE('x' as unknown as number[][], 10, 10)).toThrow(TypeError);
    expect(() => polygonRuns([0, 0, 5, 0, 0, 5], 2 ** 16, 2 ** 16)).toThrow(/a grid of fewer than 2\^31 pixels for height × width/);
  });
});
