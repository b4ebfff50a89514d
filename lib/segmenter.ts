// Segmenter: a loaded SAM checkpoint. encode() runs the heavy image encoder once per image;
// segment() runs the light prompt decoder per prompt. All arguments are validated here, before
// any native call.
import { loadSettings, PRECISIONS, resolveBinding } from './backends.js';
import { ImageEmbedding, nativeEmbedding } from './embedding.js';
import { abortError, invalidRange, invalidType, untilAborted, withCallerStack } from './errors.js';
import { checkPixelLimit, decodeForEncoder, recyclePixels } from './image.js';
import { masksFromDecode, type Mask } from './mask.js';
import { resolveModelDirectory } from './model-dir.js';
import { checkResizable, resizedSize, type MaskFrame } from './mask-prompt.js';
import type {
  NativeDecodeResult,
  NativeEmbedding,
  NativePrompt,
  NativeSamConfig,
  NativeSamModel,
} from './native.js';
import { toNativePrompt, type Prompt } from './prompt.js';
import { WorkQueue } from './queue.js';
import { SegmentSession, type SessionOptions } from './session.js';
import { segmentFrames, type FrameResult, type FrameSource, type FrameStreamOptions } from './stream.js';
import type { DecodedImage, ImageInput } from './types.js';
import {
  abortSignal,
  boolean,
  finiteNumber,
  float32Array,
  integerInRange,
  nonEmptyString,
  oneOf,
  plainObject,
} from './validate.js';

/**
 * Where the model runs: `'cuda'` needs the CUDA-enabled build (`npm run build:cuda`) and a
 * usable NVIDIA GPU; `'auto'` picks CUDA when both are present, CPU otherwise.
 */
export type Device = 'cpu' | 'cuda' | 'auto';

/**
 * Arithmetic of the image encoder on CUDA: `'fp32'` matches the reference to fp32 rounding;
 * `'fp16'` / `'bf16'` run its matrix products and attention on tensor cores (fp32 accumulation),
 * several times faster, with masks that can differ from the reference on a few boundary pixels.
 * The prompt encoder and mask decoder always run in fp32, and the CPU backend always in fp32.
 */
export type Precision = 'fp32' | 'fp16' | 'bf16';

/**
 * Arithmetic of the image encoder's matrix products (linear layers, attention) on CPU: `'bf16x3'`
 * splits each fp32 operand into two bf16 parts and sums three of their products in fp32 on Intel
 * AMX tiles (Sapphire Rapids and later), its GEMMs 2.2–3.3× faster than fp32 (encoders ~1.6×) with
 * ~4e-6 relative error per matrix product (torch's "high" float32 matmul precision; fp32 is ~4e-7);
 * `'fp32'` runs OpenBLAS fp32 throughout. The text tower and the decoders always run in fp32; CUDA
 * ignores this option.
 */
export type CpuMatmul = 'bf16x3' | 'fp32';

/** Model hyperparameters read from the checkpoint's config.json. */
export type SamConfig = Readonly<NativeSamConfig>;

export interface LoadOptions {
  /**
   * Checkpoint directory in the Hugging Face transformers layout: `config.json`,
   * `model.safetensors` and (optionally) `preprocessor_config.json`, or a model registry id
   * (`'sam-vit-base'`, ...; see `omniseg pull`), downloaded into the cache on first use. Required.
   */
  model: string;
  /**
   * Backend. Default: `'auto'` (CUDA when the CUDA build and a usable GPU are present, else CPU);
   * `'cuda'` throws, naming the reason, when CUDA is unusable. `OMNISEG_DEVICE=cpu` in the
   * environment makes `'auto'` pick the CPU.
   */
  device?: Device;
  /**
   * Arithmetic of the image encoder on CUDA (ignored on CPU, which is always fp32).
   * Default: `'fp32'`.
   */
  precision?: Precision;
  /**
   * Arithmetic of the image encoder's matrix products (linear layers, attention) on CPU: `'bf16x3'`
   * on CPUs with AMX (Intel Sapphire Rapids and later) runs them 2.2–3.3× faster (the encoder
   * ~1.6×) with ~4e-6 relative error per matrix product (see {@link CpuMatmul}); `'fp32'` runs
   * OpenBLAS fp32 throughout. Ignored on CUDA; on CPUs without AMX it runs as fp32. Default:
   * `'bf16x3'`.
   */
  cpuMatmul?: CpuMatmul;
  /** Worker threads for the native core, 1 to 1024. Default: the machine's hardware threads. */
  threads?: number;
  /**
   * Refuse images with more pixels than this (width × height) before decoding them; 0 disables
   * the check. Default: 268402689 (sharp's default, 0x3FFF²).
   */
  limitInputPixels?: number;
}

