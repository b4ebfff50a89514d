// `segment --out`: the image with a mask blended in a colour and outlined.
import { sharp } from '../sharp.js';
import type { Mask } from '../mask.js';
import { native } from '../native.js';
import type { DecodedImage } from '../types.js';

/** SAM's demo colour (segment-anything notebooks, show_mask). */
const COLOUR = [30, 144, 255] as const;
/** Opacity of the fill; the outline is opaque. */
const FILL_ALPHA = 140;

/** Writes `image` with `mask` drawn over it; the format follows the file's extension. */
export async function writeOverlay(file: string, image: DecodedImage, mask: Mask): Promise<void> {
  const { width, height } = image;
  const thickness = Math.max(1, Math.round(Math.max(width, height) / 500));
  const outline = maskOutline(mask.data, width, height, thickness);
  const rgba = Buffer.alloc(width * height * 4);
  for (let i = 0; i < mask.data.length; i++) {
    if (mask.data[i] === 0) continue;
    rgba[i * 4] = COLOUR[0];
    rgba[i * 4 + 1] = COLOUR[1];
    rgba[i * 4 + 2] = COLOUR[2];
    rgba[i * 4 + 3] = outline[i] === 1 ? 255 : FILL_ALPHA;
  }
  try {
    await sharp(image.data, { raw: { width, height, channels: 3 } })
      .composite([{ input: rgba, raw: { width, height, channels: 4 } }])
      .toFile(file);
  } catch (error) {
    throw new Error(`Cannot write ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * The inner border of a mask, `thickness` pixels wide: mask pixels within that many 4-neighbour
 * steps of a background pixel (the image's edge does not count as background).
 */
export function maskOutline(mask: Uint8Array, width: number, height: number, thickness: number): Uint8Array {
  const outline = new Uint8Array(mask.length);
  let inside = native().maskBytes(mask, width, height); // (a 0/1 copy)
  for (let step = 0; step < thickness; step++) {
    const next = inside.slice();
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = y * width + x;
        if (inside[i] === 0) continue;
        const border =
          (x > 0 && inside[i - 1] === 0) ||
          (x < width - 1 && inside[i + 1] === 0) ||
          (y > 0 && inside[i - width] === 0) ||
          (y < height - 1 && inside[i + width] === 0);
        if (border) {
          outline[i] = 1;
          next[i] = 0;
        }
      }
    }
    inside = next;
  }
  return outline;
}

/** Opacity of the heat colours over the image (`heatmap --out`). */
const HEAT_ALPHA = 0.5;

/**
 * The "jet" colour of a value in [0, 1]: blue (0) → cyan → yellow → red (1), each channel
 * clamp(1.5 − |4v − k|) for k = 3 (red), 2 (green), 1 (blue).
 */
export function jet(v: number): [number, number, number] {
  const c = (k: number): number => Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * v - k))));
  return [c(3), c(2), c(1)];
}

/** Writes `image` with a heat map (values in [0, 1] at its size) blended over it in jet colours. */
export async function writeHeatOverlay(file: string, image: DecodedImage, heat: Float32Array): Promise<void> {
  const { width, height } = image;
  const out = Buffer.alloc(width * height * 3);
  for (let i = 0; i < heat.length; i++) {
    const colour = jet(Math.min(1, Math.max(0, heat[i])));
    for (let c = 0; c < 3; c++) out[3 * i + c] = Math.round((1 - HEAT_ALPHA) * image.data[3 * i + c] + HEAT_ALPHA * colour[c]);
  }
  try {
    await sharp(out, { raw: { width, height, channels: 3 } }).toFile(file);
  } catch (error) {
    throw new Error(`Cannot write ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
