// segmenter.segmentStream against the fake addon: frame order, the bound on frames in flight
// (backpressure), what `follow` sends to the decoder, errors, early exit and abort.
import { pbkdf2 } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { calls, CONFIG, flush, gate, resetCalls } from './helpers/fake-binding.js';

vi.mock('../lib/native.js', async () => {
  const { binding } = await import('./helpers/fake-binding.js');
  return { native: () => binding, nativeCuda: () => ({ error: 'not built' }) };
});

const { DEFAULT_FRAMES_IN_FLIGHT, Segmenter } = await import('../lib/index.js');
type Segmenter = import('../lib/index.js').Segmenter;
type FrameResult = import('../lib/index.js').FrameResult;
type ImageInput = import('../lib/index.js').ImageInput;

let modelDir: string;
let segmenter: Segmenter;
beforeAll(async () => {
  modelDir = await mkdtemp(path.join(tmpdir(), 'omniseg-model-'));
  segmenter = await Segmenter.load({ model: modelDir });
});
afterAll(async () => {
  segmenter.dispose();
  await rm(modelDir, { recursive: true, force: true });
});
beforeEach(() => {
  resetCalls();
});

/** Raw RGB pixels, width × height. */
const frame = (width = 20, height = 10) => ({ data: new Uint8Array(width * height * 3), width, height, channels: 3 as const });
const click = { points: [{ x: 3, y: 4, label: 1 as const }] };
const LOW_RES = CONFIG.lowResSize * CONFIG.lowResSize;

/** An async source of `count` frames that records how many were taken and whether it was closed. */
function countingSource(count: number, make: (i: number) => ImageInput = () => frame()) {
  const state = { pulled: 0, closed: false };
  async function* frames() {
    try {
      for (let i = 0; i < count; i++) {
        state.pulled++;
        yield make(i);
      }
    } finally {
      state.closed = true;
    }
  }
  return { state, frames: frames() };
}

async function collect(stream: AsyncIterable<FrameResult>): Promise<FrameResult[]> {
  const out: FrameResult[] = [];
  for await (const result of stream) out.push(result);
  return out;
}

const liveEmbeddings = () => calls.embeddings.filter((e) => !e.disposed).length;

describe('segmentStream: results', () => {
  it('yields one result per frame, in frame order, and frees every embedding', async () => {
    const sizes = [
      [20, 10],
      [30, 12],
      [8, 40],
      [16, 16],
    ];
    const results = await collect(segmenter.segmentStream(sizes.map(([w, h]) => frame(w, h)), click));
    expect(results.map((r) => [r.index, r.width, r.height])).toEqual(sizes.map(([w, h], i) => [i, w, h]));
    expect(calls.encode.map((c) => c.width)).toEqual([20, 30, 8, 16]);
    for (const r of results) {
      expect(r.masks).toHaveLength(1);
      expect(r.best).toBe(r.masks[0]);
      expect(r.prompt).toEqual(click);
      expect(r.timings).toEqual({ encodeMs: 12.5, decodeMs: 3.25 });
    }
    expect(calls.embeddings).toHaveLength(4);
    expect(liveEmbeddings()).toBe(0);
  });

  it('keeps frame order when a later frame is decoded first', async () => {
    // Frame 0 is a PNG (decoded by sharp, asynchronously); the raw frames after it are ready at once.
    const png = await sharp({ create: { width: 24, height: 6, channels: 3, background: '#808080' } }).png().toBuffer();
    const results = await collect(segmenter.segmentStream([png, frame(5, 5), frame(6, 6), frame(7, 7)], click));
    expect(results.map((r) => r.width)).toEqual([24, 5, 6, 7]);
    expect(calls.encode.map((c) => c.width)).toEqual([24, 5, 6, 7]);
    expect(calls.decode).toHaveLength(4);
  });

  it('the best mask is the highest-scoring one; multimask and threshold reach the decoder', async () => {
    const [r] = await collect(segmenter.segmentStream([frame()], click, { multimask: true, threshold: 0.5 }));
    expect(r.masks.map((m) => m.score)).toEqual([0, 1, 2]);
    expect(r.best).toBe(r.masks[2]);
    expect(calls.decode[0]).toMatchObject({ multimask: true, threshold: 0.5 });
  });

  it('takes arrays, sync and async generators and Readables in object mode; an empty source yields nothing', async () => {
    function* sync() {
      yield frame();
      yield frame();
    }
    expect(await collect(segmenter.segmentStream(sync(), click))).toHaveLength(2);
    expect(await collect(segmenter.segmentStream(Readable.from([frame(), frame(), frame()]), click))).toHaveLength(3);
    expect(await collect(segmenter.segmentStream([], click))).toEqual([]);
    expect(calls.encode).toHaveLength(5);
  });
});

