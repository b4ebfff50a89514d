// Visual prompt engineering for CLIPSeg's reference images (issue #4 item 3): a region marked on
// the reference image (a binary mask, a box or a scribble) turns the image into the visual prompt
// the paper found best, "crop + background blur + background darkening":
// Lüddecke & Ecker, "Image Segmentation Using Text and Image Prompts", CVPR 2022, section
// "Visual prompt engineering". The reference code's variant is `crop_blur_highlight`:
// ref: timojl/clipseg datasets/utils.py blend_image_segmentation →
//   img_preprocess(..., blur=3, center_context=0.1, bg_fac=0.1).
// Pixels are raw RGB; sharp crops and blurs, and the native core composites the blurred background
// with the region (which keeps its pixels exactly).
import { sharp } from '../sharp.js';
import { invalidRange, invalidType } from '../errors.js';
import { rasterizeScribbles } from '../mask-prompt.js';
import { native } from '../native.js';
import type { BinaryMask, Box, Vertex } from '../types.js';
import { binaryMask, box, plainObject, rgbPixels, vertex } from '../validate.js';

/** Context kept around the region's bounding box, per side, as a fraction of its width/height (the reference's `center_context=0.1`). */
export const VISUAL_PROMPT_MARGIN = 0.1;
/** Gaussian blur σ of the background in pixels of a VISUAL_PROMPT_BLUR_SIZE-pixel prompt (the reference's PIL `GaussianBlur(3)` at 352). */
export const VISUAL_PROMPT_BLUR_SIGMA = 3;
/** The prompt side the blur σ is given for; σ scales with the crop's longer side: 3 · max(w, h) / 352. */
export const VISUAL_PROMPT_BLUR_SIZE = 352;
/** Background intensity factor: background pixels become round(0.1 · blurred) (the reference's `bg_fac=0.1`). */
export const VISUAL_PROMPT_DARKEN = 0.1;

/** Raw RGB pixels, row-major HWC. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3;
}

/**
 * A region of the reference image, exactly one of: `mask` (a binary mask at the reference image's
 * size, non-zero inside), `box` (`[x0, y0, x1, y1]`, XYXY pixel edges: pixel (x, y) is inside when
 * its centre (x + 0.5, y + 0.5) is within the box) or `scribble` (a polyline of vertices `[x, y]`,
 * drawn with the round brush of `rasterizeScribbles`: max(width, height) / 64 pixels wide).
 */
export type RefRegion = { mask: BinaryMask } | { box: Box } | { scribble: Vertex[] };

/** A crop rectangle `[x0, y0, x1, y1)`: columns x0..x1 − 1, rows y0..y1 − 1. */
export type CropRect = [x0: number, y0: number, x1: number, y1: number];

const REGION_WHAT = 'an object with exactly one of mask, box or scribble';

/**
 * Validates a region for a width × height reference image.
 * @throws TypeError / RangeError naming `param` (none or several kinds, a mask of another size, a
 *   box outside the image, an empty scribble).
 */
export function refRegion(value: unknown, param: string, width: number, height: number): RefRegion {
  const obj = plainObject(value, param, REGION_WHAT);
  const kinds = (['mask', 'box', 'scribble'] as const).filter((k) => obj[k] !== undefined);
  if (kinds.length !== 1) throw invalidType(REGION_WHAT, param, value);
  switch (kinds[0]) {
    case 'mask':
      return { mask: binaryMask(obj.mask, `${param}.mask`, width, height) };
    case 'box':
      return { box: box(obj.box, `${param}.box`, width, height) };
    case 'scribble': {
      const what = 'a non-empty array of vertices [x, y]';
      if (!Array.isArray(obj.scribble)) throw invalidType(what, `${param}.scribble`, obj.scribble);
      if (obj.scribble.length === 0) throw invalidRange(what, `${param}.scribble`, obj.scribble);
      return { scribble: obj.scribble.map((v: unknown, i) => vertex(v, `${param}.scribble[${i}]`, width, height)) };
    }
  }
}

/** The region as width × height bytes, 1 inside and 0 outside. */
export function regionMask(region: RefRegion, width: number, height: number): Uint8Array {
  if ('mask' in region) return native().maskBytes(region.mask.data, width, height);
  if ('scribble' in region) return rasterizeScribbles([{ path: region.scribble, label: 1 }], width, height);
  const [bx0, by0, bx1, by1] = region.box;
  const out = new Uint8Array(width * height);
  // pixel x is inside when bx0 <= x + 0.5 <= bx1
  const [x0, x1] = [Math.max(0, Math.ceil(bx0 - 0.5)), Math.min(width - 1, Math.floor(bx1 - 0.5))];
  const [y0, y1] = [Math.max(0, Math.ceil(by0 - 0.5)), Math.min(height - 1, Math.floor(by1 - 0.5))];
  if (x1 >= x0) for (let y = y0; y <= y1; y++) out.fill(1, y * width + x0, y * width + x1 + 1);
  return out;
}

