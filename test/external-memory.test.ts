// Native memory held by JS objects is reported to V8 (native/addon/common.h ExternalMemory,
// ModelMemory): an embedding, encoded reference image or model dropped without dispose() is
// collected as its bytes pile up. Before, V8 saw only the wrapper's few hundred bytes: 5000
// dropped embeddings stayed alive with no collection in sight, and 8 dropped tiny models held
// 1.29 GB of decode scratch.
import { describe, expect, it } from 'vitest';
import { native, type NativePrompt } from '../lib/native.js';
import { Referrer } from '../lib/referrer.js';
import { Segmenter } from '../lib/segmenter.js';
import { FIXTURES, MODEL_DIR, addonAvailable, cases, f32 } from './helpers/fixtures.js';
import path from 'node:path';
import { constants, PerformanceObserver } from 'node:perf_hooks';

const CLIPSEG_DIR = path.join(FIXTURES, '..', 'clipseg-tiny', 'model');
/** Dropped natively held bytes past which V8 must have collected (its trigger is 64 MiB of growth). */
const PILE = 192 * 2 ** 20;

const image = (side: number) => ({
  data: Uint8Array.from({ length: side * side * 3 }, (_, i) => (i * 7) & 255),
  width: side,
  height: side,
  channels: 3 as const,
});

/** Makes values until `PILE` bytes were dropped, keeping a weak reference to every 10th; the share still alive. */
async function survivors(make: () => Promise<object & { byteLength?: number; bytes?: number }>): Promise<number> {
  const probe = await make();
  const bytes = probe.byteLength ?? probe.bytes ?? 0;
  expect(bytes).toBeGreaterThan(0);
  const refs: WeakRef<object>[] = [];
  for (let i = 0; i * bytes < PILE; i++) {
    const value = await make();
    if (i % 10 === 0) refs.push(new WeakRef(value));
  }
  return refs.filter((r) => r.deref() !== undefined).length / refs.length;
}

describe.runIf(addonAvailable())('native memory reported to the garbage collector', () => {
  // each kind of native object: how to load its model, and how to make one from an image
  const kinds = [
    ['embeddings (ImageEmbedding)', () => Segmenter.load({ model: MODEL_DIR, device: 'cpu', threads: 2 })],
    ['encoded reference images (ReferrerImage)', () => Referrer.load({ model: CLIPSEG_DIR, device: 'cpu', threads: 2 })],
  ] as const;
  for (const [what, load] of kinds) {
    it(`${what} dropped without dispose() are collected as their bytes pile up`, { timeout: 60_000 }, async () => {
      const model = await load();
      try {
        const pixels = image(32);
        expect(await survivors(() => model.encode(pixels))).toBeLessThan(0.5);
      } finally {
        model.dispose();
      }
    });
  }
});

describe.runIf(addonAvailable())("models' native memory reported to the garbage collector", () => {
  // An rle decode of 3 masks at 1000 × 1000 grows a tiny SAM's worker arena to ~17 MB (the masks
  // and their boundaries; its weights: 0.5 MB).
  const prompt: NativePrompt = {
    promptCount: 1, pointsPerPrompt: 0, points: null, labels: null, boxes: new Float32Array([10, 10, 900, 900]),
    maskInput: null, multimask: true, threshold: 0, rle: true,
  };
  const chw = () => f32(cases.images[0].embedding);
  async function decodeOnce() {
    const model = await native().loadSam(MODEL_DIR, { threads: 1 });
    const loaded = model.bytes;
    const e = model.embeddingFromCHW(chw(), 1000, 1000);
    await model.decode(e, prompt);
    e.dispose();
    return { model, loaded };
  }

  // (what V8 was told is not readable from JS: process.memoryUsage().external leaves it out; the
  // next test shows its effect)
  it('a model measures what it holds: its weights, then the scratch its calls keep', async () => {
    const { model, loaded } = await decodeOnce();
    expect(loaded).toBeGreaterThan(400e3); // (the tiny checkpoint's mapping)
    expect(model.bytes).toBeGreaterThan(loaded + 15e6); // (the decode's scratch, kept for the next)
    model.dispose();
    expect(() => model.bytes).toThrow('The model has been disposed');

    const clipseg = await native().loadClipSeg!(CLIPSEG_DIR, { threads: 1 });
    const before = clipseg.bytes;
    await clipseg.forward(new Float32Array(3 * 352 * 352), 352, 352, { inputIds: new Int32Array([1, 2, 3]) });
    expect(clipseg.bytes).toBeGreaterThan(before);
    clipseg.dispose();
  });

  it('a model holding more than 64 MiB does not make V8 collect after each call', async () => {
    // (its report was taken back and made again after every call: 98 full or incremental
    // collections in 50 small decodes, and 240–400 ms pauses with a large JS heap)
    const model = await native().loadSam(MODEL_DIR, { threads: 1 });
    try {
      // two rle decodes at once at 2000 × 2000: two workers, ~60 MB of scratch each
      const big = [model.embeddingFromCHW(chw(), 2000, 2000), model.embeddingFromCHW(chw(), 2000, 2000)];
      await Promise.all(big.map((e) => model.decode(e, { ...prompt, boxes: new Float32Array([10, 10, 1900, 1900]) })));
      for (const e of big) e.dispose();
      expect(model.bytes).toBeGreaterThan(64 * 2 ** 20);
      const small = model.embeddingFromCHW(chw(), 64, 64);
      let collections = 0;
      const major = constants.NODE_PERFORMANCE_GC_MAJOR | constants.NODE_PERFORMANCE_GC_INCREMENTAL;
      const observer = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) if ((((entry as { detail?: { kind: number } }).detail?.kind ?? 0) & major) !== 0) collections++;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      observer.observe({ entryTypes: ['gc'] });
      for (let i = 0; i < 50; i++) await model.decode(small, { ...prompt, boxes: new Float32Array([1, 1, 50, 50]) });
      await new Promise((resolve) => setTimeout(resolve, 50));
      observer.disconnect();
      small.dispose();
      expect(collections).toBeLessThan(10);
    } finally {
      model.dispose();
    }
  });

  it('models dropped without dispose() are collected as their scratch piles up', { timeout: 60_000 }, async () => {
    const refs: WeakRef<object>[] = [];
    for (let dropped = 0; dropped < 320 * 2 ** 20; ) {
      const { model } = await decodeOnce();
      dropped += model.bytes;
      refs.push(new WeakRef(model));
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
    // (2 of 20 alive here; all of them without the report)
    expect(refs.filter((r) => r.deref() !== undefined).length / refs.length).toBeLessThan(0.5);
  });
});
