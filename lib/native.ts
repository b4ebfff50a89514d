// The typed boundary to the native addon (native/addon). Everything the C++ side accepts is
// validated in TypeScript before it crosses this line; the addon only converts flat, typed
// arguments. All methods that do real work return promises and run off the JS thread.
import { createRequire } from 'node:module';
import type { NativeRgb } from './clip/image-processor.js';
import { findCudaAddon, probeCudaAddonSync } from './cuda-probe.js';
import { assertElfComplete } from './elf-check.js';
import { packageRoot } from './package-root.js';

/** Model hyperparameters read from the checkpoint's config.json, as the native core sees them. */
export interface NativeSamConfig {
  /** Side of the square model input (pixels), e.g. 1024. */
  imageSize: number;
  /** Longest edge the processor resizes to (preprocessor_config.json size.longest_edge), e.g. 1024. */
  longestEdge: number;
  /** Side of the square embedding grid, e.g. 64. */
  embeddingSize: number;
  /** Channels of the image embedding, e.g. 256. */
  embeddingDim: number;
  /** Side of the low-resolution mask logits, 4 × embeddingSize, e.g. 256. */
  lowResSize: number;
  /** Masks returned with multimask output (3 for SAM). */
  numMultimaskOutputs: number;
  /** Where the model runs. */
  device: 'cpu' | 'cuda';
  /** Arithmetic of the image encoder (CUDA may run it in half precision; CPU is always fp32). */
  precision: 'fp32' | 'fp16' | 'bf16';
  /**
   * Arithmetic of the image encoder's matrix products (linear layers, attention): 'bf16x3' (AMX)
   * only where the CPU has AMX and it was asked for; 'fp32' otherwise, and on CUDA.
   */
  cpuMatmul: 'bf16x3' | 'fp32';
}

/** A CUDA device as the driver reports it. */
export interface CudaDevice {
  index: number;
  name: string;
  /** e.g. "9.0" for an H100. */
  computeCapability: string;
  /** Bytes. */
  totalMemory: number;
  /** Bytes free when probed. */
  freeMemory: number;
  multiprocessors: number;
}

/** What the addon knows of its CUDA backend. */
export interface CudaInfo {
  /**
   * A build with the CUDA backend is installed (`npm run build:cuda`, or the CUDA prebuild),
   * whether or not it loads.
   */
  compiled: boolean;
  /** A usable driver and at least one device were found (and no fatal GPU error happened since). */
  available: boolean;
  /** Why it is not available. */
  reason?: string;
  /** CUDA driver and runtime versions as integers (e.g. 13000), when compiled. */
  driverVersion?: number;
  runtimeVersion?: number;
  devices: CudaDevice[];
}

/** Prompts for one decoder call. P = promptCount prompt sets are decoded in one call. */
export interface NativePrompt {
  /** Number of prompt sets P (≥ 1). */
  promptCount: number;
  /** [P, N, 2] (x, y) in pixels of the original image, or null. */
  points: Float32Array | null;
  /** [P, N] labels: 1 positive, 0 negative, -1 "not a point", -10 padding (ignored). */
  labels: Int32Array | null;
  /** N, the number of points in each prompt set (0 when points is null). */
  pointsPerPrompt: number;
  /** [P, 4] boxes (x0, y0, x1, y1) in pixels of the original image, or null. */
  boxes: Float32Array | null;
  /** [lowResSize, lowResSize] low-res logits used as the dense mask prompt for every set, or null. */
  maskInput: Float32Array | null;
  /** true: the 3 multimask outputs; false: the single-mask output. */
  multimask: boolean;
  /** Logit threshold for the binary masks at image size (the reference uses 0). */
  threshold: number;
  /** true: the masks as COCO run lengths (`runs`, `runsPerMask`) instead of bytes. Default: false. */
  rle?: boolean;
}

