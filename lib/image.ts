// Image input: file path, encoded bytes or raw pixels → RGB HWC uint8, as the SAM processor sees
// it after PIL's `convert("RGB")`.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { sharp } from './sharp.js';
import { invalidRange, invalidType } from './errors.js';
import { copyBytes, integerInRange, isPlainObject, optionalObject } from './validate.js';
import type { BinaryMask, DecodedImage, ImageInput } from './types.js';

/** sharp's default pixel limit (0x3FFF × 0x3FFF). */
export const DEFAULT_LIMIT_INPUT_PIXELS = 268402689;

export interface DecodeImageOptions {
  /**
   * Refuse images with more pixels than this (width × height), before decoding them.
   * 0 disables the check. Default: 268402689 (sharp's default, 0x3FFF²).
   */
  limitInputPixels?: number;
}

const IMAGE_WHAT = 'a file path, a Buffer/Uint8Array of an encoded image, or raw pixels {data, width, height, channels}';

/**
 * Decodes an image to RGB (row-major HWC, uint8).
 *
 * - Encoded images (path or bytes) are decoded by sharp: EXIF orientation applied, alpha dropped
 *   without compositing and greyscale expanded to RGB (as PIL's `convert("RGB")`), 16-bit samples
 *   scaled to 8 bits; embedded ICC profiles are ignored, as PIL ignores them.
 * - Raw pixels are copied (3 channels) or converted to RGB (1 and 4) into a new array when the
 *   call is made: the caller may reuse, change or detach its buffer at once.
 *
 * @throws TypeError / RangeError for invalid arguments; Error when the file is missing or the
 *   bytes cannot be decoded.
 */
export async function decodeImage(input: ImageInput, options: DecodeImageOptions = {}): Promise<DecodedImage> {
  return decode(input, options, false);
}

/**
 * decodeImage for the library's own encoders (Segmenter, stream, server, Referrer, referSegment),
 * whose decoded pixels never reach user code: raw pixels of a size seen before are copied into a
 * recycled buffer (see recyclePixels), and pixels this function made before (a stream frame
 * decoded, then encoded; referSegment's image, then its heat map and encode) are taken as they are.
 */
export async function decodeForEncoder(input: ImageInput, options: DecodeImageOptions = {}): Promise<DecodedImage> {
  return decode(input, options, true);
}

// Pixel buffers decodeForEncoder made (copies, conversions, sharp's output): never seen by user
// code, so they need no copy when they come back in.
const internal = new WeakSet<Uint8Array>();
// Its copies of raw pixels, which the Segmenter gives back once its native encode is done with
// them, kept for the next image of the same size: refilling memory faulted in before is one
// memcpy, where a new ArrayBuffer is zero-filled by the kernel page by page (~6.5 ms of the JS
// thread for a 1080p frame on the 2-core build machine).
const recyclable = new WeakSet<Uint8Array>();
const spare = new Map<number, Uint8Array[]>();
let spareBytes = 0;
const MAX_SPARE_BYTES = 64 * 1024 * 1024;

// Pixels native calls read in place (readInPlace), with how many such calls are pending, and
// those of them given back for reuse meanwhile: recycled when the last read settles.
const readers = new Map<Uint8Array, number>();
const recycleAfterRead = new WeakSet<Uint8Array>();

/**
 * @internal Lets a native call read pixels where they are instead of copying them on the JS
 * thread, when decodeForEncoder made them (nobody else holds them, so nobody can change or
 * detach them): returns the function to call once the native call has settled (or will never
 * run), until which they are not recycled; `undefined` for any other pixels (copy them).
 */
export function readInPlace(data: Uint8Array): (() => void) | undefined {
  if (!internal.has(data)) return undefined;
  readers.set(data, (readers.get(data) ?? 0) + 1);
  let done = false;
  return () => {
    if (done) return;
    done = true;
    const left = (readers.get(data) ?? 1) - 1;
    if (left > 0) {
      readers.set(data, left);
      return;
    }
    readers.delete(data);
    if (recycleAfterRead.delete(data)) recyclePixels(data);
  };
}

/**
 * Gives back a copy decodeForEncoder made, once nothing reads it any more (the native encode has
 * settled; a read in place, when that settles); anything else is left alone.
 */
export function recyclePixels(data: Uint8Array): void {
  if (readers.has(data)) {
    recycleAfterRead.add(data);
    return;
  }
  if (!recyclable.delete(data) || spareBytes + data.length > MAX_SPARE_BYTES) return;
  const list = spare.get(data.length) ?? [];
  list.push(data);
  spare.set(data.length, list);
  spareBytes += data.length;
}

function copyPixels(data: Uint8Array, recycle: boolean): Uint8Array {
  if (!recycle) return copyBytes(data);
  const list = spare.get(data.length);
  const reused = list?.pop();
  if (reused !== undefined) spareBytes -= reused.length;
  const copy = reused ?? new Uint8Array(data.length);
  copy.set(data);
  recyclable.add(copy);
  return copy;
}

async function decode(input: ImageInput, options: DecodeImageOptions | undefined, forEncoder: boolean): Promise<DecodedImage> {
  const opts = optionalObject(options, 'options', 'an object {limitInputPixels?}');
  const limit =
    opts.limitInputPixels === undefined ? DEFAULT_LIMIT_INPUT_PIXELS : integerInRange(opts.limitInputPixels, 'limitInputPixels', 0);
  if (typeof input === 'string') {
    if (input.length === 0) throw invalidRange(IMAGE_WHAT, 'image', input);
    await assertReadableFile(input);
    return owned(await decodeEncoded(input, input, limit), forEncoder);
  }
  if (input instanceof Uint8Array) return owned(await decodeEncoded(input, 'buffer', limit), forEncoder);
  if (isPlainObject(input)) return owned(await fromRaw(input, limit, forEncoder), forEncoder);
  throw invalidType(IMAGE_WHAT, 'image', input);
}