/**
 * The crop of a region: its pixels' bounding box grown by ceil(margin · side) on each side (side:
 * the box's width for left/right, its height for top/bottom), clamped to the image. Undefined when
 * the mask is empty.
 */
export function promptCrop(
  mask: Uint8Array,
  width: number,
  height: number,
  margin = VISUAL_PROMPT_MARGIN,
): CropRect | undefined {
  // (the native core's vectorised pass: Mask.box's)
  const [x0, y0, x1, y1, area] = native().maskBounds(mask, width, height);
  if (area === 0) return undefined;
  return cropAround([x0, y0, x1, y1], width, height, margin);
}

/**
 * promptCrop of a mask whose inclusive pixel bounds `[x0, y0, x1, y1]` are known (`Mask.box` of a
 * non-empty mask): the box grown by ceil(margin · side) on each side, clamped to the image.
 */
export function cropAround(
  [x0, y0, x1, y1]: readonly [number, number, number, number],
  width: number,
  height: number,
  margin = VISUAL_PROMPT_MARGIN,
): CropRect {
  const mx = Math.ceil(margin * (x1 - x0 + 1));
  const my = Math.ceil(margin * (y1 - y0 + 1));
  return [Math.max(0, x0 - mx), Math.max(0, y0 - my), Math.min(width, x1 + 1 + mx), Math.min(height, y1 + 1 + my)];
}

/** The background blur σ for a crop: VISUAL_PROMPT_BLUR_SIGMA at VISUAL_PROMPT_BLUR_SIZE, at least sharp's 0.3. */
export function blurSigma(width: number, height: number): number {
  return Math.max(0.3, (VISUAL_PROMPT_BLUR_SIGMA * Math.max(width, height)) / VISUAL_PROMPT_BLUR_SIZE);
}

/**
 * How the background blur of a cw × ch crop runs. σ (`blurSigma`) grows with the crop, and so
 * does the cost of a blur at the crop's size (a 12 MP crop: σ 34, ~450 ms, against ~1 ms at the
 * 352² the model sees). From σ ≥ 8 the crop is first reduced by `factor` = floor(σ / 4) (a
 * triangle filter), blurred there with the σ that gives σ in all (`sigma`: the reduction and the
 * bilinear enlargement each add a variance of about factor² / 6) and enlarged again bilinearly
 * while composing. The blur is smooth at that scale: against a blur at full size the background
 * differs by 1–3 levels after darkening, on a few % of its pixels (most of them near the
 * crop's edges and corners, where the edges are extended at the lower resolution; more at the
 * ends of crops a pixel or two thin).
 */
export interface BlurPlan {
  factor: number;
  /** The size the blur runs at: the crop's, or round(side / factor), at least 1. */
  width: number;
  height: number;
  sigma: number;
}

/** The BlurPlan of a cw × ch crop. */
export function blurPlan(cw: number, ch: number): BlurPlan {
  const sigma = blurSigma(cw, ch);
  const factor = Math.max(1, Math.floor(sigma / 4));
  if (factor === 1) return { factor, width: cw, height: ch, sigma };
  const width = Math.max(1, Math.round(cw / factor));
  const height = Math.max(1, Math.round(ch / factor));
  const scale = Math.max(cw / width, ch / height);
  return { factor, width, height, sigma: Math.max(0.3, Math.sqrt(sigma * sigma - (scale * scale) / 3) / scale) };
}

const bytesOf = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.length);

/**
 * The visual prompt of a reference image: without a region, the image itself; with one, the crop
 * of `promptCrop` where the region's pixels are kept as they are and the rest is Gaussian-blurred
 * (σ of `blurSigma`, run as `blurPlan` says) and darkened: round(VISUAL_PROMPT_DARKEN · blurred).
 * The blur runs in sharp and the composition in the native core, both off the JS thread; the
 * crop of the image and of the region are copied when the call is made.
 * @throws TypeError / RangeError naming `image` or `region` (see `refRegion`) for invalid pixels
 *   or a region that does not fit them; RangeError when the region covers no pixel.
 */
