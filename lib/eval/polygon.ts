// COCO polygons → RLE, bit-compatible with pycocotools (`mask.frPyObjects(polygons, h, w)` then
// `mask.merge`, i.e. common/maskApi.c rleFrPoly): the polygon is scaled by 5 and rounded to
// integers, its edges are walked pixel by pixel (Bresenham-like, one step per unit of the longer
// axis), each step that crosses a column centre of the original grid records a boundary at that
// column (the row rounded up), and the mask is what lies between successive boundaries of a
// column, column by column — so a pixel is inside when its centre is, up to the rounding.
// C's truncation of doubles to int is Math.trunc here; every other step is the same double
// arithmetic, so the output is identical.
import { argumentMessage, invalidRange, invalidType } from '../errors.js';
import { mergeValidRuns, validCountsString } from '../rle.js';
import type { RLE } from '../types.js';
import { integerInRange } from '../validate.js';

/** pycocotools' upsampling factor. */
const SCALE = 5;

/** The largest coordinate accepted (|x|, |y|): far outside any image, still exact as C ints after × 5. */
export const MAX_POLYGON_COORDINATE = 1_000_000;

/**
 * Checks a COCO polygon `[x0, y0, x1, y1, ...]`: an even number (at least 6: three vertices) of
 * finite numbers within ±MAX_POLYGON_COORDINATE. (pycocotools reads a 4-number "polygon" as a box;
 * gRefCOCO's loader drops such polygons, and so is it refused here.)
 * @throws Error with the shared message naming `param`
 */
export function checkPolygon(value: unknown, param: string): number[] {
  const what = `a polygon [x0, y0, x1, y1, ...] of at least 3 vertices (an even count of numbers within ±${MAX_POLYGON_COORDINATE})`;
  const ok =
    Array.isArray(value) &&
    value.length >= 6 &&
    value.length % 2 === 0 &&
    value.every((v) => typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= MAX_POLYGON_COORDINATE);
  if (!ok) throw new Error(argumentMessage(what, param, value));
  return value as number[];
}

/** A rasterisation grid: integer sides ≥ 0, at most 2^31 − 1 pixels (pycocotools' C ints). */
function checkGrid(height: number, width: number): void {
  integerInRange(height, 'height', 0);
  integerInRange(width, 'width', 0);
  if (height * width > 2 ** 31 - 1) throw invalidRange('a grid of fewer than 2^31 pixels', 'height × width', height * width);
}

/**
 * Column-major run lengths (COCO uncompressed counts) of one polygon rasterised on a height × width
 * grid, exactly as pycocotools' rleFrPoly. Vertices are in pixels (x right, y down; pixel (i, j)
 * covers [i, i + 1) × [j, j + 1)); the polygon is closed implicitly; parts outside the grid are
 * clipped.
 */
export function polygonRuns(xy: readonly number[], height: number, width: number): number[] {
  checkPolygon(xy, 'xy');
  checkGrid(height, width);
  return rasterRuns(xy, height, width);
}

/** polygonRuns of a polygon and grid already checked. */
function rasterRuns(xy: readonly number[], height: number, width: number): number[] {
  const k = Math.floor(xy.length / 2);
  // upsample the vertices and walk the edges densely
  const x: number[] = [];
  const y: number[] = [];
  for (let j = 0; j < k; j++) {
    x.push(Math.trunc(SCALE * xy[2 * j] + 0.5));
    y.push(Math.trunc(SCALE * xy[2 * j + 1] + 0.5));
  }
  x.push(x[0]);
  y.push(y[0]);
  const u: number[] = [];
  const v: number[] = [];
  for (let j = 0; j < k; j++) {
    let [xs, xe, ys, ye] = [x[j], x[j + 1], y[j], y[j + 1]];
    const dx = Math.abs(xe - xs);
    const dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) [xs, xe, ys, ye] = [xe, xs, ye, ys];
    if (dx === 0 && dy === 0) {
      // C divides 0 by 0 here; the point's row is never read (its neighbours share its column)
      u.push(xs);
      v.push(ys);
    } else if (dx >= dy) {
      const s = (ye - ys) / dx;
      for (let d = 0; d <= dx; d++) {
        const t = flip ? dx - d : d;
        u.push(t + xs);
        v.push(Math.trunc(ys + s * t + 0.5));
      }
    } else {
      const s = (xe - xs) / dy;
      for (let d = 0; d <= dy; d++) {
        const t = flip ? dy - d : d;
        v.push(t + ys);
        u.push(Math.trunc(xs + s * t + 0.5));
      }
    }
  }
  // boundary crossings of the original grid's column centres, as column-major positions
  const positions: number[] = [];
  for (let j = 1; j < u.length; j++) {
    if (u[j] === u[j - 1]) continue;
    let xd = u[j] < u[j - 1] ? u[j] : u[j] - 1;
    xd = (xd + 0.5) / SCALE - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > width - 1) continue;
    let yd = v[j] < v[j - 1] ? v[j] : v[j - 1];
    yd = (yd + 0.5) / SCALE - 0.5;
    yd = Math.ceil(yd < 0 ? 0 : yd > height ? height : yd);
    positions.push(xd * height + yd);
  }
  positions.push(height * width);
  positions.sort((a, b) => a - b);
  // positions → run lengths, a zero-length run merging its neighbours
  const diffs: number[] = [];
  let previous = 0;
  for (const p of positions) {
    diffs.push(p - previous);
    previous = p;
  }
  const counts = [diffs[0]];
  for (let j = 1; j < diffs.length; ) {
    if (diffs[j] > 0) counts.push(diffs[j++]);
    else if (++j < diffs.length) counts[counts.length - 1] += diffs[j++];
  }
  return counts;
}

/**
 * The union of COCO polygons (one object's `segmentation`, or several objects') as an RLE with
 * compressed counts: pycocotools' `mask.merge(mask.frPyObjects(polygons, height, width))`.
 * @throws Error (checkPolygon) for a malformed polygon; RangeError for a grid that is not
 *   integers ≥ 0 of fewer than 2^31 pixels.
 */
export function polygonsToRLE(polygons: readonly (readonly number[])[], height: number, width: number): RLE {
  if (!Array.isArray(polygons)) throw invalidType('an array of polygons', 'polygons', polygons);
  checkGrid(height, width);
  polygons.forEach((p, i) => checkPolygon(p, `polygons[${i}]`));
  let counts: number[] = [height * width];
  polygons.forEach((p, i) => {
    const runs = rasterRuns(p, height, width);
    counts = i === 0 ? runs : mergeValidRuns(counts, runs);
  });
  return { size: [height, width], counts: validCountsString(counts) };
}
