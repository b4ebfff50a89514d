// Native work runs off the JS thread: timers keep firing while the addon encodes, and while
// masks are traced into polygons or encoded as PNG, mask prompts converted and heat maps split
// into instances.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Mask } from '../lib/mask.js';
import { maskToLogitsAsync } from '../lib/mask-prompt.js';
import { findInstancesAsync } from '../lib/referring/instances.js';
import { maskToCounts } from '../lib/rle.js';
import { Segmenter } from '../lib/segmenter.js';
import { MODEL_DIR } from './helpers/fixtures.js';

describe('the event loop during native work', () => {
  let segmenter: Segmenter;
  beforeAll(async () => {
    // One native thread, so that the encode and this test's JS thread need not share a core.
    segmenter = await Segmenter.load({ model: MODEL_DIR, threads: 1 });
  });
  afterAll(() => segmenter.dispose());

  it('a 10 ms interval keeps firing while encodes run back to back', { timeout: 30_000 }, async () => {
    // The tiny model's encoder is fast, but preprocessing still resizes every input pixel: a
    // 4000 × 4000 image makes each native encode take tens of milliseconds.
    const side = 4000;
    const image = { data: new Uint8Array(side * side * 3).fill(97), width: side, height: side, channels: 3 as const };
    (await segmenter.encode(image)).dispose(); // warm-up

    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const start = performance.now();
    let encodes = 0;
    let nativeMs = 0;
    try {
      while (performance.now() - start < 600) {
        const embedding = await segmenter.encode(image);
        nativeMs += embedding.encodeMs;
        encodes++;
        embedding.dispose();
      }
    } finally {
      clearInterval(timer);
    }
    const elapsed = performance.now() - start;

    // Had the encodes blocked the JS thread, the interval could have fired at most once after
    // each encode, plus once per 10 ms of the time spent outside them.
    const blockedAtMost = encodes + (elapsed - nativeMs) / 10 + 1;
    const bound = elapsed / 25; // 40 % of the ticks a free loop gets
    expect(blockedAtMost, `${encodes} encodes, ${nativeMs.toFixed(0)} of ${elapsed.toFixed(0)} ms native`).toBeLessThan(bound);
    expect(ticks, `${ticks} ticks in ${elapsed.toFixed(0)} ms`).toBeGreaterThan(bound);
  });
});

describe('the event loop while large masks are formatted', () => {
  // A 6000 × 4000 mask from run lengths (as the server decodes them): a disc with square holes.
  // Tracing it takes tens of milliseconds; on the JS thread, the interval could fire at most once
  // per call.
  const width = 6000;
  const height = 4000;
  const data = new Uint8Array(width * height);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      const dx = x - width / 2;
      const dy = y - height / 2;
      data[i] = dx * dx + dy * dy < 1800 ** 2 && !((x >> 6) % 3 === 0 && (y >> 6) % 3 === 0) ? 1 : 0;
    }
  }
  const counts = maskToCounts(data, height, width);
  const mask = new Mask({ counts: Uint32Array.from(counts), width, height, score: 1, lowResLogits: new Float32Array(1) });

  // The same disc as a heat map, for the referring instances
  const heat = Float32Array.from(data, (v, i) => (v === 0 ? 0.2 : 0.6 + (i % 7) / 20));
  const frame = { resizedWidth: 1024, resizedHeight: 683, imageSize: 1024, lowResSize: 256 };

  for (const [format, make] of [
    ['polygons', () => mask.toPolygonsAsync()],
    ['png', () => mask.toPNG()],
    // (two in a row: each takes 25-35 ms, and a call should be long enough to tell)
    ['mask-prompt logits', () => maskToLogitsAsync({ data, width, height }, frame).then(() => maskToLogitsAsync({ data, width, height }, frame))],
    ['referring instances', () => findInstancesAsync(heat, width, height).then(() => findInstancesAsync(heat, width, height))],
  ] as const) {
    it(`a 10 ms interval keeps firing while ${format} are made back to back`, { timeout: 30_000 }, async () => {
      await make(); // warm-up
      let ticks = 0;
      const timer = setInterval(() => ticks++, 10);
      const start = performance.now();
      let calls = 0;
      try {
        while (performance.now() - start < 600) {
          await make();
          calls++;
        }
      } finally {
        clearInterval(timer);
      }
      const elapsed = performance.now() - start;
      // Blocking calls would allow about one tick per call: make the calls long enough to tell.
      expect(elapsed / calls, `${calls} calls in ${elapsed.toFixed(0)} ms`).toBeGreaterThan(20);
      expect(ticks, `${ticks} ticks, ${calls} calls in ${elapsed.toFixed(0)} ms`).toBeGreaterThan(Math.max(elapsed / 25, 2 * calls));
    });
  }
});
