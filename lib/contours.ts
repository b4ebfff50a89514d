// Binary mask → polygons with holes, exactly on pixel boundaries.
//
// Pixel (x, y) is the unit square [x, x+1] × [y, y+1]; its corners are the vertices of a
// (width+1) × (height+1) lattice. Every side shared by a foreground and a background pixel (or the
// outside of the image) is a boundary edge, directed so that the foreground is on its right when
// walking it (y down): top sides run east, right sides south, bottom sides west, left sides north.
// Each lattice vertex then has as many boundary edges leaving as arriving, so the edges form
// closed rings; following them (border following on the pixel-corner lattice, as in
// marching squares) gives each ring once. Where two foreground pixels touch only at a corner (a
// saddle vertex with two edges leaving), the walk turns right, staying with the pixel it came
// from: foreground regions are 4-connected and the background 8-connected, so every ring is a
// simple polygon and two regions that meet at a corner are two polygons touching at a point.

import { componentRuns, labelImage } from './components.js';

/** A closed ring of pixel-corner vertices `[x, y]`; the last vertex is not repeated. */
export type Ring = Array<[x: number, y: number]>;

/** One 4-connected foreground region of a mask: its outer boundary and the boundaries of its holes. */
export interface MaskPolygon {
  /** Outer boundary, clockwise on screen (positive shoelace area in image coordinates, y down). */
  outer: Ring;
  /** Boundaries of the background regions enclosed by this one, counter-clockwise on screen. */
  holes: Ring[];
}

// Directions, clockwise on screen: east, south, west, north. Right turn = +1, left turn = +3.
const DX = [1, 0, -1, 0] as const;
const DY = [0, 1, 0, -1] as const;
const EAST = 0;

/**
 * The polygons of a binary mask (row-major, width × height, non-zero = foreground), one per
 * 4-connected foreground region, in raster order of the regions' first pixels.
 *
 * Vertices are integer pixel corners; rings keep only their corners (no collinear vertices).
 * Each outer ring starts at the top-left corner of its region's first pixel (top row, then
 * leftmost) and runs clockwise on screen; holes run counter-clockwise, in raster order of their
 * first edge. The shoelace area of the outer ring minus those of the holes is the region's pixel
 * count, and filling the rings even-odd gives back the mask exactly.
 */
export function traceContours(data: Uint8Array, width: number, height: number): MaskPolygon[] {
  if (width === 0 || height === 0) return [];
  // 4-connected foreground regions, 1.. in raster order of their first pixel (0: background)
  const labels = labelImage(componentRuns(data, width, height, 0, 4), width * height);
  const polygons: MaskPolygon[] = [];
  // Top sides already walked: every ring has at least one, so scanning them finds every ring once.
  const walked = new Uint8Array(width * height);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      if (data[i] === 0 || walked[i] !== 0 || (y > 0 && data[i - width] !== 0)) continue;
      const ring = traceRing(data, width, height, x, y, walked);
      const region = labels[i] - 1;
      // The first ring met of a region starts at its first pixel, whose top side is outer boundary.
      if (region === polygons.length) polygons.push({ outer: ring, holes: [] });
      else polygons[region].holes.push(ring);
    }
  }
  return polygons;
}

/** Twice the signed area of a ring (shoelace formula); positive for outer rings, negative for holes. */
export function ringArea(ring: Ring): number {
  let twice = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    twice += ring[j][0] * ring[i][1] - ring[i][0] * ring[j][1];
  }
  return twice / 2;
}

/**
 * Walks the ring that starts with the top side of pixel (x0, y0), heading east from its top-left
 * corner, until it is back on that side. Marks the top sides it walks in `walked`.
 */
function traceRing(data: Uint8Array, width: number, height: number, x0: number, y0: number, walked: Uint8Array): Ring {
  const fg = (x: number, y: number): boolean => x >= 0 && y >= 0 && x < width && y < height && data[y * width + x] !== 0;
  // Whether a boundary edge leaves vertex (vx, vy) in direction d: foreground on its right, background on its left.
  const leaves = (vx: number, vy: number, d: number): boolean => {
    switch (d) {
      case 0: // east: the pixel below-right is foreground, above-right background
        return fg(vx, vy) && !fg(vx, vy - 1);
      case 1: // south: below-left foreground, below-right background
        return fg(vx - 1, vy) && !fg(vx, vy);
      case 2: // west: above-left foreground, below-left background
        return fg(vx - 1, vy - 1) && !fg(vx - 1, vy);
      default: // north: above-right foreground, above-left background
        return fg(vx, vy - 1) && !fg(vx - 1, vy - 1);
    }
  };

  const ring: Ring = [];
  let vx = x0;
  let vy = y0;
  let d = EAST;
  for (;;) {
    if (d === EAST) walked[vy * width + vx] = 1;
    vx += DX[d];
    vy += DY[d];
    // Right turn first (keeps pixels that touch at a corner apart), then straight on, then left.
    const right = (d + 1) & 3;
    const left = (d + 3) & 3;
    const next = leaves(vx, vy, right) ? right : leaves(vx, vy, d) ? d : left;
    if (next !== d) ring.push([vx, vy]);
    d = next;
    if (vx === x0 && vy === y0 && d === EAST) break;
  }
  // Start the ring at (x0, y0) when it is a corner (it was pushed last, on arrival).
  const last = ring[ring.length - 1];
  if (last !== undefined && last[0] === x0 && last[1] === y0) ring.unshift(ring.pop() as [number, number]);
  return ring;
}
