// Frame streams: segment a sequence of images (video frames, a camera, a directory) with one
// prompt, pipelining image decoding (sharp), the image encoder and the mask decoder across
// frames, with a bounded number of frames in flight. `follow` re-prompts each frame from the
// previous frame's best mask: the simple tracking baseline that video-memory models replace.
import { Readable } from 'node:stream';
import type { ImageEmbedding } from './embedding.js';
import { AbortError, abortError, invalidRange, invalidType, untilAborted } from './errors.js';
import { decodeForEncoder } from './image.js';
import { Mask } from './mask.js';
import { resizedSize } from './mask-prompt.js';
import { checkPrompt, denseLogits, type Prompt } from './prompt.js';
import type { SegmentResult, Segmenter } from './segmenter.js';
import type { BinaryMask, Box, ImageInput, Vertex } from './types.js';
import { abortSignal, boolean, copyBytes, finiteNumber, integerInRange, isPlainObject, plainObject } from './validate.js';

/**
 * Frames taken from the source and not yet handed to the consumer, by default: one being decoded
 * by sharp, one in the image encoder, one in the mask decoder.
 */
export const DEFAULT_FRAMES_IN_FLIGHT = 3;

/**
 * Where frames come from: any AsyncIterable or Iterable of images (an async generator, an array,
 * a Node Readable in object mode). Each image is what `segmenter.encode()` takes: a file path,
 * the bytes of an encoded image, or raw pixels.
 */
export type FrameSource = AsyncIterable<ImageInput> | Iterable<ImageInput>;

export interface FrameStreamOptions {
  /** SAM's 3 multimask outputs per frame instead of its single-mask output. Default: `false`. */
  multimask?: boolean;
  /** Logit threshold for the binary masks. Default: `0`. */
  threshold?: number;
  /**
   * Track the object: frame 0 is decoded with `prompt`; every later frame with the previous
   * frame's best mask alone — its `box` as the box prompt and a copy of its `lowResLogits` as
   * `maskInput` (the prompt's points and scribbles are not repeated). When the previous best mask
   * is empty the frame falls back to `prompt`. All frames must then have one size. Default: `false`
   * (every frame decoded with `prompt`).
   */
  follow?: boolean;
  /**
   * The most frames taken from the source and not yet handed to the consumer (being decoded,
   * encoded, mask-decoded, or done and waiting for the consumer), ≥ 1. This bounds memory: at
   * most this many decoded images, embeddings and results at once, whatever the length of the
   * stream. The source is read only when a slot is free, so a slow consumer slows the producer.
   * 1 runs the frames strictly one after the other. Default: 3 (`DEFAULT_FRAMES_IN_FLIGHT`).
   */
  maxFramesInFlight?: number;
  /**
   * Stops the stream: queued native work is cancelled and the iteration rejects with an
   * `AbortError`. Default: none.
   */
  signal?: AbortSignal;
}

/** The result for one frame. */
export interface FrameResult extends SegmentResult {
  /** Position of the frame in the source, from 0. */
  readonly index: number;
  /** Width of the frame, pixels. */
  readonly width: number;
  /** Height of the frame, pixels. */
  readonly height: number;
  /** The highest-scoring mask (the first on ties): what `follow` carries to the next frame. */
  readonly best: Mask;
  /**
   * The prompt this frame was decoded with: a frozen copy of the prompt given, made when the
   * stream was created (its `maskInput` and mask pixels copied again for each frame), or with
   * `follow` the previous frame's box and logits.
   */
  readonly prompt: Prompt;
}

interface StreamSettings {
  multimask: boolean;
  threshold: number;
  follow: boolean;
  maxFramesInFlight: number;
  signal: AbortSignal | undefined;
}

/** The stages of one frame; the next frame's stages wait on these to keep frame order. */
interface FrameWork {
  embedding: Promise<ImageEmbedding>;
  result: Promise<FrameResult>;
}

const SOURCE_WHAT = 'an AsyncIterable or Iterable of images (or a Readable in object mode)';
const OPTIONS_WHAT = 'an object {multimask?, threshold?, follow?, maxFramesInFlight?, signal?}';

