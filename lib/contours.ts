// Binary mask → polygons with holes, exactly on pixel boundaries (Mask.toPolygons). The native
// core traces them (native/masks/polygons.cc, which describes the method); this file turns its
// flat output into rings of [x, y] vertices.

import { invalidRange } from './errors.js';
import { native, type NativePolygons } from './native.js';

/** A closed ring of pixel-corner vertices `[x, y]`; the last vertex is not repeated. */
export type Ring = Array<[x: number, y: number]>;

/** One 4-connected foreground region of a mask: its outer boundary and the boundaries of its holes. */
export interface MaskPolygon {
  /** Outer boundary, clockwise on screen (positive shoelace area in image coordinates, y down). */
  outer: Ring;
  /** Boundaries of the background regions enclosed by this one, counter-clockwise on screen. */
  holes: Ring[];
}

/**
 * A mask as the native tracer takes it: row-major bytes (width × height, non-zero = foreground),
 * or its COCO run lengths (column-major, from a run of zeros), which it decodes itself.
 */
export type MaskSource = Uint8Array | Uint32Array;

/**
 * The polygons of a mask, one per 4-connected foreground region, in raster order of the regions'
 * first pixels (top row, then leftmost), traced on the calling thread.
 *
 * Vertices are integer pixel corners; rings keep only their corners (no collinear vertices).
 * Each outer ring starts at the top-left corner of its region's first pixel and runs clockwise
 * on screen; holes run counter-clockwise, in raster order of their first top side. The shoelace
 * area of the outer ring minus those of the holes is the region's pixel count, and filling the
 * rings even-odd gives back the mask exactly. The caller checks the source's size.
 */
export function traceContours(source: MaskSource, width: number, height: number): MaskPolygon[] {
  traceable(width, height);
  return fromNative(native().tracePolygons(source, width, height));
}

/** traceContours in a worker thread (the source is copied first, so the caller may reuse it). */
export async function traceContoursAsync(source: MaskSource, width: number, height: number): Promise<MaskPolygon[]> {
  traceable(width, height);
  return fromNative(await native().tracePolygonsAsync(source, width, height));
}

/**
 * @internal traceContoursAsync's polygons as the UTF-8 of their JSON, made in the worker thread
 * too: the bytes of `JSON.stringify(traceContours(source, width, height))`.
 */
export async function traceContoursJsonAsync(source: MaskSource, width: number, height: number): Promise<Uint8Array> {
  traceable(width, height);
  return native().tracePolygonsJsonAsync(source, width, height);
}

/** The tracer works in 32-bit corner coordinates: sides up to 2^31 − 2 (a mask's are any integer ≥ 0). */
function traceable(width: number, height: number): void {
  for (const [side, name] of [[width, 'width'], [height, 'height']] as const) {
    if (side > 2 ** 31 - 2) throw invalidRange('a mask side below 2^31 - 1 (to trace its polygons)', name, side);
  }
}

/** The signed area of a ring (shoelace formula): positive for outer rings, negative for holes. */
export function ringArea(ring: Ring): number {
  let twice = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    twice += ring[j][0] * ring[i][1] - ring[i][0] * ring[j][1];
  }
  return twice / 2;
}

/** The native tracer's flat rings as polygons. */
function fromNative({ xy, ringSizes, ringsPerPolygon }: NativePolygons): MaskPolygon[] {
  const polygons: MaskPolygon[] = new Array(ringsPerPolygon.length);
  let ring = 0;
  let v = 0; // index into xy, two per vertex
  const nextRing = (): Ring => {
    const n = ringSizes[ring++];
    const out: Ring = new Array(n);
    for (let i = 0; i < n; i++, v += 2) out[i] = [xy[v], xy[v + 1]];
    return out;
  };
  for (let p = 0; p < ringsPerPolygon.length; p++) {
    const outer = nextRing();
    const holes: Ring[] = new Array(ringsPerPolygon[p] - 1);
    for (let h = 0; h < holes.length; h++) holes[h] = nextRing();
    polygons[p] = { outer, holes };
  }
  return polygons;
}
