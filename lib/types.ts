// Public types shared by the API modules. Coordinates are pixels of the original image,
// x to the right, y down.

/** Point label: 1 = positive (inside the object), 0 = negative (outside). */
export type PointLabel = 0 | 1;

/** A click prompt, in pixels of the original image. */
export interface Point {
  /** Column, in [0, width]. */
  x: number;
  /** Row, in [0, height]. */
  y: number;
  /** 1 positive, 0 negative. */
  label: PointLabel;
}

/** A vertex `[x, y]` of a scribble's path, in pixels of the original image. */
export type Vertex = [x: number, y: number];

/**
 * A scribble: a polyline drawn over the object (label 1) or over what is not the object
 * (label 0), in pixels of the original image. The decoder sees it as clicks sampled along the
 * path (see `scribbleToPoints`).
 */
export interface Scribble {
  /** The polyline's vertices, at least one; each inside the image (edges included). */
  path: Vertex[];
  /** 1 positive, 0 negative. */
  label: PointLabel;
  /**
   * Also draw this scribble into the dense mask prompt (positive scribbles only; ignored for
   * label 0): it is rasterised with a round brush max(width, height) / 64 pixels wide (see
   * `rasterizeScribbles`) into a binary mask that is OR-ed with `Prompt.mask`, or, with
   * `Prompt.maskInput` (and in sessions, whose rounds feed the previous logits back), raises the
   * low-res logits of the cells it touches to at least those of the stroke. Default: `false`
   * (the scribble is clicks only).
   */
  dense?: boolean;
}

/**
 * A binary mask at image size, e.g. a user's selection or a previous result's `Mask`: row-major
 * width × height bytes, 0 outside and any non-zero value (1 or 255) inside.
 */
export interface BinaryMask {
  data: Uint8Array;
  width: number;
  height: number;
}

/** A box `[x0, y0, x1, y1]` (XYXY) in pixels of the original image, with x0 <= x1 and y0 <= y1. */
export type Box = [x0: number, y0: number, x1: number, y1: number];

/** Raw pixels, row-major HWC, 8 bits per channel. */
export interface RawImage {
  /** width × height × channels bytes. */
  data: Uint8Array;
  width: number;
  height: number;
  /** 1 (grey), 3 (RGB) or 4 (RGBA; alpha is dropped). */
  channels: 1 | 3 | 4;
}

/**
 * An image: a file path, the bytes of an encoded image (PNG, JPEG, WebP, AVIF, TIFF, GIF, ...;
 * a Buffer is a Uint8Array), or raw pixels.
 */
export type ImageInput = string | Uint8Array | RawImage;

/** A decoded image: RGB, row-major HWC, 3 bytes per pixel. */
export interface DecodedImage {
  /** width × height × 3 bytes. */
  data: Uint8Array;
  width: number;
  height: number;
}

/** A COCO run-length encoding in compressed string form (as pycocotools' `encode`). */
export interface RLE {
  /** [height, width]. */
  size: [height: number, width: number];
  /** Column-major run lengths starting with a run of zeros, in COCO's compressed string form. */
  counts: string;
}

/** An RLE to decode: compressed string counts, or the uncompressed list of run lengths. */
export interface RLEInput {
  size: readonly [height: number, width: number] | readonly number[];
  counts: string | readonly number[];
}