export interface SegmentOptions {
  /**
   * Return SAM's 3 multimask outputs per prompt set (useful for ambiguous prompts such as a
   * single click) instead of its single-mask output. Default: `false`.
   */
  multimask?: boolean;
  /** Logit threshold for the binary masks at image size. Default: `0` (SAM's `mask_threshold`). */
  threshold?: number;
  /**
   * Return each mask as its COCO run lengths, computed by the native decode off the JS thread (on
   * the GPU with CUDA, so only the runs leave it), instead of its pixels: `mask.toRLE()`, `area`
   * and `box` then read the runs, and `mask.data` is decoded from them on first use. For callers
   * that want RLE (the server's `format: "rle"`): it saves the pixel pass on the event loop
   * (~5 ms per 1080p mask) and the transfer of the mask bytes. Default: `false`.
   */
  rle?: boolean;
  /**
   * Cancels the call if its native work has not started yet (see `EncodeOptions.signal`).
   * Default: none.
   */
  signal?: AbortSignal;
}

/** The most images one {@link Segmenter.encodeBatch} call takes. */
export const MAX_ENCODE_BATCH = 64;

export interface EncodeOptions {
  /**
   * Cancels the call. Native calls on one Segmenter wait in a queue (encodes one at a time,
   * decodes one at a time); an already-aborted signal rejects at once, and a call aborted before
   * its native work started never starts it. Either way, and also when native work already
   * running is aborted (it cannot be interrupted: it finishes in the background and its result
   * is freed), the promise rejects at once with an `AbortError` (`name === 'AbortError'`, the
   * signal's reason as `cause`). Default: none.
   */
  signal?: AbortSignal;
}

export interface SegmentResult {
  /**
   * Masks in prompt order, then output order: for each box (or the single prompt set when there
   * are no boxes), 3 masks with `multimask`, else 1.
   */
  masks: Mask[];
  timings: {
    /** Milliseconds the native encode took; 0 when segment() was given an ImageEmbedding. */
    encodeMs: number;
    /** Milliseconds the native decode took (prompt encoder, mask decoder, post-processing). */
    decodeMs: number;
  };
}

/** multimask / threshold of segment() and session() options, validated, with their defaults. */
function decodeSettings(opts: Record<string, unknown>): { multimask: boolean; threshold: number } {
  return {
    multimask: opts.multimask === undefined ? false : boolean(opts.multimask, 'multimask'),
    threshold: opts.threshold === undefined ? 0 : finiteNumber(opts.threshold, 'threshold'),
  };
}

/** A loaded SAM model. Create it with `Segmenter.load()`; free it with `dispose()`. */
export class Segmenter {
  /** The model's hyperparameters (image size, embedding size, low-res mask size, ...). */
  readonly config: SamConfig;
  /** The backend the model runs on. */
  readonly device: 'cpu' | 'cuda';
  /** Arithmetic of the image encoder (always `'fp32'` on CPU). */
  readonly precision: Precision;
  /**
   * Arithmetic of the image encoder's matrix products (linear layers, attention) as it runs:
   * `'bf16x3'` only on a CPU with AMX when it was asked for; `'fp32'` otherwise (and always on
   * CUDA).
   */
  readonly cpuMatmul: CpuMatmul;
  /** Worker threads of the native core. */
  readonly threads: number;
  /** Pixel limit applied to every image (0: none). */
  readonly limitInputPixels: number;

  #model: NativeSamModel | undefined;
  /** Native encodes, one at a time (each uses every thread of the native pool); abortable while queued. */
  readonly #encodes = new WorkQueue(1);
  /** Native decodes, one at a time, next to the encodes; abortable while queued. */
  readonly #decodes = new WorkQueue(1);

  private constructor(model: NativeSamModel, threads: number, limitInputPixels: number) {
    this.#model = model;
    this.config = Object.freeze({ ...model.config });
    this.device = model.config.device;
    this.precision = model.config.precision;
    this.cpuMatmul = model.config.cpuMatmul ?? 'fp32'; // a binding without the option runs fp32
    this.threads = threads;
    this.limitInputPixels = limitInputPixels;
  }

