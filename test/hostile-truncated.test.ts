// Hostile input, class 2: truncated images (PNG, JPEG and WebP cut in the header or the data).
import sharp from 'sharp';
import { hostileImageSuite } from './helpers/hostile.js';

/** A 64 × 48 photograph-like image (a gradient with noise is not needed: any content will do). */
function encoded(format: 'png' | 'jpeg' | 'webp'): Promise<Buffer> {
  const data = Buffer.alloc(64 * 48 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 255;
  return sharp(data, { raw: { width: 64, height: 48, channels: 3 } }).toFormat(format).toBuffer();
}

const half = (b: Buffer) => b.subarray(0, b.length >> 1);
const corrupt = (kind: 'file' | 'buffer', detail = '') => `Input ${kind} has corrupt header${detail}`;

hostileImageSuite('truncated images', [
  { name: 'png-half', bytes: async () => half(await encoded('png')), reason: () => 'vipspng: libpng read error' },
  // The signature and IHDR only: width and height are known, the pixel data is missing.
  { name: 'png-header-only', bytes: async () => (await encoded('png')).subarray(0, 33), reason: (kind) => corrupt(kind) },
  { name: 'jpeg-half', bytes: async () => half(await encoded('jpeg')), reason: () => 'VipsJpeg: premature end of JPEG image' },
  {
    name: 'jpeg-header-only',
    bytes: async () => (await encoded('jpeg')).subarray(0, 100),
    // libvips reports several JPEG errors, in an order that varies between runs.
    reason: (kind) => new RegExp(`${corrupt(kind)}: VipsJpeg: [^;]+(; VipsJpeg: [^;]+)*`),
  },
  { name: 'webp-half', bytes: async () => half(await encoded('webp')), reason: (kind) => corrupt(kind, ': webp: unable to parse image') },
]);