describe('segmentStream: frames in flight (backpressure)', () => {
  it(`a slow consumer: the source is never more than maxFramesInFlight - 1 frames ahead (default ${DEFAULT_FRAMES_IN_FLIGHT})`, async () => {
    for (const max of [1, 2, DEFAULT_FRAMES_IN_FLIGHT, 5]) {
      resetCalls();
      const { state, frames } = countingSource(20);
      const options = max === DEFAULT_FRAMES_IN_FLIGHT ? {} : { maxFramesInFlight: max };
      const ahead: number[] = [];
      let received = 0;
      for await (const r of segmenter.segmentStream(frames, click, options)) {
        received++;
        expect(r.index).toBe(received - 1);
        ahead.push(state.pulled - received);
        // Frames in flight each hold at most one live embedding.
        expect(liveEmbeddings()).toBeLessThanOrEqual(max);
        await flush(); // the consumer is slow: the pipeline has time to run ahead, if it may
      }
      expect(received).toBe(20);
      // Before the end of the source, exactly max - 1 frames were read ahead of the consumer.
      expect(Math.max(...ahead)).toBe(max - 1);
      expect(ahead.slice(0, 20 - max + 1).every((n) => n === max - 1)).toBe(true);
      expect(liveEmbeddings()).toBe(0);
    }
  });

  it('a stalled encoder: the source stops after maxFramesInFlight frames, and the stages overlap', async () => {
    calls.encodeGate = gate();
    const { state, frames } = countingSource(10);
    const iterator = segmenter.segmentStream(frames, click, { maxFramesInFlight: 3 });
    const first = iterator.next();
    await flush();
    expect(state.pulled).toBe(3);
    expect(calls.encode).toHaveLength(1); // encodes run one at a time, in frame order
    calls.encodeGate.open();
    expect((await first).value?.index).toBe(0);
    const rest: number[] = [];
    for await (const r of { [Symbol.asyncIterator]: () => iterator }) rest.push(r.index);
    expect(rest).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(state.closed).toBe(true);
  });
});

describe('segmentStream: follow', () => {
  /** Decode k draws a 3 × 2 rectangle at x = 2 + k, y = 1 + k in mask 2 and fills its logits with 1000·k + mask. */
  function movingObject(): void {
    let k = 0;
    calls.decodeHook = (result, embedding) => {
      const pixels = embedding.width * embedding.height;
      const last = result.iou.length - 1;
      for (let y = 1 + k; y < 3 + k; y++) {
        for (let x = 2 + k; x < 5 + k; x++) result.masks[last * pixels + y * embedding.width + x] = 1;
      }
      for (let m = 0; m < result.iou.length; m++) result.lowRes.fill(1000 * k + m, m * LOW_RES, (m + 1) * LOW_RES);
      k++;
    };
  }

  it('frame 0 gets the prompt; each later frame the previous best mask: its box and low-res logits', async () => {
    movingObject();
    const results = await collect(segmenter.segmentStream([frame(), frame(), frame(), frame()], click, { follow: true, multimask: true }));
    expect(results).toHaveLength(4);
    expect(results[0].prompt).toEqual(click);
    expect(calls.decode[0].points).toEqual(new Float32Array([3, 4]));
    expect(calls.decode[0].maskInput).toBeNull();
    for (let k = 1; k < 4; k++) {
      const before = results[k - 1].best;
      expect(before).toBe(results[k - 1].masks[2]); // highest score
      expect(before.box).toEqual([1 + k, k, 3 + k, 1 + k]);
      const sent = calls.decode[k];
      expect(sent.points).toBeNull();
      expect(sent.boxes).toEqual(new Float32Array(before.box));
      expect(sent.maskInput).toEqual(new Float32Array(LOW_RES).fill(1000 * (k - 1) + 2));
      expect(results[k].prompt).toEqual({ boxes: [before.box], maskInput: sent.maskInput });
      // A copy: the consumer may change its results without changing what later frames get.
      expect(sent.maskInput).not.toBe(before.lowResLogits);
    }
  });

  it('without follow every frame gets the prompt', async () => {
    movingObject();
    await collect(segmenter.segmentStream([frame(), frame(), frame()], click));
    expect(calls.decode.map((p) => [p.points, p.boxes, p.maskInput])).toEqual(
      Array(3).fill([new Float32Array([3, 4]), null, null]),
    );
  });

  it('an empty previous mask falls back to the prompt', async () => {
    const results = await collect(segmenter.segmentStream([frame(), frame()], click, { follow: true }));
    expect(results[1].prompt).toEqual(click);
    expect(calls.decode[1].points).toEqual(new Float32Array([3, 4]));
  });

  it('a frame of another size is an error at that frame', async () => {
    movingObject();
    const stream = segmenter.segmentStream([frame(20, 10), frame(20, 10), frame(21, 10)], click, { follow: true });
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const r of stream) seen.push(r.index);
      })(),
    ).rejects.toThrow(
      new RangeError(
        'frame 2: Expected a frame of 20x10 pixels (the size of frame 1; follow needs frames of one size) for frames[2] but received a frame of 21x10 pixels',
      ),
    );
    expect(seen).toEqual([0, 1]);
    expect(liveEmbeddings()).toBe(0);
  });
});

