// SEEM-style composition (issue #4 item 5): a referring prompt (text / reference image) combined
// with clicks, scribbles and a box on the target image. The referring prompt proposes instances;
// the target-image prompts narrow and refine them:
//   - box: only instances whose component meets the box are kept, and each one's SAM box is its
//     own box clipped to the user's;
//   - negative clicks and scribbles: added to every instance's SAM prompt (regions to exclude);
//   - positive clicks and scribbles: added to the SAM prompt of each instance whose box holds
//     them, and they select: a mask that contains none of them is dropped.
// Nothing here runs a model.
import { invalidRange, invalidType } from '../errors.js';
import { Mask, maskSource } from '../mask.js';
import { scribbleToPoints } from '../scribble.js';
import type { Box, Point, Scribble } from '../types.js';
import { box, optionalArray, plainObject, point, scribble } from '../validate.js';
import { instanceRuns, withBox, type Instance } from './instances.js';

/** Prompts on the target image that go with a referring prompt. */
export interface TargetPrompt {
  /** Clicks `{x, y, label}` on the target image (1 positive: select; 0 negative: exclude). */
  points?: Point[];
  /** Scribbles on the target image, as clicks along them (`scribbleToPoints`), with the label's meaning. */
  scribbles?: Scribble[];
  /** A box `[x0, y0, x1, y1]` on the target image that the referred instances must meet. */
  box?: Box;
}

/** A TargetPrompt validated, its scribbles turned into clicks. */
export interface TargetSettings {
  positives: Point[];
  negatives: Point[];
  box?: Box;
}

/** Validates the TargetPrompt fields of `opts` against a width × height image (errors name `${param}.<field>`). */
export function targetSettings(
  opts: Record<string, unknown>,
  width: number,
  height: number,
  param = 'options',
): TargetSettings | undefined {
  const points = optionalArray(opts.points, `${param}.points`, 'an array of points {x, y, label}');
  const scribbles = optionalArray(opts.scribbles, `${param}.scribbles`, 'an array of scribbles {path, label}');
  if (points === undefined && scribbles === undefined && opts.box === undefined) return undefined;
  const clicks = [
    ...(points ?? []).map((p, i) => point(p, `${param}.points[${i}]`, width, height)),
    ...(scribbles ?? []).flatMap((s, i) => scribbleToPoints(scribble(s, `${param}.scribbles[${i}]`, width, height), width, height)),
  ];
  const settings: TargetSettings = {
    positives: clicks.filter((c) => c.label === 1),
    negatives: clicks.filter((c) => c.label === 0),
  };
  if (opts.box !== undefined) settings.box = box(opts.box, `${param}.box`, width, height);
  return settings;
}

/**
 * A TargetSettings passed in by the caller (instanceMasks, instancePrompts): undefined, or
 * positive and negative clicks with those labels and an optional box, inside a width × height image.
 */
export function checkedTarget(value: unknown, param: string, width: number, height: number): TargetSettings | undefined {
  if (value === undefined) return undefined;
  const obj = plainObject(value, param, 'an object {positives, negatives, box?} (TargetSettings)');
  const clicks = (key: 'positives' | 'negatives', label: 0 | 1): Point[] => {
    const list = obj[key];
    if (!Array.isArray(list)) throw invalidType(`an array of points {x, y, label: ${label}}`, `${param}.${key}`, list);
    return Array.from(list as unknown[], (p, i) => {
      const checked = point(p, `${param}.${key}[${i}]`, width, height);
      if (checked.label !== label) throw invalidRange(`${label}`, `${param}.${key}[${i}].label`, checked.label);
      return checked;
    });
  };
  const settings: TargetSettings = { positives: clicks('positives', 1), negatives: clicks('negatives', 0) };
  if (obj.box !== undefined) settings.box = box(obj.box, `${param}.box`, width, height);
  return settings;
}

/**
 * The instances a target box keeps (those with a pixel of their component inside it; all of them
 * without a box), each with its box clipped to the target box. `width`: the image's.
 */
export function instancesInBox(instances: readonly Instance[], target: TargetSettings | undefined, width: number): Instance[] {
  const tb = target?.box;
  if (tb === undefined) return [...instances];
  const kept: Instance[] = [];
  for (const inst of instances) {
    // pixel (x, y) is inside the box when its centre (x + 0.5, y + 0.5) is (as for reference boxes)
    const x0 = Math.max(inst.box[0], Math.ceil(tb[0] - 0.5));
    const y0 = Math.max(inst.box[1], Math.ceil(tb[1] - 0.5));
    const x1 = Math.min(inst.box[2], Math.floor(tb[2] - 0.5));
    const y1 = Math.min(inst.box[3], Math.floor(tb[3] - 0.5));
    if (x0 > x1 || y0 > y1 || !anyPixel(inst, width, x0, y0, x1, y1)) continue;
    kept.push(withBox(inst, [x0, y0, x1, y1]));
  }
  return kept;
}

/**
 * Whether the instance has a pixel in [x0, x1] × [y0, y1]: from its row runs while it has them
 * (its mask, width × height bytes, made for this cost 0.9 ms of the JS thread per instance at
 * 1080p and stayed made), else from its mask.
 */
function anyPixel(inst: Instance, width: number, x0: number, y0: number, x1: number, y1: number): boolean {
  const own = instanceRuns(inst);
  if (own !== undefined && own.width === width) {
    const { runs } = own;
    for (let i = 0; i < runs.length; i += 2) {
      // (each run [start, end) lies within one row)
      const y = Math.floor(runs[i] / width);
      if (y < y0 || y > y1) continue;
      const left = runs[i] - y * width;
      const right = runs[i + 1] - 1 - y * width;
      if (left <= x1 && right >= x0) return true;
    }
    return false;
  }
  const mask = inst.mask;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) if (mask[y * width + x] !== 0) return true;
  }
  return false;
}

/** The clicks for one instance's SAM prompt: the positives inside its box, then every negative. */
export function instanceClicks(inst: Instance, target: TargetSettings | undefined): Point[] {
  if (target === undefined) return [];
  const [x0, y0, x1, y1] = inst.box;
  const inside = target.positives.filter((p) => p.x >= x0 && p.x <= x1 && p.y >= y0 && p.y <= y1);
  return [...inside, ...target.negatives];
}

/** Whether a mask passes the positive clicks' selection (any of them inside; true when there are none). */
export function selectedByClicks(mask: Pick<Mask, 'data' | 'width' | 'height'>, target: TargetSettings | undefined): boolean {
  if (target === undefined || target.positives.length === 0) return true;
  const { width, height } = mask;
  const pixel = (p: Point): [number, number] => [Math.min(width - 1, Math.floor(p.x)), Math.min(height - 1, Math.floor(p.y))];
  // A Mask still held as run lengths (an rle decode's) is read from them: decoding its pixels
  // kept width × height bytes per instance mask for the rest of the request.
  const source = mask instanceof Mask ? maskSource(mask) : undefined;
  if (source instanceof Uint32Array) {
    return target.positives.some((p) => {
      const [x, y] = pixel(p);
      return runValueAt(source, x * height + y) !== 0;
    });
  }
  return target.positives.some((p) => {
    const [x, y] = pixel(p);
    return mask.data[y * width + x] !== 0;
  });
}

/** The value (0 or 1) at column-major index k of COCO run lengths (zeros first). */
function runValueAt(counts: Uint32Array, k: number): number {
  let end = 0;
  for (let i = 0; i < counts.length; i++) {
    end += counts[i];
    if (k < end) return i % 2;
  }
  return 0;
}
