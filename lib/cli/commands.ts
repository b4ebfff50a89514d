// The typed commands the CLI parser (args.ts) produces: one interface per command, the options
// they share, and their union. Types only; args.ts re-exports them.
import type { CpuMatmul, Device, Precision } from '../segmenter.js';
import type { Box, Point, Scribble } from '../types.js';
import type { CommandName } from './args.js';

/** The options of every command that loads a SAM model. */
export interface ModelOptions {
  model: string;
  /** --device: where the model runs. Default 'auto'. */
  device: Device;
  /** --precision: the image encoder's arithmetic on CUDA. Default 'fp32'. */
  precision: Precision;
  /**
   * --cpu-matmul: the image encoders' matrix products (linear layers, attention) on CPU (SAM's and
   * CLIPSeg's). Absent: the library's default.
   */
  cpuMatmul?: CpuMatmul;
  threads?: number;
}

/** The prompt options of segment and segment-frames. */
export interface PromptOptions {
  /** --point x,y,label, in order given. */
  points: Point[];
  /** --scribble "x0,y0;x1,y1;...:label", in order given. */
  scribbles: Scribble[];
  box?: Box;
}

export interface HelpCommand {
  command: 'help';
  /** The command whose help to print; undefined for the overview. */
  topic?: CommandName;
}

export interface VersionCommand {
  command: 'version';
}

export interface EncodeCommand extends ModelOptions {
  command: 'encode';
  image: string;
  saveEmbedding: string;
  json: boolean;
}

/**
 * The referring prompts of heatmap and `segment --referrer`: texts and reference images, fused
 * into one query (many-to-one; one --text with one --ref-image mixed by --text-weight), or with
 * --each one query per prompt (many-to-many), texts first.
 */
export interface ReferringOptions {
  /** --referrer (heatmap: --model): the CLIPSeg checkpoint directory or registry id. */
  referrer: string;
  /** --text: referring expressions, in order given. */
  texts: string[];
  /** --ref-image: reference images (visual prompts), in order given. */
  refImages: string[];
  /** --text-weight: with one --text and one --ref-image, the text embedding's weight in [0, 1]. */
  textWeight?: number;
  /** --ref-mask: a PNG mask of the region on the only --ref-image (its size; non-zero inside). */
  refMask?: string;
  /** --ref-box: a box x0,y0,x1,y1 of the region on the only --ref-image. */
  refBox?: Box;
  /** --each: a result per prompt instead of one fused result (segment only). */
  each: boolean;
}

/** omniseg heatmap: the referrer's heat map over an image. */
export interface HeatmapCommand extends ReferringOptions {
  command: 'heatmap';
  image: string;
  /** --device: where the model runs. Default 'auto'. */
  device: Device;
  /** --cpu-matmul: the vision tower's matrix products on CPU. Absent: the library's default. */
  cpuMatmul?: CpuMatmul;
  threads?: number;
  /** --out: the image with the heat map blended over it in colour. */
  out?: string;
  /** --save: the model's raw logits, [size, size] little-endian float32 (size: the model input side). */
  save?: string;
  /** --save-f32: the heat map as [height, width] little-endian float32. */
  saveF32?: string;
  json: boolean;
}

/** `segment --referrer`: what to refer to and how the heat map splits into instances. */
export interface SegmentReferring extends ReferringOptions {
  /** --threshold-heat: heat-map pixels strictly above it are foreground, in [0, 1]. */
  thresholdHeat?: number;
  /** --min-area: smallest instance, as a fraction of the image, in [0, 1]. */
  minArea?: number;
  /** --vocabulary (comma-separated, repeatable): labels for the masks (each mask gets "label" and "labels"). */
  vocabulary?: string[];
  /** --vocabulary-file: the labels, one per line. */
  vocabularyFile?: string;
}

export interface SegmentCommand extends ModelOptions, PromptOptions {
  command: 'segment';
  /** With --referrer: segment what --text / --ref-image refer to (referSegment). */
  referring?: SegmentReferring;
  image: string;
  /** File of lowResSize² little-endian float32 logits. */
  maskInput?: string;
  multimask: boolean;
  json: boolean;
  saveLogits?: string;
  out?: string;
}