export interface NativeDecodeResult {
  /** M = 3 with multimask, else 1. */
  masksPerPrompt: number;
  /** [P, M] predicted IoU. */
  iou: Float32Array;
  /** [P, M, lowResSize, lowResSize] low-res logits. */
  lowRes: Float32Array;
  /** [P, M, height, width] binary masks (0/1) at original image size, row-major; empty with `rle`. */
  masks: Uint8Array;
  /** With `rle`: each mask's COCO run lengths (column-major, from a run of zeros), back to back. */
  runs?: Uint32Array;
  /** With `rle`: [P, M], how many run lengths each mask has in `runs`. */
  runsPerMask?: Uint32Array;
  /**
   * [P, M, 5]: each mask's x0, y0, x1, y1 and area (as `maskBounds`), taken by the worker as it
   * thresholded the mask (CPU) or from its runs (`rle`); absent from a CUDA decode of pixels.
   */
  bounds?: Float64Array;
  /** Milliseconds spent in the native decode (prompt encoder + mask decoder + post-processing). */
  decodeMs: number;
}

export interface NativeEmbedding {
  /** Original image size. */
  readonly width: number;
  readonly height: number;
  /** Size after the processor's longest-edge resize (before padding). */
  readonly resizedWidth: number;
  readonly resizedHeight: number;
  /** Milliseconds the encode took (preprocessing + image encoder). */
  readonly encodeMs: number;
  /** Native bytes (host or device) it holds at most: the embedding and the decoder's image-side cache. */
  readonly bytes: number;
  /** Copy of the embedding as little-endian float32 [embeddingDim, embeddingSize, embeddingSize]. */
  toCHW(): Float32Array;
  /** toCHW in a worker thread (the device copy on CUDA waits there, not on the JS thread). */
  toCHWAsync(): Promise<Float32Array>;
  /** Frees the native memory now; later use throws. Idempotent. */
  dispose(): void;
  readonly disposed: boolean;
}

export interface NativeSamModel {
  readonly config: NativeSamConfig;
  /**
   * Native bytes the model holds (reported to V8 while held, measured again after each call): its
   * checkpoint's mapping, the weights converted at load, and the scratch its workers keep between
   * calls. Throws once disposed.
   */
  readonly bytes: number;
  /** Preprocess (resize, normalise, pad) and run the image encoder. pixels: HWC uint8, channels 3. */
  encode(pixels: Uint8Array, width: number, height: number, channels: number): Promise<NativeEmbedding>;
  /** encode() for several RGB images in one encoder pass; one embedding per image, in order. */
  encodeBatch(images: readonly { pixels: Uint8Array; width: number; height: number }[]): Promise<NativeEmbedding[]>;
  /** Wrap a saved embedding ([embeddingDim, E, E] float32) for an image of width × height. */
  embeddingFromCHW(data: Float32Array, width: number, height: number): NativeEmbedding;
  /** embeddingFromCHW in a worker thread; the data is copied before it returns. */
  embeddingFromCHWAsync(data: Float32Array, width: number, height: number): Promise<NativeEmbedding>;
  decode(embedding: NativeEmbedding, prompt: NativePrompt): Promise<NativeDecodeResult>;
  dispose(): void;
}

/** CLIPSeg hyperparameters read from the checkpoint's config.json. */
export interface NativeClipSegConfig {
  /** Side of the vision tower's configured input (config.json vision_config.image_size), e.g. 224. */
  imageSize: number;
  /** Patch side, e.g. 16; image sides must be multiples of it, and logits are (side / patch) · patch. */
  patchSize: number;
  /** Length of the conditional (text / visual prompt) embeddings, e.g. 512. */
  projectionDim: number;
  /** Token ids must lie in [0, vocabSize). */
  vocabSize: number;
  /** Most tokens per text, e.g. 77. */
  maxPositions: number;
  /** exp(clip.logit_scale), CLIP's inverse temperature for image–text similarities (e.g. 100). */
  logitScale: number;
  /** Where the model runs. */
  device: 'cpu' | 'cuda';
  /**
   * Arithmetic of the vision tower's matrix products (linear layers, attention): 'bf16x3' (AMX)
   * only where the CPU has AMX and it was asked for; 'fp32' otherwise, and on CUDA. The text tower
   * and decoder are always fp32.
   */
  cpuMatmul: 'bf16x3' | 'fp32';
}