function owned(image: DecodedImage, forEncoder: boolean): DecodedImage {
  if (forEncoder) internal.add(image.data);
  return image;
}

async function assertReadableFile(file: string): Promise<void> {
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new Error(`Cannot decode image ${file}: not a file`);
    if (info.size === 0) throw new Error(`Cannot decode image ${file}: the file is empty`);
    // (libvips reports a file it may not open as "unsupported image format")
    await access(file, constants.R_OK);
  } catch (error) {
    if (isErrnoException(error) && error.code === 'ENOENT') throw new Error(`Image file not found: ${file}`);
    if (isErrnoException(error)) throw new Error(`Cannot read image ${file}: ${error.message}`);
    throw error;
  }
}

function isErrnoException(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string';
}

async function decodeEncoded(input: string | Uint8Array, label: string, limit: number): Promise<DecodedImage> {
  try {
    const { data, info } = await sharp(input, { limitInputPixels: limit === 0 ? false : limit, ignoreIcc: true })
      .rotate() // EXIF auto-orientation (same as .autoOrient())
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
    return { data, width: info.width, height: info.height };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`Cannot decode image ${label}: ${await explain(message, input, limit)}`);
  }
}

/**
 * sharp's message made fit for one line: libvips can report the same failure several times over
 * several lines, and "corrupt header:" with nothing after it. An image over the pixel limit is
 * refused from its header, before any pixel is decoded; its size is read (from the header
 * again) to say by how much.
 */
async function explain(message: string, input: string | Uint8Array, limit: number): Promise<string> {
  if (/exceeds pixel limit/.test(message)) {
    const { width, height } = await sharp(input, { limitInputPixels: false }).metadata().catch(() => ({ width: 0, height: 0 }));
    if (width > 0 && height > 0) {
      return `${width}x${height} = ${width * height} pixels exceeds the limit of ${limit} (limitInputPixels)`;
    }
  }
  const lines = message.split('\n').map((line) => line.trim());
  // "Input file has corrupt header: <first reason>" then more reasons, some repeated.
  const head = /^(.*corrupt header):\s*(.*)$/.exec(lines[0]);
  const reasons = head === null ? lines : [head[2], ...lines.slice(1)];
  const text = [...new Set(reasons.filter((line) => line !== ''))].join('; ');
  if (head === null) return text;
  return text === '' ? head[1] : `${head[1]}: ${text}`;
}

/** Refuses (RangeError naming `param`) more than `limit` pixels; a limit of 0 allows any number. */
export function checkPixelLimit(pixels: number, limit: number, param: string, value: unknown): void {
  if (limit !== 0 && pixels > limit) throw invalidRange(`an image of at most ${limit} pixels (limitInputPixels)`, param, value);
}

/** Validates raw pixels and converts them to RGB (3 channels: a copy, see toRGB). */
async function fromRaw(raw: Record<string, unknown>, limit: number, forEncoder: boolean): Promise<DecodedImage> {
  const width = integerInRange(raw.width, 'image.width', 1);
  const height = integerInRange(raw.height, 'image.height', 1);
  const channels = raw.channels;
  if (typeof channels !== 'number') throw invalidType('1, 3 or 4', 'image.channels', channels);
  if (channels !== 1 && channels !== 3 && channels !== 4) throw invalidRange('1, 3 or 4', 'image.channels', channels);
  const data = raw.data;
  const what = `a Uint8Array of width × height × channels = ${width * height * channels} bytes`;
  if (!(data instanceof Uint8Array)) throw invalidType(what, 'image.data', data);
  if (data.length !== width * height * channels) throw invalidRange(what, 'image.data', data);
  checkPixelLimit(width * height, limit, 'image', raw);
  return { data: await toRGB(data, width, height, channels, forEncoder), width, height };
}

/**
 * A new array (unless decodeForEncoder made `data`): the native encoder reads it later, off the JS
 * thread, while the caller may reuse, change or detach the buffer it passed as soon as the call
 * returns. Grey and RGBA pixels are copied now and made RGB by sharp in a worker thread (the
 * same bytes as copying the grey value thrice or dropping alpha; a JS loop over a 4K frame held
 * the event loop ~60 ms).
 */
async function toRGB(data: Uint8Array, width: number, height: number, channels: 1 | 3 | 4, forEncoder: boolean): Promise<Uint8Array> {
  if (channels === 3) return forEncoder && internal.has(data) ? data : copyPixels(data, forEncoder);
  const pixels = sharp(copyBytes(data), { raw: { width, height, channels }, limitInputPixels: false });
  const rgb = await (channels === 4 ? pixels.removeAlpha() : pixels.toColourspace('srgb')).raw().toBuffer();
  return new Uint8Array(rgb.buffer, rgb.byteOffset, rgb.length);
}

/**
 * A binary mask from an encoded image (PNG, ...): its first channel after alpha removal and
 * conversion to grey, non-zero inside. Sharp's own errors pass through (callers name the input).
 * @param limitInputPixels sharp's pixel limit (false: none).
 */
export async function decodeMaskImage(input: string | Uint8Array, limitInputPixels: number | false): Promise<BinaryMask> {
  const { data, info } = await sharp(input, { limitInputPixels })
    .removeAlpha()
    .toColourspace('b-w')
    .extractChannel(0)
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}
