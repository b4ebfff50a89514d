// Scribbles → point prompts. SAM's prompt encoder takes clicks, boxes and a dense mask; a scribble
// (a polyline drawn by the user) reaches it as clicks sampled evenly along the polyline's length.
import type { Point, Scribble, Vertex } from './types.js';
import { numberInRange, scribble as checkScribble } from './validate.js';

/** Most clicks one scribble becomes (SAM degrades with many clicks; it was trained with few). */
export const SCRIBBLE_MAX_POINTS = 8;

/**
 * Target spacing of the clicks along a scribble, as a fraction of the image's longest side:
 * one click every longestSide / 32 pixels (32 px on a 1024-px image, two cells of SAM's 64 × 64
 * embedding grid), so that sampling does not depend on the image's resolution.
 */
export const SCRIBBLE_SPACING_DIVISOR = 32;

/**
 * The clicks a scribble stands for, with the scribble's label, in order along the path.
 *
 * Let L be the path's length (sum of its segments) and s = max(width, height) / 32 the spacing.
 * A scribble of length 0 (one vertex, or all vertices equal) is one click at its first vertex.
 * Otherwise it becomes n = min(8, max(2, floor(L / s) + 1)) clicks at arc lengths
 * 0, L/(n-1), 2L/(n-1), ..., L: evenly spaced along the path (corners are not kept unless a click
 * falls on them), always including both endpoints. So a stroke across half of a 1024-px image
 * gives 8 clicks and a 40-px flick gives 2.
 *
 * @param width width of the image the scribble was drawn on (with `height`, sets the spacing).
 * @param height height of that image.
 */
export function scribbleToPoints(scribble: Scribble, width: number, height: number): Point[] {
  numberInRange(width, 'width', Number.MIN_VALUE, Number.MAX_SAFE_INTEGER);
  numberInRange(height, 'height', Number.MIN_VALUE, Number.MAX_SAFE_INTEGER);
  scribble = checkScribble(scribble, 'scribble', width, height);
  const spacing = Math.max(width, height) / SCRIBBLE_SPACING_DIVISOR;
  return samplePolyline(scribble.path, spacing, SCRIBBLE_MAX_POINTS).map(([x, y]) => ({ x, y, label: scribble.label }));
}

/**
 * Points evenly spaced by arc length along `path`, endpoints included: min(maxPoints,
 * max(2, floor(length / spacing) + 1)) of them, or the first vertex alone when the length is 0.
 */
export function samplePolyline(path: readonly Vertex[], spacing: number, maxPoints: number): Vertex[] {
  if (path.length === 0) return [];
  // cumulative[i]: arc length from path[0] to path[i].
  const cumulative = [0];
  for (let i = 1; i < path.length; i++) {
    const [ax, ay] = path[i - 1];
    const [bx, by] = path[i];
    cumulative.push(cumulative[i - 1] + Math.hypot(bx - ax, by - ay));
  }
  const length = cumulative[path.length - 1];
  const [firstX, firstY] = path[0];
  if (!(length > 0)) return [[firstX, firstY]];

  const n = Math.min(maxPoints, Math.max(2, Math.floor(length / spacing) + 1));
  const out: Vertex[] = [];
  let segment = 1; // the segment path[segment - 1] → path[segment] holding arc length s
  for (let k = 0; k < n - 1; k++) {
    const s = (k * length) / (n - 1);
    while (segment < path.length - 1 && cumulative[segment] < s) segment++;
    const start = cumulative[segment - 1];
    const along = cumulative[segment] - start;
    const a = path[segment - 1];
    const b = path[segment];
    out.push([lerp(a[0], b[0], s - start, along), lerp(a[1], b[1], s - start, along)]);
  }
  const [lastX, lastY] = path[path.length - 1];
  out.push([lastX, lastY]);
  return out;
}

/** a + (b - a) · d / total, kept between a and b (multiplying first keeps exact cases exact). */
function lerp(a: number, b: number, d: number, total: number): number {
  if (total === 0) return a;
  const v = a + ((b - a) * d) / total;
  return Math.min(Math.max(v, Math.min(a, b)), Math.max(a, b));
}