/**
 * What a CLIPSeg forward pass is conditioned on: `inputIds` (a text), `promptPixels` (a visual
 * prompt image), both (mixed as textWeight · text + (1 − textWeight) · visual, textWeight in
 * [0, 1], default 1), or an `embedding` given directly.
 */
export interface NativeClipSegConditioning {
  /** [T] CLIP token ids (1 ≤ T ≤ maxPositions). */
  inputIds?: Int32Array;
  /** [3, promptHeight, promptWidth] normalised pixels of the visual prompt. */
  promptPixels?: NativeClipPixels;
  promptWidth?: number;
  promptHeight?: number;
  /**
   * [N, projectionDim] conditional embeddings (excludes inputIds and promptPixels): the vision
   * tower runs once, the decoder once per embedding; logits [N, size, size].
   */
  embedding?: Float32Array;
  textWeight?: number;
  /** With both: the result also carries `heatmaps` at this size (made in the native worker). */
  heatmapWidth?: number;
  heatmapHeight?: number;
}

export interface NativeClipSegResult {
  /** Side of the square logits: (image side / patchSize) · patchSize. */
  size: number;
  /** [N, size, size] segmentation logits, row-major (N = 1 unless N embeddings were given). */
  logits: Float32Array;
  /** [N, projectionDim] the conditional embedding(s) the decoder was given. */
  conditional: Float32Array;
  /** Milliseconds of native work. */
  ms: number;
  /**
   * N × [heatmapHeight, heatmapWidth] when a heat-map size was asked for, each its own buffer:
   * sigmoid of the logits, bilinear (half-pixel centres) to that size, in float32 (as
   * F.interpolate on torch.sigmoid).
   */
  heatmaps?: Float32Array[];
}

/** A query image's vision-tower activations in native memory (NativeClipSegModel.encodeImage). */
export interface NativeClipSegImage {
  /** Patch grid side. */
  readonly grid: number;
  readonly encodeMs: number;
  /** Bytes of native memory held. */
  readonly bytes: number;
  readonly disposed: boolean;
  dispose(): void;
}

/**
 * A CLIPSeg image input: normalised pixels [3, height, width], or 8-bit RGB with the
 * normalisation table ([3, 256]) that the native worker resizes (Pillow bilinear) to width ×
 * height and maps (lib/clip/image-processor.ts clipModelInput).
 */
export type NativeClipPixels = Float32Array | NativeRgb;

export interface NativeClipSegModel {
  readonly config: NativeClipSegConfig;
  /**
   * Native bytes the model holds (reported to V8 while held, measured again after each call): its
   * checkpoint's mapping, the weights converted at load, and the scratch its workers keep between
   * calls. Throws once disposed.
   */
  readonly bytes: number;
  /** CLIP text features (text_projection of the pooled output), [projectionDim]. */
  textEmbedding(inputIds: Int32Array): Promise<Float32Array>;
  /** CLIP image features (visual_projection of the pooled output) of [3, height, width] normalised pixels. */
  imageEmbedding(pixels: NativeClipPixels, width: number, height: number): Promise<Float32Array>;
  /** Segmentation logits of a square image [3, side, side] (normalised pixels) under a conditioning. */
  forward(
    pixels: NativeClipPixels,
    width: number,
    height: number,
    conditioning: NativeClipSegConditioning,
  ): Promise<NativeClipSegResult>;
  /** The vision tower alone on a square image [3, side, side]: activations for decode(). */
  encodeImage(pixels: NativeClipPixels, width: number, height: number): Promise<NativeClipSegImage>;
  /** The decoder alone on encodeImage's activations, once per embedding ([N, projectionDim]). */
  decode(
    image: NativeClipSegImage,
    embedding: Float32Array,
    options?: { heatmapWidth: number; heatmapHeight: number },
  ): Promise<NativeClipSegResult>;
  dispose(): void;
}

