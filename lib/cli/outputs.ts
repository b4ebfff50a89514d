// The files a command writes and reads, checked before it loads a model or reads an image: no
// output may be one of the files it reads (`--out` naming the input image replaced it with the
// overlay; an eval `--out` naming its dataset destroyed the dataset) or another of its outputs, an
// image output must be a format sharp writes, each output's directory must exist (a missing one
// was found only after all the work), and so must the inputs read after the model has loaded.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { CliCommand } from './args.js';
import { UsageError } from './values.js';

/** Extensions sharp writes an overlay as (by the file's extension). */
export const OVERLAY_EXTENSIONS = ['png', 'jpg', 'jpeg', 'webp', 'tif', 'tiff', 'avif', 'gif'] as const;

type Named = [flag: string, file: string | undefined];

/** What a command reads and writes, by the option that names each file. */
function filesOf(c: CliCommand): { inputs: Named[]; outputs: Named[]; overlays: Named[] } {
  switch (c.command) {
    case 'encode':
      return { inputs: [['<image>', c.image]], outputs: [['--save-embedding', c.saveEmbedding]], overlays: [] };
    case 'segment': {
      const r = c.referring;
      const inputs: Named[] = [
        ['<image>', c.image],
        ...(r?.refImages ?? []).map((f): Named => ['--ref-image', f]),
        ['--ref-mask', r?.refMask],
        ['--vocabulary-file', r?.vocabularyFile],
      ];
      // (--mask-input and --save-logits may name one file: the logits are read before any is written,
      // so that a loop of segment calls can feed each round's logits to the next)
      const sameFile = c.saveLogits !== undefined && path.resolve(c.saveLogits) === path.resolve(c.maskInput ?? '');
      if (c.maskInput !== undefined && !sameFile) inputs.push(['--mask-input', c.maskInput]);
      return { inputs, outputs: [['--save-logits', c.saveLogits], ['--out', c.out]], overlays: [['--out', c.out]] };
    }
    case 'heatmap':
      return {
        inputs: [['<image>', c.image], ...c.refImages.map((f): Named => ['--ref-image', f]), ['--ref-mask', c.refMask]],
        outputs: [['--save', c.save], ['--save-f32', c.saveF32], ['--out', c.out]],
        overlays: [['--out', c.out]],
      };
    case 'eval':
      return {
        inputs: [
          ['--gt', c.gt],
          ['--dataset', c.dataset],
          ['--pred', c.pred],
          ['--grefs', c.convert?.grefs],
          ['--instances', c.convert?.instances],
        ],
        outputs: [['--out', c.out], ['--report', c.report]],
        overlays: [],
      };
    default:
      return { inputs: [], outputs: [], overlays: [] };
  }
}

/**
 * Refuses an output that is one of the command's inputs or another output (same resolved path),
 * and an overlay in a format sharp does not write.
 * @throws UsageError naming both options.
 */
export function checkOutputNames(command: CliCommand): void {
  const { inputs, outputs, overlays } = filesOf(command);
  for (const [flag, file] of overlays) {
    if (file === undefined) continue;
    const ext = path.extname(file).slice(1).toLowerCase();
    if (!(OVERLAY_EXTENSIONS as readonly string[]).includes(ext)) {
      throw new UsageError(`${flag} ${file}: the overlay is written as an image, by its extension: one of .${OVERLAY_EXTENSIONS.join(', .')}`);
    }
  }
  const seen = new Map<string, string>();
  for (const [flag, file] of inputs) if (file !== undefined) seen.set(path.resolve(file), flag);
  for (const [flag, file] of outputs) {
    if (file === undefined) continue;
    const other = seen.get(path.resolve(file));
    if (other !== undefined) throw new UsageError(`${flag} ${file} is also ${other}: it would be overwritten; write elsewhere`);
    seen.set(path.resolve(file), flag);
  }
}

/** Inputs read only after a model has loaded: checked first, so that a typo fails at once, by option. */
const LATE_INPUTS = new Set(['--ref-image', '--ref-mask', '--mask-input', '--vocabulary-file']);

/**
 * Before any model is loaded: the inputs read late exist as files, and each output's directory
 * exists.
 * @throws Error naming the option and the file or directory.
 */
export async function checkFiles(command: CliCommand): Promise<void> {
  const { inputs, outputs } = filesOf(command);
  for (const [flag, file] of inputs) {
    if (file === undefined || !LATE_INPUTS.has(flag)) continue;
    // (a pipe or /dev/stdin is read as a file)
    const info = await stat(file).catch(() => undefined);
    if (info === undefined || info.isDirectory()) {
      throw new Error(`Cannot read ${flag} ${file}: ${info === undefined ? 'no such file' : 'a directory'}`);
    }
  }
  for (const [flag, file] of outputs) {
    if (file === undefined) continue;
    const dir = path.dirname(path.resolve(file));
    const info = await stat(dir).catch(() => undefined);
    if (info === undefined || !info.isDirectory()) {
      throw new Error(`Cannot write ${flag} ${file}: ${dir} is not ${info === undefined ? 'an existing directory' : 'a directory'}`);
    }
  }
}
