// Referrer.encode / ReferrerImage (lib/referrer.ts): the vision tower once, heat maps over the
// kept activations identical to heat maps from the image itself, on the tiny CLIPSeg fixture.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Referrer, ReferrerImage } from '../lib/referrer.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const MODEL_DIR = path.join(FIXTURES, 'clipseg-tiny', 'model');
const WIDE = path.join(FIXTURES, 'sam-tiny', 'wide.png');
const SMALL = path.join(FIXTURES, 'sam-tiny', 'small.png');

describe('Referrer.encode', () => {
  let referrer: Referrer;
  let other: Referrer;
  beforeAll(async () => {
    referrer = await Referrer.load({ model: MODEL_DIR, device: 'cpu', threads: 2 });
    other = await Referrer.load({ model: MODEL_DIR, device: 'cpu', threads: 1 });
  });
  afterAll(() => {
    referrer?.dispose();
    other?.dispose();
  });

  it('heat maps over an encoded image equal heat maps over the image', async () => {
    const encoded = await referrer.encode(WIDE);
    try {
      expect(encoded).toBeInstanceOf(ReferrerImage);
      expect([encoded.width, encoded.height]).toEqual([150, 100]);
      // 3 extracted layers × (6² + 1 tokens) × 32 channels × 4 bytes
      expect(encoded.bytes).toBe(3 * 37 * 32 * 4);
      expect(encoded.encodeMs).toBeGreaterThan(0);
      const queries = [{ text: 'a red cat' }, { refImage: SMALL }, { prompts: [{ text: 'the dog' }, { text: 'red' }] }];
      for (const q of queries) {
        const direct = await referrer.heatmap(WIDE, q);
        const viaEncoded = await referrer.heatmap(encoded, q);
        expect(Array.from(viaEncoded.logits)).toEqual(Array.from(direct.logits));
        expect(Array.from(viaEncoded.data)).toEqual(Array.from(direct.data));
        expect([viaEncoded.width, viaEncoded.height, viaEncoded.size]).toEqual([150, 100, 96]);
      }
      const many = await referrer.heatmaps(encoded, queries);
      const direct = await referrer.heatmaps(WIDE, queries);
      many.forEach((m, i) => expect(Array.from(m.logits)).toEqual(Array.from(direct[i].logits)));
    } finally {
      encoded.dispose();
    }
  });

  it('is tied to its Referrer and unusable once disposed', async () => {
    const encoded = await referrer.encode(WIDE);
    await expect(other.heatmap(encoded, { text: 'cat' })).rejects.toThrow(TypeError);
    expect(encoded.disposed).toBe(false);
    encoded.dispose();
    encoded.dispose(); // idempotent
    expect(encoded.disposed).toBe(true);
    await expect(referrer.heatmap(encoded, { text: 'cat' })).rejects.toThrow(
      'The encoded image has been disposed; call Referrer.encode() again',
    );
    await expect(referrer.encode(42 as never)).rejects.toThrow(/for image but received 42/);
  });
});
