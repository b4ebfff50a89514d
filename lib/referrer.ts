// Referrer: a loaded CLIPSeg checkpoint that turns a text and/or a reference image into a heat
// map over an image (the text-to-image response map of TRIS). All arguments are validated here,
// before any native call; tokenising and preprocessing run in TypeScript, the model natively.
import { bindingFor } from './backends.js';
import { ClipTokenizer } from './clip/tokenizer.js';
import {
  preprocessClipImage,
  readClipImageProcessorConfig,
  type ClipImageProcessorConfig,
} from './clip/image-processor.js';
import { invalidType, withCallerStack } from './errors.js';
import { DEFAULT_LIMIT_INPUT_PIXELS, decodeImage } from './image.js';
import type { NativeClipSegConditioning, NativeClipSegConfig, NativeClipSegModel } from './native.js';
import { assertModelDirectory } from './model-dir.js';
import { WorkQueue } from './queue.js';
import { refRegion, visualPrompt, type RefRegion } from './referring/visual-prompt.js';
import type { Device } from './segmenter.js';
import type { ImageInput } from './types.js';
import { integerInRange, nonEmptyString, numberInRange, oneOf, plainObject } from './validate.js';

/** Text weight of a prompt that has both a text and a reference image, when none is given. */
export const DEFAULT_TEXT_WEIGHT = 0.5;

const DEVICES: readonly Device[] = ['cpu', 'cuda', 'auto'];

export interface ReferrerLoadOptions {
  /**
   * CLIPSeg checkpoint directory in the transformers layout (that of CIDAS/clipseg-rd64-refined):
   * `config.json`, `model.safetensors`, `preprocessor_config.json`, and the CLIP tokenizer
   * (`vocab.json` + `merges.txt`, or `tokenizer.json`). Required.
   */
  model: string;
  /** Backend: `'cpu'`, `'cuda'` or `'auto'` (default), as for `Segmenter.load`. */
  device?: Device;
  /** Worker threads for the native core, ≥ 1. Default: the machine's hardware threads. */
  threads?: number;
  /** Refuse images with more pixels than this before decoding them; 0 disables. Default: sharp's. */
  limitInputPixels?: number;
}

/** What the heat map refers to: a text, a reference image, or both. */
export interface HeatmapOptions {
  /** A referring expression, tokenised with the checkpoint's CLIP tokenizer (truncated to fit). */
  text?: string;
  /** A reference image (visual prompt), preprocessed as the target image; the whole image is used. */
  refImage?: ImageInput;
  /**
   * A region of `refImage` (a mask at its size, a box or a scribble): the visual prompt becomes
   * the region's crop with a blurred, darkened background (CLIPSeg's visual prompt engineering,
   * see `visualPrompt`). Only with `refImage`; without it the whole reference image is used.
   */
  refRegion?: RefRegion;
  /**
   * With both `text` and `refImage`: the conditional embedding is
   * textWeight · text embedding + (1 − textWeight) · reference-image embedding. In [0, 1];
   * default 0.5. Only allowed when both are given.
   */
  textWeight?: number;
}

export interface HeatmapTimings {
  /** Decoding, resizing and normalising the image(s), and tokenising. */
  preprocessMs: number;
  /** The native forward pass (text/visual towers, vision tower, decoder). */
  modelMs: number;
  /** Sigmoid and resize to the image. */
  postprocessMs: number;
  totalMs: number;
}

export interface Heatmap {
  /** The target image's size. */
  width: number;
  height: number;
  /**
   * [height, width] row-major probabilities in [0, 1]: sigmoid of the logits, then resized from
   * size × size to width × height bilinearly with half-pixel centres (PyTorch's
   * `F.interpolate(mode='bilinear', align_corners=False)`, no antialiasing).
   */
  data: Float32Array;
  /** Side of the square logits (the model input side, e.g. 352). */
  size: number;
  /** [size, size] the model's raw logits over the processor's resized image. */
  logits: Float32Array;
  /** [projectionDim] the conditional embedding the decoder was given. */
  conditional: Float32Array;
  /** Token ids of the text, when one was given. */
  inputIds?: Int32Array;
  timings: HeatmapTimings;
}

/** A loaded CLIPSeg checkpoint. Create with `Referrer.load()`; `dispose()` when done. */
export class Referrer {
  readonly config: Readonly<NativeClipSegConfig>;
  readonly processor: Readonly<ClipImageProcessorConfig>;
  readonly tokenizer: ClipTokenizer;
  readonly device: 'cpu' | 'cuda';
  readonly threads: number;
  readonly limitInputPixels: number;

