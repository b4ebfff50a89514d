// omniseg heatmap <image> --model <clipseg-dir> (--text "..." | --ref-image <file> | both [--text-weight w])
//   [--ref-mask <png> | --ref-box x0,y0,x1,y1] [--save logits.f32] [--out heat.png] [--save-f32 heat.f32] [--json]
import { DEFAULT_LIMIT_INPUT_PIXELS, decodeImage, decodeMaskImage } from '../image.js';
import { Referrer, type HeatmapOptions, type ReferringPrompt } from '../referrer.js';
import type { BinaryMask } from '../types.js';
import type { HeatmapCommand, ReferringOptions } from './args.js';
import { jsonLine, ms } from './format.js';
import { writeFloat32File, type CliIO } from './io.js';
import { writeHeatOverlay } from './overlay.js';

export async function runHeatmap(args: HeatmapCommand, io: CliIO): Promise<void> {
  const image = await decodeImage(args.image);
  const { device, cpuMatmul, threads } = args;
  const referrer = await Referrer.load({ model: args.referrer, device, cpuMatmul, threads });
  try {
    const pixels = { data: image.data, width: image.width, height: image.height, channels: 3 } as const;
    const [query] = await heatmapQueries(args);
    const heatmap = await referrer.heatmap(pixels, query);
    if (args.save !== undefined) await writeFloat32File(args.save, heatmap.logits);
    if (args.saveF32 !== undefined) await writeFloat32File(args.saveF32, heatmap.data);
    if (args.out !== undefined) await writeHeatOverlay(args.out, image, heatmap.data);
    const { max, mean } = heatStats(heatmap.data);
    if (args.json) {
      io.stdout(
        jsonLine({ width: heatmap.width, height: heatmap.height, size: heatmap.size, max, mean, timings: heatmap.timings }),
      );
    } else {
      io.stdout(
        `${args.image} (${heatmap.width}x${heatmap.height}): heat max ${max.toFixed(4)}, mean ${mean.toFixed(4)} ` +
          `(model ${ms(heatmap.timings.modelMs)}, total ${ms(heatmap.timings.totalMs)})\n`,
      );
      if (args.out !== undefined) io.stdout(`heat-map overlay written to ${args.out}\n`);
      if (args.save !== undefined) io.stdout(`${heatmap.size}x${heatmap.size} float32 logits written to ${args.save}\n`);
      if (args.saveF32 !== undefined) io.stdout(`float32 heat map written to ${args.saveF32}\n`);
    }
  } finally {
    referrer.dispose();
  }
}

/**
 * The referring prompts of --text (each one a prompt), --ref-image (each one a prompt; with
 * --ref-mask / --ref-box the region of the only one), texts first, then reference images.
 */
export async function referringPrompts(args: ReferringOptions): Promise<ReferringPrompt[]> {
  const region =
    args.refBox !== undefined
      ? { refRegion: { box: args.refBox } }
      : args.refMask !== undefined
        ? { refRegion: { mask: await readMaskPng(args.refMask) } }
        : {};
  return [...args.texts.map((text) => ({ text })), ...args.refImages.map((refImage) => ({ refImage, ...region }))];
}

/**
 * The heat-map queries of the referring options: with --each one per prompt (many-to-many);
 * otherwise one: the only prompt, a --text with a --ref-image mixed by --text-weight, or all the
 * prompts fused with equal weights (many-to-one).
 */
export async function heatmapQueries(args: ReferringOptions): Promise<HeatmapOptions[]> {
  const prompts = await referringPrompts(args);
  if (args.each || prompts.length === 1) return prompts;
  if (args.texts.length === 1 && args.refImages.length === 1) {
    const [text, image] = prompts;
    return [{ ...text, ...image, ...(args.textWeight === undefined ? {} : { textWeight: args.textWeight }) }];
  }
  return [{ prompts }];
}

/** A mask image's first channel (grey, alpha removed): non-zero inside. */
async function readMaskPng(file: string): Promise<BinaryMask> {
  try {
    return await decodeMaskImage(file, DEFAULT_LIMIT_INPUT_PIXELS);
  } catch (error) {
    throw new Error(`Cannot read --ref-mask ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Largest and mean value of a heat map. */
export function heatStats(data: Float32Array): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v > max) max = v;
    sum += v;
  }
  return { max, mean: data.length === 0 ? 0 : sum / data.length };
}