/** A mask's polygons, flat (native/masks/polygons.h): rings grouped by polygon, outer ring first. */
export interface NativePolygons {
  /** [V, 2] the rings' vertices (x, y), ring after ring. */
  xy: Int32Array;
  /** [R] vertices of each ring. */
  ringSizes: Uint32Array;
  /** [P] rings of each polygon: its outer ring, then its holes. */
  ringsPerPolygon: Uint32Array;
}

export interface NativeBinding {
  /** Load a transformers-format SAM directory (config.json + model.safetensors [+ preprocessor_config.json]). */
  loadSam(
    dir: string,
    options: {
      threads: number;
      device?: 'cpu' | 'cuda';
      precision?: 'fp32' | 'fp16' | 'bf16';
      /** Default 'bf16x3'; any other value than 'bf16x3' / 'fp32' throws a TypeError. */
      cpuMatmul?: 'bf16x3' | 'fp32';
    },
  ): Promise<NativeSamModel>;
  /**
   * Load a transformers-format CLIPSeg directory (config.json + model.safetensors, the layout of
   * CIDAS/clipseg-rd64-refined). Optional so that test doubles of the binding need not provide it.
   */
  loadClipSeg?(
    dir: string,
    options: { threads: number; device?: 'cpu' | 'cuda'; cpuMatmul?: 'bf16x3' | 'fp32' },
  ): Promise<NativeClipSegModel>;
  /** Threads the machine offers (hardware concurrency). */
  hardwareThreads(): number;
  /**
   * What the CPU offers: `amx`, whether it runs the bf16x3 image encoders (`cpuMatmul`). Optional
   * so that test doubles of the binding need not provide it.
   */
  cpuInfo?(): { amx: boolean };
  /** Probes the CUDA backend (never throws). */
  cudaInfo(): CudaInfo;
}

/** findInstances' arguments (native/addon/rasters.h). */
type FindInstancesArgs = [
  heat: Float32Array,
  width: number,
  height: number,
  threshold: number,
  connectivity: 4 | 8,
  minPixels: number,
  maxInstances: number,
];

/**
 * A width × height mask as the native core reads it (native/addon/rasters.h): row-major bytes
 * (non-zero inside), COCO run lengths (Uint32Array: column-major counts from a run of zeros,
 * summing to width × height) or row runs (Int32Array of [start, end) row-major index pairs, as
 * `NativeInstances.runs`).
 */
export type NativeMaskSource = Uint8Array | Uint32Array | Int32Array;

/** maskCoverage's arguments: a width × height mask and its model-input frame (native/addon/rasters.h). */
type MaskCoverageArgs = [
  mask: NativeMaskSource,
  width: number,
  height: number,
  resizedWidth: number,
  resizedHeight: number,
  imageSize: number,
  lowResSize: number,
  /** With it, the coverage f as SAM mask-prompt logits: clamp(ln(f / (1 − f)), ±logitLimit). */
  logitLimit?: number,
];

/** Kept referring instances: [K, 8] (peak, x0, y0, x1, y1, area, max, sum), their runs [R, 2] (start, end) and runs per instance. */
export interface NativeInstances {
  stats: Float64Array;
  runs: Int32Array;
  runCounts: Uint32Array;
}