  #model: NativeClipSegModel | undefined;
  /** Native forward passes, one at a time (each uses every thread of the native pool). */
  readonly #queue = new WorkQueue(1);

  private constructor(
    model: NativeClipSegModel,
    processor: ClipImageProcessorConfig,
    tokenizer: ClipTokenizer,
    threads: number,
    limitInputPixels: number,
  ) {
    this.#model = model;
    this.config = Object.freeze({ ...model.config });
    this.processor = Object.freeze({ ...processor });
    this.tokenizer = tokenizer;
    this.device = model.config.device;
    this.threads = threads;
    this.limitInputPixels = limitInputPixels;
  }

  /**
   * Loads a CLIPSeg checkpoint directory with its image processor config and tokenizer.
   * @throws TypeError / RangeError for invalid options; Error naming the file when the
   *   directory, the tokenizer or the processor config is missing or malformed, when the
   *   processor's size does not suit the model (square, a multiple of the patch size), or the
   *   tokenizer has more ids than the model's vocabulary.
   */
  static async load(options: ReferrerLoadOptions): Promise<Referrer> {
    const context = new Error();
    const opts = plainObject(options, 'options', 'an object {model, device?, threads?, limitInputPixels?}');
    const dir = nonEmptyString(opts.model, 'model');
    const device = opts.device === undefined ? 'auto' : oneOf(opts.device, 'device', DEVICES);
    const threads = opts.threads === undefined ? undefined : integerInRange(opts.threads, 'threads', 1);
    const limitInputPixels =
      opts.limitInputPixels === undefined
        ? DEFAULT_LIMIT_INPUT_PIXELS
        : integerInRange(opts.limitInputPixels, 'limitInputPixels', 0);
    await assertModelDirectory(dir);
    const [processor, tokenizer] = await Promise.all([readClipImageProcessorConfig(dir), ClipTokenizer.load(dir)]);
    const chosen = bindingFor(device);
    const binding = chosen.binding;
    if (binding.loadClipSeg === undefined) throw new Error('The omniseg native addon has no CLIPSeg support; rebuild it');
    const threadCount = threads ?? binding.hardwareThreads();
    let model: NativeClipSegModel;
    try {
      model = await binding.loadClipSeg(dir, { threads: threadCount, device: chosen.device });
    } catch (error) {
      throw withCallerStack(error, context);
    }
    try {
      checkCompatible(dir, model.config, processor, tokenizer);
    } catch (error) {
      model.dispose();
      throw withCallerStack(error, context);
    }
    return new Referrer(model, processor, tokenizer, threadCount, limitInputPixels);
  }

  /**
   * The heat map of what `options` refers to over `image` (path, encoded bytes or raw pixels).
   * @throws TypeError / RangeError for invalid arguments (neither text nor refImage, an empty
   *   text, textWeight without both, ...); Error for undecodable images or a disposed Referrer.
   */
  async heatmap(image: ImageInput, options: HeatmapOptions): Promise<Heatmap> {
    const context = new Error();
    this.#live();
    const start = performance.now();
    const opts = plainObject(options, 'options', 'an object {text?, refImage?, textWeight?}');
    const text = opts.text === undefined ? undefined : nonEmptyString(opts.text, 'options.text');
    const hasRef = opts.refImage !== undefined;
    if (text === undefined && !hasRef) {
      throw invalidType('an object with text and/or refImage', 'options', options);
    }
    if (opts.refRegion !== undefined && !hasRef) {
      throw invalidType('undefined (refRegion needs refImage)', 'options.refRegion', opts.refRegion);
    }
    let textWeight: number | undefined;
    if (opts.textWeight !== undefined) {
      if (text === undefined || !hasRef) {
        throw invalidType('undefined (textWeight needs both text and refImage)', 'options.textWeight', opts.textWeight);
      }
      textWeight = numberInRange(opts.textWeight, 'options.textWeight', 0, 1);
    } else if (text !== undefined && hasRef) {
      textWeight = DEFAULT_TEXT_WEIGHT;
    }

    const conditioning: NativeClipSegConditioning = {};
    let inputIds: Int32Array | undefined;
    if (text !== undefined) {
      const maxLength = Math.min(this.tokenizer.modelMaxLength, this.config.maxPositions);
      inputIds = this.tokenizer.encode(text, { maxLength }).inputIds;
      conditioning.inputIds = inputIds;
    }
    const decoded = await decodeImage(image, { limitInputPixels: this.limitInputPixels });
    const target = preprocessClipImage(decoded, this.processor);
    if (hasRef) {
      const ref = await decodeImage(opts.refImage as ImageInput, { limitInputPixels: this.limitInputPixels }).catch(
        (error: unknown) => {
          throw renameImageParam(error, 'options.refImage');
        },
      );
      const region =
        opts.refRegion === undefined ? undefined : refRegion(opts.refRegion, 'options.refRegion', ref.width, ref.height);
      const prompt = await visualPrompt({ ...ref, channels: 3 }, region, 'options.refRegion');
      const p = preprocessClipImage(prompt, this.processor);
      Object.assign(conditioning, { promptPixels: p.pixels, promptWidth: p.width, promptHeight: p.height });
    }
    if (textWeight !== undefined) conditioning.textWeight = textWeight;
    const modelStart = performance.now();

    let result;
    try {
      result = await this.#queue.run(() => this.#live().forward(target.pixels, target.width, target.height, conditioning));
    } catch (error) {
      throw withCallerStack(error, context);
    }
    const postStart = performance.now();
    const data = heatmapFromLogits(result.logits, result.size, decoded.width, decoded.height);
    const end = performance.now();
    return {
      width: decoded.width,
      height: decoded.height,
      data,
      size: result.size,
      logits: result.logits,
      conditional: result.conditional,
      ...(inputIds !== undefined ? { inputIds } : {}),
      timings: {
        preprocessMs: modelStart - start,
        modelMs: postStart - modelStart,
        postprocessMs: end - postStart,
        totalMs: end - start,
      },
    };
  }

