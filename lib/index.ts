// omniseg: Segment Anything in Node.js. Public API.
export { Segmenter, MAX_ENCODE_BATCH } from './segmenter.js';
export { cudaStatus, cudaStatusAsync, MAX_THREADS } from './backends.js';
export type { CudaDevice, CudaInfo, NativeClipSegConfig, NativeSamConfig } from './native.js';
export type { CpuMatmul, Device, Precision, EncodeOptions, LoadOptions, SamConfig, SegmentOptions, SegmentResult } from './segmenter.js';
export { Referrer, ReferrerImage, DEFAULT_TEXT_WEIGHT, MAX_HEATMAP_PIXELS, heatmapFromLogits } from './referrer.js';
export type { Heatmap, HeatmapOptions, HeatmapTimings, ReferrerCallOptions, ReferrerLoadOptions, ReferringPrompt } from './referrer.js';
export {
  referSegment,
  referSegmentEach,
  fuseEmbeddings,
  MAX_FUSED_PROMPTS,
  DEFAULT_LABEL_TEMPLATES,
  DEFAULT_TOP_K,
  MAX_VOCABULARY,
  findInstances,
  MAX_COMPONENT_PIXELS,
  labelComponents,
  instanceMasks,
  instancePrompts,
  maskNms,
  DEFAULT_CONNECTIVITY,
  DEFAULT_HEAT_THRESHOLD,
  DEFAULT_MAX_INSTANCES,
  DEFAULT_MIN_AREA,
  DEFAULT_NMS_IOU,
  visualPrompt,
  VISUAL_PROMPT_BLUR_SIGMA,
  VISUAL_PROMPT_DARKEN,
  VISUAL_PROMPT_MARGIN,
} from './referring/index.js';
export type {
  Instance,
  InstanceMaskOptions,
  InstanceMaskSettings,
  InstanceOptions,
  ReferringMasks,
  LabelOptions,
  RankedSegment,
  ReferSegmentEachOptions,
  ReferSegmentEachResult,
  ReferSegmentOptions,
  ReferSegmentResult,
  SegmentLabel,
  TargetPrompt,
  TargetSettings,
  RefRegion,
  RgbImage,
} from './referring/index.js';
export { ClipTokenizer } from './clip/tokenizer.js';
export type { ClipEncodeOptions, ClipEncoding, ClipPadding, ClipSpecialToken, ClipTokenizerData } from './clip/tokenizer.js';
export {
  PIL_BILINEAR,
  preprocessClipImage,
  readClipImageProcessorConfig,
  resizeBilinearPil,
} from './clip/image-processor.js';
export type { ClipImageProcessorConfig } from './clip/image-processor.js';
export { SegmentSession } from './session.js';
export { DEFAULT_FRAMES_IN_FLIGHT } from './stream.js';
export type { FrameResult, FrameSource, FrameStreamOptions } from './stream.js';
export type { SessionAddOptions, SessionOptions, SessionPrompt, SessionRound } from './session.js';
export { AbortError } from './errors.js';
export { scribbleToPoints, SCRIBBLE_MAX_POINTS, SCRIBBLE_SPACING_DIVISOR } from './scribble.js';
export { MASK_PROMPT_LOGIT, MAX_LOW_RES_SIZE, SCRIBBLE_BRUSH_DIVISOR, maskToLogits, rasterizeScribbles } from './mask-prompt.js';
export type { MaskFrame } from './mask-prompt.js';
export type { MaskPolygon, Ring } from './contours.js';
export { ImageEmbedding } from './embedding.js';
export { Mask, STABILITY_SCORE_OFFSET } from './mask.js';
export type { MaskBox, MaskInit } from './mask.js';
export type { Prompt } from './prompt.js';
export { MAX_PROMPT_BOXES, MAX_PROMPT_POINTS, MAX_PROMPT_SET_POINTS } from './prompt.js';
export { decodeImage, DEFAULT_LIMIT_INPUT_PIXELS } from './image.js';
export type { DecodeImageOptions } from './image.js';
export {
  encodeRLE,
  decodeRLE,
  rleArea,
  countsToMask,
  countsToString,
  countsFromString,
  rleMerge,
  rleIoU,
  rleRuns,
  mergeRuns,
  overlapRuns,
  runsArea,
} from './rle.js';
export * from './eval/index.js';
export { pullModel } from './models/pull.js';
export type { PullEvent, PullOptions, PullResult } from './models/pull.js';
export type { ModelFamily, RegistryFile, RegistryModel } from './models/registry.js';
export type {
  BinaryMask,
  Box,
  DecodedImage,
  ImageInput,
  Point,
  PointLabel,
  RawImage,
  RLE,
  RLEInput,
  Scribble,
  Vertex,
} from './types.js';