  /**
   * Loads a checkpoint directory.
   * @throws TypeError / RangeError for invalid options; Error when the directory is missing, the
   *   checkpoint is invalid, CUDA is requested but unusable, or the native addon is not built.
   */
  static async load(options: LoadOptions): Promise<Segmenter> {
    const context = new Error();
    const opts = plainObject(
      options,
      'options',
      'an object {model, device?, precision?, cpuMatmul?, threads?, limitInputPixels?}',
    );
    const model = nonEmptyString(opts.model, 'model');
    const { device, cpuMatmul, threads, limitInputPixels } = loadSettings(opts);
    const precision = opts.precision === undefined ? 'fp32' : oneOf(opts.precision, 'precision', PRECISIONS);
    const dir = await resolveModelDirectory(model, 'sam');
    const chosen = await resolveBinding(device);
    const binding = chosen.binding;
    const threadCount = threads ?? binding.hardwareThreads();
    try {
      const samModel = await binding.loadSam(dir, {
        threads: threadCount,
        device: chosen.device,
        precision: chosen.device === 'cuda' ? precision : 'fp32',
        cpuMatmul,
      });
      return new Segmenter(samModel, threadCount, limitInputPixels);
    } catch (error) {
      throw withCallerStack(error, context);
    }
  }

  /**
   * Runs the image encoder on an image (path, encoded bytes or raw pixels).
   * @returns the embedding, to pass to segment() any number of times; dispose it when done.
   */
  async encode(image: ImageInput, options: EncodeOptions = {}): Promise<ImageEmbedding> {
    const context = new Error();
    this.#live();
    const opts = plainObject(options, 'options', 'an object {signal?}');
    const signal = optionalSignal(opts.signal);
    throwIfAborted(signal);
    // (an abort while sharp decodes rejects at once; the decode's pixels are then dropped)
    const decoded = await untilAborted(decodeForEncoder(image, { limitInputPixels: this.limitInputPixels }), signal);
    return this.#wrap(await this.#encodeNative(decoded, context, signal));
  }

  /**
   * Runs the image encoder on several images in one native pass: every GEMM, layer norm and MLP
   * of the encoder covers the whole batch (attention runs per image), which keeps a GPU busier
   * than one image at a time. The embeddings equal encode()'s, one per image in order (within
   * float rounding: GEMM kernels that split rows differently, such as OpenBLAS's on AMD Zen, change
   * the last bits); each reports the batch's encodeMs.
   * @throws TypeError / RangeError for invalid arguments (an empty array, more than
   *   {@link MAX_ENCODE_BATCH} images); the errors of encode() for an image.
   */
  async encodeBatch(images: readonly ImageInput[], options: EncodeOptions = {}): Promise<ImageEmbedding[]> {
    const context = new Error();
    this.#live();
    const what = `an array of 1 to ${MAX_ENCODE_BATCH} images`;
    if (!Array.isArray(images)) throw invalidType(what, 'images', images);
    if (images.length === 0 || images.length > MAX_ENCODE_BATCH) throw invalidRange(what, 'images', images);
    const opts = plainObject(options, 'options', 'an object {signal?}');
    const signal = optionalSignal(opts.signal);
    throwIfAborted(signal);
    const decoded = await untilAborted(
      Promise.all(images.map((image) => decodeForEncoder(image, { limitInputPixels: this.limitInputPixels }))),
      signal,
    );
    decoded.forEach((image, i) => this.#checkResizable(image, `images[${i}]`));
    throwIfAborted(signal);
    const natives = await this.#runEncode(
      decoded,
      (model) => model.encodeBatch(decoded.map((d) => ({ pixels: d.data, width: d.width, height: d.height }))),
      context,
      signal,
      (late) => late.forEach((e) => e.dispose()),
    );
    return natives.map((e) => this.#wrap(e));
  }

  /**
   * Wraps a saved embedding (from `ImageEmbedding.toFloat32Array()` or `omniseg encode
   * --save-embedding`) of a width × height image.
   */
  embeddingFromFloat32Array(data: Float32Array, width: number, height: number): ImageEmbedding {
    const model = this.#live();
    const [w, h] = this.#checkSaved(data, width, height);
    return this.#wrap(model.embeddingFromCHW(data, w, h));
  }

  /**
   * embeddingFromFloat32Array made in a worker thread (on CUDA, the upload waits for the device
   * there, not on the event loop); `data` is copied when it is called.
   */
  async embeddingFromFloat32ArrayAsync(data: Float32Array, width: number, height: number): Promise<ImageEmbedding> {
    const context = new Error();
    const model = this.#live();
    const [w, h] = this.#checkSaved(data, width, height);
    try {
      return this.#wrap(await model.embeddingFromCHWAsync(data, w, h));
    } catch (error) {
      throw withCallerStack(error, context);
    }
  }

  /** A saved embedding's arguments, checked: [width, height]. */
  #checkSaved(data: Float32Array, width: number, height: number): [number, number] {
    const [c, e] = [this.config.embeddingDim, this.config.embeddingSize];
    const values = c * e * e;
    float32Array(data, 'data', values, `a Float32Array of ${values} finite values (${c}x${e}x${e})`);
    const w = integerInRange(width, 'width', 1);
    const h = integerInRange(height, 'height', 1);
    // (the masks of every decode will be w × h bytes: the image limit holds here too)
    checkPixelLimit(w * h, this.limitInputPixels, 'width × height', w * h);
    checkResizable(w, h, this.config.longestEdge, 'width × height');
    return [w, h];
  }

