// Referrer: a loaded CLIPSeg checkpoint that turns a text and/or a reference image into a heat
// map over an image (the text-to-image response map of TRIS). All arguments are validated here,
// before any native call; tokenising and preprocessing run in TypeScript, the model natively.
import { loadSettings, resolveBinding } from './backends.js';
import { ClipTokenizer } from './clip/tokenizer.js';
import {
  clipModelInput,
  readClipImageProcessorConfig,
  type ClipImageProcessorConfig,
} from './clip/image-processor.js';
import { abortError, invalidRange, invalidType, untilAborted, withCallerStack } from './errors.js';
import { decodeForEncoder, decodeImage, readInPlace } from './image.js';
import type { NativeClipSegConfig, NativeClipSegModel } from './native.js';
import { resolveModelDirectory } from './model-dir.js';
import { checkModelType } from './model-text.js';
import { WorkQueue } from './queue.js';
import {
  fuseEmbeddings,
  querySpec,
  type HeatmapOptions,
  type PromptSpec,
  type QuerySpec,
} from './referring/prompts.js';
import {
  ensembleEmbedding,
  fillTemplate,
  labelSettings,
  rankByQuery,
  ownPixels,
  segmentMasks,
  topLabels,
  vocabularyList,
  zeroShot,
  type LabelOptions,
  type RankedSegment,
  type SegmentLabel,
} from './referring/labels.js';
import { handleOf, ReferrerImage } from './referring/referrer-image.js';
import { TextEmbeddings } from './referring/text-cache.js';
import { cropAround, promptOfCrop, refRegion, visualPrompt, visualPromptInPlace } from './referring/visual-prompt.js';
import type { CpuMatmul, Device } from './segmenter.js';
import type { BinaryMask, ImageInput } from './types.js';
import { Mask, maskSource } from './mask.js';
import { abortSignal, nonEmptyString, optionalObject, plainObject } from './validate.js';
import { MAX_HEATMAP_PIXELS } from './referring/heatmap.js';

export { DEFAULT_TEXT_WEIGHT } from './referring/prompts.js';
export { heatmapFromLogits, MAX_HEATMAP_PIXELS } from './referring/heatmap.js';
export type { HeatmapOptions, ReferringPrompt } from './referring/prompts.js';

export { LABEL_EMBEDDING_CACHE_SIZE, TEXT_EMBEDDING_CACHE_SIZE } from './referring/text-cache.js';
export { ReferrerImage } from './referring/referrer-image.js';

/** What a Referrer call takes besides its query: a signal to cancel it. */
export interface ReferrerCallOptions {
  signal?: AbortSignal;
}

/** `settings.signal`, checked (`settings` may be left out). */
function callSignal(settings: unknown): AbortSignal | undefined {
  const opts = optionalObject(settings, 'settings', 'an object {signal?}');
  return opts.signal === undefined ? undefined : abortSignal(opts.signal, 'settings.signal');
}

export interface ReferrerLoadOptions {
  /**
   * CLIPSeg checkpoint directory in the transformers layout (that of CIDAS/clipseg-rd64-refined):
   * `config.json`, `model.safetensors`, `preprocessor_config.json`, and the CLIP tokenizer
   * (`vocab.json` + `merges.txt`, or `tokenizer.json`), or the model registry id
   * `'clipseg-rd64-refined'` (see `omniseg pull`), downloaded into the cache on first use. Required.
   */
  model: string;
  /** Backend: `'cpu'`, `'cuda'` or `'auto'` (default), as for `Segmenter.load`. */
  device?: Device;
  /**
   * Arithmetic of the vision tower's matrix products (linear layers, attention) on CPU, as for
   * `Segmenter.load`: `'bf16x3'` (default; AMX CPUs only, else fp32) or `'fp32'`. The text tower
   * and decoder always run in fp32.
   */
  cpuMatmul?: CpuMatmul;
  /** Worker threads for the native core, 1 to 1024. Default: the machine's hardware threads. */
  threads?: number;
  /** Refuse images with more pixels than this before decoding them; 0 disables. Default: sharp's. */
  limitInputPixels?: number;
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
  /**
   * Arithmetic of the vision tower's matrix products (linear layers, attention) as it runs
   * ('bf16x3' only on an AMX CPU).
   */
  readonly cpuMatmul: CpuMatmul;
  readonly threads: number;
  readonly limitInputPixels: number;