export interface SegmentFramesCommand extends ModelOptions, PromptOptions {
  command: 'segment-frames';
  /** A directory of images, a glob (wildcards in the file name only) or one file. */
  frames: string;
  /** --follow: each frame after the first is prompted with the previous frame's mask. */
  follow: boolean;
  multimask: boolean;
  /** --out-dir: where the masks are written, one PNG per frame. */
  outDir: string;
  json: boolean;
}

export interface BenchCommand extends ModelOptions {
  command: 'bench';
  image: string;
  /** Timed runs after the warm-up. Default 5. */
  runs: number;
  json: boolean;
}

export interface InfoCommand {
  command: 'info';
  json: boolean;
}

/**
 * omniseg eval: exactly one of `pred` (mask metrics), `heatmaps` (PointM) or `clicks` (NoC with
 * `model`) goes with `gt`.
 */
export interface EvalCommand {
  command: 'eval';
  /** --gt: ground truth, JSON array or JSONL (every mode but --dataset). */
  gt?: string;
  /** --dataset: a JSONL of samples (image, prompts, ground truth) to run --model over. */
  dataset?: string;
  /** --referrer: the CLIPSeg directory for --dataset samples with a "text" prompt. */
  referrer?: string;
  /** --out: the per-sample results of --dataset, JSONL. */
  out?: string;
  /** --pred: predicted masks, JSON array or JSONL. */
  pred?: string;
  /** --heatmaps: folder of <id>.f32 heat maps. */
  heatmaps?: string;
  /** --clicks: simulate the NoC click protocol with --model. */
  clicks: boolean;
  /** --model, with --clicks or --dataset. */
  model?: string;
  /** --device: where the model runs. Default 'auto'. */
  device: Device;
  /** --precision: the image encoder's arithmetic on CUDA. Default 'fp32'. */
  precision: Precision;
  /** --cpu-matmul: the image encoders' matrix products on CPU. Absent: the library's default. */
  cpuMatmul?: CpuMatmul;
  threads?: number;
  /** --max-clicks: the click budget. Default 20. */
  maxClicks: number;
  json: boolean;
  /** --report: an HTML report (metrics, IoU histogram, thumbnails), with --dataset or --pred. */
  report?: string;
  /** --convert: write a dataset release as a --dataset JSONL (to `out`) instead of evaluating. */
  convert?: EvalConvert;
}

/** eval --convert grefcoco --grefs <grefs(unc).json> --instances <instances.json> --images <dir> [--split s] --out <file>. */
export interface EvalConvert {
  format: 'grefcoco';
  grefs: string;
  instances: string;
  /** The folder of the COCO images (file_name is relative to it). */
  images: string;
  /** Only the refs of this split (e.g. val, testA). */
  split?: string;
}

/** omniseg serve: the HTTP segmentation server (lib/server). */
export interface ServeCommand extends ModelOptions {
  command: 'serve';
  /** --host. Default 127.0.0.1. */
  host: string;
  /** --port (0: any free port). Default 8080. */
  port: number;
  /** --cache-mb: the embedding cache's budget, MiB (fractions allowed). */
  cacheMb?: number;
  /** --heatmap-cache-mb: the heat-map cache's budget, MiB (fractions allowed; 0: none). */
  heatmapCacheMb?: number;
  /** --max-queue: requests allowed to wait per queue. */
  maxQueue?: number;
  /** --max-batch: encoder requests per batch. */
  maxBatch?: number;
  /** --batch-delay-ms: how long an idle encoder waits for a batch to fill. */
  batchDelayMs?: number;
  /** --timeout-ms: a request's deadline. */
  timeoutMs?: number;
  /** --referrer: a CLIPSeg checkpoint directory (heat maps and text prompts). */
  referrer?: string;
}

/** omniseg pull: downloads a registry model into the cache. */
export interface PullCommand {
  command: 'pull';
  /** The registry id, e.g. "sam-vit-base". */
  id: string;
  /** --quiet: no progress on stderr. */
  quiet: boolean;
  /** --allow-unverified: accept files the registry has no SHA-256 for. */
  allowUnverified: boolean;
}

export type CliCommand =
  | ServeCommand
  | PullCommand
  | HelpCommand
  | VersionCommand
  | EncodeCommand
  | SegmentCommand
  | SegmentFramesCommand
  | BenchCommand
  | InfoCommand
  | EvalCommand
  | HeatmapCommand;
