// omniseg segment <image> --model <sam-dir> --referrer <clipseg-dir> (--text "..." | --ref-image <file>)...
//   [--each] [--text-weight w] [--ref-mask <png> | --ref-box x0,y0,x1,y1] [--point/--scribble/--box]
//   [--threshold-heat t] [--min-area a] [--vocabulary a,b,c | --vocabulary-file f] [--json]:
// referSegment (one fused query) or referSegmentEach (--each: one query per prompt) on the command line.
import { readFile } from 'node:fs/promises';
import { decodeImage } from '../image.js';
import type { Mask } from '../mask.js';
import { Referrer, type HeatmapOptions } from '../referrer.js';
import {
  referSegment,
  referSegmentEach,
  type ReferSegmentEachOptions,
  type ReferSegmentResult,
  type SegmentLabel,
} from '../referring/index.js';
import type { SegmentCommand, SegmentReferring } from './args.js';
import { jsonLine, ms } from './format.js';
import { heatmapQueries } from './heatmap.js';
import type { CliIO } from './io.js';
import { loadSegmenter } from './model.js';
import { UsageError } from './values.js';

/** Labels per mask in the JSON output's "labels". */
const CLI_TOP_K = 5;

export async function runReferSegment(args: SegmentCommand, referring: SegmentReferring, io: CliIO): Promise<void> {
  const vocabulary = await vocabularyOf(referring);
  const image = await decodeImage(args.image);
  const queries = await heatmapQueries(referring);
  const segmenter = await loadSegmenter(args);
  let referrer: Referrer | undefined;
  try {
    const { device, cpuMatmul, threads } = args;
    referrer = await Referrer.load({ model: referring.referrer, device, cpuMatmul, threads });
    const pixels = { data: image.data, width: image.width, height: image.height, channels: 3 } as const;
    const settings: ReferSegmentEachOptions = {
      ...(referring.thresholdHeat === undefined ? {} : { threshold: referring.thresholdHeat }),
      ...(referring.minArea === undefined ? {} : { minArea: referring.minArea }),
      ...(args.points.length === 0 ? {} : { points: args.points }),
      ...(args.scribbles.length === 0 ? {} : { scribbles: args.scribbles }),
      ...(args.box === undefined ? {} : { box: args.box }),
    };
    const results = referring.each
      ? (await referSegmentEach(segmenter, referrer, pixels, queries, settings)).results
      : [await referSegment(segmenter, referrer, pixels, { ...queries[0], ...settings })];
    const all = results.flatMap((r, prompt) => r.masks.map((mask, k) => ({ mask, k, prompt, result: r })));
    const labels =
      vocabulary === undefined || all.length === 0
        ? undefined
        : await referrer.label(pixels, all.map((m) => m.mask), vocabulary, { topK: CLI_TOP_K });
    const noTarget = results.every((r) => r.noTarget);
    const timings = results[0].timings;

    if (args.json) {
      const masks = all.map(({ mask, k, prompt, result }, i) => ({
        score: mask.score,
        box: mask.box,
        area: mask.area,
        rle: mask.toRLE(),
        instance: result.candidates.indexOf(result.instances[k]),
        referScore: result.scores[k],
        prompt,
        ...(labels === undefined ? {} : { label: labels[i][0].label, labels: labels[i] }),
      }));
      const jsonTimings = {
        encodeMs: timings.encodeMs,
        decodeMs: results.reduce((s, r) => s + r.timings.instancesMs, 0),
        heatmapMs: timings.heatmapMs,
      };
      const prompts = queries.map((q, i) => ({ ...describeQuery(q), noTarget: results[i].noTarget }));
      io.stdout(jsonLine({ width: image.width, height: image.height, masks, timings: jsonTimings, noTarget, prompts }));
      return;
    }
    const found = noTarget ? 'no target' : `${all.length} mask${all.length === 1 ? '' : 's'}`;
    io.stdout(
      `${args.image} (${image.width}x${image.height}): ${found} for ${queries.length} ` +
        `quer${queries.length === 1 ? 'y' : 'ies'} (heat map ${ms(timings.heatmapMs)}, encode ${ms(timings.encodeMs)})\n`,
    );
    all.forEach(({ mask, k, prompt, result }, i) => {
      io.stdout(`  #${i}  prompt ${prompt}  ${maskLine(mask, result, k)}${labels === undefined ? '' : `  ${labelText(labels[i])}`}\n`);
    });
  } finally {
    referrer?.dispose();
    segmenter.dispose();
  }
}

function maskLine(mask: Mask, result: ReferSegmentResult, k: number): string {
  const instance = result.candidates.indexOf(result.instances[k]);
  return (
    `score ${result.scores[k].toFixed(4)}  iou ${mask.score.toFixed(4)}  instance ${instance}  ` +
    `area ${mask.area}  box [${mask.box.join(', ')}]`
  );
}

function labelText(labels: SegmentLabel[]): string {
  return `label ${labels[0].label} (${labels[0].probability.toFixed(3)})`;
}

/** A query in the JSON output: its texts and reference-image files. */
function describeQuery(q: HeatmapOptions): { texts: string[]; refImages: string[] } {
  const parts = q.prompts ?? [q];
  return {
    texts: parts.flatMap((p) => (p.text === undefined ? [] : [p.text])),
    refImages: parts.flatMap((p) => (typeof p.refImage === 'string' ? [p.refImage] : [])),
  };
}

/** --vocabulary's labels, or --vocabulary-file's (one per line, blank lines skipped). */
async function vocabularyOf(referring: SegmentReferring): Promise<string[] | undefined> {
  if (referring.vocabularyFile === undefined) return referring.vocabulary;
  let text: string;
  try {
    text = await readFile(referring.vocabularyFile, 'utf8');
  } catch (error) {
    throw new Error(`Cannot read --vocabulary-file ${referring.vocabularyFile}: ${(error as Error).message}`);
  }
  const labels = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  if (labels.length === 0) throw new UsageError(`--vocabulary-file ${referring.vocabularyFile} has no labels`);
  return labels;
}