export async function visualPrompt(image: RgbImage, region?: RefRegion, param = 'region'): Promise<RgbImage> {
  rgbPixels<RgbImage>(image, 'image', true);
  if (region === undefined) return image;
  const { width, height } = image;
  refRegion(region, param, width, height);
  const mask = regionBytes(region, width, height);
  const rect = regionCrop(mask, width, height, region, param);
  // The caller's pixels are read after this returns (by sharp, by the native composition): their
  // crops are copied now, so that it may change or reuse its buffers at once.
  const [cw, ch] = [rect[2] - rect[0], rect[3] - rect[1]];
  const own = { data: cropPixels(image.data, width, 3, rect), width: cw, height: ch, channels: 3 as const };
  return promptOfCrop(own, cropPixels(mask, width, 1, rect), [0, 0, cw, ch]);
}

/**
 * @internal visualPrompt of an image and region the library owns (decoded by it, never handed
 * to user code), read in place until the promise settles: no copies on the JS thread.
 */
export async function visualPromptInPlace(image: RgbImage, region: RefRegion, param = 'region'): Promise<RgbImage> {
  const mask = regionBytes(region, image.width, image.height);
  return promptOfCrop(image, mask, regionCrop(mask, image.width, image.height, region, param));
}

/** A region's bytes: a mask as given (promptCrop and the composition read non-zero as inside), or drawn. */
function regionBytes(region: RefRegion, width: number, height: number): Uint8Array {
  return 'mask' in region ? region.mask.data : regionMask(region, width, height);
}

function regionCrop(mask: Uint8Array, width: number, height: number, region: RefRegion, param: string): CropRect {
  const rect = promptCrop(mask, width, height);
  if (rect === undefined) throw invalidRange('a region that covers at least one pixel of the reference image', param, region);
  return rect;
}

/** The pixels of `rect` of an image with `channels` bytes per pixel. */
function cropPixels(data: Uint8Array, width: number, channels: number, rect: CropRect): Uint8Array {
  const [x0, y0, x1, y1] = rect;
  const row = (x1 - x0) * channels;
  const out = new Uint8Array(row * (y1 - y0));
  for (let y = y0; y < y1; y++) out.set(data.subarray((y * width + x0) * channels, (y * width + x1) * channels), (y - y0) * row);
  return out;
}

/**
 * visualPrompt of a region whose crop `rect` is known (promptCrop's, or cropAround of its box).
 * `mask`: the region as width × height bytes (non-zero inside), or as the COCO run lengths of
 * such a mask (column-major: `maskSource` of a Mask from an `rle` decode), read in the native
 * worker without decoding the rest of the mask.
 */
export async function promptOfCrop(image: RgbImage, mask: Uint8Array | Uint32Array, rect: CropRect): Promise<RgbImage> {
  const { width, height } = image;
  const [cw, ch] = [rect[2] - rect[0], rect[3] - rect[1]];
  const plan = blurPlan(cw, ch);
  // The crop of the image and of a byte mask, and the blurred crop, cut out in sharp's threads
  const cut = (data: Uint8Array, channels: 1 | 3) =>
    sharp(data, { raw: { width, height, channels }, limitInputPixels: false }).extract({
      left: rect[0],
      top: rect[1],
      width: cw,
      height: ch,
    });
  const blur =
    plan.factor === 1
      ? cut(image.data, 3).blur(plan.sigma)
      : // (float precision at the reduced size: sharp's integer kernels step with σ there)
        cut(image.data, 3).resize(plan.width, plan.height, { fit: 'fill', kernel: 'linear' }).blur({ sigma: plan.sigma, precision: 'float' });
  // (a crop of the whole image is the image itself: visualPrompt's copies, or the library's own)
  const whole = cw === width && ch === height;
  const [crop, cropMask, blurred] = await Promise.all([
    whole ? image.data : cut(image.data, 3).raw().toBuffer().then(bytesOf),
    mask instanceof Uint32Array
      ? { counts: mask, width, height, left: rect[0], top: rect[1] }
      : whole
        ? mask
        : cut(mask, 1).toColourspace('b-w').raw().toBuffer().then(bytesOf), // (one channel, as given)
    blur.raw().toBuffer(),
  ]);
  // (the byte buffers are this function's own, so the native composition may read them in place)
  const data = await native().composeVisualPromptAsync(
    crop,
    cropMask,
    cw,
    ch,
    bytesOf(blurred),
    plan.width,
    plan.height,
    VISUAL_PROMPT_DARKEN,
  );
  return { data, width: cw, height: ch, channels: 3 };
}
