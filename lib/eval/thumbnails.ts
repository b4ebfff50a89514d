// Small PNG thumbnails of an evaluation sample for the HTML report (report.ts): the image with its
// prompts drawn on it, and the ground truth and the prediction tinted over the image (or, without
// an image, on a dark background). Resizing and PNG encoding run in sharp's thread pool; the
// per-pixel tinting runs on thumbnail-sized buffers only.
import { sharp } from '../sharp.js';
import type { DecodedImage, Point, Box } from '../types.js';

/** The longest side of a thumbnail, in pixels. */
export const THUMBNAIL_SIZE = 128;

/** What is drawn on the image thumbnail. */
export interface ThumbnailPrompt {
  points?: readonly Point[];
  boxes?: readonly Box[];
}

/** PNG thumbnails as data: URIs. */
export interface SampleThumbnails {
  /** The image with the prompts; absent without an image. */
  image?: string;
  gt: string;
  pred: string;
}

type Rgb = readonly [number, number, number];
const GT_COLOR: Rgb = [40, 200, 90];
const PRED_COLOR: Rgb = [250, 120, 30];
const BACKGROUND: Rgb = [40, 40, 46];
const POSITIVE: Rgb = [40, 230, 90];
const NEGATIVE: Rgb = [240, 50, 50];
const BOX_COLOR: Rgb = [255, 220, 0];
/** How much of the mask colour is mixed into a fully covered pixel over an image. */
const TINT = 0.6;

/** The thumbnail size of a width × height picture (longest side THUMBNAIL_SIZE, never enlarged). */
export function thumbnailSize(width: number, height: number): [width: number, height: number] {
  const scale = Math.min(1, THUMBNAIL_SIZE / Math.max(width, height));
  return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
}

/**
 * Thumbnails of one sample. Masks are row-major 0/1 (height × width, the image's size when there
 * is one).
 */
export async function sampleThumbnails(
  gt: Uint8Array,
  pred: Uint8Array,
  width: number,
  height: number,
  image?: DecodedImage,
  prompt: ThumbnailPrompt = {},
): Promise<SampleThumbnails> {
  const [tw, th] = thumbnailSize(width, height);
  const base = image === undefined ? undefined : await resize(image.data, width, height, 3, tw, th);
  const [gtCover, predCover] = await Promise.all([coverage(gt, width, height, tw, th), coverage(pred, width, height, tw, th)]);
  const thumbs: SampleThumbnails = {
    gt: await png(tint(base, gtCover, GT_COLOR), tw, th),
    pred: await png(tint(base, predCover, PRED_COLOR), tw, th),
  };
  if (base !== undefined) thumbs.image = await png(drawPrompt(Uint8Array.from(base), tw, th, tw / width, prompt), tw, th);
  return thumbs;
}

/** A 0/1 mask resized to tw × th as coverage 0..255 (area average). */
async function coverage(mask: Uint8Array, width: number, height: number, tw: number, th: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) bytes[i] = mask[i] === 0 ? 0 : 255;
  return resize(bytes, width, height, 1, tw, th);
}

async function resize(data: Uint8Array, width: number, height: number, channels: 1 | 3, tw: number, th: number): Promise<Uint8Array> {
  const resized = sharp(data, { raw: { width, height, channels } }).resize(tw, th, { fit: 'fill', kernel: 'linear' });
  // one channel stays one (sharp would otherwise write sRGB)
  const out = await (channels === 1 ? resized.toColourspace('b-w') : resized).raw().toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/** The mask's colour mixed into the image by coverage (TINT at full cover), or onto the background. */
function tint(base: Uint8Array | undefined, cover: Uint8Array, color: Rgb): Uint8Array {
  const out = new Uint8Array(cover.length * 3);
  for (let i = 0; i < cover.length; i++) {
    const a = cover[i] / 255;
    for (let c = 0; c < 3; c++) {
      const under = base === undefined ? BACKGROUND[c] : base[3 * i + c];
      const mix = base === undefined ? a : a * TINT;
      out[3 * i + c] = Math.round(under * (1 - mix) + color[c] * mix);
    }
  }
  return out;
}

/** Points as small squares (green positive, red negative), boxes as outlines, scaled by `scale`. */
function drawPrompt(rgb: Uint8Array, tw: number, th: number, scale: number, prompt: ThumbnailPrompt): Uint8Array {
  const set = (x: number, y: number, color: Rgb): void => {
    if (x < 0 || y < 0 || x >= tw || y >= th) return;
    rgb.set(color, 3 * (y * tw + x));
  };
  for (const [x0, y0, x1, y1] of prompt.boxes ?? []) {
    const [a, b, c, d] = [x0, y0, x1, y1].map((v) => Math.round(v * scale));
    for (let x = a; x <= c; x++) [b, d].forEach((y) => set(x, y, BOX_COLOR));
    for (let y = b; y <= d; y++) [a, c].forEach((x) => set(x, y, BOX_COLOR));
  }
  for (const p of prompt.points ?? []) {
    const [cx, cy] = [Math.floor(p.x * scale), Math.floor(p.y * scale)];
    for (let dy = -2; dy <= 2; dy++) {
      for (let dx = -2; dx <= 2; dx++) set(cx + dx, cy + dy, Math.abs(dx) === 2 || Math.abs(dy) === 2 ? [0, 0, 0] : p.label === 1 ? POSITIVE : NEGATIVE);
    }
  }
  return rgb;
}

async function png(rgb: Uint8Array, width: number, height: number): Promise<string> {
  const bytes = await sharp(rgb, { raw: { width, height, channels: 3 } }).png({ palette: true, compressionLevel: 9 }).toBuffer();
  return `data:image/png;base64,${bytes.toString('base64')}`;
}
