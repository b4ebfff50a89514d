// omniseg segment-frames <dir-or-glob> --model <dir> [--point x,y,label]... [--scribble ...]...
//   [--box x0,y0,x1,y1] [--follow] [--multimask] --out-dir <dir> [--json]
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Prompt } from '../prompt.js';
import type { SegmentFramesCommand } from './args.js';
import { jsonLine, round } from './format.js';
import { loadSegmenter, promptOf } from './model.js';
import type { CliIO } from './io.js';
import { UsageError } from './values.js';

/** File extensions taken from a directory (a glob takes whatever it matches). */
export const FRAME_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff', '.gif', '.avif'];

/** Natural order: frame2.png before frame10.png. */
const naturalOrder = new Intl.Collator('en', { numeric: true }).compare;

export async function runSegmentFrames(args: SegmentFramesCommand, io: CliIO): Promise<void> {
  const files = await listFrames(args.frames);
  const outputs = maskFiles(files, args.outDir);
  try {
    await mkdir(args.outDir, { recursive: true });
  } catch (error) {
    throw new Error(`Cannot create --out-dir ${args.outDir}: ${(error as Error).message}`);
  }
  const segmenter = await loadSegmenter(args);
  try {
    const prompt: Prompt = promptOf(args);

    const start = performance.now();
    const masks: Array<{ frame: string; mask: string; score: number; area: number; box: number[] }> = [];
    for await (const frame of segmenter.segmentStream(files, prompt, { multimask: args.multimask, follow: args.follow })) {
      const out = outputs[frame.index];
      const { best } = frame;
      try {
        await writeFile(out, await best.toPNG());
      } catch (error) {
        throw new Error(`Cannot write ${out}: ${(error as Error).message}`);
      }
      masks.push({ frame: files[frame.index], mask: out, score: best.score, area: best.area, box: best.box });
      if (!args.json) {
        io.stdout(`${files[frame.index]} -> ${out}  score ${best.score.toFixed(4)}  area ${best.area}  box [${best.box.join(', ')}]\n`);
      }
    }
    const seconds = (performance.now() - start) / 1000;
    const framesPerSecond = files.length / seconds;
    if (args.json) {
      io.stdout(jsonLine({ frames: files.length, seconds: round(seconds, 3), framesPerSecond: round(framesPerSecond, 2), masks }));
    } else {
      io.stdout(`${files.length} frame${files.length === 1 ? '' : 's'} in ${seconds.toFixed(2)} s: ${framesPerSecond.toFixed(2)} frames/s\n`);
    }
  } finally {
    segmenter.dispose();
  }
}

/**
 * The frames named by `pattern`, in natural order: the image files of a directory (by extension,
 * FRAME_EXTENSIONS), the files matching a glob whose wildcards (`*`, `?`, `[...]`) are in the
 * file-name part only (`frames/*.png`), or one file.
 * @throws Error when nothing matches.
 */
export async function listFrames(pattern: string): Promise<string[]> {
  const info = await stat(pattern).catch((error: NodeJS.ErrnoException) => {
    // (a missing path may be a glob; any other failure is what it says, e.g. EACCES)
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
    throw new Error(`Cannot read frames ${pattern}: ${error.message}`);
  });
  if (info?.isFile() === true) return [pattern];
  let dir: string;
  let keep: (name: string) => boolean;
  if (info?.isDirectory() === true) {
    dir = pattern;
    keep = (name) => FRAME_EXTENSIONS.includes(path.extname(name).toLowerCase());
  } else if (/[*?[]/.test(pattern)) {
    dir = path.dirname(pattern);
    if (/[*?[]/.test(dir)) throw new Error(`Cannot read frames ${pattern}: wildcards are allowed in the file name only`);
    const matcher = globRegExp(path.basename(pattern), pattern);
    keep = (name) => matcher.test(name);
  } else {
    throw new Error(`Frames not found: ${pattern} is neither a directory, a file nor a glob`);
  }
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    throw new Error(`Cannot read frames ${pattern}: ${(error as Error).message}`);
  }
  const names = entries.filter((e) => !e.isDirectory() && keep(e.name)).map((e) => e.name);
  if (names.length === 0) throw new Error(`No frames found in ${pattern}`);
  return names.sort(naturalOrder).map((name) => path.join(dir, name));
}

/**
 * `*` any run of characters, `?` one character, `[...]` a class (`[!...]` negated); the rest literal.
 * @throws UsageError (exit code 2) naming the argument for a class JavaScript refuses (`[z-a]`).
 */
function globRegExp(glob: string, arg: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    const close = c === '[' ? glob.indexOf(']', i + 2) : -1;
    if (c === '*') source += '.*';
    else if (c === '?') source += '.';
    else if (close > 0) {
      const body = glob.slice(i + 1, close).replace(/^!/, '^').replace(/[\\\]]/g, '\\$&');
      source += `[${body}]`;
      i = close;
    } else source += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  try {
    return new RegExp(`^${source}$`);
  } catch {
    throw new UsageError(`Cannot read frames ${arg}: invalid character class in the glob ${glob}`);
  }
}

/** One mask file per frame: <out-dir>/<frame name without extension>.png. */
function maskFiles(files: readonly string[], outDir: string): string[] {
  const outputs = files.map((file) => path.join(outDir, `${path.parse(file).name}.png`));
  const inputs = new Set(files.map((file) => path.resolve(file)));
  const seen = new Map<string, string>();
  outputs.forEach((out, i) => {
    if (inputs.has(path.resolve(out))) throw new Error(`The mask of ${files[i]} would overwrite a frame: choose another --out-dir`);
    const other = seen.get(out);
    if (other !== undefined) throw new Error(`Frames ${other} and ${files[i]} would both write ${out}`);
    seen.set(out, files[i]);
  });
  return outputs;
}
