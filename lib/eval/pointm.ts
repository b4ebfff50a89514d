// PointM (TRIS: Liu et al., "Referring Image Segmentation Using Text Supervision", ICCV 2023):
// the localisation accuracy of heat-map predictions. A sample is a hit when the heat map's
// maximum lies inside the ground-truth mask; PointM = hits / (hits + misses).
//
// Heat maps are height × width row-major float32 (the ground truth's size). The maximum is the
// first in row-major order on ties (numpy's argmax of the flattened map); NaN values are skipped;
// a map with no number at all is a miss. No-target samples (empty ground truth) have nothing to
// point at and are not counted.

/** Result of `pointM`. */
export interface PointMResult {
  /** hits / (hits + misses); null when no sample was counted. */
  PointM: number | null;
  hits: number;
  misses: number;
}

/** One heat-map sample: the united ground-truth mask and the heat map, both height × width row-major. */
export interface HeatmapSample {
  /** 0/1 (any non-zero byte is foreground). */
  mask: Uint8Array;
  heatmap: Float32Array;
}

/** Row-major index of the heat map's maximum (the first on ties, NaN skipped); -1 when there is none. */
export function heatmapPeak(heatmap: Float32Array): number {
  let best = -1;
  let max = -Infinity;
  for (let i = 0; i < heatmap.length; i++) {
    const v = heatmap[i];
    if (v > max || (best < 0 && v === -Infinity)) {
      max = v;
      best = i;
    }
  }
  return best;
}

/** Whether the heat map's maximum lies inside the mask (same length). */
export function pointHit(mask: Uint8Array, heatmap: Float32Array): boolean {
  if (mask.length !== heatmap.length) {
    throw new RangeError(`The heat map has ${heatmap.length} values but the mask has ${mask.length} pixels`);
  }
  const peak = heatmapPeak(heatmap);
  return peak >= 0 && mask[peak] !== 0;
}

/** PointM over samples; samples whose mask is empty (no target) are skipped. */
export function pointM(samples: Iterable<HeatmapSample>): PointMResult {
  let hits = 0;
  let misses = 0;
  for (const { mask, heatmap } of samples) {
    if (!mask.some((v) => v !== 0)) continue;
    if (pointHit(mask, heatmap)) hits++;
    else misses++;
  }
  const n = hits + misses;
  return { PointM: n === 0 ? null : hits / n, hits, misses };
}