  /**
   * Segments an image (encoding it first) or an already encoded image.
   *
   * Several boxes give one set of masks per box, decoded in one native call; points, if also
   * given, are shared by every box. An image given here is encoded, decoded and its embedding
   * freed; encode() once and pass the embedding to segment the same image several times.
   * @throws TypeError / RangeError for invalid arguments (coordinates outside the image, no
   *   prompt, ...); Error for a disposed Segmenter or ImageEmbedding.
   */
  async segment(
    input: ImageInput | ImageEmbedding,
    prompt: Prompt,
    options: SegmentOptions = {},
  ): Promise<SegmentResult> {
    const context = new Error();
    this.#live();
    const opts = plainObject(options, 'options', 'an object {multimask?, threshold?, rle?, signal?}');
    const settings = { ...decodeSettings(opts), rle: opts.rle === undefined ? false : boolean(opts.rle, 'rle') };
    const signal = optionalSignal(opts.signal);

    if (input instanceof ImageEmbedding) {
      const embedding = nativeEmbedding(input, this);
      const frame = this.#maskFrame(embedding.resizedWidth, embedding.resizedHeight);
      const nativePrompt = await toNativePrompt(prompt, input.width, input.height, this.config.lowResSize, settings, frame);
      return this.#decode(embedding, nativePrompt, 0, context, signal);
    }
    throwIfAborted(signal);
    const image = await untilAborted(decodeForEncoder(input, { limitInputPixels: this.limitInputPixels }), signal);
    const frame = this.#maskFrame(...resizedSize(image.width, image.height, this.config.longestEdge));
    const nativePrompt = await toNativePrompt(prompt, image.width, image.height, this.config.lowResSize, settings, frame);
    const embedding = await this.#encodeNative(image, context, signal);
    try {
      return await this.#decode(embedding, nativePrompt, embedding.encodeMs, context, signal);
    } finally {
      embedding.dispose();
    }
  }

  /**
   * Starts an interactive session on an image (encoded once, here) or on an embedding (used as
   * it is, and not disposed by the session). Each `session.add(prompt)` is one round, decoded
   * with the clicks and scribbles of all rounds and the previous round's best mask logits.
   * @throws TypeError / RangeError for invalid options; the errors of encode() for an image.
   */
  async session(input: ImageInput | ImageEmbedding, options: SessionOptions = {}): Promise<SegmentSession> {
    this.#live();
    const opts = plainObject(options, 'options', 'an object {multimask?, threshold?, signal?}');
    const settings = decodeSettings(opts);
    const signal = optionalSignal(opts.signal);
    if (input instanceof ImageEmbedding) {
      nativeEmbedding(input, this);
      return new SegmentSession(this, input, false, settings);
    }
    const embedding = await this.encode(input, signal === undefined ? {} : { signal });
    return new SegmentSession(this, embedding, true, settings);
  }

  /**
   * Segments a stream of frames (an AsyncIterable or Iterable of images, or a Readable in object
   * mode) with one prompt, yielding one result per frame, in frame order:
   *
   *     for await (const frame of sam.segmentStream(frames, { points }, { follow: true })) frame.best;
   *
   * Image decoding, encoding and mask decoding of successive frames overlap, with at most
   * `maxFramesInFlight` frames (default 3) read from the source and not yet consumed: the source
   * is read only as fast as the results are consumed. Each result is yielded as soon as it is
   * done, without waiting on the source (whose next frame may depend on it). The prompt is checked
   * (all but its coordinates, checked against each frame) and copied when called. `follow: true` decodes each frame after the
   * first from the previous frame's best mask (its box and low-res logits). Each frame's embedding
   * is freed once its masks are decoded; ending the iteration early (`break`) cancels queued work,
   * frees what is pending and closes the source. See `FrameStreamOptions`.
   * @throws TypeError / RangeError at once for invalid arguments; the iteration rejects at the
   *   first frame that fails, or where the source fails (its message starts with
   *   `frame <index>: `), after yielding the frames before it.
   */
  segmentStream(
    frames: FrameSource,
    prompt: Prompt,
    options: FrameStreamOptions = {},
  ): AsyncGenerator<FrameResult, void, undefined> {
    this.#live();
    return segmentFrames(this, frames, prompt, options);
  }

