// omniseg heatmap <image> --referrer <dir> (--text "..." | --ref-image <file> | both [--text-weight w])
//   [--ref-mask <png> | --ref-box x0,y0,x1,y1] [--out heat.png] [--save-f32 heat.f32] [--json]
import sharp from 'sharp';
import { decodeImage } from '../image.js';
import { Referrer, type Heatmap, type HeatmapOptions } from '../referrer.js';
import type { BinaryMask } from '../types.js';
import type { HeatmapCommand, ReferringOptions } from './args.js';
import { jsonLine, ms } from './format.js';
import { writeFloat32File, type CliIO } from './io.js';

export async function runHeatmap(args: HeatmapCommand, io: CliIO): Promise<void> {
  const image = await decodeImage(args.image);
  const referrer = await Referrer.load({ model: args.referrer, device: args.device, threads: args.threads });
  try {
    const pixels = { data: image.data, width: image.width, height: image.height, channels: 3 } as const;
    const heatmap = await referrer.heatmap(pixels, await heatmapOptions(args));
    if (args.saveF32 !== undefined) await writeFloat32File(args.saveF32, heatmap.data);
    if (args.out !== undefined) await writeHeatmapPng(args.out, heatmap);
    const { max, mean } = heatStats(heatmap.data);
    if (args.json) {
      io.stdout(jsonLine({ width: heatmap.width, height: heatmap.height, max, mean, timings: heatmap.timings }));
    } else {
      io.stdout(
        `${args.image} (${heatmap.width}x${heatmap.height}): heat max ${max.toFixed(4)}, mean ${mean.toFixed(4)} ` +
          `(model ${ms(heatmap.timings.modelMs)}, total ${ms(heatmap.timings.totalMs)})\n`,
      );
      if (args.out !== undefined) io.stdout(`heat map written to ${args.out}\n`);
      if (args.saveF32 !== undefined) io.stdout(`float32 heat map written to ${args.saveF32}\n`);
    }
  } finally {
    referrer.dispose();
  }
}

/** The Referrer.heatmap options of --text, --ref-image, --text-weight and --ref-mask / --ref-box. */
export async function heatmapOptions(args: ReferringOptions): Promise<HeatmapOptions> {
  return {
    ...(args.text === undefined ? {} : { text: args.text }),
    ...(args.refImage === undefined ? {} : { refImage: args.refImage }),
    ...(args.textWeight === undefined ? {} : { textWeight: args.textWeight }),
    ...(args.refBox === undefined ? {} : { refRegion: { box: args.refBox } }),
    ...(args.refMask === undefined ? {} : { refRegion: { mask: await readMaskPng(args.refMask) } }),
  };
}

/** A mask image's first channel (grey, alpha removed): non-zero inside. */
async function readMaskPng(file: string): Promise<BinaryMask> {
  try {
    const { data, info } = await sharp(file)
      .removeAlpha()
      .toColourspace('b-w')
      .extractChannel(0)
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  } catch (error) {
    throw new Error(`Cannot read --ref-mask ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Largest and mean value of a heat map. */
export function heatStats(data: Float32Array): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  for (const v of data) {
    if (v > max) max = v;
    sum += v;
  }
  return { max, mean: data.length === 0 ? 0 : sum / data.length };
}

/** Writes the heat map as an 8-bit grey image: round(255 · p), p in [0, 1]. */
async function writeHeatmapPng(file: string, heatmap: Heatmap): Promise<void> {
  const grey = Buffer.alloc(heatmap.data.length);
  heatmap.data.forEach((p, i) => {
    grey[i] = Math.round(255 * Math.min(1, Math.max(0, p)));
  });
  try {
    await sharp(grey, { raw: { width: heatmap.width, height: heatmap.height, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toFile(file);
  } catch (error) {
    throw new Error(`Cannot write ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
