// CLIPSeg's image preprocessing, read from a checkpoint's preprocessor_config.json: the
// ViTImageProcessor that CLIPSegProcessor wraps, as its PIL backend runs it (transformers 5
// `ViTImageProcessorPil`; the only backend of transformers 4.x's slow `ViTImageProcessor`):
//   1. resize the RGB uint8 image to size.height × size.width with Pillow's 8-bit bilinear
//      resample (antialiased: the filter support widens by the scale when shrinking), the
//      result rounded back to uint8 — reproduced here bit for bit;
//   2. rescale by rescale_factor (1/255);
//   3. normalise each channel with image_mean / image_std;
// giving float32 [3, height, width], channel-major, as `pixel_values[0]`.
// ref: transformers/image_processing_backends.py PilBackend.resize/_preprocess (5.x),
//      Pillow src/libImaging/Resample.c (precompute_coeffs, normalize_coeffs_8bpc,
//      ImagingResampleHorizontal_8bpc / Vertical_8bpc).
// transformers 5's default (torchvision) backend resizes float tensors with antialiasing and no
// uint8 rounding, so its pixel values differ from these by up to a few 1/255 steps; CIDAS's
// config names ViTImageProcessor with PIL's resample code, and PIL is what the model was
// trained and published with.
import path from 'node:path';
import { describeValue, invalidRange, invalidType } from '../errors.js';
import { readModelText } from '../model-text.js';
import type { DecodedImage } from '../types.js';
import { arrayLength, boolean, copyBytes, finiteNumber, integerInRange, isPlainObject, plainObject, rgbPixels } from '../validate.js';

/** PIL's resample code for bilinear (`PIL.Image.Resampling.BILINEAR`), the only one supported. */
export const PIL_BILINEAR = 2;
/**
 * The largest model input side a preprocessor_config.json may ask for (CLIPSeg's is 352; the
 * vision tower's attention grows with the fourth power of the side).
 */
export const MAX_CLIP_INPUT_SIDE = 2048;

/** What preprocessor_config.json specifies, with transformers' defaults filled in. */
export interface ClipImageProcessorConfig {
  /** Output size (size.width × size.height). */
  width: number;
  height: number;
  doResize: boolean;
  doRescale: boolean;
  /** Multiplies the uint8 values, e.g. 1/255. */
  rescaleFactor: number;
  doNormalize: boolean;
  /** Per channel (R, G, B). */
  imageMean: [number, number, number];
  imageStd: [number, number, number];
}

/** ViTImageProcessor's defaults (transformers), used for keys the file leaves out. */
const DEFAULTS: ClipImageProcessorConfig = {
  width: 224,
  height: 224,
  doResize: true,
  doRescale: true,
  rescaleFactor: 1 / 255,
  doNormalize: true,
  imageMean: [0.5, 0.5, 0.5],
  imageStd: [0.5, 0.5, 0.5],
};

/**
 * Reads `<dir>/preprocessor_config.json`.
 * @throws Error naming the file when it is missing, not JSON, or asks for something other than
 *   a fixed {height, width} size, bilinear resampling, or a center crop.
 */
