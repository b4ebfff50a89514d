// Interactive sessions against the fake addon: what each round sends to the native decoder
// (accumulated clicks and scribbles, latest box, previous best logits), undo / reset / history,
// validation and lifetimes. The fake's mask i has iou i and logits filled with 100 + i.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Segmenter as SegmenterType } from '../lib/segmenter.js';
import { calls, CONFIG, flush, gate, resetCalls } from './helpers/fake-binding.js';

vi.mock('../lib/native.js', async () => {
  const { binding } = await import('./helpers/fake-binding.js');
  return { native: () => binding, nativeCuda: () => ({ error: 'not built' }) };
});

const { Segmenter, SegmentSession, MAX_PROMPT_POINTS } = await import('../lib/index.js');

const LOW_RES = CONFIG.lowResSize * CONFIG.lowResSize;

let modelDir: string;
let segmenter: SegmenterType;
beforeAll(async () => {
  modelDir = await mkdtemp(path.join(tmpdir(), 'omniseg-model-'));
  segmenter = await Segmenter.load({ model: modelDir });
});
afterAll(async () => {
  await rm(modelDir, { recursive: true, force: true });
});
beforeEach(() => {
  resetCalls();
});

/** 20 × 10 RGB raw pixels. */
const pixels = () => ({ data: new Uint8Array(20 * 10 * 3), width: 20, height: 10, channels: 3 as const });
const p = (x: number, y: number, label: 0 | 1 = 1) => ({ x, y, label });
/** Logits the fake returns for mask i. */
const logitsOf = (i: number) => new Float32Array(LOW_RES).fill(100 + i);

describe('segmenter.session', () => {
  it('encodes an image once for all rounds', async () => {
    const session = await segmenter.session(pixels());
    expect(session).toBeInstanceOf(SegmentSession);
    expect([session.width, session.height]).toEqual([20, 10]);
    await session.add({ points: [p(1, 1)] });
    await session.add({ points: [p(2, 2)] });
    await session.add({ points: [p(3, 3, 0)] });
    expect(calls.encode).toHaveLength(1);
    expect(calls.decode).toHaveLength(3);
  });

  it('the first round has no mask prompt; the second gets the first round’s best logits and all clicks', async () => {
    const session = await segmenter.session(pixels(), { multimask: true });
    const first = await session.add({ points: [p(1, 2)] });
    // Multimask: 3 masks with iou 0, 1, 2 → the best is the last, logits 102.
    expect(first.masks.map((m) => m.score)).toEqual([0, 1, 2]);
    expect(session.mask).toBe(first.masks[2]);
    await session.add({ points: [p(5, 6, 0)] });

    expect(calls.decode[0]).toMatchObject({ promptCount: 1, pointsPerPrompt: 1, maskInput: null, multimask: true });
    const second = calls.decode[1];
    expect(second.points).toEqual(new Float32Array([1, 2, 5, 6]));
    expect(second.labels).toEqual(new Int32Array([1, 0]));
    expect(second.maskInput).toEqual(logitsOf(2));
    expect(second.maskInput).toEqual(first.masks[2].lowResLogits);
  });

  it('scribbles accumulate after the clicks; the latest box replaces earlier ones', async () => {
    const session = await segmenter.session(pixels());
    await session.add({ box: [0, 0, 10, 10], points: [p(1, 1)] });
    await session.add({ scribbles: [{ path: [[0, 5], [20, 5]], label: 0 }] });
    await session.add({ points: [p(4, 4)], box: [2, 2, 8, 8] });
    const [a, b, c] = calls.decode;
    expect(a.boxes).toEqual(new Float32Array([0, 0, 10, 10]));
    expect(b.boxes).toEqual(new Float32Array([0, 0, 10, 10]));
    // 20-px image side: spacing 20 / 32, so the 20-px stroke gives 8 clicks 20/7 apart.
    expect(b.pointsPerPrompt).toBe(1 + 8);
    expect(Array.from(b.labels ?? [])).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(c.boxes).toEqual(new Float32Array([2, 2, 8, 8]));
    // Clicks of every round first, then the scribbles' clicks.
    expect(c.pointsPerPrompt).toBe(2 + 8);
    expect(Array.from(c.points ?? []).slice(0, 6)).toEqual([1, 1, 4, 4, 0, 5]);
    expect(c.points?.[2 * 9]).toBe(20);
    // Single-mask output: round 3's mask prompt is round 2's only mask.
    expect(c.maskInput).toEqual(logitsOf(0));
  });

  it('history lists each round with what it added, its result and its best mask', async () => {
    const session = await segmenter.session(pixels(), { multimask: true, threshold: 0.5 });
    const r1 = await session.add({ points: [p(1, 1)] });
    const r2 = await session.add({ box: [1, 1, 4, 4] });
    const history = session.history;
    expect(history).toHaveLength(2);
    expect(history[0]).toEqual({ prompt: { points: [p(1, 1)] }, result: r1, best: r1.masks[2] });
    expect(history[1].prompt).toEqual({ box: [1, 1, 4, 4] });
    expect(history[1].result).toBe(r2);
    expect(r2.masks[0].threshold).toBe(0.5);
    expect(Object.isFrozen(history)).toBe(true);
    expect(Object.isFrozen(history[0])).toBe(true);
    // A snapshot: later rounds do not change it.
    await session.add({ points: [p(2, 2)] });
    expect(history).toHaveLength(2);
    expect(session.history).toHaveLength(3);
  });

  it('the prompt is copied: changing the caller’s arrays later changes nothing', async () => {
    const session = await segmenter.session(pixels());
    const points = [p(1, 1)];
    await session.add({ points });
    points.push(p(9, 9));
    points[0].x = 7;
    await session.add({ points: [p(2, 2)] });
    expect(calls.decode[1].points).toEqual(new Float32Array([1, 1, 2, 2]));
  });

  it('the mask prompt is a copy: writing into a result’s logits does not change the next round', async () => {
    const session = await segmenter.session(pixels());
    const r1 = await session.add({ points: [p(1, 1)] });
    r1.masks[0].lowResLogits.fill(-5);
    await session.add({ points: [p(2, 2)] });
    expect(calls.decode[1].maskInput).toEqual(logitsOf(0));
  });
});

