// Referring segmentation: a text and/or reference image → CLIPSeg heat map (Referrer) →
// candidate instances (connected components of the thresholded map) → SAM masks (Segmenter),
// deduplicated and scored. The image is decoded once and encoded once for SAM.
import { invalidRange, invalidType, untilAborted } from '../errors.js';
import { decodeForEncoder } from '../image.js';
import { Referrer, type Heatmap, type HeatmapOptions } from '../referrer.js';
import { instancesInBox, targetSettings, type TargetPrompt } from './compose.js';
import { querySpec } from './prompts.js';
import { segmenterArg, type Segmenter } from '../segmenter.js';
import type { ImageInput, RawImage } from '../types.js';
import { knownKeys, plainObject } from '../validate.js';
import { findInstancesAsync, instanceSettings, type Instance, type InstanceOptions } from './instances.js';
import { instanceMasks, instanceMaskSettings, type InstanceMaskOptions, type ReferringMasks } from './masks.js';

export {
  DEFAULT_CONNECTIVITY,
  DEFAULT_HEAT_THRESHOLD,
  DEFAULT_MAX_INSTANCES,
  DEFAULT_MIN_AREA,
  MAX_COMPONENT_PIXELS,
  findInstances,
  labelComponents,
} from './instances.js';
export type { Instance, InstanceOptions } from './instances.js';
export { DEFAULT_NMS_IOU, instanceMasks, instancePrompts, maskNms } from './masks.js';
export type { InstanceMaskOptions, InstanceMaskSettings, ReferringMasks } from './masks.js';
export {
  VISUAL_PROMPT_BLUR_SIGMA,
  VISUAL_PROMPT_BLUR_SIZE,
  VISUAL_PROMPT_DARKEN,
  VISUAL_PROMPT_MARGIN,
  promptCrop,
  refRegion,
  regionMask,
  visualPrompt,
} from './visual-prompt.js';
export type { CropRect, RefRegion, RgbImage } from './visual-prompt.js';
export { DEFAULT_TEXT_WEIGHT, MAX_FUSED_PROMPTS, fuseEmbeddings } from './prompts.js';
export type { HeatmapOptions, ReferringPrompt } from './prompts.js';
export type { TargetPrompt, TargetSettings } from './compose.js';
export { DEFAULT_LABEL_TEMPLATES, DEFAULT_TOP_K, MAX_VOCABULARY } from './labels.js';
export type { LabelOptions, RankedSegment, SegmentLabel } from './labels.js';

/**
 * What to segment and how: the referring prompt (`text`, `refImage`, `refRegion`, `textWeight`,
 * or several fused `prompts` with `weights`, as `Referrer.heatmap`), how the heat map splits into
 * instances (`threshold`, `minArea`, `connectivity`, `maxInstances`), how instances become masks
 * (`peakPoint`, `maskPrompt`, `nmsIoU`, `maskThreshold`, `signal`), and prompts on the target
 * image that narrow and refine them (`points`, `scribbles`, `box`; see `TargetPrompt`).
 *
 * No target: when no pixel of the heat map is above `threshold` (default 0.5), or every component
 * is smaller than `minArea` (default 0.1 % of the image), or outside `box`, or no mask contains a
 * positive click, the result is `noTarget: true` with no masks; SAM is not run when no instance
 * is left before decoding.
 */
export interface ReferSegmentOptions extends HeatmapOptions, InstanceOptions, InstanceMaskOptions, TargetPrompt {}

/** The settings of `referSegmentEach` (every ReferSegmentOption but the referring prompt). */
export type ReferSegmentEachOptions = Omit<ReferSegmentOptions, keyof HeatmapOptions>;

export interface ReferSegmentResult extends ReferringMasks {
  /** The referrer's heat map over the image. */
  heatmap: Heatmap;
  /** Every instance found in the heat map (before SAM and NMS), strongest peak first. */
  candidates: Instance[];
  timings: {
    /** `Referrer.heatmap`'s total (shared by all queries of `referSegmentEach`). */
    heatmapMs: number;
    /** SAM's image encoder (once per image); 0 when there was no target. */
    encodeMs: number;
    /** Splitting the heat map, SAM decodes, scoring and NMS. */
    instancesMs: number;
    totalMs: number;
  };
}

/** Many-to-many: one result per query, in order. */
export interface ReferSegmentEachResult {
  results: ReferSegmentResult[];
  /** `true` when no query found a target. */
  noTarget: boolean;
}

/**
 * Segments what `options.text` and/or `options.refImage` (or the fused `options.prompts`) refer
 * to in `image`: the referrer's heat map is split into instances (`findInstances`), each segmented
 * by SAM from its box, peak and pixels on one encoding of the image (`instanceMasks`),
 * deduplicated by mask NMS and scored (SAM's predicted IoU × the instance's mean response). Zero,
 * one or several masks (one-to-one, one-to-many, no target; many-to-one with `prompts`).
 * @throws TypeError / RangeError for invalid arguments (before any model runs); the errors of
 *   `Referrer.heatmap` and `Segmenter.segment`.
 */
export async function referSegment(
  segmenter: Segmenter,
  referrer: Referrer,
  image: ImageInput,
  options: ReferSegmentOptions,
): Promise<ReferSegmentResult> {
  checkModels(segmenter, referrer);
  const opts = plainObject(options, 'options', 'an object {text?, refImage?, textWeight?, threshold?, minArea?, ...}');
  knownKeys(opts, OPTION_KEYS, 'referSegment');
  const query: HeatmapOptions = {};
  for (const key of QUERY_KEYS) if (opts[key] !== undefined) Object.assign(query, { [key]: opts[key] });
  querySpec(query);
  const [result] = await referMany(segmenter, referrer, image, [query], opts, false);
  return result;
}

