// Candidate instances → SAM masks: each instance of a referring heat map (lib/referring/
// instances.ts) becomes SAM prompts (its box, its peak as a positive click, its pixels as a dense
// mask prompt), decoded on one image embedding; duplicates are removed by mask NMS and every
// result is scored.
import { ImageEmbedding } from '../embedding.js';
import { invalidRange, invalidType } from '../errors.js';
import { boundsOfRuns, Mask, maskSource } from '../mask.js';
import { lazyPromptMask, type Prompt } from '../prompt.js';
import { maskToCounts, overlapValidRuns } from '../rle.js';
import { segmenterArg, type Segmenter } from '../segmenter.js';
import type { BinaryMask } from '../types.js';
import { abortSignal, boolean, finiteNumber, integerInRange, numberInRange, optionalObject, plainObject, sizedMask } from '../validate.js';
import { checkedTarget, instanceClicks, instancesInBox, selectedByClicks, type TargetSettings } from './compose.js';
import { instanceList, instanceRuns, type Instance } from './instances.js';

/**
 * Mask NMS threshold: a mask whose IoU with a better-scored kept mask is strictly above this is a
 * duplicate and dropped. 0.5: two masks that share more than they don't are one object.
 */
export const DEFAULT_NMS_IOU = 0.5;

export interface InstanceMaskOptions {
  /** Add the instance's peak as a positive click. Default: `true`. */
  peakPoint?: boolean;
  /**
   * Add the instance's pixels (its component of the thresholded heat map) as a dense mask prompt
   * (`Prompt.mask`, converted to SAM's low-res logits by `maskToLogits`). Default: `true`.
   */
  maskPrompt?: boolean;
  /** Mask NMS IoU threshold, in [0, 1]; default 0.5 (`DEFAULT_NMS_IOU`). 1 keeps every mask. */
  nmsIoU?: number;
  /** SAM's logit threshold for the binary masks (`SegmentOptions.threshold`). Default: `0`. */
  maskThreshold?: number;
  /** Cancels the SAM calls not yet started (see `SegmentOptions.signal`). Default: none. */
  signal?: AbortSignal;
}

/** Masks answering a referring prompt, best first. */
export interface ReferringMasks {
  /** SAM's masks after NMS, by descending score. Empty when there is no target. */
  masks: Mask[];
  /**
   * One per mask: SAM's predicted IoU (`Mask.score`) × the instance's mean heat response
   * (`Instance.meanResponse`), so both how well SAM thinks it segmented and how strongly the
   * referrer pointed there count; in about [0, 1].
   */
  scores: number[];
  /** One per mask: the instance whose prompts produced it. */
  instances: Instance[];
  /** `true` when no instance survived (then `masks` is empty). */
  noTarget: boolean;
}

/** InstanceMaskOptions validated, with defaults filled in (the signal is passed through). */
export interface InstanceMaskSettings {
  peakPoint: boolean;
  maskPrompt: boolean;
  nmsIoU: number;
  maskThreshold: number;
  signal?: AbortSignal;
}

const INSTANCE_MASK_OPTIONS_WHAT = 'an object {peakPoint?, maskPrompt?, nmsIoU?, maskThreshold?, signal?}';

/** Validates InstanceMaskOptions fields of `opts` (named `${param}.<field>` in errors) and fills in the defaults. */
export function instanceMaskSettings(opts: Record<string, unknown>, param = 'options'): InstanceMaskSettings {
  return {
    peakPoint: opts.peakPoint === undefined ? true : boolean(opts.peakPoint, `${param}.peakPoint`),
    maskPrompt: opts.maskPrompt === undefined ? true : boolean(opts.maskPrompt, `${param}.maskPrompt`),
    nmsIoU: opts.nmsIoU === undefined ? DEFAULT_NMS_IOU : numberInRange(opts.nmsIoU, `${param}.nmsIoU`, 0, 1),
    maskThreshold: opts.maskThreshold === undefined ? 0 : finiteNumber(opts.maskThreshold, `${param}.maskThreshold`),
    ...(opts.signal === undefined ? {} : { signal: abortSignal(opts.signal, `${param}.signal`) }),
  };
}