describe('undo and reset', () => {
  it('undo drops the last round: its clicks and box no longer count, the round before supplies the logits', async () => {
    const session = await segmenter.session(pixels(), { multimask: true });
    await session.add({ points: [p(1, 1)] });
    const second = await session.add({ points: [p(2, 2)], box: [0, 0, 5, 5] });
    const dropped = session.undo();
    expect(dropped?.result).toBe(second);
    expect(session.history).toHaveLength(1);
    await session.add({ points: [p(3, 3)] });
    const third = calls.decode[2];
    expect(third.points).toEqual(new Float32Array([1, 1, 3, 3]));
    expect(third.boxes).toBeNull();
    expect(third.maskInput).toEqual(logitsOf(2));
  });

  it('undo of every round starts over: no mask prompt; undo on an empty session returns undefined', async () => {
    const session = await segmenter.session(pixels());
    await session.add({ points: [p(1, 1)] });
    session.undo();
    expect(session.undo()).toBeUndefined();
    expect(session.mask).toBeUndefined();
    await session.add({ points: [p(4, 4)] });
    expect(calls.decode[1].points).toEqual(new Float32Array([4, 4]));
    expect(calls.decode[1].maskInput).toBeNull();
  });

  it('reset drops every round but keeps the embedding', async () => {
    const session = await segmenter.session(pixels());
    await session.add({ points: [p(1, 1)] });
    await session.add({ points: [p(2, 2)] });
    session.reset();
    expect(session.history).toEqual([]);
    await session.add({ points: [p(3, 3)] });
    expect(calls.decode[2]).toMatchObject({ pointsPerPrompt: 1, maskInput: null });
    expect(calls.encode).toHaveLength(1);
  });

  it('undo and reset refuse to run while a round is in progress', async () => {
    const session = await segmenter.session(pixels());
    calls.decodeGate = gate();
    const pending = session.add({ points: [p(1, 1)] });
    await flush();
    expect(() => session.undo()).toThrow(new Error('A round is in progress; await session.add() before calling undo()'));
    expect(() => session.reset()).toThrow(new Error('A round is in progress; await session.add() before calling reset()'));
    calls.decodeGate.open();
    await pending;
    expect(session.undo()).toBeDefined();
  });
});