/** The addon's model-free raster tools (native/addon/rasters.h); test doubles of NativeBinding leave them out. */
export interface NativeRasterTools {
  /** The polygons of a mask (any `NativeMaskSource`), traced on the calling thread. */
  tracePolygons(source: NativeMaskSource, width: number, height: number): NativePolygons;
  /** tracePolygons in a worker thread; the source is copied before it returns. */
  tracePolygonsAsync(source: NativeMaskSource, width: number, height: number): Promise<NativePolygons>;
  /** tracePolygonsAsync's polygons as the UTF-8 of their JSON (as `JSON.stringify(traceContours(…))`). */
  tracePolygonsJsonAsync(source: NativeMaskSource, width: number, height: number): Promise<Uint8Array>;
  /** COCO's compressed string of run lengths (finite integers; a RangeError otherwise). */
  countsString(counts: Uint32Array | Float64Array): string;
  /** maskBounds of the width × height mask the COCO run lengths describe, from the runs. */
  runsBounds(counts: Uint32Array, width: number, height: number): Float64Array;
  /** [x0, y0, x1, y1, area] of a width × height mask's foreground (non-zero; [0, 0, 0, 0, 0] when empty). */
  maskBounds(mask: Uint8Array, width: number, height: number): Float64Array;
  /** The COCO run lengths of a width × height mask (non-zero inside), on the calling thread. */
  maskToCounts(mask: Uint8Array, width: number, height: number): Float64Array;
  /** The mask as row-major bytes, 1 inside and 0 outside, on the calling thread (run lengths decoded). */
  maskBytes(source: NativeMaskSource, width: number, height: number): Uint8Array;
  /** The mask as row-major bytes, 255 inside and 0 outside, made in a worker thread (the source is copied first). */
  maskGreyAsync(source: NativeMaskSource, width: number, height: number): Promise<Uint8Array>;
  /** Referring instances of a heat map (native/masks/components.h), on the calling thread. */
  findInstances(...args: FindInstancesArgs): NativeInstances;
  /** findInstances in a worker thread; reads `heat` in place until it settles. */
  findInstancesAsync(...args: FindInstancesArgs): Promise<NativeInstances>;
  /** Each pixel's connected component (1.., 0 for background) of the values above `threshold`. */
  componentLabels(
    values: Float32Array,
    width: number,
    height: number,
    threshold: number,
    connectivity: 4 | 8,
  ): { labels: Int32Array; count: number };
  /**
   * The fraction of each lowResSize² mask-prompt cell covered by a width × height mask (non-zero
   * inside) in that model-input frame (native/masks/coverage.h), on the calling thread.
   */
  maskCoverage(...args: MaskCoverageArgs): Float32Array;
  /** maskCoverage in a worker thread; the mask is copied before it returns (and decoded there from runs). */
  maskCoverageAsync(...args: MaskCoverageArgs): Promise<Float32Array>;
  /**
   * round(255 · clamp(v, 0, 1)) of each value (Math.round; NaN → 0), in a worker thread: an 8-bit
   * heat map. The values are copied before it returns.
   */
  quantizeUnitAsync(values: Float32Array): Promise<Uint8Array>;
  /**
   * The UTF-8 of `prefix`, the base64 of `bytes` (standard alphabet, padded) and the UTF-8 of
   * `suffix`, in a worker thread. The bytes are copied before it returns.
   */
  spliceBase64Async(prefix: string, bytes: Uint8Array, suffix: string): Promise<Uint8Array>;
  /**
   * A visual prompt's pixels (native/images/visual_prompt.h), in a worker thread: the width ×
   * height RGB `crop` where `mask` is non-zero, elsewhere round(darken · `blurred`), bilinearly
   * resampled from blurredWidth × blurredHeight RGB. `mask`: the crop's bytes, or the COCO run
   * lengths of the whole image's mask with the crop's place in it. Reads the byte buffers in
   * place: leave them alone until the promise settles (the counts are copied).
   */
  composeVisualPromptAsync(
    crop: Uint8Array,
    mask: Uint8Array | { counts: Uint32Array; width: number; height: number; left: number; top: number },
    width: number,
    height: number,
    blurred: Uint8Array,
    blurredWidth: number,
    blurredHeight: number,
    darken: number,
  ): Promise<Uint8Array>;
}

/** What the addon exports. */
export type NativeAddon = NativeBinding & NativeRasterTools;