/**
 * Validates the arguments of `segmenter.segmentStream()` (at once, before any frame is read)
 * and returns the stream of results, one per frame, in frame order.
 */
export function segmentFrames(
  segmenter: Segmenter,
  frames: FrameSource,
  prompt: Prompt,
  options: FrameStreamOptions = {},
): AsyncGenerator<FrameResult, void, undefined> {
  const open = frameIterator(frames);
  const opts = plainObject(options, 'options', OPTIONS_WHAT);
  const settings: StreamSettings = {
    multimask: opts.multimask === undefined ? false : boolean(opts.multimask, 'multimask'),
    threshold: opts.threshold === undefined ? 0 : finiteNumber(opts.threshold, 'threshold'),
    follow: opts.follow === undefined ? false : boolean(opts.follow, 'follow'),
    maxFramesInFlight:
      opts.maxFramesInFlight === undefined
        ? DEFAULT_FRAMES_IN_FLIGHT
        : integerInRange(opts.maxFramesInFlight, 'maxFramesInFlight', 1),
    signal: opts.signal === undefined ? undefined : abortSignal(opts.signal, 'signal'),
  };
  return pipeline(segmenter, open, streamPrompt(prompt, segmenter, settings), settings);
}

/**
 * The prompt as the stream keeps it: checked now for all but its coordinates, which are checked
 * against each frame's size as it comes; copied, so that the caller may change its own after the
 * call; frozen all the way down, as the frames' `prompt` share it (with their own typed arrays,
 * framePromptOf).
 */
function streamPrompt(prompt: unknown, segmenter: Segmenter, settings: StreamSettings): Prompt {
  const obj = plainObject(prompt, 'prompt', 'an object {points?, scribbles?, boxes?, mask?, maskInput?}');
  // A mask prompt has the frames' size; without one, any coordinate up to 2^53 passes here.
  const mask = isPlainObject(obj.mask) || obj.mask instanceof Mask ? (obj.mask as Partial<BinaryMask>) : undefined;
  const side = (v: unknown): number => (typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : Number.MAX_SAFE_INTEGER);
  const { lowResSize } = segmenter.config;
  // (the frame is not read: checkPrompt converts no mask)
  const frame = { resizedWidth: 1, resizedHeight: 1, imageSize: 1, lowResSize };
  checkPrompt(obj, side(mask?.width), side(mask?.height), lowResSize, settings, frame);
  const p = obj as Prompt;
  const frozen = <T>(items: T[]): T[] => Object.freeze(items) as T[];
  const copy: Prompt = {
    ...(p.points === undefined ? {} : { points: frozen(p.points.map(({ x, y, label }) => Object.freeze({ x, y, label }))) }),
    ...(p.scribbles === undefined
      ? {}
      : {
          scribbles: frozen(
            p.scribbles.map((s) => Object.freeze({ ...s, path: frozen(s.path.map(([x, y]) => frozen<number>([x, y]) as Vertex)) })),
          ),
        }),
    ...(p.boxes === undefined ? {} : { boxes: frozen(p.boxes.map((b) => frozen<number>([...b]) as Box)) }),
    ...(p.maskInput === undefined ? {} : { maskInput: p.maskInput.slice() }),
    ...(p.mask === undefined
      ? {}
      : { mask: p.mask instanceof Mask ? p.mask : Object.freeze({ data: copyBytes(p.mask.data), width: p.mask.width, height: p.mask.height }) }),
  };
  return Object.freeze(copy);
}

/**
 * The stream's prompt as one frame's own: typed arrays cannot be frozen, so a frame's `maskInput`
 * and mask pixels are its own copies (a consumer writing into frame 0's cannot change frame 1's);
 * the mask's pixels are copied when the frame's `data` is first read.
 */
function framePromptOf(prompt: Prompt): Prompt {
  if (prompt.maskInput === undefined && (prompt.mask === undefined || prompt.mask instanceof Mask)) return prompt;
  return Object.freeze({
    ...prompt,
    ...(prompt.maskInput === undefined ? {} : { maskInput: prompt.maskInput.slice() }),
    ...(prompt.mask === undefined || prompt.mask instanceof Mask ? {} : { mask: lazyCopy(prompt.mask) }),
  });
}

