// Hostile input, class 3: garbage — random bytes, alone or behind a valid PNG, JPEG, GIF or WebP
// signature (so that the decoder of that format reads them).
import { hostileImageSuite, noise } from './helpers/hostile.js';

const behind = (signature: Buffer | string) => () => Buffer.concat([Buffer.from(signature), noise(4096)]);
const corrupt = (kind: 'file' | 'buffer', detail = '') => `Input ${kind} has corrupt header${detail}`;

hostileImageSuite('garbage', [
  { name: 'random', bytes: () => noise(4096), reason: (kind) => `Input ${kind} contains unsupported image format` },
  { name: 'png-signature', bytes: behind(Buffer.from('89504e470d0a1a0a', 'hex')), reason: (kind) => corrupt(kind) },
  {
    name: 'jpeg-signature',
    bytes: behind(Buffer.from('ffd8ffe0', 'hex')),
    // libvips reports several JPEG errors, in an order that varies between runs.
    reason: (kind) => new RegExp(`${corrupt(kind)}: VipsJpeg: [^;]+(; VipsJpeg: [^;]+)*`),
  },
  { name: 'gif-signature', bytes: behind('GIF89a'), reason: (kind) => corrupt(kind, `: gifload${kind === 'buffer' ? '_buffer' : ''}: Invalid frame data`) },
  { name: 'webp-signature', bytes: behind('RIFF\x10\x00\x00\x00WEBPVP8 '), reason: (kind) => corrupt(kind, ': webp: unable to parse image') },
]);