describe('rounds in flight', () => {
  it('rounds added without waiting run in order, each with the one before as memory', async () => {
    const session = await segmenter.session(pixels(), { multimask: true });
    calls.decodeGate = gate();
    const a = session.add({ points: [p(1, 1)] });
    const b = session.add({ points: [p(2, 2)] });
    await flush();
    expect(calls.decode).toHaveLength(1);
    calls.decodeGate.open();
    await Promise.all([a, b]);
    expect(calls.decode[1].points).toEqual(new Float32Array([1, 1, 2, 2]));
    expect(calls.decode[1].maskInput).toEqual(logitsOf(2));
  });

  it('a round aborted while it waits leaves no trace', async () => {
    const session = await segmenter.session(pixels());
    calls.decodeGate = gate();
    const a = session.add({ points: [p(1, 1)] });
    const controller = new AbortController();
    const b = session.add({ points: [p(2, 2)] }, { signal: controller.signal });
    await flush();
    controller.abort();
    await expect(b).rejects.toMatchObject({ name: 'AbortError' });
    calls.decodeGate.open();
    await a;
    expect(calls.decode).toHaveLength(1);
    expect(session.history).toHaveLength(1);
  });

  it('once a running round is aborted, undo and reset run (its decode finishes in the background and is not recorded)', async () => {
    const session = await segmenter.session(pixels());
    await session.add({ points: [p(1, 1)] });
    calls.decodeGate = gate();
    // A dense scribble's mask is converted in a worker thread before the decode: the round's
    // task is still running when its add() has rejected.
    const controller = new AbortController();
    const b = session.add({ scribbles: [{ path: [[2, 2], [9, 2]], label: 1, dense: true }] }, { signal: controller.signal });
    controller.abort();
    await expect(b).rejects.toMatchObject({ name: 'AbortError' });
    expect(session.undo()?.prompt).toEqual({ points: [p(1, 1)] }); // used to throw "A round is in progress"
    expect(() => session.reset()).not.toThrow();
    calls.decodeGate.open();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(session.history).toHaveLength(0);
    await session.add({ points: [p(3, 3)] });
    expect(calls.decode.at(-1)?.points).toEqual(new Float32Array([3, 3]));
  });

  it('a round whose decode fails leaves history unchanged', async () => {
    const session = await segmenter.session(pixels());
    await session.add({ points: [p(1, 1)] });
    calls.decodeError = new Error('decoder exploded');
    await expect(session.add({ points: [p(2, 2)] })).rejects.toThrow('decoder exploded');
    calls.decodeError = undefined;
    expect(session.history).toHaveLength(1);
    await session.add({ points: [p(3, 3)] });
    expect(calls.decode[2].points).toEqual(new Float32Array([1, 1, 3, 3]));
  });
});

