// Interactive sessions on the sam-tiny checkpoint: each round equals segment() with the
// accumulated prompt and the previous round's best logits, and undo really restores the state.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageEmbedding } from '../lib/embedding.js';
import type { Mask } from '../lib/mask.js';
import { Segmenter, type SegmentResult } from '../lib/segmenter.js';
import { FIXTURES, MODEL_DIR } from './helpers/fixtures.js';

const IMAGE = path.join(FIXTURES, 'wide.png');

function expectSameMasks(a: SegmentResult, b: SegmentResult): void {
  expect(a.masks.map((m) => m.score)).toEqual(b.masks.map((m) => m.score));
  a.masks.forEach((mask, i) => {
    expect(Buffer.compare(Buffer.from(mask.data), Buffer.from(b.masks[i].data))).toBe(0);
    expect(Array.from(mask.lowResLogits)).toEqual(Array.from(b.masks[i].lowResLogits));
  });
}

const best = (r: SegmentResult): Mask => r.masks.reduce((a, m) => (m.score > a.score ? m : a));

describe('sessions on the sam-tiny checkpoint', () => {
  let segmenter: Segmenter;
  let embedding: ImageEmbedding;
  beforeAll(async () => {
    segmenter = await Segmenter.load({ model: MODEL_DIR, threads: 2 });
    embedding = await segmenter.encode(IMAGE);
  });
  afterAll(() => {
    embedding.dispose();
    segmenter.dispose();
  });

  it('round 1 is a plain segment; round 2 adds its clicks and round 1’s best logits', async () => {
    const session = await segmenter.session(embedding, { multimask: true });
    const r1 = await session.add({ points: [{ x: 75, y: 50, label: 1 }] });
    expectSameMasks(r1, await segmenter.segment(embedding, { points: [{ x: 75, y: 50, label: 1 }] }, { multimask: true }));

    const r2 = await session.add({ points: [{ x: 20, y: 80, label: 0 }] });
    expect(r2.masks).toHaveLength(3);
    const expected = await segmenter.segment(
      embedding,
      {
        points: [
          { x: 75, y: 50, label: 1 },
          { x: 20, y: 80, label: 0 },
        ],
        maskInput: best(r1).lowResLogits,
      },
      { multimask: true },
    );
    expectSameMasks(r2, expected);
    // The mask prompt matters: without it the same clicks give other logits.
    const withoutMemory = await segmenter.segment(
      embedding,
      {
        points: [
          { x: 75, y: 50, label: 1 },
          { x: 20, y: 80, label: 0 },
        ],
      },
      { multimask: true },
    );
    expect(Array.from(best(withoutMemory).lowResLogits)).not.toEqual(Array.from(best(r2).lowResLogits));
    expect(session.mask).toBe(best(r2));
    expect(embedding.disposed).toBe(false);
  });

  it('undo then the same round again gives the same result; reset starts over', async () => {
    const session = await segmenter.session(embedding);
    const r1 = await session.add({ box: [10, 10, 140, 90] });
    const r2 = await session.add({ scribbles: [{ path: [[40, 30], [110, 30]], label: 1 }] });
    session.undo();
    expect(session.mask).toBe(r1.masks[0]);
    expectSameMasks(await session.add({ scribbles: [{ path: [[40, 30], [110, 30]], label: 1 }] }), r2);
    session.reset();
    expectSameMasks(await session.add({ box: [10, 10, 140, 90] }), r1);
  });

  it('a session on an image encodes it and gives the same rounds as one on its embedding', async () => {
    const fromImage = await segmenter.session(IMAGE);
    const fromEmbedding = await segmenter.session(embedding);
    for (const prompt of [{ points: [{ x: 60, y: 40, label: 1 as const }] }, { box: [30, 20, 120, 80] as [number, number, number, number] }]) {
      expectSameMasks(await fromImage.add(prompt), await fromEmbedding.add(prompt));
    }
    fromImage.dispose();
    expect(fromImage.embedding.disposed).toBe(true);
  });
});
