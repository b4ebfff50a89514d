// Prompt validation and packing into the flat arrays the native decoder takes (NativePrompt).
import { invalidRange } from './errors.js';
import type { NativePrompt } from './native.js';
import { scribbleToPoints } from './scribble.js';
import { box, float32Array, optionalArray, plainObject, point, scribble } from './validate.js';
import type { Box, Point, Scribble } from './types.js';

/** What to segment. At least one of `points`, `scribbles`, `boxes` or `maskInput` is required. */
export interface Prompt {
  /**
   * Clicks in pixels of the original image, label 1 positive / 0 negative. With several boxes,
   * every box is decoded with all these points. Default: none.
   */
  points?: Point[];
  /**
   * Polylines `{ path: [x, y][], label }` in pixels of the original image, label 1 positive /
   * 0 negative. Each becomes up to 8 clicks evenly spaced along its length, endpoints included
   * (one every max(width, height) / 32 pixels; see `scribbleToPoints`), decoded after `points`,
   * scribble by scribble. Default: none.
   */
  scribbles?: Scribble[];
  /**
   * Boxes `[x0, y0, x1, y1]` in pixels of the original image. Each box is decoded as its own
   * prompt set (one set of masks per box), all in one decoder call. Default: none.
   */
  boxes?: Box[];
  /**
   * Dense mask prompt: low-resolution logits, lowResSize × lowResSize row-major (256 × 256 for
   * SAM), usually a previous result's `Mask.lowResLogits`. Used for every box. Default: none.
   */
  maskInput?: Float32Array;
}

/** Decoder settings for one segment() call. */
export interface DecodeSettings {
  /** Return SAM's 3 multimask outputs instead of the single-mask output. */
  multimask: boolean;
  /** Logit threshold for the binary masks. */
  threshold: number;
}

/**
 * Validates a prompt against a width × height image and packs it for the native decoder:
 * P = max(1, boxes.length) prompt sets, each with all N points (SAM's padding point is added by
 * the native side, not here).
 */
export function toNativePrompt(
  prompt: unknown,
  width: number,
  height: number,
  lowResSize: number,
  settings: DecodeSettings,
): NativePrompt {
  const obj = plainObject(prompt, 'prompt', 'an object {points?, scribbles?, boxes?, maskInput?}');
  const clicks = (optionalArray(obj.points, 'prompt.points', 'an array of points {x, y, label}') ?? []).map(
    (p, i) => point(p, `prompt.points[${i}]`, width, height),
  );
  const scribbles = (
    optionalArray(obj.scribbles, 'prompt.scribbles', 'an array of scribbles {path, label}') ?? []
  ).map((s, i) => scribble(s, `prompt.scribbles[${i}]`, width, height));
  const points = [...clicks, ...scribbles.flatMap((s) => scribbleToPoints(s, width, height))];
  const boxes = (optionalArray(obj.boxes, 'prompt.boxes', 'an array of boxes [x0, y0, x1, y1]') ?? []).map((b, i) =>
    box(b, `prompt.boxes[${i}]`, width, height),
  );
  const logits = lowResSize * lowResSize;
  const maskInput =
    obj.maskInput === undefined
      ? null
      : float32Array(
          obj.maskInput,
          'prompt.maskInput',
          logits,
          `a Float32Array of ${logits} finite values (${lowResSize}x${lowResSize} logits)`,
        );
  if (points.length === 0 && boxes.length === 0 && maskInput === null) {
    throw invalidRange('at least one of points, scribbles, boxes or maskInput', 'prompt', prompt);
  }

  const promptCount = Math.max(1, boxes.length);
  const n = points.length;
  return {
    promptCount,
    ...packPoints(points, promptCount),
    pointsPerPrompt: n,
    boxes: boxes.length === 0 ? null : Float32Array.from(boxes.flat()),
    maskInput,
    multimask: settings.multimask,
    threshold: settings.threshold,
  };
}

/** points [P, N, 2] and labels [P, N]: the same N points repeated for each of the P sets. */
function packPoints(points: Point[], promptCount: number): Pick<NativePrompt, 'points' | 'labels'> {
  const n = points.length;
  if (n === 0) return { points: null, labels: null };
  const coords = new Float32Array(promptCount * n * 2);
  const labels = new Int32Array(promptCount * n);
  for (let p = 0; p < promptCount; p++) {
    points.forEach((pt, i) => {
      coords[(p * n + i) * 2] = pt.x;
      coords[(p * n + i) * 2 + 1] = pt.y;
      labels[p * n + i] = pt.label;
    });
  }
  return { points: coords, labels };
}
