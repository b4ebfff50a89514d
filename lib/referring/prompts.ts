// Referring prompts (issue #4 item 5): what a heat map refers to. One prompt is a text, a
// reference image (with an optional region on it), or both mixed by a weight; a query is one
// prompt, or several prompts for one target fused into one conditional embedding (many-to-one).
// Validation happens here, before any image is decoded or any model runs; the fusion arithmetic
// is float32, as PyTorch's on the reference's embeddings.
import { invalidRange, invalidType } from '../errors.js';
import type { ImageInput } from '../types.js';
import { finiteNumber, nonEmptyString, numberInRange, plainObject } from '../validate.js';
import type { RefRegion } from './visual-prompt.js';

/** Text weight of a prompt that has both a text and a reference image, when none is given. */
export const DEFAULT_TEXT_WEIGHT = 0.5;

/** Most prompts fused in one query (each costs a text or image tower pass). */
export const MAX_FUSED_PROMPTS = 64;

/** One referring prompt: a text, a reference image (visual prompt), or both. */
export interface ReferringPrompt {
  /** A referring expression, tokenised with the checkpoint's CLIP tokenizer (truncated to fit). */
  text?: string;
  /** A reference image (visual prompt), preprocessed as the target image; the whole image is used. */
  refImage?: ImageInput;
  /**
   * A region of `refImage` (a mask at its size, a box or a scribble): the visual prompt becomes
   * the region's crop with a blurred, darkened background (CLIPSeg's visual prompt engineering,
   * see `visualPrompt`). Only with `refImage`; without it the whole reference image is used.
   */
  refRegion?: RefRegion;
  /**
   * With both `text` and `refImage`: the conditional embedding is
   * textWeight · text embedding + (1 − textWeight) · reference-image embedding (the CLIPSeg
   * paper's interpolation). In [0, 1]; default 0.5. Only allowed when both are given.
   */
  textWeight?: number;
}

/**
 * What a heat map refers to: one prompt (`text` / `refImage` / `refRegion` / `textWeight`), or —
 * many-to-one — `prompts`, several prompts for one target (e.g. two phrasings and a reference
 * crop), whose conditional embeddings are averaged with `weights` into one.
 */
export interface HeatmapOptions extends ReferringPrompt {
  /**
   * Many-to-one: 1 to 64 prompts for the same target, fused into one conditional embedding,
   * Σ wᵢ·eᵢ with the weights normalised to sum 1. Excludes the top-level text / refImage /
   * refRegion / textWeight.
   */
  prompts?: ReferringPrompt[];
  /** One weight ≥ 0 per entry of `prompts`, not all 0. Default: equal weights. */
  weights?: number[];
}

/** A validated prompt; `textWeight` is set exactly when both text and refImage are. */
export interface PromptSpec {
  text?: string;
  refImage?: ImageInput;
  /** Unvalidated until the reference image's size is known (`refRegion()`). */
  refRegion?: unknown;
  textWeight?: number;
}

/** A validated query: its prompts and their weights, which sum to 1. */
export interface QuerySpec {
  prompts: PromptSpec[];
  weights: number[];
}

const PROMPT_WHAT = 'an object with text and/or refImage';

/** Validates one prompt (errors name `${param}.<field>`). */
export function promptSpec(value: unknown, param: string): PromptSpec {
  const opts = plainObject(value, param, 'an object {text?, refImage?, refRegion?, textWeight?}');
  const text = opts.text === undefined ? undefined : nonEmptyString(opts.text, `${param}.text`);
  const hasRef = opts.refImage !== undefined;
  if (text === undefined && !hasRef) throw invalidType(PROMPT_WHAT, param, value);
  if (opts.refRegion !== undefined && !hasRef) {
    throw invalidType('undefined (refRegion needs refImage)', `${param}.refRegion`, opts.refRegion);
  }
  const spec: PromptSpec = {};
  if (text !== undefined) spec.text = text;
  if (hasRef) spec.refImage = opts.refImage as ImageInput;
  if (opts.refRegion !== undefined) spec.refRegion = opts.refRegion;
  if (opts.textWeight !== undefined) {
    if (text === undefined || !hasRef) {
      throw invalidType('undefined (textWeight needs both text and refImage)', `${param}.textWeight`, opts.textWeight);
    }
    spec.textWeight = numberInRange(opts.textWeight, `${param}.textWeight`, 0, 1);
  } else if (text !== undefined && hasRef) {
    spec.textWeight = DEFAULT_TEXT_WEIGHT;
  }
  return spec;
}