/**
 * The SAM prompts of each instance: `Prompt` pairs every point (and the mask prompt) with every
 * box of a call, so an instance with its own peak or mask is one prompt of its own; without
 * either, all the boxes go in one prompt (one decoder call, one prompt set per box).
 * @returns prompts and, for each, the instances its prompt sets answer, in order.
 */
export function instancePrompts(
  instances: readonly Instance[],
  width: number,
  height: number,
  settings: Pick<InstanceMaskSettings, 'peakPoint' | 'maskPrompt'>,
  target?: TargetSettings,
): Array<{ prompt: Prompt; instances: Instance[] }> {
  const w = integerInRange(width, 'width', 1);
  const h = integerInRange(height, 'height', 1);
  const opts = plainObject(settings, 'settings', 'an object {peakPoint, maskPrompt}');
  const checked = { peakPoint: boolean(opts.peakPoint, 'settings.peakPoint'), maskPrompt: boolean(opts.maskPrompt, 'settings.maskPrompt') };
  const list = instanceList(instances, 'instances', w, h, checked.maskPrompt);
  return promptsOf(list, w, h, checked, checkedTarget(target, 'target', w, h));
}

/** instancePrompts of arguments already checked. */
function promptsOf(
  instances: readonly Instance[],
  width: number,
  height: number,
  settings: Pick<InstanceMaskSettings, 'peakPoint' | 'maskPrompt'>,
  target: TargetSettings | undefined,
): Array<{ prompt: Prompt; instances: Instance[] }> {
  if (instances.length === 0) return [];
  const clicks = target !== undefined && target.positives.length + target.negatives.length > 0;
  if (!settings.peakPoint && !settings.maskPrompt && !clicks) {
    return [{ prompt: { boxes: instances.map((inst) => [...inst.box]) }, instances: [...instances] }];
  }
  return instances.map((inst) => {
    const prompt: Prompt = { boxes: [[...inst.box]] };
    const points = [
      ...(settings.peakPoint ? [{ x: inst.peak.x, y: inst.peak.y, label: 1 as const }] : []),
      ...instanceClicks(inst, target),
    ];
    if (points.length > 0) prompt.points = points;
    // (the component's runs go to the native conversion as they are: no W × H mask in JS)
    if (settings.maskPrompt) prompt.mask = lazyPromptMask(width, height, () => inst.mask, () => instanceRuns(inst));
    return { prompt, instances: [inst] };
  });
}

/**
 * Segments each instance with SAM on an encoded image (single-mask output: a box is not
 * ambiguous), scores the masks (predicted IoU × mean heat response), removes duplicates by mask
 * NMS and returns the rest by descending score. No instances: no SAM call, `noTarget: true`.
 * With target-image prompts (`target`, see lib/referring/compose.ts) the instances are first
 * narrowed to the target box, their prompts get the user's clicks, and masks that contain none of
 * the positive clicks are dropped.
 * @param embedding `segmenter.encode()` of the image the heat map was computed on.
 */
export async function instanceMasks(
  segmenter: Segmenter,
  embedding: ImageEmbedding,
  instances: readonly Instance[],
  options: InstanceMaskOptions = {},
  target?: TargetSettings,
): Promise<ReferringMasks> {
  segmenterArg(segmenter, 'segmenter');
  if (!(embedding instanceof ImageEmbedding)) throw invalidType('an ImageEmbedding (segmenter.encode)', 'embedding', embedding);
  const settings = instanceMaskSettings(optionalObject(options, 'options', INSTANCE_MASK_OPTIONS_WHAT));
  const { width, height } = embedding;
  const list = instanceList(instances, 'instances', width, height, settings.maskPrompt);
  const targetSettings = checkedTarget(target, 'target', width, height);
  // rle: the masks' runs come from the native decode, which is what the NMS below and the
  // usual JSON output read; a mask's pixels are decoded only if something asks for them.
  const segmentOptions = {
    multimask: false,
    threshold: settings.maskThreshold,
    rle: true,
    ...(settings.signal === undefined ? {} : { signal: settings.signal }),
  };
  const masks: Mask[] = [];
  const scores: number[] = [];
  const sources: Instance[] = [];
  const candidates = instancesInBox(list, targetSettings, width);
  for (const { prompt, instances: answered } of promptsOf(candidates, width, height, settings, targetSettings)) {
    const result = await segmenter.segment(embedding, prompt, segmentOptions);
    result.masks.forEach((mask, i) => {
      if (!selectedByClicks(mask, targetSettings)) return;
      masks.push(mask);
      scores.push(mask.score * answered[i].meanResponse);
      sources.push(answered[i]);
    });
  }
  const keep = validMaskNms(masks, scores, settings.nmsIoU);
  return {
    masks: keep.map((i) => masks[i]),
    scores: keep.map((i) => scores[i]),
    instances: keep.map((i) => sources[i]),
    noTarget: keep.length === 0,
  };
}

