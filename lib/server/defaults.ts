// Defaults of the server's options (a module of its own, so that the CLI's help reads them
// without loading Fastify).
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8080;
export const DEFAULT_CACHE_MB = 1024;
/** Heat-map cache budget, MiB (a heat map is 4·W·H bytes plus the model's S×S logits: ~3.6 MiB at 1024×768). */
export const DEFAULT_HEATMAP_CACHE_MB = 64;
/** Budget of the referrer's encoded images, MiB (clipseg-rd64-refined keeps ~4.3 MiB per image). */
export const DEFAULT_REFERRER_IMAGE_CACHE_MB = 256;
/** Budget of decoded images kept for labels and the referrer, MiB (3 bytes a pixel: 6 MiB at 1080p, 34 MiB at 12 MP). */
export const DEFAULT_DECODED_IMAGE_CACHE_MB = 128;
export const DEFAULT_MAX_QUEUE = 64;
export const DEFAULT_MAX_BATCH = 8;
export const DEFAULT_BATCH_DELAY_MS = 2;
export const DEFAULT_DECODE_CONCURRENCY = 2;
export const DEFAULT_BODY_LIMIT = 32 * 1024 * 1024;
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** The longest request deadline: setTimeout's 2^31 − 1 ms (≈ 24.8 days; longer fires at once). */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** Mask pixels per /v1/segment request: 2^28 (268 M; e.g. 10 boxes × 3 masks of 3840 × 2160). */
export const DEFAULT_MAX_MASK_PIXELS = 2 ** 28;
/** 8192 × 8192. */
export const DEFAULT_SERVER_PIXEL_LIMIT = 8192 * 8192;