  /** Frees the model's native memory. Idempotent; later calls throw. Embeddings stay valid until disposed. */
  dispose(): void {
    this.#model?.dispose();
    this.#model = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  #live(): NativeSamModel {
    if (this.#model === undefined) throw new Error('The Segmenter has been disposed; call Segmenter.load() again');
    return this.#model;
  }

  /** Where an image resized to resizedWidth × resizedHeight lies in the model input (for mask prompts). */
  #maskFrame(resizedWidth: number, resizedHeight: number): MaskFrame {
    return { resizedWidth, resizedHeight, imageSize: this.config.imageSize, lowResSize: this.config.lowResSize };
  }

  #wrap(embedding: NativeEmbedding): ImageEmbedding {
    const { embeddingDim, embeddingSize } = this.config;
    return new ImageEmbedding(embedding, this, [embeddingDim, embeddingSize, embeddingSize]);
  }

  /**
   * The processor resizes the longest side to longestEdge: a side that would round to 0 pixels
   * (a 2049 × 1 image for a 1024-px model) cannot be encoded. Refused here, by name, rather than
   * by the native preprocessing.
   */
  #checkResizable(image: DecodedImage, param: string): void {
    checkResizable(image.width, image.height, this.config.longestEdge, param);
  }

  async #encodeNative(image: DecodedImage, context: Error, signal?: AbortSignal): Promise<NativeEmbedding> {
    this.#checkResizable(image, 'image');
    return this.#runEncode(
      [image],
      (model) => model.encode(image.data, image.width, image.height, 3),
      context,
      signal,
      (late) => late.dispose(),
    );
  }

  /**
   * A native encode of `images` through the encoder queue. Their pixels are the native side's
   * until the call settles, and go back for reuse then (recyclePixels), or at once when the call
   * never started (cancelled while queued).
   */
  async #runEncode<T>(
    images: readonly DecodedImage[],
    call: (model: NativeSamModel) => Promise<T>,
    context: Error,
    signal: AbortSignal | undefined,
    discardLate: (late: T) => void,
  ): Promise<T> {
    let started = false;
    const recycle = () => images.forEach((image) => recyclePixels(image.data));
    try {
      return await this.#encodes.run(
        () => {
          const pending = call(this.#live());
          started = true;
          return pending.finally(recycle);
        },
        signal,
        discardLate,
      );
    } catch (error) {
      throw withCallerStack(error, context);
    } finally {
      if (!started) recycle();
    }
  }

  async #decode(
    embedding: NativeEmbedding,
    prompt: NativePrompt,
    encodeMs: number,
    context: Error,
    signal?: AbortSignal,
  ): Promise<SegmentResult> {
    let result: NativeDecodeResult;
    try {
      result = await this.#decodes.run(() => {
        const model = this.#live();
        if (embedding.disposed) throw new Error('The ImageEmbedding has been disposed; call segmenter.encode() again');
        return model.decode(embedding, prompt);
      }, signal);
    } catch (error) {
      throw withCallerStack(error, context);
    }
    const masks = masksFromDecode(result, {
      promptCount: prompt.promptCount,
      width: embedding.width,
      height: embedding.height,
      lowResSize: this.config.lowResSize,
      threshold: prompt.threshold,
    });
    return { masks, timings: { encodeMs, decodeMs: result.decodeMs } };
  }
}

function optionalSignal(value: unknown): AbortSignal | undefined {
  return value === undefined ? undefined : abortSignal(value, 'signal');
}

/** Rejects before any work (such as decoding the image) when the signal is already aborted. */
function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw abortError(signal);
}

/** `value` checked to be a loaded Segmenter (a stand-in with the same methods is refused by name). */
export function segmenterArg(value: unknown, param: string): Segmenter {
  if (!(value instanceof Segmenter)) throw invalidType('a Segmenter (Segmenter.load)', param, value);
  return value;
}