export async function readClipImageProcessorConfig(dir: string): Promise<ClipImageProcessorConfig> {
  const file = path.join(dir, 'preprocessor_config.json');
  const text = await readModelText(file);
  if (text === undefined) throw new Error(`${file}: file not found (CLIPSeg needs the checkpoint's image processor config)`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not valid JSON (${(error as Error).message})`);
  }
  if (!isPlainObject(json)) throw new Error(`${file}: must be a JSON object`);
  const bad = (what: string): Error => new Error(`${file}: ${what}`);
  const flag = (key: string, fallback: boolean): boolean => {
    const v = json[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') throw bad(`${key} must be true or false`);
    return v;
  };
  const triple = (key: string, fallback: [number, number, number], positive: boolean): [number, number, number] => {
    const v = json[key];
    if (v === undefined) return fallback;
    const list = typeof v === 'number' ? [v, v, v] : v;
    if (
      !Array.isArray(list) ||
      list.length !== 3 ||
      !list.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0))
    ) {
      throw bad(`${key} must be a number or 3 ${positive ? 'positive ' : ''}numbers`);
    }
    return [list[0], list[1], list[2]] as [number, number, number];
  };

  let { width, height } = DEFAULTS;
  if (json.size !== undefined) {
    const size = json.size;
    const side = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_CLIP_INPUT_SIDE;
    if (side(size)) {
      [width, height] = [size, size];
    } else if (isPlainObject(size) && side(size.height) && side(size.width)) {
      [width, height] = [size.width, size.height];
    } else {
      throw bad(`size must be {"height": H, "width": W} (integers from 1 to ${MAX_CLIP_INPUT_SIDE}); shortest_edge resizing is not supported`);
    }
  }
  const resample = json.resample ?? PIL_BILINEAR;
  if (resample !== PIL_BILINEAR) throw bad(`resample ${describeValue(resample)} is not supported (only 2, bilinear)`);
  if (json.do_center_crop === true) throw bad('do_center_crop is not supported');
  const rescaleFactor = json.rescale_factor ?? DEFAULTS.rescaleFactor;
  if (typeof rescaleFactor !== 'number' || !Number.isFinite(rescaleFactor)) throw bad('rescale_factor must be a number');
  return {
    width,
    height,
    doResize: flag('do_resize', DEFAULTS.doResize),
    doRescale: flag('do_rescale', DEFAULTS.doRescale),
    rescaleFactor,
    doNormalize: flag('do_normalize', DEFAULTS.doNormalize),
    imageMean: triple('image_mean', DEFAULTS.imageMean, false),
    imageStd: triple('image_std', DEFAULTS.imageStd, true),
  };
}

/**
 * The processor's pixel values of an RGB image: float32 [3, height, width] (the image's own size
 * when `doResize` is false).
 * @param image raw RGB pixels, as decodeImage gives them.
 * @param config as readClipImageProcessorConfig gives it.
 * @throws TypeError / RangeError for pixels of the wrong size, or a config field out of range.
 */
export function preprocessClipImage(image: DecodedImage, config: ClipImageProcessorConfig): {
  pixels: Float32Array;
  width: number;
  height: number;
} {
  rgbPixels<DecodedImage>(image, 'image', false);
  processorConfig(config, 'config');
  const [w, h] = config.doResize ? [config.width, config.height] : [image.width, image.height];
  const rgb = config.doResize ? resizeBilinearPil(image.data, image.width, image.height, 3, w, h) : image.data;
  const plane = w * h;
  const pixels = new Float32Array(3 * plane);
  const lut = normalizationLut(config);
  for (let c = 0; c < 3; c++) {
    const out = c * plane;
    for (let i = 0, j = c; i < plane; i++, j += 3) pixels[out + i] = lut[c * 256 + rgb[j]];
  }
  return { pixels, width: w, height: h };
}

/** A ClipImageProcessorConfig passed in by the caller, checked field by field (as readClipImageProcessorConfig makes them). */
function processorConfig(value: unknown, param: string): ClipImageProcessorConfig {
  const obj = plainObject(value, param, 'a ClipImageProcessorConfig (readClipImageProcessorConfig)');
  integerInRange(obj.width, `${param}.width`, 1, MAX_CLIP_INPUT_SIDE);
  integerInRange(obj.height, `${param}.height`, 1, MAX_CLIP_INPUT_SIDE);
  for (const key of ['doResize', 'doRescale', 'doNormalize'] as const) boolean(obj[key], `${param}.${key}`);
  finiteNumber(obj.rescaleFactor, `${param}.rescaleFactor`);
  for (const key of ['imageMean', 'imageStd'] as const) {
    const what = `an array of 3 ${key === 'imageStd' ? 'positive' : 'finite'} numbers`;
    const list = obj[key];
    if (!Array.isArray(list)) throw invalidType(what, `${param}.${key}`, list);
    if (list.length !== 3) throw invalidRange(what, `${param}.${key}`, list);
    list.forEach((v: unknown, i) => {
      const x = finiteNumber(v, `${param}.${key}[${i}]`);
      if (key === 'imageStd' && !(x > 0)) throw invalidRange(what, `${param}.${key}[${i}]`, x);
    });
  }
  return value as ClipImageProcessorConfig;
}

/**
 * [3, 256]: each channel's byte values rescaled and normalised in float32 at each step, as numpy
 * runs it: rescale (uint8 → float64 × factor → float32), then (x − mean) / std with mean and std
 * cast to float32.
 */
export function normalizationLut(config: ClipImageProcessorConfig): Float32Array {
  const scale = config.doRescale ? config.rescaleFactor : 1;
  const lut = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const mean = config.doNormalize ? Math.fround(config.imageMean[c]) : 0;
    const std = config.doNormalize ? Math.fround(config.imageStd[c]) : 1;
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = Math.fround(Math.fround(v * scale) - mean) / std;
  }
  return lut;
}

/** 8-bit RGB for the native worker to resize (Pillow bilinear) and map through `lut`. */
export interface NativeRgb {
  rgb: Uint8Array;
  /** Let the native worker read `rgb` where it is (no copy): only for pixels nobody else holds. */
  inPlace?: boolean;
  width: number;
  height: number;
  lut: Float32Array;
}

/**
 * An image as the native model takes it: where the processor resizes to a square (CLIPSeg's
 * 352²), the 8-bit pixels and the normalisation table, so that the resize and normalisation run
 * in the native worker instead of on the JS thread (same arithmetic as preprocessClipImage);
 * otherwise preprocessClipImage's pixel values.
 * @param inPlace let the worker read `image.data` where it is instead of a copy: only for pixels
 *   the library made and never hands out (a visual prompt, a decodeForEncoder image held with
 *   readInPlace), left alone until the call settles.
 */
export function clipModelInput(
  image: DecodedImage,
  config: ClipImageProcessorConfig,
  inPlace = false,
): { pixels: Float32Array | NativeRgb; width: number; height: number } {
  if (!config.doResize || config.width !== config.height) return preprocessClipImage(image, config);
  return {
    pixels: { rgb: image.data, width: image.width, height: image.height, lut: normalizationLut(config), ...(inPlace ? { inPlace } : {}) },
    width: config.width,
    height: config.height,
  };
}

// ---- Pillow's 8-bit bilinear resample -----------------------------------------------------------
// ref: Pillow src/libImaging/Resample.c; the same arithmetic as the native core's ops::resizeU8Pil.

const PRECISION_BITS = 32 - 8 - 2;

interface Coeffs {
  ksize: number;
  /** [out, 2]: first tap, tap count. */
  bounds: Int32Array;
  /** [out, ksize] fixed-point weights. */
  kk: Int32Array;
}

function bilinearCoeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) truncates toward zero.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      const w = t < 1 ? 1 - t : 0;
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? k[x] / ww : k[x];
      kk[xx * ksize + x] = Math.trunc(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(v: number): number {
  const s = v >> PRECISION_BITS;
  return s < 0 ? 0 : s > 255 ? 255 : s;
}

/**
 * Pillow's `Image.resize((ow, oh), Image.BILINEAR)` of an 8-bit HWC image: a horizontal pass,
 * then a vertical one, each in 22-bit fixed point (sums stay within int32). Bit-exact with Pillow.
 */
export function resizeBilinearPil(
  data: Uint8Array,
  iw: number,
  ih: number,
  channels: number,
  ow: number,
  oh: number,
): Uint8Array {
  integerInRange(iw, 'iw', 1);
  integerInRange(ih, 'ih', 1);
  integerInRange(channels, 'channels', 1, 4);
  const what = `a Uint8Array of iw × ih × channels = ${iw * ih * channels} bytes`;
  if (!(data instanceof Uint8Array)) throw invalidType(what, 'data', data);
  if (data.length !== iw * ih * channels) throw invalidRange(what, 'data', data);
  integerInRange(ow, 'ow', 1);
  integerInRange(oh, 'oh', 1);
  // (the horizontal pass makes ih × ow pixels, the vertical one oh × ow)
  arrayLength(Math.max(ih, oh) * ow * channels, 'max(ih, oh) × ow × channels', 'bytes');
  if (iw === ow && ih === oh) return copyBytes(data);
  const C = channels;
  let src = data;
  if (ow !== iw) {
    const { ksize, bounds, kk } = bilinearCoeffs(iw, ow);
    const dst = new Uint8Array(ih * ow * C);
    for (let y = 0; y < ih; y++) {
      const row = y * iw * C;
      for (let x = 0; x < ow; x++) {
        const xmin = bounds[x * 2];
        const n = bounds[x * 2 + 1];
        const k = x * ksize;
        for (let c = 0; c < C; c++) {
          let s = 1 << (PRECISION_BITS - 1);
          for (let i = 0; i < n; i++) s = (s + data[row + (xmin + i) * C + c] * kk[k + i]) | 0;
          dst[(y * ow + x) * C + c] = clip8(s);
        }
      }
    }
    if (oh === ih) return dst;
    src = dst;
  }
  const { ksize, bounds, kk } = bilinearCoeffs(ih, oh);
  const stride = ow * C;
  const out = new Uint8Array(oh * stride);
  for (let y = 0; y < oh; y++) {
    const ymin = bounds[y * 2];
    const n = bounds[y * 2 + 1];
    const k = y * ksize;
    for (let x = 0; x < stride; x++) {
      let s = 1 << (PRECISION_BITS - 1);
      for (let i = 0; i < n; i++) s = (s + src[(ymin + i) * stride + x] * kk[k + i]) | 0;
      out[y * stride + x] = clip8(s);
    }
  }
  return out;
}