/**
 * Validates a HeatmapOptions: one prompt, or `prompts` (+ `weights`) for many-to-one.
 * @throws TypeError / RangeError naming the field.
 */
export function querySpec(value: unknown, param = 'options'): QuerySpec {
  const opts = plainObject(value, param, 'an object {text?, refImage?, ...} or {prompts, weights?}');
  if (opts.prompts === undefined) {
    if (opts.weights !== undefined) throw invalidType('undefined (weights needs prompts)', `${param}.weights`, opts.weights);
    return { prompts: [promptSpec(opts, param)], weights: [1] };
  }
  const single = (['text', 'refImage', 'refRegion', 'textWeight'] as const).find((k) => opts[k] !== undefined);
  if (single !== undefined) {
    throw invalidType(`undefined (${single} goes inside prompts[i] when prompts is given)`, `${param}.${single}`, opts[single]);
  }
  const list = opts.prompts;
  if (!Array.isArray(list)) throw invalidType('an array of prompts', `${param}.prompts`, list);
  if (list.length < 1 || list.length > MAX_FUSED_PROMPTS) {
    throw invalidRange(`an array of 1 to ${MAX_FUSED_PROMPTS} prompts`, `${param}.prompts`, list);
  }
  const prompts = list.map((p, i) => promptSpec(p, `${param}.prompts[${i}]`));
  return { prompts, weights: fusionWeights(opts.weights, list.length, `${param}.weights`) };
}

/** `weights` validated (n finite numbers ≥ 0, not all 0) and normalised to sum 1; default equal. */
export function fusionWeights(value: unknown, n: number, param: string): number[] {
  if (value === undefined) return new Array<number>(n).fill(1 / n);
  if (!Array.isArray(value) || value.length !== n) {
    throw invalidType(`an array of ${n} weight${n === 1 ? '' : 's'}`, param, value);
  }
  const weights = value.map((w, i) => {
    const x = finiteNumber(w, `${param}[${i}]`);
    if (x < 0) throw invalidRange('a number ≥ 0', `${param}[${i}]`, w);
    return x;
  });
  // Scaled by the largest first: the sum of weights near Number.MAX_VALUE would overflow to
  // Infinity and every weight normalise to 0.
  const max = Math.max(...weights);
  if (!(max > 0)) throw invalidRange('weights that are not all 0', param, value);
  const sum = weights.reduce((a, b) => a + b, 0);
  if (sum === 1) return weights;
  const scaled = weights.map((w) => w / max);
  const scaledSum = scaled.reduce((a, b) => a + b, 0);
  return scaled.map((w) => w / scaledSum);
}

/**
 * Σ weights[i] · embeddings[i] in float32 arithmetic, as PyTorch evaluates
 * `w0 * e0 + w1 * e1 + …` on float32 tensors with Python-float weights: each weight rounded to
 * float32, each product rounded, the sum accumulated left to right with rounding.
 */
export function fuseEmbeddings(embeddings: readonly Float32Array[], weights: readonly number[]): Float32Array {
  if (embeddings.length === 0 || embeddings.length !== weights.length) {
    throw new RangeError(`fuseEmbeddings: ${embeddings.length} embeddings but ${weights.length} weights`);
  }
  const n = embeddings[0].length;
  const out = new Float32Array(n);
  const w0 = Math.fround(weights[0]);
  for (let j = 0; j < n; j++) out[j] = w0 * embeddings[0][j];
  for (let i = 1; i < embeddings.length; i++) {
    const e = embeddings[i];
    if (e.length !== n) throw new RangeError(`fuseEmbeddings: embedding ${i} has ${e.length} values, not ${n}`);
    const w = Math.fround(weights[i]);
    for (let j = 0; j < n; j++) out[j] += Math.fround(w * e[j]);
  }
  return out;
}
