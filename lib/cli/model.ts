// What the CLI commands share on the library side: loading SAM from the model options, and the
// Prompt the prompt options describe.
import type { Prompt } from '../prompt.js';
import { Segmenter } from '../segmenter.js';
import type { ModelOptions, PromptOptions } from './commands.js';

/** SAM from --model, --device, --precision, --cpu-matmul, --threads. */
export function loadSegmenter(args: ModelOptions): Promise<Segmenter> {
  const { model, device, precision, cpuMatmul, threads } = args;
  return Segmenter.load({ model, device, precision, cpuMatmul, threads });
}

/** --point, --scribble and --box as a Prompt (absent options left out). */
export function promptOf(args: PromptOptions): Prompt {
  const prompt: Prompt = {};
  if (args.points.length > 0) prompt.points = args.points;
  if (args.scribbles.length > 0) prompt.scribbles = args.scribbles;
  if (args.box !== undefined) prompt.boxes = [args.box];
  return prompt;
}
