// PointM: hits / (hits + misses), a hit when the heat map's maximum lies in the ground truth.
import { describe, expect, it } from 'vitest';
import { heatmapPeak, pointHit, pointM } from '../lib/eval/pointm.js';

describe('PointM', () => {
  it('heatmapPeak: the first maximum in row-major order, NaN skipped, -1 when nothing is a number', () => {
    expect(heatmapPeak(Float32Array.of(0.1, 0.9, 0.3, 0.9))).toBe(1);
    expect(heatmapPeak(Float32Array.of(NaN, -2, NaN, -1))).toBe(3);
    expect(heatmapPeak(Float32Array.of(-Infinity, -Infinity))).toBe(0);
    expect(heatmapPeak(Float32Array.of(NaN, NaN))).toBe(-1);
    expect(heatmapPeak(new Float32Array(0))).toBe(-1);
  });

  it('pointHit: the peak inside the mask', () => {
    const mask = Uint8Array.of(0, 1, 1, 0); // 2x2, row-major: (0,1) and (1,0)
    expect(pointHit(mask, Float32Array.of(0, 5, 1, 2))).toBe(true);
    expect(pointHit(mask, Float32Array.of(0, 1, 1, 2))).toBe(false);
    expect(pointHit(mask, Float32Array.of(NaN, NaN, NaN, NaN))).toBe(false);
    expect(() => pointHit(mask, new Float32Array(3))).toThrow('The heat map has 3 values but the mask has 4 pixels');
  });

  it('pointM over samples: 2 hits, 1 miss; no-target samples are skipped', () => {
    const mask = Uint8Array.of(0, 1, 1, 0);
    const result = pointM([
      { mask, heatmap: Float32Array.of(0, 5, 1, 2) }, // hit
      { mask, heatmap: Float32Array.of(0, 1, 3, 2) }, // hit
      { mask, heatmap: Float32Array.of(9, 1, 1, 2) }, // miss
      { mask: new Uint8Array(4), heatmap: Float32Array.of(9, 1, 1, 2) }, // no target: skipped
    ]);
    expect(result).toEqual({ PointM: 2 / 3, hits: 2, misses: 1 });
    expect(pointM([])).toEqual({ PointM: null, hits: 0, misses: 0 });
  });
});
