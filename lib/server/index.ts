// omniseg/server: the HTTP segmentation server (see app.ts).
export { createServer } from './app.js';
export * from './defaults.js'; // the DEFAULT_* option values
export type { OmnisegServer, ServerOptions } from './app.js';
export { imageId } from './cache.js';
export type { EmbeddingCache, Lease as EmbeddingLease, Resolved as ResolvedEmbedding } from './cache.js';
export type { HeatmapCache, ResolvedHeatmap } from './heatmap-cache.js';
export type { ServerMetrics } from './metrics.js';
export type { ErrorBody } from './errors.js';
export type { HeatmapBody, MaskFormat, PromptBody, QueryBody, RegionBody, ScribbleBody, SegmentBody } from './schemas.js';
