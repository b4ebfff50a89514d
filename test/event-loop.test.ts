// Native work runs off the JS thread: timers keep firing while the addon encodes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
