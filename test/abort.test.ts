// AbortSignal on encode / segment / session, against the fake addon: what never reaches native,
// what is freed when it arrives too late, and the errors.
import { getEventListeners } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { calls, flush, gate, resetCalls } from './helpers/fake-binding.js';

vi.mock('../lib/native.js', async () => {
  const { binding } = await import('./helpers/fake-binding.js');
  return { native: () => binding, nativeCuda: () => ({ error: 'not built' }) };
});

const { AbortError, Segmenter, decodeImage } = await import('../lib/index.js');

let modelDir: string;
beforeAll(async () => {
  modelDir = await mkdtemp(path.join(tmpdir(), 'omniseg-model-'));
});
afterAll(async () => {
  await rm(modelDir, { recursive: true, force: true });
});
beforeEach(() => {
  resetCalls();
});

/** 20 × 10 RGB raw pixels. */
const pixels = () => ({ data: new Uint8Array(20 * 10 * 3), width: 20, height: 10, channels: 3 as const });
const click = { points: [{ x: 3, y: 4, label: 1 as const }] };

describe('an already-aborted signal', () => {
  it('rejects encode, segment and session at once with an AbortError, before any native work', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    const embedding = await segmenter.encode(pixels());
    const session = await segmenter.session(embedding);
    resetCalls();
    const reason = new Error('gone');
    const signal = AbortSignal.abort(reason);
    for (const call of [
      segmenter.encode(pixels(), { signal }),
      segmenter.segment(pixels(), click, { signal }),
      segmenter.segment(embedding, click, { signal }),
      segmenter.session(pixels(), { signal }),
      session.add(click, { signal }),
    ]) {
      const error = await (call as Promise<unknown>).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AbortError);
      expect(error).toMatchObject({ name: 'AbortError', message: 'The operation was aborted', cause: reason });
    }
    expect(calls.encode).toHaveLength(0);
    expect(calls.decode).toHaveLength(0);
    expect(session.history).toHaveLength(0);
  });

  it('the AbortError carries the caller stack', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    const error = (await segmenter.encode(pixels(), { signal: AbortSignal.abort() }).catch((e: unknown) => e)) as Error;
    expect(error.stack).toContain('abort.test.ts');
  });
});

describe('signal validation', () => {
  it('must be an AbortSignal', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    await expect(segmenter.encode(pixels(), { signal: 'stop' as unknown as AbortSignal })).rejects.toThrow(
      new TypeError('Expected an AbortSignal for signal but received "stop" of type string'),
    );
    await expect(segmenter.segment(pixels(), click, { signal: {} as AbortSignal })).rejects.toThrow(
      new TypeError('Expected an AbortSignal for signal but received {} of type object'),
    );
    await expect(segmenter.encode(pixels(), null as unknown as object)).rejects.toThrow(
      new TypeError('Expected an object {signal?} for options but received null of type null'),
    );
    expect(calls.encode).toHaveLength(0);
  });
});

describe('queued work', () => {
  it('an encode waiting behind another is cancelled and never reaches native', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    calls.encodeGate = gate();
    const first = segmenter.encode(pixels());
    const controller = new AbortController();
    const second = segmenter.encode(pixels(), { signal: controller.signal });
    const third = segmenter.encode(pixels());
    await flush();
    expect(calls.encode).toHaveLength(1); // encodes run one at a time
    controller.abort();
    await expect(second).rejects.toMatchObject({ name: 'AbortError' });
    calls.encodeGate.open();
    await Promise.all([first, third]);
    expect(calls.encode).toHaveLength(2);
    expect(calls.embeddings.map((e) => e.disposed)).toEqual([false, false]);
  });

  it('a decode waiting behind another is cancelled and never reaches native', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    const embedding = await segmenter.encode(pixels());
    calls.decodeGate = gate();
    const first = segmenter.segment(embedding, click);
    const controller = new AbortController();
    const second = segmenter.segment(embedding, { boxes: [[0, 0, 5, 5]] }, { signal: controller.signal });
    await flush();
    controller.abort();
    await expect(second).rejects.toMatchObject({ name: 'AbortError' });
    calls.decodeGate.open();
    await first;
    expect(calls.decode).toHaveLength(1);
    expect(calls.decode[0].boxes).toBeNull();
  });

  it('decodes do not wait for encodes', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    const embedding = await segmenter.encode(pixels());
    calls.encodeGate = gate();
    const encoding = segmenter.encode(pixels());
    await expect(segmenter.segment(embedding, click)).resolves.toMatchObject({ timings: { decodeMs: 3.25 } });
    calls.encodeGate.open();
    await encoding;
  });

  it('segment(image) aborted while its decode waits frees the embedding it encoded', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    const embedding = await segmenter.encode(pixels());
    calls.decodeGate = gate();
    const busy = segmenter.segment(embedding, click);
    const controller = new AbortController();
    const aborted = segmenter.segment(pixels(), click, { signal: controller.signal });
    await flush();
    expect(calls.embeddings).toHaveLength(2); // encoded, now waiting for the decoder
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
    expect(calls.embeddings[1].disposed).toBe(true);
    calls.decodeGate.open();
    await busy;
    expect(calls.decode).toHaveLength(1);
  });
});