/** A frozen mask whose pixels are a copy of `mask`'s (never changed), made when first read. */
function lazyCopy(mask: BinaryMask): BinaryMask {
  let data: Uint8Array | undefined;
  return Object.freeze({
    width: mask.width,
    height: mask.height,
    get data(): Uint8Array {
      return (data ??= copyBytes(mask.data));
    },
  });
}

/**
 * The stream's prompt as each frame decodes it: its dense part (a mask, dense scribbles) converted
 * to low-res logits once per frame size (and whether it has one, checked once per size), where each frame converted it (a 4K mask: an 8 MB copy on
 * the JS thread and a coverage pass in a worker, every frame), and given as `maskInput`.
 */
class DecodePrompts {
  #size = '';
  #logits: Promise<Float32Array | undefined> | undefined;

  constructor(
    private readonly prompt: Prompt,
    private readonly segmenter: Segmenter,
    private readonly settings: StreamSettings,
  ) {}

  async of(frame: ImageEmbedding): Promise<Prompt> {
    const { prompt } = this;
    const size = `${frame.width}x${frame.height}`;
    if (this.#logits === undefined || this.#size !== size) {
      const { longestEdge, imageSize, lowResSize } = this.segmenter.config;
      const [resizedWidth, resizedHeight] = resizedSize(frame.width, frame.height, longestEdge);
      const maskFrame = { resizedWidth, resizedHeight, imageSize, lowResSize };
      const logits = denseLogits(prompt, frame.width, frame.height, lowResSize, this.settings, maskFrame);
      [this.#size, this.#logits] = [size, logits];
      // (a failure is not kept: each frame reports its own error)
      logits.catch(() => {
        if (this.#logits === logits) this.#logits = undefined;
      });
    }
    // (checkPrompt decides what is converted: a mask and positive dense scribbles; none, undefined)
    const logits = await this.#logits;
    if (logits === undefined) return framePromptOf(prompt);
    const { mask: _mask, scribbles, ...rest } = prompt;
    // (a dense scribble is clicks as well: kept as a plain one; the decode copies maskInput)
    const clicks = scribbles?.map((s) => (s.dense === true ? { ...s, dense: false } : s));
    return { ...rest, ...(clicks === undefined ? {} : { scribbles: clicks }), maskInput: logits };
  }
}

/** The source's iterator, and for a Readable how to close it at once (its iterator cannot mid-read). */
interface FrameReader {
  iterator: AsyncIterator<unknown> | Iterator<unknown>;
  close?: () => void;
}

/** A function that opens the source's iterator, after checking that it is a source of frames. */
function frameIterator(frames: unknown): () => FrameReader {
  // Strings and byte arrays are iterable, but they are one image, not a sequence of images.
  if (typeof frames !== 'object' || frames === null || ArrayBuffer.isView(frames)) {
    throw invalidType(SOURCE_WHAT, 'frames', frames);
  }
  if (frames instanceof Readable && !frames.readableObjectMode) {
    throw invalidRange(SOURCE_WHAT, 'frames', frames);
  }
  if (frames instanceof Readable) return () => ({ iterator: frames[Symbol.asyncIterator](), close: () => frames.destroy() });
  const source = frames as Partial<AsyncIterable<unknown> & Iterable<unknown>>;
  if (typeof source[Symbol.asyncIterator] === 'function') return () => ({ iterator: source[Symbol.asyncIterator]!() });
  if (typeof source[Symbol.iterator] === 'function') return () => ({ iterator: source[Symbol.iterator]!() });
  throw invalidType(SOURCE_WHAT, 'frames', frames);
}

/**
 * The stream proper. A reader takes frames from the source while fewer than `maxFramesInFlight`
 * are taken and not handed over (the one the consumer holds, from a `yield` until it asks for the
 * next, counts): that is the backpressure. Each frame starts at once: its image decode runs next
 * to the other frames', its encode after the previous frame's encode, its mask decode after the
 * previous frame's mask decode (whose best mask it needs with `follow`). The generator hands over
 * each frame as soon as it is done, never waiting on the source, whose next frame may come only
 * after the consumer has seen this one (a live camera, a frame made from the last result).
 */
async function* pipeline(
  segmenter: Segmenter,
  open: () => FrameReader,
  prompt: Prompt,
  settings: StreamSettings,
): AsyncGenerator<FrameResult, void, undefined> {
  const { signal } = settings;
  if (signal?.aborted === true) throw abortError(signal);
  // Cancels the queued native work of pending frames when the stream ends early.
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const source = open();
  const { iterator } = source;
  const prompts = new DecodePrompts(prompt, segmenter, settings);
  const pending: Array<Promise<FrameResult>> = [];
  const framesChanged = changes(); // the reader added a frame, or ended
  const slotsChanged = changes(); // the consumer took a frame, or the stream ended
  let holding = false; // the consumer holds a yielded frame
  let stopped = false; // the stream ended: the reader starts nothing more
  let reading = false; // a read of the source is outstanding
  let ended = false; // the reader is done (the source ended, failed, or the stream stopped)
  let exhausted = false; // the source ended or failed (it is not closed then)
  let sourceError: { error: unknown } | undefined; // kept until the frames before it are yielded
  let failed = false; // the stream ends with an error (which closing the source must not replace)

  const reader = (async () => {
    let previous: FrameWork | undefined;
    let index = 0;
    try {
      for (;;) {
        while (!stopped && pending.length + (holding ? 1 : 0) >= settings.maxFramesInFlight) await slotsChanged.next();
        if (stopped || controller.signal.aborted) return;
        reading = true;
        const next = await Promise.resolve(iterator.next());
        reading = false;
        if (next.done === true) {
          exhausted = true;
          return;
        }
        if (stopped) return; // (read while the stream ended: dropped)
        // Encoded bytes are read by sharp later, and the source may refill its buffer for the
        // next frame meanwhile: copied now (raw pixels are copied as the decode starts).
        const input = (next.value instanceof Uint8Array ? copyBytes(next.value) : next.value) as ImageInput;
        previous = startFrame(segmenter, index++, input, previous, prompt, prompts, settings, controller.signal);
        pending.push(previous.result);
        framesChanged.notify();
      }
    } catch (error) {
      reading = false;
      exhausted = true; // (a source that threw is not closed)
      sourceError = { error: atFrame(error, index) };
    } finally {
      ended = true;
      framesChanged.notify();
    }
  })();
  reader.catch(() => undefined); // (it catches what it throws; this only keeps a slip from crashing the process)

  try {
    for (;;) {
      holding = false;
      slotsChanged.notify();
      while (pending.length === 0 && !ended) await untilAbortedNow(framesChanged.next(), controller.signal);
      if (pending.length === 0) {
        if (sourceError !== undefined) throw sourceError.error;
        return;
      }
      // Left in `pending` until it settles, so that an early end also waits for this frame.
      const result = await untilAbortedNow(pending[0], controller.signal);
      pending.shift();
      holding = true;
      yield result;
    }
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    stopped = true;
    slotsChanged.notify();
    signal?.removeEventListener('abort', onAbort);
    if (pending.length > 0) {
      // Ended early (the consumer stopped, a frame failed, or the signal fired): cancel what is
      // queued and wait for the pending frames to settle, so that their embeddings are freed
      // before we return (one still being encoded natively is freed when it arrives).
      controller.abort(new AbortError('The frame stream was closed'));
      await Promise.allSettled(pending);
    }
    if (!reading) await reader; // (it has returned, or returns now that it is stopped)
    if (!exhausted) {
      // Close the source: a Readable is destroyed directly (its iterator's return() would wait for
      // an outstanding read); an iterator's return() is called, not waited for while a read is
      // outstanding (an async generator runs it only after that read) or when the stream ends
      // with an error (a failing return() must not replace it).
      const closing = Promise.resolve().then(() => (source.close !== undefined ? source.close() : iterator.return?.()));
      if (reading || failed) closing.catch(() => undefined);
      else await closing;
    }
  }
}

/** A change one side waits for and the other announces: next() resolves at the next notify(). */
function changes(): { next: () => Promise<void>; notify: () => void } {
  let resolve!: () => void;
  let promise = new Promise<void>((r) => (resolve = r));
  return {
    next: () => promise,
    notify: () => {
      resolve();
      promise = new Promise<void>((r) => (resolve = r));
    },
  };
}

/** Starts the work of one frame; every stage's rejection is handled (reported through `result`). */
function startFrame(
  segmenter: Segmenter,
  index: number,
  input: ImageInput,
  previous: FrameWork | undefined,
  prompt: Prompt,
  prompts: DecodePrompts,
  settings: StreamSettings,
  signal: AbortSignal,
): FrameWork {
  const image = decodeForEncoder(input, { limitInputPixels: segmenter.limitInputPixels });
  const embedding = (async () => {
    const decoded = await image;
    await previous?.embedding.catch(() => undefined); // encodes in frame order
    return segmenter.encode({ ...decoded, channels: 3 }, { signal });
  })();
  const result = (async (): Promise<FrameResult> => {
    let encoded: ImageEmbedding | undefined;
    try {
      encoded = await embedding;
      const before = await previous?.result.catch(() => undefined); // mask decodes in frame order
      const following = settings.follow && before !== undefined ? followPrompt(before, encoded, index) : undefined;
      const framePrompt = following ?? framePromptOf(prompt);
      const { masks, timings } = await segmenter.segment(encoded, following ?? (await prompts.of(encoded)), {
        multimask: settings.multimask,
        threshold: settings.threshold,
        signal,
      });
      const best = masks.reduce((a, m) => (m.score > a.score ? m : a));
      return Object.freeze({
        index,
        width: encoded.width,
        height: encoded.height,
        masks,
        best,
        prompt: framePrompt,
        timings: { encodeMs: encoded.encodeMs, decodeMs: timings.decodeMs },
      });
    } catch (error) {
      throw atFrame(error, index);
    } finally {
      encoded?.dispose();
    }
  })();
  embedding.catch(() => undefined); // reported through `result`
  result.catch(() => undefined); // reported when the consumer reaches this frame
  return { embedding, result };
}

/**
 * The previous frame's best mask as this frame's prompt: its box and (a copy of) its logits; none
 * (the stream's prompt) when that mask is empty.
 */
function followPrompt(before: FrameResult, frame: ImageEmbedding, index: number): Prompt | undefined {
  if (before.width !== frame.width || before.height !== frame.height) {
    throw new RangeError(
      `Expected a frame of ${before.width}x${before.height} pixels (the size of frame ${before.index}; ` +
        `follow needs frames of one size) for frames[${index}] but received a frame of ${frame.width}x${frame.height} pixels`,
    );
  }
  if (before.best.area === 0) return undefined;
  // The box has inclusive bounds (x1 is the last pixel's column), the convention of SAM's own
  // mask-to-box (segment_anything/utils/amg.py batched_mask_to_box; torchvision masks_to_boxes),
  // from which its box prompts were made: no half-pixel shift to undo.
  return { boxes: [before.best.box], maskInput: before.best.lowResLogits.slice() };
}

/**
 * Names the frame in an error's message (AbortErrors are left as they are). An error whose message
 * cannot be written (a DOMException's is a getter; a frozen Error) is wrapped: a new Error with
 * that message, its name, and the error as its cause.
 */
function atFrame(error: unknown, index: number): unknown {
  if (error instanceof Error && !(error instanceof AbortError) && error.name !== 'AbortError') {
    const header = `${error.name}: ${error.message}`;
    const message = `frame ${index}: ${error.message}`;
    try {
      error.message = message;
      if (error.message !== message) throw new TypeError('read-only message');
    } catch {
      const wrapped = new Error(message, { cause: error });
      wrapped.name = error.name;
      return wrapped;
    }
    if (error.stack?.startsWith(header) === true) error.stack = `${error.name}: ${error.message}${error.stack.slice(header.length)}`;
  }
  return error;
}

/** untilAborted, rejecting at once when `signal` has already fired. */
function untilAbortedNow<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return signal.aborted ? Promise.reject(abortError(signal)) : untilAborted(promise, signal);
}
