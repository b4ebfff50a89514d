// omniseg segment <image> --model <dir> [--point x,y,label]... [--scribble x0,y0;x1,y1;...:label]...
//   [--box x0,y0,x1,y1] [--mask-input f]
import { decodeImage } from '../image.js';
import type { Mask } from '../mask.js';
import type { Prompt } from '../prompt.js';
import type { SegmentCommand } from './args.js';
import { jsonLine, ms } from './format.js';
import { concatFloat32, readFloat32File, writeFloat32File, type CliIO } from './io.js';
import { writeOverlay } from './overlay.js';
import { loadSegmenter, promptOf } from './model.js';
import { runReferSegment } from './refer-segment.js';

export async function runSegment(args: SegmentCommand, io: CliIO): Promise<void> {
  if (args.referring !== undefined) return runReferSegment(args, args.referring, io);
  const image = await decodeImage(args.image);
  const segmenter = await loadSegmenter(args);
  try {
    const prompt: Prompt = promptOf(args);
    if (args.maskInput !== undefined) {
      const size = segmenter.config.lowResSize;
      prompt.maskInput = await readFloat32File(args.maskInput, size * size, '--mask-input');
    }
    const pixels = { data: image.data, width: image.width, height: image.height, channels: 3 } as const;
    // Without an overlay to draw, only each mask's RLE, area and box are printed: the native
    // decode's run lengths give those without a pass over the pixels.
    const rle = args.out === undefined;
    const { masks, timings } = await segmenter.segment(pixels, prompt, { multimask: args.multimask, rle });

    if (args.saveLogits !== undefined) {
      await writeFloat32File(args.saveLogits, concatFloat32(masks.map((m) => m.lowResLogits)));
    }
    const best = bestMask(masks);
    if (args.out !== undefined) await writeOverlay(args.out, image, masks[best]);

    if (args.json) {
      const json = masks.map((m) => ({ score: m.score, box: m.box, area: m.area, rle: m.toRLE() }));
      io.stdout(jsonLine({ width: image.width, height: image.height, masks: json, timings }));
    } else {
      io.stdout(
        `${args.image} (${image.width}x${image.height}): ${masks.length} mask${masks.length === 1 ? '' : 's'} ` +
          `(encode ${ms(timings.encodeMs)}, decode ${ms(timings.decodeMs)})\n`,
      );
      masks.forEach((m, i) => {
        const mark = i === best && masks.length > 1 ? '  best' : '';
        io.stdout(`  #${i}  score ${m.score.toFixed(4)}  area ${m.area}  box [${m.box.join(', ')}]${mark}\n`);
      });
      if (args.out !== undefined) io.stdout(`overlay written to ${args.out}\n`);
    }
  } finally {
    segmenter.dispose();
  }
}

/** Index of the highest predicted IoU (the first on ties). */
function bestMask(masks: readonly Mask[]): number {
  return masks.reduce((best, m, i) => (m.score > masks[best].score ? i : best), 0);
}