let cached: NativeAddon | undefined;
let cachedCuda: CudaBuild | undefined;

/**
 * Loads the addon once: the local build or the prebuilt binary, as node-gyp-build finds them.
 * @throws Error naming the file tried (when one was found), the cause, and what to do.
 */
export function native(): NativeAddon {
  if (cached === undefined) {
    const require = createRequire(import.meta.url);
    let root: string | undefined;
    let file: string | undefined;
    try {
      root = packageRoot(import.meta.url);
      const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };
      file = nodeGypBuild.resolve(root);
      assertElfComplete(file); // a truncated file would be mapped and then kill the process
      cached = require(file) as NativeAddon;
    } catch (error) {
      throw new Error(addonLoadError(error, file, root));
    }
  }
  return cached;
}

const SOURCE_BUILD_NEEDS = 'the OpenBLAS and nlohmann-json headers (Debian/Ubuntu: libopenblas-dev nlohmann-json3-dev)';

/**
 * The message of a failed addon load: the file tried, why it failed (one line), and what to do,
 * which depends on where omniseg is: a checkout (not under node_modules) builds with npm run
 * build:native; an installed package reinstalls a damaged prebuild, or reruns its install script.
 */
export function addonLoadError(error: unknown, file: string | undefined, root: string | undefined): string {
  let cause = (error instanceof Error ? error.message : String(error)).split('\n', 1)[0].trim();
  if (file !== undefined && cause.startsWith(`${file}: `)) cause = cause.slice(file.length + 2); // dlopen names it first
  const what = `Cannot load the omniseg native addon${file === undefined ? '' : ` ${file}`} (${cause}).`;
  if (root !== undefined && !root.split(/[\\/]/).includes('node_modules')) {
    return `${what} Build it with "npm run build:native" (needs ${SOURCE_BUILD_NEEDS}).`;
  }
  const prebuilt = file !== undefined && /[\\/]prebuilds[\\/]/.test(file);
  return prebuilt
    ? `${what} The prebuilt binary is damaged or does not fit this system: reinstall omniseg (remove ` +
        'node_modules/omniseg, then install again), which builds from source where the prebuilt binary does not ' +
        `load (x86-64 Linux, glibc >= 2.34); that needs ${SOURCE_BUILD_NEEDS}.`
    : `${what} Run its install script again with "npm rebuild omniseg" (with pnpm, allow it first: "pnpm ` +
        `approve-builds"): it takes the prebuilt binary where that loads and otherwise builds from source, which ` +
        `needs ${SOURCE_BUILD_NEEDS}.`;
}

/**
 * The CUDA build as this process sees it. `file`: the build found (none: no CUDA build is
 * installed); `info`: what its probe reported; `binding`: set only when it reported a usable
 * device and loaded here; `error`: why it cannot be used.
 */
export interface CudaBuild {
  file?: string;
  binding?: NativeBinding;
  info?: CudaInfo;
  error?: string;
}

/**
 * The CUDA-enabled build (`npm run build:cuda` → build-cuda/Release/omniseg.node, or the CUDA
 * prebuild; see findCudaAddon), decided once: it is first probed in a child process
 * (lib/cuda-probe.ts), so that a build that cannot load or crashes never takes this process
 * down, and loaded here only when the probe found a usable device.
 */
export function nativeCuda(): CudaBuild {
  if (cachedCuda === undefined) cachedCuda = loadCuda();
  return cachedCuda;
}

function loadCuda(): CudaBuild {
  const found = findCudaAddon();
  if (found.file === undefined) return { error: found.reason };
  const file = found.file;
  const probe = probeCudaAddonSync(file);
  if (!probe.ok) return { file, error: probe.reason };
  if (!probe.info.available) return { file, info: probe.info };
  try {
    const require = createRequire(import.meta.url);
    return { file, info: probe.info, binding: require(file) as NativeBinding };
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n', 1)[0] : String(error);
    return { file, error: `cannot load the CUDA build ${file} (${message})` };
  }
}