describe('segmentStream: errors, early exit, abort', () => {
  it('a bad frame rejects at that frame, after the frames before it; the rest is freed and the source closed', async () => {
    const { state, frames } = countingSource(8, (i) => (i === 2 ? Buffer.from('not an image') : frame()));
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const r of segmenter.segmentStream(frames, click)) seen.push(r.index);
      })(),
    ).rejects.toThrow(new Error('frame 2: Cannot decode image buffer: Input buffer contains unsupported image format'));
    expect(seen).toEqual([0, 1]);
    expect(state.closed).toBe(true);
    expect(state.pulled).toBeLessThanOrEqual(2 + DEFAULT_FRAMES_IN_FLIGHT);
    expect(liveEmbeddings()).toBe(0); // freed before the iteration settled
  });

  it('a prompt outside a frame rejects at that frame with the validation error', async () => {
    const stream = segmenter.segmentStream([frame(20, 10), frame(2, 2)], click);
    await expect(collect(stream)).rejects.toThrow(
      new RangeError('frame 1: Expected a number between 0 and 2 for prompt.points[0].x but received 3 of type number'),
    );
  });

  it('break: queued work is cancelled, embeddings freed, the source closed', async () => {
    const { state, frames } = countingSource(50);
    let n = 0;
    for await (const r of segmenter.segmentStream(frames, click)) {
      expect(r.index).toBe(n);
      if (++n === 2) break;
    }
    expect(state.closed).toBe(true);
    expect(state.pulled).toBeLessThanOrEqual(2 + DEFAULT_FRAMES_IN_FLIGHT);
    expect(liveEmbeddings()).toBe(0); // freed before the iteration settled
  });

  it('a signal aborted mid-stream rejects with an AbortError; nothing is left allocated', async () => {
    const controller = new AbortController();
    const { state, frames } = countingSource(50);
    const seen: number[] = [];
    const reason = new Error('stop');
    const error = await (async () => {
      for await (const r of segmenter.segmentStream(frames, click, { signal: controller.signal })) {
        seen.push(r.index);
        if (r.index === 3) controller.abort(reason);
      }
    })().catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'AbortError', cause: reason });
    expect(seen).toEqual([0, 1, 2, 3]);
    expect(state.closed).toBe(true);
    expect(liveEmbeddings()).toBe(0); // freed before the iteration settled
  });

  it('aborted while an encode runs: rejects at once; the late embedding is freed when it arrives', async () => {
    calls.encodeGate = gate();
    const controller = new AbortController();
    const { state, frames } = countingSource(10);
    const next = segmenter.segmentStream(frames, click, { signal: controller.signal }).next();
    await flush();
    expect(calls.encode).toHaveLength(1);
    controller.abort();
    await expect(next).rejects.toMatchObject({ name: 'AbortError' });
    expect(state.closed).toBe(true);
    expect(calls.encode).toHaveLength(1); // the queued encodes never started
    calls.encodeGate.open();
    await flush();
    expect(calls.embeddings).toHaveLength(1);
    expect(liveEmbeddings()).toBe(0);
  });

  it('an already-aborted signal reads no frame', async () => {
    const { state, frames } = countingSource(5);
    const stream = segmenter.segmentStream(frames, click, { signal: AbortSignal.abort() });
    await expect(stream.next()).rejects.toMatchObject({ name: 'AbortError' });
    expect(state.pulled).toBe(0);
    expect(calls.encode).toHaveLength(0);
  });

  it('invalid arguments throw at once, before any frame is read', () => {
    const what = 'an AsyncIterable or Iterable of images (or a Readable in object mode)';
    expect(() => segmenter.segmentStream('frames/*.png' as unknown as ImageInput[], click)).toThrow(
      new TypeError(`Expected ${what} for frames but received "frames/*.png" of type string`),
    );
    expect(() => segmenter.segmentStream(Buffer.alloc(3) as unknown as ImageInput[], click)).toThrow(
      new TypeError(`Expected ${what} for frames but received Buffer(3) of type Buffer`),
    );
    expect(() => segmenter.segmentStream({} as ImageInput[], click)).toThrow(
      new TypeError(`Expected ${what} for frames but received {} of type object`),
    );
    expect(() => segmenter.segmentStream(Readable.from([Buffer.alloc(1)], { objectMode: false }), click)).toThrow(
      new RangeError(`Expected ${what} for frames but received Readable of type Readable`),
    );
    expect(() => segmenter.segmentStream([frame()], null as unknown as object)).toThrow(
      new TypeError(
        'Expected an object {points?, scribbles?, boxes?, mask?, maskInput?} for prompt but received null of type null',
      ),
    );
    expect(() => segmenter.segmentStream([frame()], click, { maxFramesInFlight: 0 })).toThrow(
      new RangeError('Expected an integer >= 1 for maxFramesInFlight but received 0 of type number'),
    );
    expect(() => segmenter.segmentStream([frame()], click, { follow: 'yes' as unknown as boolean })).toThrow(
      new TypeError('Expected a boolean for follow but received "yes" of type string'),
    );
    expect(calls.encode).toHaveLength(0);
  });

  it('prompt errors that need no frame throw at once too (they used to surface at frame 0, after its encode)', () => {
    const at = (prompt: unknown) => () => segmenter.segmentStream([frame()], prompt as typeof click);
    expect(at({ points: 'nope' })).toThrow(TypeError);
    expect(at({})).toThrow(new RangeError('Expected at least one of points, scribbles, boxes, mask or maskInput for prompt but received {} of type object'));
    expect(at({ points: [{ x: 1, y: 1, label: 7 }] })).toThrow(/prompt\.points\[0\]\.label/);
    expect(at({ boxes: [[1, 2, 3]] })).toThrow(/prompt\.boxes\[0\]/);
    expect(at({ maskInput: new Float32Array(3) })).toThrow(/prompt\.maskInput/);
    expect(at({ mask: 5 })).toThrow(/prompt\.mask/);
    expect(at({ points: [{ x: -1, y: 1, label: 1 }] })).toThrow(/prompt\.points\[0\]\.x/);
    expect(calls.encode).toHaveLength(0);
    // coordinates past a frame's sides are that frame's error (frames may differ in size)
    expect(at({ points: [{ x: 500, y: 1, label: 1 }] })).not.toThrow();
  });

  it('the prompt is copied when the stream starts, and each frame reports the stream\'s copy', async () => {
    const prompt = { points: [{ x: 3, y: 4, label: 1 as 0 | 1 }], boxes: [[1, 1, 9, 9] as [number, number, number, number]] };
    const { frames } = countingSource(3);
    const stream = segmenter.segmentStream(frames, prompt);
    prompt.points[0].x = 15; // the caller's own object, changed after the call
    prompt.boxes[0][2] = 19;
    prompt.points.push({ x: 1, y: 1, label: 0 });
    const results = await collect(stream);
    for (const r of results) expect(r.prompt).toEqual({ points: [{ x: 3, y: 4, label: 1 }], boxes: [[1, 1, 9, 9]] });
    expect(Object.isFrozen(results[0].prompt)).toBe(true);
    expect(calls.decode.map((d) => Array.from(d.points ?? []))).toEqual([[3, 4], [3, 4], [3, 4]]);
  });

  it('a source error comes after every frame read before it, whatever maxFramesInFlight', async () => {
    for (const max of [1, 2, 3, 5]) {
      async function* failing() {
        yield frame();
        yield frame();
        throw new Error('camera unplugged');
      }
      const seen: number[] = [];
      let error: Error | undefined;
      try {
        for await (const r of segmenter.segmentStream(failing(), click, { maxFramesInFlight: max })) seen.push(r.index);
      } catch (e) {
        error = e as Error;
      }
      expect(seen, `maxFramesInFlight ${max}`).toEqual([0, 1]);
      expect(error?.message).toBe('frame 2: camera unplugged');
    }
    expect(liveEmbeddings()).toBe(0);
  });

  it('hands each frame over as soon as it is done: a source that makes frame i from result i - 1 does not deadlock', { timeout: 10_000 }, async () => {
    let seen = -1;
    let waiting: (() => void) | undefined;
    async function* feedback() {
      for (let i = 0; i < 6; i++) {
        while (seen < i - 1) await new Promise<void>((resolve) => (waiting = resolve));
        yield frame();
      }
    }
    const indices: number[] = [];
    for await (const r of segmenter.segmentStream(feedback(), click)) {
      indices.push(r.index);
      seen = r.index;
      waiting?.();
    }
    expect(indices).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('encoded frames are copied when read: a source may refill its buffer for the next frame', async () => {
    const png = await sharp({ create: { width: 20, height: 10, channels: 3, background: { r: 9, g: 99, b: 199 } } }).png().toBuffer();
    async function* refilling() {
      const buffer = Buffer.alloc(png.length);
      for (let i = 0; i < 4; i++) {
        buffer.set(png);
        yield buffer;
        buffer.fill(0); // the next frame is being read: this one's bytes are gone
      }
    }
    // libuv's threads kept busy for a moment, so that sharp reads each frame's bytes only after the
    // stream has asked for the next one (without that, the race is lost only now and then)
    const busy = Array.from({ length: 16 }, () => promisify(pbkdf2)('x', 'y', 40_000, 32, 'sha256'));
    const results = await collect(segmenter.segmentStream(refilling(), click));
    await Promise.all(busy);
    expect(results.map((r) => [r.width, r.height])).toEqual([[20, 10], [20, 10], [20, 10], [20, 10]]);
    expect(calls.encode.every((e) => e.pixels[0] === 9 && e.pixels[1] === 99 && e.pixels[2] === 199)).toBe(true);
  });

  it('a source error whose message cannot be written (a DOMException) is wrapped, not a crash', async () => {
    async function* timingOut() {
      yield frame();
      throw new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    }
    const seen: number[] = [];
    const error = await (async () => {
      try {
        for await (const r of segmenter.segmentStream(timingOut(), click)) seen.push(r.index);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(seen).toEqual([0]);
    expect(error).toMatchObject({ name: 'TimeoutError', message: 'frame 1: The operation was aborted due to timeout' });
    expect(error?.cause).toBeInstanceOf(DOMException);
  });

  it('closing the source fails: the frame error is what the consumer gets', async () => {
    const source = {
      i: 0,
      [Symbol.asyncIterator]() {
        return this;
      },
      async next() {
        return this.i++ < 5 ? { done: false, value: this.i === 2 ? Buffer.from('not an image') : frame() } : { done: true, value: undefined };
      },
      async return(): Promise<IteratorResult<ImageInput>> {
        throw new Error('return failed');
      },
    };
    await expect(collect(segmenter.segmentStream(source as unknown as AsyncIterable<ImageInput>, click))).rejects.toThrow(/^frame 1: Cannot decode image/);
  });

  it('a Readable is destroyed when the consumer stops, also while the stream waits for its next frame', async () => {
    const readable = new Readable({ objectMode: true, read() {} });
    readable.push(frame());
    for await (const r of segmenter.segmentStream(readable, click)) {
      expect(r.index).toBe(0);
      break; // the stream is waiting on the Readable for frame 1
    }
    expect(readable.destroyed).toBe(true);
    expect(liveEmbeddings()).toBe(0);
  });

  it('every frame\'s prompt is frozen all the way down, and its maskInput is its own', async () => {
    const prompt = { boxes: [[1, 1, 9, 9] as [number, number, number, number]], maskInput: new Float32Array(LOW_RES) };
    const results = await collect(segmenter.segmentStream([frame(), frame()], prompt, { maxFramesInFlight: 1 }));
    const [a, b] = results.map((r) => r.prompt);
    expect(Object.isFrozen(a.boxes) && Object.isFrozen(a.boxes?.[0])).toBe(true);
    expect(() => (a.boxes![0][2] = 20)).toThrow(TypeError);
    expect(a.maskInput).not.toBe(b.maskInput);
    expect(a.maskInput).toEqual(prompt.maskInput);
  });

  it('a disposed Segmenter', async () => {
    const other = await Segmenter.load({ model: modelDir });
    other.dispose();
    expect(() => other.segmentStream([frame()], click)).toThrow(
      new Error('The Segmenter has been disposed; call Segmenter.load() again'),
    );
  });
});
