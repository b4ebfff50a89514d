// Segment labels and ranking (issue #4 item 6; USE, "Universal Segment Embeddings"): a segment's
// CLIP image embedding (of its visual prompt: the mask's crop with the background blurred and
// darkened, as for reference images) compared with CLIP text embeddings of a vocabulary, the
// zero-shot classification of CLIP. The model calls live in `Referrer.label / rank /
// embedSegments`; this file holds the arithmetic, validation and templates.
import { invalidRange, invalidType } from '../errors.js';
import { Mask, maskSource } from '../mask.js';
import type { BinaryMask } from '../types.js';
import { abortSignal, binaryMask, copyBytes, integerInRange, isPlainObject, maskSize, nonEmptyString, optionalObject } from '../validate.js';

/**
 * Prompt templates for labels, `{}` standing for the label: the seven that CLIP's authors selected
 * for ImageNet zero-shot classification with prompt ensembling.
 * ref: openai/CLIP notebooks/Prompt_Engineering_for_ImageNet.ipynb ("we ended up with ... 7
 * templates"). Each label's text embedding is the normalised mean of its templates' normalised
 * embeddings (the notebook's `zeroshot_classifier`).
 */
export const DEFAULT_LABEL_TEMPLATES: readonly string[] = Object.freeze([
  'itap of a {}.',
  'a bad photo of the {}.',
  'a origami {}.',
  'a photo of the large {}.',
  'a {} in a video game.',
  'art of the {}.',
  'a photo of the small {}.',
]);

/** Labels returned per segment, when not given. */
export const DEFAULT_TOP_K = 5;

/** Most labels in a vocabulary (each costs one text-tower pass per template, cached per text). */
export const MAX_VOCABULARY = 4096;

/** A label of a segment with its probability over the vocabulary. */
export interface SegmentLabel {
  label: string;
  /** softmax over the vocabulary of logitScale · cos(segment, label), in [0, 1]. */
  probability: number;
}

export interface LabelOptions {
  /** Labels per segment, most probable first; 1 ≤ topK. Default 5 (`DEFAULT_TOP_K`), capped at the vocabulary's size. */
  topK?: number;
  /** Prompt templates with one `{}` each. Default: `DEFAULT_LABEL_TEMPLATES`. `['{}']` uses the labels as they are. */
  templates?: readonly string[];
  /**
   * Stops the work between model calls (a large vocabulary costs one text-tower pass per label
   * and template the first time): the promise rejects with an AbortError. Default: none.
   */
  signal?: AbortSignal;
}

/** A segment's place in a ranking by a query. */
export interface RankedSegment {
  /** Index of the mask in the list given to `rank`. */
  index: number;
  /** Cosine similarity of the segment's embedding and the query's, in [−1, 1]. */
  score: number;
}

/**
 * Masks (Mask instances or `{data, width, height}`) validated against the image size. A Mask is
 * returned as it is (its pixels are not decoded: it may hold run lengths only).
 */
export function segmentMasks(value: unknown, param: string, width: number, height: number): Array<BinaryMask | Mask> {
  if (!Array.isArray(value)) throw invalidType('an array of masks {data, width, height}', param, value);
  return value.map((m: unknown, i) => {
    if (!(m instanceof Mask)) return binaryMask(m, `${param}[${i}]`, width, height);
    maskSize(m, `${param}[${i}]`, width, height);
    return m;
  });
}

/** A vocabulary: 1 to 4096 distinct non-empty strings. */
export function vocabularyList(value: unknown, param = 'vocabulary'): string[] {
  const what = `an array of 1 to ${MAX_VOCABULARY} distinct non-empty strings`;
  if (!Array.isArray(value)) throw invalidType(what, param, value);
  if (value.length < 1 || value.length > MAX_VOCABULARY) throw invalidRange(what, param, value);
  const labels = value.map((v: unknown, i) => nonEmptyString(v, `${param}[${i}]`));
  const seen = new Set<string>();
  labels.forEach((label, i) => {
    if (seen.has(label)) throw invalidRange(what, `${param}[${i}]`, label);
    seen.add(label);
  });
  return labels;
}

