// Property-based fuzzing of the prompt parser (toNativePrompt in lib/prompt.ts, with the validators
// of lib/validate.ts): whatever the prompt, it is packed into consistent native arrays or refused
// with a TypeError / RangeError naming the field. See test/helpers/fuzz.ts for the contract.
// Regressions it found: holes in sparse prompt arrays were skipped by map(), so that
// { boxes: new Array(2) } reached the addon as 2 prompt sets with no box values (refused there
// with a bare "invalid argument: boxes"), a hole in points failed with "Cannot read properties
// of undefined" and a hole in a scribble's path with "undefined is not iterable".
import { describe, expect } from 'vitest';
import { fc, it } from '@fast-check/vitest';
import { resizedSize, type MaskFrame } from '../lib/mask-prompt.js';
import type { NativePrompt } from '../lib/native.js';
import { checkPrompt, toNativePrompt } from '../lib/prompt.js';
import { FUZZ_RUNS, FUZZ_TIMEOUT_MS, namesParam, outcome } from './helpers/fuzz.js';

const LOW_RES = 8;
const IMAGE_SIZE = 32;
const settings = { multimask: false, threshold: 0 };

/** Image sizes and the frame the processor would give them. */
const imageArb = fc.tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 })).map(([width, height]) => {
  const [resizedWidth, resizedHeight] = resizedSize(width, height, IMAGE_SIZE);
  const frame: MaskFrame = { resizedWidth, resizedHeight, imageSize: IMAGE_SIZE, lowResSize: LOW_RES };
  return { width, height, frame };
});

/** Values that do not belong in a prompt (or only just do). */
const junkArb = fc.oneof(
  fc.double(),
  fc.constantFrom(NaN, Infinity, -Infinity, -0, -1, 2, 0.5, 1e300, '1', null, undefined, true, 1n, [], {}),
  fc.sparseArray(fc.integer({ min: 0, max: 40 }), { maxLength: 4 }),
  fc.float32Array({ maxLength: 70 }),
  fc.anything(),
);

/** A valid prompt for the image (every field optional), as users and the server build them. */
function validPromptArb(width: number, height: number): fc.Arbitrary<Record<string, unknown>> {
  const x = fc.double({ min: 0, max: width, noNaN: true });
  const y = fc.double({ min: 0, max: height, noNaN: true });
  const label = fc.constantFrom(0, 1);
  const span = (a: fc.Arbitrary<number>) => fc.tuple(a, a).map(([u, v]) => [Math.min(u, v), Math.max(u, v)]);
  const dense = fc.oneof(
    fc.constant({}),
    fc.record({ maskInput: fc.float32Array({ minLength: LOW_RES * LOW_RES, maxLength: LOW_RES * LOW_RES, noNaN: true, noDefaultInfinity: true }) }),
    fc.record({ mask: fc.uint8Array({ minLength: width * height, maxLength: width * height }).map((data) => ({ data, width, height })) }),
  );
  const sparse = fc.record(
    {
      points: fc.array(fc.record({ x, y, label }), { maxLength: 3 }),
      scribbles: fc.array(
        fc.record({ path: fc.array(fc.tuple(x, y), { minLength: 1, maxLength: 4 }), label, dense: fc.boolean() }, { requiredKeys: ['path', 'label'] }),
        { maxLength: 2 },
      ),
      boxes: fc.array(fc.tuple(span(x), span(y)).map(([[x0, x1], [y0, y1]]) => [x0, y0, x1, y1]), { maxLength: 3 }),
    },
    { requiredKeys: [] },
  );
  return fc.tuple(sparse, dense).map(([a, b]) => ({ ...a, ...b }));
}

/** Every place in a prompt a mutation can hit: [container, key] pairs (typed arrays excluded). */
function slots(value: unknown, out: Array<[Record<string | number, unknown>, string | number]> = []) {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return out;
  const container = value as Record<string | number, unknown>;
  for (const key of Object.keys(container)) {
    out.push([container, Array.isArray(value) ? Number(key) : key]);
    slots(container[key], out);
  }
  return out;
}

/**
 * A valid prompt with up to two mutations: a value replaced by junk, or deleted (a hole in an
 * array, a missing key in an object). Or, now and then, anything at all.
 */
