// omniseg/server: the HTTP segmentation server (see app.ts).
export { createServer } from './app.js';
export {
  DEFAULT_BATCH_DELAY_MS,
  DEFAULT_BODY_LIMIT,
  DEFAULT_CACHE_MB,
  DEFAULT_DECODE_CONCURRENCY,
  DEFAULT_HOST,
  DEFAULT_MAX_BATCH,
  DEFAULT_MAX_QUEUE,
  DEFAULT_PORT,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_SERVER_PIXEL_LIMIT,
} from './defaults.js';
export type { OmnisegServer, ServerOptions } from './app.js';
export { imageId } from './cache.js';
export type { ErrorBody } from './errors.js';
export type { MaskFormat, SegmentBody } from './routes.js';
