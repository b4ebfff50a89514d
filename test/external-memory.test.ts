// Native memory held by JS objects is reported to V8 (native/addon/common.h ExternalMemory): an
// embedding or encoded reference image dropped without dispose() is collected as its bytes pile
// up. Before, V8 saw only the wrapper's few hundred bytes: 5000 dropped embeddings stayed alive
// with no collection in sight.
import { describe, expect, it } from 'vitest';
import { Referrer } from '../lib/referrer.js';
import { Segmenter } from '../lib/segmenter.js';
import { FIXTURES, MODEL_DIR, addonAvailable } from './helpers/fixtures.js';
import path from 'node:path';

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