const caseArb = imageArb.chain(({ width, height, frame }) =>
  fc.record({
    width: fc.constant(width),
    height: fc.constant(height),
    frame: fc.constant(frame),
    prompt: fc.oneof(
      { weight: 9, arbitrary: fc.tuple(validPromptArb(width, height), fc.array(fc.tuple(fc.nat(), fc.boolean(), junkArb), { maxLength: 2 })).map(([valid, mutations]) => {
        const prompt = structuredClone(valid); // fast-check may hand the same value out again
        for (const [at, remove, junk] of mutations) {
          const all = slots(prompt);
          if (all.length === 0) break;
          const [container, key] = all[at % all.length];
          if (remove) delete container[key];
          else container[key] = junk;
        }
        return prompt as unknown;
      }) },
      fc.anything(),
    ),
  }),
);

/** A packed prompt that the decoder can take for a width × height image. */
function expectConsistent(p: NativePrompt, input: Record<string, unknown>, width: number, height: number): void {
  const boxes = Array.isArray(input.boxes) ? input.boxes.length : 0;
  expect(p.promptCount).toBe(Math.max(1, boxes));
  const n = p.pointsPerPrompt;
  if (p.points === null) {
    expect(n).toBe(0);
    expect(p.labels).toBeNull();
  } else {
    expect(p.points.length).toBe(p.promptCount * n * 2);
    expect(p.labels!.length).toBe(p.promptCount * n);
    for (let i = 0; i < p.points.length; i += 2) {
      expect(p.points[i] >= 0 && p.points[i] <= width && p.points[i + 1] >= 0 && p.points[i + 1] <= height).toBe(true);
    }
    expect(p.labels!.every((l) => l === 0 || l === 1)).toBe(true);
  }
  if (p.boxes === null) {
    expect(boxes).toBe(0);
  } else {
    expect(p.boxes.length).toBe(p.promptCount * 4);
    for (let i = 0; i < p.boxes.length; i += 4) {
      const [x0, y0, x1, y1] = p.boxes.subarray(i, i + 4);
      expect(0 <= x0 && x0 <= x1 && x1 <= width && 0 <= y0 && y0 <= y1 && y1 <= height).toBe(true);
    }
  }
  if (p.maskInput !== null) {
    expect(p.maskInput.length).toBe(LOW_RES * LOW_RES);
    expect(p.maskInput.every(Number.isFinite)).toBe(true);
  }
  expect(p.points !== null || p.boxes !== null || p.maskInput !== null).toBe(true);
}

describe('checkPrompt / toNativePrompt on arbitrary prompts', { timeout: FUZZ_TIMEOUT_MS }, () => {
  it.prop([caseArb], { numRuns: FUZZ_RUNS })('packs consistent arrays or refuses by field name', async ({ prompt, width, height, frame }) => {
    const r = outcome(() => checkPrompt(prompt, width, height, LOW_RES, settings, frame), [TypeError, RangeError], namesParam('prompt'));
    if (r.ok) {
      const packed = await toNativePrompt(prompt, width, height, LOW_RES, settings, frame);
      expect(packed.maskInput !== null).toBe(r.value.native.maskInput !== null || r.value.dense !== null);
      expectConsistent(packed, prompt as Record<string, unknown>, width, height);
    }
  });

  it.prop([caseArb], { numRuns: FUZZ_RUNS })('without the input frame, mask prompts are a plain Error', ({ prompt, width, height }) => {
    const r = outcome(
      () => checkPrompt(prompt, width, height, LOW_RES, settings),
      [TypeError, RangeError, Error],
      /^Expected .+ for prompt|^prompt\.mask and dense scribbles need the model input frame/s,
    );
    if (!r.ok && r.error.constructor === Error) expect(r.error.message).toMatch(/need the model input frame/);
  });

  it('the counterexamples found, refused by name', () => {
    const call = (prompt: unknown) => () => checkPrompt(prompt, 10, 10, LOW_RES, settings);
    expect(call({ boxes: new Array(2) })).toThrow(namesParam('prompt.boxes[0]'));
    expect(call({ boxes: [, [0, 0, 1, 1]] })).toThrow(namesParam('prompt.boxes[0]'));
    expect(call({ points: [, { x: 1, y: 1, label: 1 }] })).toThrow(namesParam('prompt.points[0]'));
    expect(call({ scribbles: [, { path: [[1, 1]], label: 1 }] })).toThrow(namesParam('prompt.scribbles[0]'));
    expect(call({ scribbles: [{ path: [, [1, 1]], label: 1 }] })).toThrow(namesParam('prompt.scribbles[0].path[0]'));
  });
});