describe('work already running', () => {
  it('an encode aborted while native runs rejects at once; the late embedding is freed', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    calls.encodeGate = gate();
    const controller = new AbortController();
    const encoding = segmenter.encode(pixels(), { signal: controller.signal });
    await flush();
    expect(calls.encode).toHaveLength(1);
    controller.abort();
    await expect(encoding).rejects.toMatchObject({ name: 'AbortError' });
    expect(calls.embeddings).toHaveLength(0);
    calls.encodeGate.open();
    await flush();
    expect(calls.embeddings).toHaveLength(1);
    expect(calls.embeddings[0].disposed).toBe(true);
  });

  it('encode, encodeBatch and segment aborted while sharp decodes their image reject at once, not when it is decoded', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    // a PNG of noise that takes sharp a while to decode
    const side = 1500;
    const noise = Uint8Array.from({ length: side * side * 3 }, (_, i) => (i * 2654435761) >>> 24);
    const png = await sharp(noise, { raw: { width: side, height: side, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
    for (const call of [
      (signal: AbortSignal) => segmenter.encode(png, { signal }),
      (signal: AbortSignal) => segmenter.encodeBatch([png], { signal }),
      (signal: AbortSignal) => segmenter.segment(png, click, { signal }),
    ]) {
      let decodedAlone = false;
      const alone = decodeImage(png).then(() => (decodedAlone = true)); // (the same decode, alongside)
      const controller = new AbortController();
      const pending = call(controller.signal);
      setImmediate(() => controller.abort());
      await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
      expect(decodedAlone).toBe(false);
      await alone;
    }
    expect(calls.encode).toHaveLength(0);
  });
});

describe('sessions', () => {
  it('a round that ends after dispose() is not recorded in the disposed session', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    const session = await segmenter.session(pixels());
    calls.decodeGate = gate();
    const round = session.add(click);
    await flush();
    session.dispose();
    calls.decodeGate.open();
    await round.catch(() => {});
    expect(session.history).toHaveLength(0);
  });
});

describe('listeners', () => {
  it('a long-lived signal keeps no listeners after the calls settle', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    const controller = new AbortController();
    const embedding = await segmenter.encode(pixels(), { signal: controller.signal });
    for (let i = 0; i < 20; i++) await segmenter.segment(embedding, click, { signal: controller.signal });
    const session = await segmenter.session(embedding);
    await session.add(click, { signal: controller.signal });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('a signal shared by many calls in flight has one listener (Node warned past 10)', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    const embedding = await segmenter.encode(pixels());
    const session = await segmenter.session(embedding);
    const controller = new AbortController();
    calls.decodeGate = gate();
    calls.encodeGate = gate();
    const pending = [
      ...Array.from({ length: 20 }, () => segmenter.segment(embedding, click, { signal: controller.signal })),
      ...Array.from({ length: 5 }, () => segmenter.encode(pixels(), { signal: controller.signal })),
      session.add(click, { signal: controller.signal }),
    ];
    await flush();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort();
    for (const p of pending) await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    calls.decodeGate.open();
    calls.encodeGate.open();
  });
});
