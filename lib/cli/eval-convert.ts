// omniseg eval --convert grefcoco --grefs <grefs(unc).json> --instances <instances.json>
//              --images <dir> [--split <name>] --out <data.jsonl>:
// writes gRefCOCO's release as the JSONL that `eval --dataset` reads (lib/eval/grefcoco.ts).
import { readFile } from 'node:fs/promises';
import { convertGrefcoco, relativeImagePath } from '../eval/grefcoco.js';
import { withoutBom } from '../eval/samples.js';
import type { EvalCommand, EvalConvert } from './commands.js';
import { jsonLine } from './format.js';
import { WholeFile, type CliIO } from './io.js';

/** Lines written per call to the file. */
const CHUNK = 1024;

export async function runEvalConvert(args: EvalCommand & { convert: EvalConvert; out: string }, io: CliIO): Promise<void> {
  const { grefs, instances, images, split } = args.convert;
  const result = await convertGrefcoco(await readJson(grefs), await readJson(instances), {
    ...(split === undefined ? {} : { split }),
    imagePath: relativeImagePath(args.out, images),
  });
  const file = await WholeFile.open(args.out);
  try {
    for (let i = 0; i < result.samples.length; i += CHUNK) {
      await file.write(result.samples.slice(i, i + CHUNK).map(jsonLine).join(''));
    }
    await file.commit();
  } catch (error) {
    await file.discard();
    throw error;
  }
  const { samples, refs, noTargetRefs } = result;
  io.stdout(
    `${args.out}: ${samples.length} sample${samples.length === 1 ? '' : 's'} from ${refs} ref${refs === 1 ? '' : 's'} ` +
      `(${noTargetRefs} without a target)${split === undefined ? '' : ` of split ${split}`}\n`,
  );
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    throw new Error(`Cannot read ${file}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}`);
  }
  try {
    return JSON.parse(withoutBom(text));
  } catch (error) {
    throw new Error(`${file}: invalid JSON: ${(error as Error).message}`);
  }
}
