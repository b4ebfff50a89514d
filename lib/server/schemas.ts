// Request bodies of the server's JSON routes: their TypeScript shapes and JSON schemas (unknown
// fields are refused, naming them). The schemas check shapes only; values (coordinates inside the
// image, weights, regions, ...) are checked by the library's own validation, whose errors name the
// field too (see argumentError in inputs.ts).
import { MAX_VOCABULARY } from '../referring/labels.js';
import { MAX_FUSED_PROMPTS } from '../referring/prompts.js';
import type { Box, Vertex } from '../types.js';

export type MaskFormat = 'rle' | 'png' | 'polygons';

/**
 * A region of a reference image, exactly one of: `box` `[x0, y0, x1, y1]`, `scribble` (a polyline
 * of `[x, y]` vertices) or `mask` (base64 of a PNG at the reference image's size, non-zero inside).
 */
export type RegionBody = { box: Box } | { scribble: Vertex[] } | { mask: string };

/** One referring prompt of a request: a text, a reference image (base64), or both. */
export interface PromptBody {
  text?: string;
  /** The encoded reference image, base64. */
  refImage?: string;
  /** A region of `refImage` (only with it). */
  refRegion?: RegionBody;
  /** With `text` and `refImage`: the text's weight in [0, 1] (default 0.5). */
  textWeight?: number;
}

/** What a heat map refers to: one prompt, or several fused (`prompts` + `weights`, many-to-one). */
export interface QueryBody extends PromptBody {
  /** Many-to-one: 1 to 64 prompts for one target, fused into one conditional embedding. */
  prompts?: PromptBody[];
  /** One weight ≥ 0 per prompt, not all 0 (normalised to sum 1). Default: equal. */
  weights?: number[];
}

/** A scribble of a request: `[x, y]` vertices, label 1 positive / 0 negative. */
export interface ScribbleBody {
  path: Vertex[];
  label: number;
  /** Plain segmentation only: also draw the (positive) scribble into the dense mask prompt. */
  dense?: boolean;
}

/** Body of POST /v1/segment. Coordinates are pixels of the original image. */
export interface SegmentBody extends QueryBody {
  imageId?: string;
  /** The encoded image, base64. */
  image?: string;
  /** [x, y, label] clicks, label 1 positive, 0 negative. With a referring prompt: composition clicks. */
  points?: Array<[number, number, number]>;
  /** Plain segmentation: one set of masks per box. */
  boxes?: Box[];
  /** With a referring prompt: the target box the referred instances must meet (SEEM composition). */
  box?: Box;
  scribbles?: ScribbleBody[];
  /** Low-res mask logits, base64 of little-endian float32 [L, L] (L = lowResSize, 256 for SAM). */
  maskInput?: string;
  /** Dense mask prompt: base64 of a PNG at the image's size, non-zero inside (Prompt.mask). */
  mask?: string;
  /** With `text` / `refImage` / `prompts`: heat above this is foreground, in [0, 1] (default 0.5). */
  threshold?: number;
  /** With `text` / `refImage` / `prompts`: the smallest instance, a fraction of the image, in [0, 1] (default 0.001). */
  minArea?: number;
  /** Labels for each mask (CLIP zero-shot over the vocabulary; needs a referrer). */
  vocabulary?: string[];
  /** With `vocabulary`: labels per mask, most probable first (default 5). */
  topK?: number;
  multimask?: boolean;
  format?: MaskFormat;
}

/** Body of POST /v1/heatmap. */
export interface HeatmapBody extends QueryBody {
  imageId?: string;
  image?: string;
  /** `float32` (default): base64 of little-endian float32 [height, width]; `png`: 8-bit grey. */
  format?: 'float32' | 'png';
}

const MAX_PROMPTS = 256;
const MAX_PATH = 4096;
const coordinate = { type: 'number' } as const;
const vertex = { type: 'array', minItems: 2, maxItems: 2, items: coordinate } as const;
const box = { type: 'array', minItems: 4, maxItems: 4, items: coordinate } as const;

const regionSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  properties: {
    box,
    scribble: { type: 'array', minItems: 1, maxItems: MAX_PATH, items: vertex },
    mask: { type: 'string', minLength: 1 },
  },
} as const;

const promptProperties = {
  text: { type: 'string' },
  refImage: { type: 'string', minLength: 1 },
  refRegion: regionSchema,
  textWeight: { type: 'number' },
} as const;

const queryProperties = {
  ...promptProperties,
  prompts: {
    type: 'array',
    minItems: 1,
    maxItems: MAX_FUSED_PROMPTS,
    items: { type: 'object', additionalProperties: false, properties: promptProperties },
  },
  weights: { type: 'array', maxItems: MAX_FUSED_PROMPTS, items: { type: 'number' } },
} as const;

const imageProperties = {
  imageId: { type: 'string', pattern: '^[0-9a-f]{64}$' },
  image: { type: 'string', minLength: 1 },
} as const;

/** JSON schema of POST /v1/segment. */
export const segmentSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...imageProperties,
    points: {
      type: 'array',
      maxItems: MAX_PROMPTS,
      items: { type: 'array', minItems: 3, maxItems: 3, items: coordinate },
    },
    boxes: { type: 'array', maxItems: MAX_PROMPTS, items: box },
    box,
    scribbles: {
      type: 'array',
      maxItems: MAX_PROMPTS,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['path', 'label'],
        properties: {
          path: { type: 'array', minItems: 1, maxItems: MAX_PATH, items: vertex },
          label: { type: 'number' },
          dense: { type: 'boolean' },
        },
      },
    },
    maskInput: { type: 'string' },
    mask: { type: 'string', minLength: 1 },
    ...queryProperties,
    threshold: { type: 'number' },
    minArea: { type: 'number' },
    vocabulary: { type: 'array', minItems: 1, maxItems: MAX_VOCABULARY, items: { type: 'string' } },
    topK: { type: 'number' },
    multimask: { type: 'boolean' },
    format: { type: 'string', enum: ['rle', 'png', 'polygons'] },
  },
} as const;

/** JSON schema of POST /v1/heatmap. */
export const heatmapSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...imageProperties,
    ...queryProperties,
    format: { type: 'string', enum: ['float32', 'png'] },
  },
} as const;