  #model: NativeClipSegModel | undefined;
  /** Native forward passes, one at a time (each uses every thread of the native pool). */
  readonly #queue = new WorkQueue(1);
  /** Text and label embeddings kept, and text passes in progress. */
  readonly #texts = new TextEmbeddings((ids) => this.#queue.run(() => this.#live().textEmbedding(ids)));

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
    this.cpuMatmul = model.config.cpuMatmul ?? 'fp32'; // a binding without the option runs fp32
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
    const opts = plainObject(options, 'options', 'an object {model, device?, cpuMatmul?, threads?, limitInputPixels?}');
    const name = nonEmptyString(opts.model, 'model');
    const { device, cpuMatmul, threads, limitInputPixels } = loadSettings(opts);
    const dir = await resolveModelDirectory(name, 'clipseg');
    await checkModelType(dir, 'clipseg', 'CLIPSeg');
    const [processor, tokenizer] = await Promise.all([readClipImageProcessorConfig(dir), ClipTokenizer.load(dir)]);
    const chosen = await resolveBinding(device);
    const binding = chosen.binding;
    if (binding.loadClipSeg === undefined) throw new Error('The omniseg native addon has no CLIPSeg support; rebuild it');
    const threadCount = threads ?? binding.hardwareThreads();
    let model: NativeClipSegModel;
    try {
      model = await binding.loadClipSeg(dir, { threads: threadCount, device: chosen.device, cpuMatmul });
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
   * The heat map of what `options` refers to over `image` (path, encoded bytes or raw pixels):
   * one prompt (a text, a reference image, or both), or several fused (`options.prompts`).
   * @param settings `signal` cancels the call: it rejects at once with an AbortError, and its
   *   model passes not yet started never run.
   * @throws TypeError / RangeError for invalid arguments (neither text nor refImage, an empty
   *   text, textWeight without both, ...); Error for undecodable images or a disposed Referrer.
   */
  async heatmap(image: ImageInput | ReferrerImage, options: HeatmapOptions, settings?: ReferrerCallOptions): Promise<Heatmap> {
    const [map] = await this.#heatmaps(image, [options], 'options', callSignal(settings));
    return map;
  }

  /**
   * Many-to-many: one heat map per query over `image`, the vision tower run once for all of them
   * (each query costs its prompt embeddings and one decoder pass). Queries as `heatmap`'s options.
   * @throws as `heatmap`, naming `queries[i]`; RangeError for an empty list.
   */
  async heatmaps(
    image: ImageInput | ReferrerImage,
    queries: readonly HeatmapOptions[],
    settings?: ReferrerCallOptions,
  ): Promise<Heatmap[]> {
    if (!Array.isArray(queries)) throw invalidType('an array of heat-map queries', 'queries', queries);
    if (queries.length === 0) throw invalidRange('a non-empty array', 'queries', queries);
    return this.#heatmaps(image, queries, 'queries', callSignal(settings));
  }

  /**
   * The conditional embedding [projectionDim] of a query, as the decoder is given it: the CLIP
   * text features of a text, the image features of a (region-engineered) reference image, their
   * textWeight mix, or the weighted mean over `prompts`. Text embeddings are cached per text.
   */
  async embed(options: HeatmapOptions): Promise<Float32Array> {
    const context = new Error();
    this.#live();
    const spec = querySpec(options);
    try {
      // (a copy: a text-only query's embedding is the text cache's own array)
      return (await this.#embedQuery(spec, 'options')).slice();
    } catch (error) {
      throw withCallerStack(error, context);
    }
  }

  /** CLIP text features [projectionDim] of a text (text_projection of the pooled output); cached. */
  async embedText(text: string): Promise<Float32Array> {
    this.#live();
    return (await this.#text(nonEmptyString(text, 'text'))).slice();
  }

  /**
   * Segment embeddings (USE): for each mask, the CLIP image features [projectionDim] of its visual
   * prompt (the mask's crop with the background blurred and darkened, as `visualPrompt` makes
   * for reference regions). Comparable with `embedText` / `embed` by cosine similarity.
   * @param masks `Mask`s or `{data, width, height}` binary masks at the image's size, non-empty.
   * @throws TypeError / RangeError naming `masks[i]` (wrong size, no pixel set).
   */
  async embedSegments(
    image: ImageInput,
    masks: readonly BinaryMask[],
    options?: Pick<LabelOptions, 'signal'>,
  ): Promise<Float32Array[]> {
    const context = new Error();
    this.#live();
    if (!Array.isArray(masks)) throw invalidType('an array of masks {data, width, height}', 'masks', masks);
    const { signal } = labelSettings(options, 1);
    // The masks' pixels are copied now (the caller may change or reuse them once this returns);
    // a Mask from an rle decode keeps its run lengths, which no one else can reach.
    const given = masks.map((m: unknown) => ownPixels(m));
    try {
      const decoded = await untilAborted(decodeForEncoder(image, { limitInputPixels: this.limitInputPixels }), signal);
      const list = segmentMasks(given, 'masks', decoded.width, decoded.height);
      const out = [];
      const rgb = { ...decoded, channels: 3 } as const;
      for (const [i, mask] of list.entries()) {
        if (signal?.aborted) throw abortError(signal);
        // All of it is this call's own, read in place off the JS thread. A Mask's run lengths go
        // to the native composition as they are (never decoded here), cropped to its box (found
        // from the runs).
        const prompt =
          mask instanceof Mask && mask.area > 0
            ? await promptOfCrop(rgb, maskSource(mask), cropAround(mask.box, rgb.width, rgb.height))
            : await visualPromptInPlace(rgb, { mask }, `masks[${i}]`);
        // (the prompt's pixels are new and never handed out: the native worker reads them in place)
        const p = clipModelInput(prompt, this.processor, true);
        out.push(await this.#queue.run(() => this.#live().imageEmbedding(p.pixels, p.width, p.height), signal));
      }
      signal?.throwIfAborted(); // (aborted during the last pass: it resolved meanwhile)
      return out;
    } catch (error) {
      throw withCallerStack(error, context);
    }
  }

  /**
   * Top-k labels per mask from `vocabulary` (CLIP zero-shot classification of each segment's
   * embedding, `embedSegments`, against each label's prompt-ensembled text embedding; see
   * `DEFAULT_LABEL_TEMPLATES`), with softmax probabilities over the vocabulary.
   * @throws TypeError / RangeError for invalid masks, vocabulary (1–4096 distinct non-empty
   *   strings) or options.
   */
  async label(
    image: ImageInput,
    masks: readonly BinaryMask[],
    vocabulary: readonly string[],
    options?: LabelOptions,
  ): Promise<SegmentLabel[][]> {
    this.#live();
    const labels = vocabularyList(vocabulary);
    const { topK, templates, signal } = labelSettings(options, labels.length);
    const withSignal = signal === undefined ? {} : { signal };
    const segments = await this.embedSegments(image, masks, withSignal);
    const embeddings = await this.#labelEmbeddings(labels, templates, signal);
    return segments.map((seg) => topLabels(zeroShot(seg, embeddings, this.config.logitScale).probabilities, labels, topK));
  }

  /**
   * Each label's text embedding for `label`: the normalised mean of the normalised embeddings of
   * the label under every template (CLIP's prompt ensembling). Texts are cached.
   */
  async labelEmbeddings(
    vocabulary: readonly string[],
    options?: Pick<LabelOptions, 'templates' | 'signal'>,
  ): Promise<Float32Array[]> {
    this.#live();
    const labels = vocabularyList(vocabulary);
    const { templates, signal } = labelSettings(options, labels.length);
    // (the caller's own copies: the cache's arrays are shared)
    return (await this.#labelEmbeddings(labels, templates, signal)).map((e) => e.slice());
  }

  /** labelEmbeddings of checked arguments, as the cache holds them (not to be modified). */
  async #labelEmbeddings(labels: readonly string[], templates: readonly string[], signal?: AbortSignal): Promise<Float32Array[]> {
    const out = [];
    for (const label of labels) {
      if (signal?.aborted) throw abortError(signal);
      out.push(
        await this.#texts.label(templates, label, async () => {
          const perTemplate = [];
          for (const t of templates) perTemplate.push(await this.#text(fillTemplate(t, label)));
          return ensembleEmbedding(perTemplate);
        }),
      );
    }
    return out;
  }

  /**
   * Masks ordered by how well they match a query: a text, or any heat-map query (a reference
   * image, a mix, fused prompts). Score: cosine similarity of the segment's embedding
   * (`embedSegments`) and the query's (`embed`), best first.
   */
  async rank(image: ImageInput, masks: readonly BinaryMask[], query: string | HeatmapOptions): Promise<RankedSegment[]> {
    this.#live();
    const q = typeof query === 'string' ? { text: nonEmptyString(query, 'query') } : query;
    const spec = querySpec(q, 'query');
    const segments = await this.embedSegments(image, masks);
    return rankByQuery(segments, await this.#embedQuery(spec, 'query'));
  }

  /**
   * Runs the vision tower on `image` once and keeps its activations (a few MB: for
   * clipseg-rd64-refined 3 × 485 × 768 floats, 4.5 MB), so that `heatmap` / `heatmaps` on the
   * returned ReferrerImage run only the prompt embeddings and the decoder (~20 ms instead of
   * ~450 ms on 2 CPU threads). `dispose()` it when done.
   * @param settings `signal` cancels the call, as for `heatmap` (an encode that finishes after it
   *   is freed).
   */
  async encode(image: ImageInput, settings?: ReferrerCallOptions): Promise<ReferrerImage> {
    const context = new Error();
    this.#live();
    const signal = callSignal(settings);
    try {
      signal?.throwIfAborted();
      const decoded = await untilAborted(decodeForEncoder(image, { limitInputPixels: this.limitInputPixels }), signal);
      const release = readInPlace(decoded.data);
      try {
        const target = clipModelInput(decoded, this.processor, release !== undefined);
        const handle = await this.#queue.run(
          () => this.#live().encodeImage(target.pixels, target.width, target.height),
          signal,
          (late) => late.dispose(),
        );
        return new ReferrerImage(this, handle, decoded.width, decoded.height);
      } finally {
        release?.();
      }
    } catch (error) {
      throw withCallerStack(error, context);
    }
  }

  async #heatmaps(
    image: ImageInput | ReferrerImage,
    queries: readonly unknown[],
    param: string,
    signal: AbortSignal | undefined,
  ): Promise<Heatmap[]> {
    const context = new Error();
    this.#live();
    signal?.throwIfAborted();
    const start = performance.now();
    const specs = queries.map((q, i) => querySpec(q, queries.length === 1 && param === 'options' ? param : `${param}[${i}]`));
    const encoded = image instanceof ReferrerImage ? image : undefined;
    if (encoded !== undefined && encoded.referrer !== this) {
      throw invalidType('an image encoded by this Referrer (Referrer.encode)', 'image', image);
    }
    let result;
    let modelStart;
    let dims: { width: number; height: number };
    let release: (() => void) | undefined;
    try {
      let target: ReturnType<typeof clipModelInput> | undefined;
      if (encoded === undefined) {
        const decoded = await untilAborted(decodeForEncoder(image as ImageInput, { limitInputPixels: this.limitInputPixels }), signal);
        release = readInPlace(decoded.data);
        target = clipModelInput(decoded, this.processor, release !== undefined);
        dims = decoded;
      } else {
        dims = encoded;
      }
      const pixels = specs.length * dims.width * dims.height;
      if (pixels > MAX_HEATMAP_PIXELS) {
        const what = `at most ${MAX_HEATMAP_PIXELS} heat-map pixels in all (here ${specs.length} × ${dims.width} × ${dims.height})`;
        throw specs.length > 1 ? invalidRange(what, 'queries', queries) : invalidRange(what, 'image', image);
      }
      modelStart = performance.now();
      const embeddings = [];
      for (const [i, spec] of specs.entries()) {
        embeddings.push(await this.#embedQuery(spec, specs.length === 1 && param === 'options' ? param : `${param}[${i}]`, signal));
      }
      const batch = new Float32Array(embeddings.length * this.config.projectionDim);
      embeddings.forEach((e, i) => batch.set(e, i * this.config.projectionDim));
      // the heat maps at the image's size come from the native worker too
      const heat = { heatmapWidth: dims.width, heatmapHeight: dims.height };
      result = await this.#queue.run(
        () =>
          encoded !== undefined
            ? this.#live().decode(handleOf(encoded), batch, heat)
            : this.#live().forward(target!.pixels, target!.width, target!.height, { embedding: batch, ...heat }),
        signal,
      );
    } catch (error) {
      throw withCallerStack(error, context);
    } finally {
      release?.();
    }
    const decoded = dims;
    const postStart = performance.now();
    const { size } = result;
    const P = this.config.projectionDim;
    const maps = specs.map((spec, i) => {
      const logits = result.logits.slice(i * size * size, (i + 1) * size * size);
      const only = spec.prompts.length === 1 ? spec.prompts[0].text : undefined;
      return {
        width: decoded.width,
        height: decoded.height,
        // (each the native worker's own buffer: no copy, and a kept heat map keeps no other's memory)
        data: result.heatmaps![i],
        size,
        logits,
        conditional: result.conditional.slice(i * P, (i + 1) * P),
        ...(only !== undefined ? { inputIds: this.#ids(only) } : {}),
      };
    });
    const end = performance.now();
    const timings: HeatmapTimings = {
      preprocessMs: modelStart - start,
      modelMs: postStart - modelStart,
      postprocessMs: end - postStart,
      totalMs: end - start,
    };
    return maps.map((m) => ({ ...m, timings }));
  }

  /** A query's conditional embedding: each prompt's, fused by the query's weights. */
  async #embedQuery(spec: QuerySpec, param: string, signal?: AbortSignal): Promise<Float32Array> {
    const parts = [];
    for (const [i, prompt] of spec.prompts.entries()) {
      parts.push(await this.#embedPrompt(prompt, spec.prompts.length === 1 ? param : `${param}.prompts[${i}]`, signal));
    }
    return parts.length === 1 ? parts[0] : fuseEmbeddings(parts, spec.weights);
  }

  async #embedPrompt(prompt: PromptSpec, param: string, signal?: AbortSignal): Promise<Float32Array> {
    // (a text pass is shared by every call waiting for that text: this call only stops waiting)
    const text = prompt.text === undefined ? undefined : await untilAborted(this.#text(prompt.text), signal);
    if (prompt.refImage === undefined) return text as Float32Array;
    const visual = await this.#visual(prompt.refImage, prompt.refRegion, param, signal);
    if (text === undefined) return visual;
    const w = prompt.textWeight as number;
    return fuseEmbeddings([text, visual], [w, 1 - w]);
  }

  /** Token ids of a text, truncated to what the model takes. */
  #ids(text: string): Int32Array {
    const maxLength = Math.min(this.tokenizer.modelMaxLength, this.config.maxPositions);
    return this.tokenizer.encode(text, { maxLength }).inputIds;
  }

  /** The kept text embedding (not a copy: callers must not modify it). */
  #text(text: string): Promise<Float32Array> {
    return this.#texts.text(this.#ids(text));
  }

  /** Image features of a reference image, with its region's visual prompt engineering. */
  async #visual(refImage: ImageInput, region: unknown, param: string, signal?: AbortSignal): Promise<Float32Array> {
    const decoding = decodeImage(refImage, { limitInputPixels: this.limitInputPixels }).catch((error: unknown) => {
      throw renameImageParam(error, `${param}.refImage`);
    });
    const ref = await untilAborted(decoding, signal);
    const r = region === undefined ? undefined : refRegion(region, `${param}.refRegion`, ref.width, ref.height);
    // (visualPrompt copies the region's crop now: the caller's mask is not read later)
    const prompt = await visualPrompt({ ...ref, channels: 3 }, r, `${param}.refRegion`);
    // (the decoded reference or its new prompt, never handed out: the native worker reads it in place)
    const p = clipModelInput(prompt, this.processor, true);
    return this.#queue.run(() => this.#live().imageEmbedding(p.pixels, p.width, p.height), signal);
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