describe('validation', () => {
  it('prompts are checked against the image before anything runs', async () => {
    const session = await segmenter.session(pixels());
    const bad: Array<[unknown, Error]> = [
      [null, new TypeError('Expected an object {points?, scribbles?, box?} for prompt but received null of type null')],
      [{}, new RangeError('Expected at least one of points, scribbles or box for prompt but received {} of type object')],
      [
        { points: [] },
        new RangeError('Expected at least one of points, scribbles or box for prompt but received {points: []} of type object'),
      ],
      [
        { points: [p(21, 1)] },
        new RangeError('Expected a number between 0 and 20 for prompt.points[0].x but received 21 of type number'),
      ],
      [
        { scribbles: [{ path: [[1, 11]], label: 1 }] },
        new RangeError('Expected a number between 0 and 10 for prompt.scribbles[0].path[0][1] but received 11 of type number'),
      ],
      [
        { box: [5, 5, 1, 1] },
        new RangeError(
          'Expected a box [x0, y0, x1, y1] with x0 <= x1 and y0 <= y1 for prompt.box but received [5, 5, 1, 1] of type array',
        ),
      ],
      [
        { boxes: [[0, 0, 1, 1]] },
        new RangeError('Expected an object {points?, scribbles?, box?} for prompt but received {boxes: [[...]]} of type object'),
      ],
      // holes in sparse arrays are refused by name, as segment() refuses them
      [
        { points: new Array(2) },
        new TypeError('Expected an object {x, y, label} for prompt.points[0] but received undefined of type undefined'),
      ],
      [
        { scribbles: [, { path: [[1, 1]], label: 1 }] },
        new TypeError('Expected an object {path, label, dense?} for prompt.scribbles[0] but received undefined of type undefined'),
      ],
      [
        { points: [p(1, 1)], maskInput: new Float32Array(LOW_RES) },
        new RangeError(
          'Expected an object {points?, scribbles?, box?} for prompt but received {points: [{...}], maskInput: Float32Array(256)} of type object',
        ),
      ],
    ];
    for (const [prompt, error] of bad) {
      await expect(session.add(prompt as { points: [] })).rejects.toThrow(error);
    }
    expect(calls.decode).toHaveLength(0);
    expect(session.history).toHaveLength(0);
  });

  it('the point limit is on the session\'s rounds together, and says so', async () => {
    const session = await segmenter.session(pixels());
    const many = Array.from({ length: MAX_PROMPT_POINTS - 1 }, (_, i) => p(i % 20, 1));
    await session.add({ points: many });
    const decodes = calls.decode.length;
    await expect(session.add({ points: [p(1, 1), p(2, 2)] })).rejects.toThrow(
      new RangeError(
        `Expected at most ${MAX_PROMPT_POINTS} points in a session's rounds together, scribble points included ` +
          `(the rounds so far have ${MAX_PROMPT_POINTS - 1}, this one adds 2) for prompt.points but received [{x: 1, y: 1, label: 1}, {x: 2, y: 2, label: 1}] of type array`,
      ),
    );
    await expect(session.add({ scribbles: [{ path: [[1, 1], [19, 9]], label: 1 }] })).rejects.toThrow(
      /in a session's rounds together, scribble points included \(the rounds so far have 4095, this one adds \d+\) for prompt\.points and prompt\.scribbles/,
    );
    expect(calls.decode).toHaveLength(decodes);
    await session.add({ points: [p(1, 1)] }); // up to the limit
    expect(session.history).toHaveLength(2);
  });

  it('rounds still queued count towards the limit too', async () => {
    const session = await segmenter.session(pixels());
    const half = Array.from({ length: 3000 }, (_, i) => p(i % 20, 1));
    calls.decodeGate = gate();
    const a = session.add({ points: half });
    const b = session.add({ points: half });
    await expect(b).rejects.toThrow(/\(the rounds so far have 3000, this one adds 3000\)/);
    calls.decodeGate.open();
    await a;
    expect(session.history).toHaveLength(1);
  });

  it('session options are validated', async () => {
    await expect(segmenter.session(pixels(), { multimask: 'yes' as unknown as boolean })).rejects.toThrow(
      new TypeError('Expected a boolean for multimask but received "yes" of type string'),
    );
    await expect(segmenter.session(pixels(), { threshold: Infinity })).rejects.toThrow(
      new RangeError('Expected a finite number for threshold but received Infinity of type number'),
    );
    expect(calls.encode).toHaveLength(0);
  });
});

describe('lifetimes', () => {
  it('a session on an image owns its embedding and frees it on dispose', async () => {
    const session = await segmenter.session(pixels());
    await session.add({ points: [p(1, 1)] });
    session.dispose();
    session.dispose();
    expect(session.embedding.disposed).toBe(true);
    await expect(session.add({ points: [p(1, 1)] })).rejects.toThrow(
      new Error('The session has been disposed; start a new one with segmenter.session()'),
    );
    expect(session.history).toHaveLength(1);
  });

  it('a session on an embedding leaves it to its owner', async () => {
    const embedding = await segmenter.encode(pixels());
    {
      await using session = await segmenter.session(embedding);
      await session.add({ points: [p(1, 1)] });
    }
    expect(embedding.disposed).toBe(false);
    const again = await segmenter.session(embedding);
    embedding.dispose();
    await expect(again.add({ points: [p(1, 1)] })).rejects.toThrow(
      new Error('The ImageEmbedding has been disposed; call segmenter.encode() again'),
    );
    expect(calls.encode).toHaveLength(1);
  });

  it('an embedding from another Segmenter is refused', async () => {
    const other = await Segmenter.load({ model: modelDir });
    const embedding = await other.encode(pixels());
    await expect(segmenter.session(embedding)).rejects.toThrow(
      new Error('The ImageEmbedding was created by another Segmenter; encode the image with this one'),
    );
  });
});
