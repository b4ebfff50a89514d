// heatmapFromLogits (lib/referring/heatmap.ts): sigmoid and bilinear resizing of logits, on
// hand-computed cases, and its argument checks.
import { describe, expect, it } from 'vitest';
import { maxAbs } from './helpers/arrays.js';
import { heatmapFromLogits } from '../lib/referring/heatmap.js';

describe('heatmapFromLogits', () => {
  it('is sigmoid, then bilinear with half-pixel centres (align_corners=False)', () => {
    // 2x2 logits → 4x3: hand-computed source coordinates.
    const logits = Float32Array.from([0, 2, -2, 1]);
    const s = logits.map((v) => 1 / (1 + Math.exp(-v)));
    const out = heatmapFromLogits(logits, 2, 4, 3);
    // x: (o + .5) · 2/4 − .5 → −.25→0, .25, .75, 1.25→ i0 1 (clamped), so weights 0, .25, .75, 1.
    // y: (o + .5) · 2/3 − .5 → −1/6→0, .5, 7/6 → i0 1, weight 1 (upper neighbour clamped).
    const lerp = (a: number, b: number, t: number) => a * (1 - t) + b * t;
    const wx = [0, 0.25, 0.75, 1];
    const wy = [0, 0.5, 1];
    const expected = wy.flatMap((ty) => wx.map((tx) => lerp(lerp(s[0], s[1], tx), lerp(s[2], s[3], tx), ty)));
    expect(maxAbs(out, expected)).toBeLessThan(1e-7);
  });

  it('checks its arguments', () => {
    const logits = new Float32Array(4);
    expect(() => heatmapFromLogits(logits.subarray(1), 2, 4, 3)).toThrow(
      new RangeError('Expected a Float32Array of size × size = 4 logits for logits but received Float32Array(3) of type Float32Array'),
    );
    expect(() => heatmapFromLogits([0, 0, 0, 0] as unknown as Float32Array, 2, 4, 3)).toThrow(TypeError);
    expect(() => heatmapFromLogits(logits, 0, 4, 3)).toThrow(/an integer >= 1 for size /);
    expect(() => heatmapFromLogits(logits, 2, -1, 3)).toThrow(/an integer between 1 and 1048576 for width /);
    expect(() => heatmapFromLogits(logits, 2, 4, 1.5)).toThrow(/an integer between 1 and 1048576 for height /);
    // sizes that would exhaust memory are refused before any allocation (1e8 taps used to kill V8)
    expect(() => heatmapFromLogits(logits, 2, 1e8, 1)).toThrow(
      new RangeError('Expected an integer between 1 and 1048576 for width but received 100000000 of type number'),
    );
    expect(() => heatmapFromLogits(logits, 2, 2 ** 20, 2 ** 10)).toThrow(
      new RangeError('Expected a heat map of at most 268435456 pixels for width × height but received 1073741824 of type number'),
    );
  });
});