  /** Frees the model's native memory. Idempotent; later calls throw. */
  dispose(): void {
    this.#model?.dispose();
    this.#model = undefined;
  }

  get disposed(): boolean {
    return this.#model === undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  #live(): NativeClipSegModel {
    if (this.#model === undefined) throw new Error('The Referrer has been disposed; call Referrer.load() again');
    return this.#model;
  }
}

/**
 * sigmoid(logits) [size, size] resized to width × height: bilinear with half-pixel centres,
 * source coordinate (o + 0.5) · size / out − 0.5 clamped at 0, the upper neighbour clamped at
 * size − 1 (PyTorch's align_corners=False, without antialiasing). Computed in float64.
 */
export function heatmapFromLogits(logits: Float32Array, size: number, width: number, height: number): Float32Array {
  const prob = new Float64Array(size * size);
  for (let i = 0; i < prob.length; i++) prob[i] = 1 / (1 + Math.exp(-logits[i]));
  const tx = linearTaps(size, width);
  const ty = linearTaps(size, height);
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const { i0: y0, i1: y1, w1: wy } = ty[y];
    const r0 = y0 * size;
    const r1 = y1 * size;
    for (let x = 0; x < width; x++) {
      const { i0: x0, i1: x1, w1: wx } = tx[x];
      const top = prob[r0 + x0] * (1 - wx) + prob[r0 + x1] * wx;
      const bottom = prob[r1 + x0] * (1 - wx) + prob[r1 + x1] * wx;
      out[y * width + x] = top * (1 - wy) + bottom * wy;
    }
  }
  return out;
}

function linearTaps(inSize: number, outSize: number): { i0: number; i1: number; w1: number }[] {
  const scale = inSize / outSize;
  const taps = [];
  for (let o = 0; o < outSize; o++) {
    const src = Math.max(scale * (o + 0.5) - 0.5, 0);
    const i0 = Math.min(Math.floor(src), inSize - 1);
    const w1 = Math.min(Math.max(src - i0, 0), 1);
    taps.push({ i0, i1: Math.min(i0 + 1, inSize - 1), w1 });
  }
  return taps;
}

function checkCompatible(
  dir: string,
  config: NativeClipSegConfig,
  processor: ClipImageProcessorConfig,
  tokenizer: ClipTokenizer,
): void {
  const file = `${dir}/preprocessor_config.json`;
  if (!processor.doResize) throw new Error(`${file}: do_resize false is not supported (CLIPSeg takes a fixed square input)`);
  if (processor.width !== processor.height || processor.width % config.patchSize !== 0) {
    throw new Error(
      `${file}: size ${processor.height}x${processor.width} must be square and a multiple of the patch size ${config.patchSize}`,
    );
  }
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new Error(
      `${dir}: the tokenizer has ${tokenizer.vocabSize} ids but config.json text_config.vocab_size is ${config.vocabSize}`,
    );
  }
}

/** decodeImage's argument errors name `image`; for the reference image they should name its option. */
function renameImageParam(error: unknown, param: string): unknown {
  if ((error instanceof TypeError || error instanceof RangeError) && error.message.includes(' for image')) {
    error.message = error.message.replace(/ for image(?=[. ])/, ` for ${param}`);
  }
  return error;
}
