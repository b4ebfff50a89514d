// Referring segmentation: a text and/or reference image → CLIPSeg heat map (Referrer) →
// candidate instances (connected components of the thresholded map) → SAM masks (Segmenter),
// deduplicated and scored. The image is decoded once and encoded once for SAM.
import { invalidType } from '../errors.js';
import { decodeImage } from '../image.js';
import type { Heatmap, HeatmapOptions, Referrer } from '../referrer.js';
import type { Segmenter } from '../segmenter.js';
import type { ImageInput, RawImage } from '../types.js';
import { plainObject } from '../validate.js';
import { findInstances, instanceSettings, type Instance, type InstanceOptions } from './instances.js';
import { instanceMasks, instanceMaskSettings, type InstanceMaskOptions, type ReferringMasks } from './masks.js';

export {
  DEFAULT_CONNECTIVITY,
  DEFAULT_HEAT_THRESHOLD,
  DEFAULT_MAX_INSTANCES,
  DEFAULT_MIN_AREA,
  findInstances,
  labelComponents,
} from './instances.js';
export type { Instance, InstanceOptions } from './instances.js';
export { DEFAULT_NMS_IOU, instanceMasks, instancePrompts, maskNms } from './masks.js';
export type { InstanceMaskOptions, ReferringMasks } from './masks.js';
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

/**
 * What to segment and how: the referring prompt (`text`, `refImage`, `refRegion`,
 * `textWeight`, as `Referrer.heatmap`), how the heat map splits into instances (`threshold`, `minArea`,
 * `connectivity`, `maxInstances`) and how instances become masks (`peakPoint`, `maskPrompt`,
 * `nmsIoU`, `maskThreshold`, `signal`).
 *
 * No target: when no pixel of the heat map is above `threshold` (default 0.5), or every component
 * is smaller than `minArea` (default 0.1 % of the image), the result is `noTarget: true` with no
 * masks, and SAM is not run at all.
 */
export interface ReferSegmentOptions extends HeatmapOptions, InstanceOptions, InstanceMaskOptions {}

export interface ReferSegmentResult extends ReferringMasks {
  /** The referrer's heat map over the image. */
  heatmap: Heatmap;
  /** Every instance found in the heat map (before SAM and NMS), strongest peak first. */
  candidates: Instance[];
  timings: {
    /** `Referrer.heatmap`'s total. */
    heatmapMs: number;
    /** SAM's image encoder; 0 when there was no target. */
    encodeMs: number;
    /** Splitting the heat map, SAM decodes, scoring and NMS. */
    instancesMs: number;
    totalMs: number;
  };
}

/**
 * Segments what `options.text` and/or `options.refImage` refer to in `image`: the referrer's heat
 * map is split into instances (`findInstances`), each segmented by SAM from its box, peak and
 * pixels on one encoding of the image (`instanceMasks`), deduplicated by mask NMS and scored
 * (SAM's predicted IoU × the instance's mean response). Zero, one or several masks.
 * @throws TypeError / RangeError for invalid arguments (before any model runs); the errors of
 *   `Referrer.heatmap` and `Segmenter.segment`.
 */
export async function referSegment(
  segmenter: Segmenter,
  referrer: Referrer,
  image: ImageInput,
  options: ReferSegmentOptions,
): Promise<ReferSegmentResult> {
  const start = performance.now();
  const opts = plainObject(options, 'options', 'an object {text?, refImage?, textWeight?, threshold?, minArea?, ...}');
  const instanceOptions = instanceSettings(opts);
  const maskOptions = instanceMaskSettings(opts);
  if (maskOptions.signal !== undefined && !(maskOptions.signal instanceof AbortSignal)) {
    throw invalidType('an AbortSignal', 'options.signal', maskOptions.signal);
  }
  maskOptions.signal?.throwIfAborted();
  const heatmapOptions: HeatmapOptions = {};
  for (const key of ['text', 'refImage', 'refRegion', 'textWeight'] as const) {
    if (opts[key] !== undefined) Object.assign(heatmapOptions, { [key]: opts[key] });
  }

  const decoded = await decodeImage(image, { limitInputPixels: segmenter.limitInputPixels });
  const raw: RawImage = { ...decoded, channels: 3 };
  const heatmap = await referrer.heatmap(raw, heatmapOptions);
  const heatmapMs = performance.now() - start;

  const splitStart = performance.now();
  const candidates = findInstances(heatmap.data, heatmap.width, heatmap.height, instanceOptions);
  let masks: ReferringMasks = { masks: [], scores: [], instances: [], noTarget: true };
  let encodeMs = 0;
  let samStart = performance.now();
  if (candidates.length > 0) {
    const encodeStart = performance.now();
    const embedding = await segmenter.encode(raw, maskOptions.signal === undefined ? {} : { signal: maskOptions.signal });
    encodeMs = performance.now() - encodeStart;
    samStart = performance.now();
    try {
      masks = await instanceMasks(segmenter, embedding, candidates, maskOptions);
    } finally {
      embedding.dispose();
    }
  }
  const end = performance.now();
  return {
    ...masks,
    heatmap,
    candidates,
    timings: {
      heatmapMs,
      encodeMs,
      instancesMs: samStart - splitStart - encodeMs + (end - samStart),
      totalMs: end - start,
    },
  };
}