/** LabelOptions validated, defaults filled in (topK capped at the vocabulary's size). */
export function labelSettings(
  value: unknown,
  vocabularySize: number,
  param = 'options',
): { topK: number; templates: string[]; signal?: AbortSignal } {
  const opts = optionalObject(value, param, 'an object {topK?, templates?, signal?}');
  const topK = opts.topK === undefined ? DEFAULT_TOP_K : integerInRange(opts.topK, `${param}.topK`, 1);
  let templates = [...DEFAULT_LABEL_TEMPLATES];
  if (opts.templates !== undefined) {
    const what = 'a non-empty array of strings with one {} each';
    if (!Array.isArray(opts.templates)) throw invalidType(what, `${param}.templates`, opts.templates);
    if (opts.templates.length === 0) throw invalidRange(what, `${param}.templates`, opts.templates);
    templates = opts.templates.map((t: unknown, i) => {
      const s = nonEmptyString(t, `${param}.templates[${i}]`);
      if (s.split('{}').length !== 2) throw invalidRange('a string with exactly one {}', `${param}.templates[${i}]`, t);
      return s;
    });
  }
  const signal = opts.signal === undefined ? undefined : abortSignal(opts.signal, `${param}.signal`);
  return { topK: Math.min(topK, vocabularySize), templates, ...(signal === undefined ? {} : { signal }) };
}

/** The text of a label under a template. */
export function fillTemplate(template: string, label: string): string {
  return template.replace('{}', label);
}

/** v / ‖v‖ (float64 norm); a zero vector stays zero. */
export function normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const n = Math.sqrt(s);
  return n === 0 ? new Float32Array(v.length) : v.map((x) => x / n);
}

/** cos(a, b) = a·b / (‖a‖‖b‖), computed in float64; 0 when either is zero. */
export function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb);
}

/** A label's embedding from its templates' text embeddings: mean of the normalised ones, normalised. */
export function ensembleEmbedding(templateEmbeddings: readonly Float32Array[]): Float32Array {
  const mean = new Float32Array(templateEmbeddings[0].length);
  for (const e of templateEmbeddings) {
    const u = normalize(e);
    for (let i = 0; i < mean.length; i++) mean[i] += u[i] / templateEmbeddings.length;
  }
  return normalize(mean);
}

/**
 * CLIP zero-shot scores of one segment embedding against label embeddings:
 * logits = logitScale · cos(segment, labelᵢ), probabilities = softmax(logits).
 */
export function zeroShot(
  segment: Float32Array,
  labels: readonly Float32Array[],
  logitScale: number,
): { logits: number[]; probabilities: number[] } {
  const logits = labels.map((l) => logitScale * cosine(segment, l));
  const max = Math.max(...logits);
  const exp = logits.map((x) => Math.exp(x - max));
  const sum = exp.reduce((a, b) => a + b, 0);
  return { logits, probabilities: exp.map((e) => e / sum) };
}

/** The k most probable labels, by descending probability (the earlier label on ties). */
export function topLabels(probabilities: readonly number[], vocabulary: readonly string[], k: number): SegmentLabel[] {
  return probabilities
    .map((probability, i) => ({ label: vocabulary[i], probability, i }))
    .sort((a, b) => b.probability - a.probability || a.i - b.i)
    .slice(0, k)
    .map(({ label, probability }) => ({ label, probability }));
}

/** Segments ordered by cosine similarity with a query embedding, best first (the earlier on ties). */
export function rankByQuery(segments: readonly Float32Array[], query: Float32Array): RankedSegment[] {
  return segments
    .map((s, index) => ({ index, score: cosine(s, query) }))
    .sort((a, b) => b.score - a.score || a.index - b.index);
}

/**
 * A mask of embedSegments as this call's own: a Mask from an rle decode as it is (its run
 * lengths), any other Mask or `{data}` with a copy of its pixels; anything else as it is (for
 * validation to refuse).
 */
export function ownPixels(mask: unknown): unknown {
  if (mask instanceof Mask) {
    const source = maskSource(mask);
    return source instanceof Uint32Array ? mask : { data: copyBytes(source), width: mask.width, height: mask.height };
  }
  if (isPlainObject(mask) && mask.data instanceof Uint8Array) return { ...mask, data: copyBytes(mask.data) };
  return mask;
}