/**
 * Greedy mask non-maximum suppression: visits the masks by descending score (the earlier mask on
 * ties) and keeps each one whose IoU (on the binary masks, from their COCO run lengths) with every
 * mask already kept is at most `iouThreshold`. Two empty masks have IoU 0 (both kept).
 * @returns indices of the kept masks, by descending score.
 */
export function maskNms(masks: readonly BinaryMask[], scores: ArrayLike<number>, iouThreshold: number): number[] {
  if (!Array.isArray(masks)) throw invalidType('an array of masks {data, width, height}', 'masks', masks);
  // (a Mask was checked when it was made, and its pixels may still be run lengths: not decoded
  // here; any other object is read for its data, width and height, whatever its class)
  const checked = Array.from(masks as unknown[], (m, i) => {
    if (m instanceof Mask) return m;
    const param = `masks[${i}]`;
    if (typeof m !== 'object' || m === null) throw invalidType('a mask {data, width, height}', param, m);
    const { data, width, height } = m as Record<string, unknown>;
    return sizedMask({ data, width, height }, param);
  });
  const what = `an array (or typed array) of ${checked.length} finite numbers (one per mask)`;
  const list: unknown = scores;
  if (!Array.isArray(list) && !(ArrayBuffer.isView(list) && !(list instanceof DataView))) throw invalidType(what, 'scores', scores);
  if (scores.length !== checked.length) throw invalidRange(what, 'scores', scores);
  const values = Array.from(scores as ArrayLike<unknown>, (v, i) => finiteNumber(v, `scores[${i}]`));
  return validMaskNms(checked, values, numberInRange(iouThreshold, 'iouThreshold', 0, 1));
}

/** maskNms of arguments already checked (instanceMasks' own masks and scores). */
function validMaskNms(masks: readonly BinaryMask[], scores: readonly number[], iouThreshold: number): number[] {
  const order = masks.map((_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
  // Each mask's run lengths once (a Mask from an rle decode has them), compared pair by pair
  // without string round trips; masks of another size than the first are refused, as rleIoU does.
  const runs = masks.map((m) => {
    const source = m instanceof Mask ? maskSource(m) : undefined;
    return source instanceof Uint32Array ? source : Uint32Array.from(maskToCounts(m.data, m.height, m.width));
  });
  // Masks whose boxes do not meet (separate instances, mostly) have IoU 0 without a sweep of their
  // runs (16 such masks at 4K: 2.2 ms of the JS thread); an empty mask has IoU 0 with any other.
  const boxes = runs.map((r, i) => {
    const { box, area } = boundsOfRuns(r, masks[i].width, masks[i].height);
    return area === 0 ? undefined : box;
  });
  const iou = (i: number, k: number): number => {
    if (masks[i].width !== masks[k].width || masks[i].height !== masks[k].height) {
      throw invalidRange(`a mask of ${masks[k].width}x${masks[k].height}`, `masks[${i}]`, `${masks[i].width}x${masks[i].height}`);
    }
    const [a, b] = [boxes[i], boxes[k]];
    if (a === undefined || b === undefined || a[2] < b[0] || b[2] < a[0] || a[3] < b[1] || b[3] < a[1]) return 0;
    const { intersection, union } = overlapValidRuns(runs[i], runs[k]);
    return union === 0 ? 0 : intersection / union;
  };
  const kept: number[] = [];
  for (const i of order) {
    if (kept.every((k) => iou(i, k) <= iouThreshold)) kept.push(i);
  }
  return kept;
}
