// Hostile input, class 4: files that are not images at all — text, JSON, HTML, PDF, ZIP, the
// model's own safetensors file, an executable.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { MODEL_DIR } from './helpers/fixtures.js';
import { hostileImageSuite } from './helpers/hostile.js';

const unsupported = (kind: 'file' | 'buffer') => `Input ${kind} contains unsupported image format`;
const text = (s: string) => () => Buffer.from(s);

hostileImageSuite('non-image files', [
  { name: 'text', bytes: text('hello, world\n'), reason: unsupported },
  { name: 'json', bytes: text('{"width": 640, "height": 480}'), reason: unsupported },
  { name: 'html', bytes: text('<!doctype html><html><body><img src="x.png"></body></html>'), reason: unsupported },
  { name: 'pdf', bytes: text('%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n'), reason: unsupported },
  { name: 'zip', bytes: () => Buffer.from('504b0304140000000000000000000000000000000000000000000000', 'hex'), reason: unsupported },
  { name: 'safetensors', bytes: () => readFileSync(path.join(MODEL_DIR, 'model.safetensors')), reason: unsupported },
  { name: 'executable', bytes: () => readFileSync(process.execPath).subarray(0, 1 << 16), reason: unsupported },
]);
