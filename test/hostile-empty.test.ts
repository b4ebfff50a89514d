// Hostile input, class 1: empty images (a 0-byte file, an empty Buffer).
import { hostileImageSuite } from './helpers/hostile.js';

hostileImageSuite('empty images', [
  {
    name: 'empty',
    bytes: () => Buffer.alloc(0),
    reason: (kind) => (kind === 'file' ? 'the file is empty' : 'Input Buffer is empty'),
  },
]);
