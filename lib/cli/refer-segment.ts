// omniseg segment <image> --model <sam-dir> --referrer <clipseg-dir> (--text "..." | --ref-image <file>)
//   [--text-weight w] [--ref-mask <png> | --ref-box x0,y0,x1,y1] [--threshold-heat t] [--min-area a] [--json]: referSegment on the command line.
import { decodeImage } from '../image.js';
import { Referrer } from '../referrer.js';
import { referSegment } from '../referring/index.js';
import type { SegmentCommand, SegmentReferring } from './args.js';
import { jsonLine, ms } from './format.js';
import { heatmapOptions } from './heatmap.js';
import { loadSegmenter } from './model.js';
import type { CliIO } from './io.js';

export async function runReferSegment(args: SegmentCommand, referring: SegmentReferring, io: CliIO): Promise<void> {
  const image = await decodeImage(args.image);
  const segmenter = await loadSegmenter(args);
  let referrer: Referrer | undefined;
  try {
    referrer = await Referrer.load({ model: referring.referrer, device: args.device, threads: args.threads });
    const pixels = { data: image.data, width: image.width, height: image.height, channels: 3 } as const;
    const result = await referSegment(segmenter, referrer, pixels, {
      ...(await heatmapOptions(referring)),
      ...(referring.thresholdHeat === undefined ? {} : { threshold: referring.thresholdHeat }),
      ...(referring.minArea === undefined ? {} : { minArea: referring.minArea }),
    });
    const { masks, scores, candidates, noTarget, timings } = result;
    const instance = (k: number): number => candidates.indexOf(result.instances[k]);

    if (args.json) {
      const json = masks.map((m, k) => ({
        score: m.score,
        box: m.box,
        area: m.area,
        rle: m.toRLE(),
        instance: instance(k),
        referScore: scores[k],
      }));
      const jsonTimings = { encodeMs: timings.encodeMs, decodeMs: timings.instancesMs, heatmapMs: timings.heatmapMs };
      io.stdout(jsonLine({ width: image.width, height: image.height, masks: json, timings: jsonTimings, noTarget }));
    } else {
      const found = noTarget ? 'no target' : `${masks.length} mask${masks.length === 1 ? '' : 's'}`;
      io.stdout(
        `${args.image} (${image.width}x${image.height}): ${found} from ${candidates.length} ` +
          `instance${candidates.length === 1 ? '' : 's'} (heat map ${ms(timings.heatmapMs)}, ` +
          `encode ${ms(timings.encodeMs)}, decode ${ms(timings.instancesMs)})\n`,
      );
      masks.forEach((m, k) => {
        io.stdout(
          `  #${k}  score ${scores[k].toFixed(4)}  iou ${m.score.toFixed(4)}  instance ${instance(k)}  ` +
            `area ${m.area}  box [${m.box.join(', ')}]\n`,
        );
      });
    }
  } finally {
    referrer?.dispose();
    segmenter.dispose();
  }
}