/**
 * Many-to-many: segments what each query refers to in `image`, a result per query (each as
 * `referSegment`'s), with one vision-tower pass for all the heat maps (`Referrer.heatmaps`) and
 * one SAM encoding of the image.
 * @throws as `referSegment`, naming `queries[i]` for a bad query.
 */
export async function referSegmentEach(
  segmenter: Segmenter,
  referrer: Referrer,
  image: ImageInput,
  queries: readonly HeatmapOptions[],
  options: ReferSegmentEachOptions = {},
): Promise<ReferSegmentEachResult> {
  checkModels(segmenter, referrer);
  if (!Array.isArray(queries)) throw invalidType('an array of referring queries', 'queries', queries);
  if (queries.length === 0) throw invalidRange('a non-empty array', 'queries', queries);
  queries.forEach((q, i) => querySpec(q, `queries[${i}]`));
  const opts = plainObject(options, 'options', 'an object {threshold?, minArea?, points?, box?, ...}');
  knownKeys(opts, OPTION_KEYS, 'referSegmentEach');
  const stray = QUERY_KEYS.find((k) => opts[k] !== undefined);
  if (stray !== undefined) throw invalidType(`undefined (${stray} goes in queries[i])`, `options.${stray}`, opts[stray]);
  const results = await referMany(segmenter, referrer, image, queries, opts, true);
  return { results, noTarget: results.every((r) => r.noTarget) };
}

const QUERY_KEYS = ['text', 'refImage', 'refRegion', 'textWeight', 'prompts', 'weights'] as const;
/** Every key of ReferSegmentOptions: the query's, the instances', their masks' and the target's. */
const OPTION_KEYS: ReadonlySet<string> = new Set<keyof ReferSegmentOptions>([
  ...QUERY_KEYS,
  'threshold',
  'minArea',
  'connectivity',
  'maxInstances',
  'peakPoint',
  'maskPrompt',
  'nmsIoU',
  'maskThreshold',
  'signal',
  'points',
  'scribbles',
  'box',
]);

async function referMany(
  segmenter: Segmenter,
  referrer: Referrer,
  image: ImageInput,
  queries: readonly HeatmapOptions[],
  opts: Record<string, unknown>,
  many: boolean,
): Promise<ReferSegmentResult[]> {
  const start = performance.now();
  const instanceOptions = instanceSettings(opts);
  const maskOptions = instanceMaskSettings(opts);
  if (maskOptions.signal !== undefined && !(maskOptions.signal instanceof AbortSignal)) {
    throw invalidType('an AbortSignal', 'options.signal', maskOptions.signal);
  }
  maskOptions.signal?.throwIfAborted();

  // (the library's own copy: the referrer and the encoder take it as it is, instead of a copy each)
  const { signal } = maskOptions;
  const decoded = await untilAborted(decodeForEncoder(image, { limitInputPixels: segmenter.limitInputPixels }), signal);
  const target = targetSettings(opts, decoded.width, decoded.height);
  const raw: RawImage = { ...decoded, channels: 3 };
  const call = signal === undefined ? {} : { signal };
  const heatmaps = many ? await referrer.heatmaps(raw, queries, call) : [await referrer.heatmap(raw, queries[0], call)];
  const heatmapMs = performance.now() - start;

  const splitStart = performance.now();
  // (the heat maps are this call's own: the native search reads them in place, off the JS thread)
  const candidates = await Promise.all(heatmaps.map((h) => findInstancesAsync(h.data, h.width, h.height, instanceOptions)));
  const live = candidates.map((c) => instancesInBox(c, target, decoded.width));
  const none: ReferringMasks = { masks: [], scores: [], instances: [], noTarget: true };
  const masks: ReferringMasks[] = live.map(() => none);
  let encodeMs = 0;
  const samStart: number[] = live.map(() => performance.now());
  const samEnd: number[] = [...samStart];
  if (live.some((c) => c.length > 0)) {
    const encodeStart = performance.now();
    const embedding = await segmenter.encode(raw, maskOptions.signal === undefined ? {} : { signal: maskOptions.signal });
    encodeMs = performance.now() - encodeStart;
    try {
      for (const [i, inst] of live.entries()) {
        samStart[i] = performance.now();
        if (inst.length > 0) masks[i] = await instanceMasks(segmenter, embedding, inst, maskOptions, target);
        samEnd[i] = performance.now();
      }
    } finally {
      embedding.dispose();
    }
  }
  const end = performance.now();
  return heatmaps.map((heatmap, i) => ({
    ...masks[i],
    heatmap,
    candidates: candidates[i],
    timings: {
      heatmapMs,
      encodeMs,
      instancesMs: (many ? 0 : samStart[i] - splitStart - encodeMs) + (samEnd[i] - samStart[i]),
      totalMs: end - start,
    },
  }));
}

/** The two loaded models, in their order (a swap or a stand-in is refused by name). */
function checkModels(segmenter: unknown, referrer: unknown): void {
  segmenterArg(segmenter, 'segmenter');
  if (!(referrer instanceof Referrer)) throw invalidType('a Referrer (Referrer.load)', 'referrer', referrer);
}
