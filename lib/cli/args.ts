// Command-line parsing for `omniseg`: a pure function from argv to a typed command, so that the
// CLI's contract (flags, requirements, usage errors) is testable without the native addon.
//
// Usage errors (unknown command or option, missing option or value, malformed value) throw
// UsageError (exit code 2). Values are checked for syntax only; ranges (e.g. a point outside the
// image, threads beyond the limit) are the library's to check.
import { parseArgs } from 'node:util';
import type {
  PromptOptions,
  HelpCommand,
  ReferringOptions,
  HeatmapCommand,
  SegmentReferring,
  SegmentCommand,
  SegmentFramesCommand,
  ServeCommand,
  PullCommand,
  CliCommand,
} from './commands.js';
import { MAX_ENCODE_BATCH } from '../segmenter.js';
import { MAX_TIMER_MS } from '../server/defaults.js';
import { evalCommand } from './eval-args.js';
import { DEVICES, Values, cpuMatmul, modelOptions, optionalString, threads } from './options.js';
import {
  UsageError,
  fraction,
  integerUpTo,
  optionalChoice,
  optionalNonNegativeNumber,
  optionalPositiveInteger,
  parseBox,
  parsePoint,
  parseScribble,
} from './values.js';

export { UsageError, parseBox, parsePoint, parseScribble } from './values.js';

export const COMMANDS = ['encode', 'segment', 'segment-frames', 'bench', 'info', 'eval', 'serve', 'heatmap', 'pull'] as const;
export type CommandName = (typeof COMMANDS)[number];

export { CPU_MATMULS, DEVICES, PRECISIONS } from './options.js';

export type {
  ModelOptions,
  PromptOptions,
  HelpCommand,
  VersionCommand,
  EncodeCommand,
  ReferringOptions,
  HeatmapCommand,
  SegmentReferring,
  SegmentCommand,
  SegmentFramesCommand,
  BenchCommand,
  InfoCommand,
  EvalCommand,
  ServeCommand,
  PullCommand,
  CliCommand,
} from './commands.js';

export const DEFAULT_BENCH_RUNS = 5;

interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
}

const HELP: OptionSpec = { type: 'boolean', short: 'h' };
const MODEL: OptionSpec = { type: 'string' };
const THREADS: OptionSpec = { type: 'string' };
const DEVICE: OptionSpec = { type: 'string' };
const PRECISION: OptionSpec = { type: 'string' };
const CPU_MATMUL: OptionSpec = { type: 'string' };
const JSON_FLAG: OptionSpec = { type: 'boolean' };
/** The options of every command that loads a SAM model (ModelOptions). */
const MODEL_OPTIONS = { model: MODEL, device: DEVICE, precision: PRECISION, 'cpu-matmul': CPU_MATMUL, threads: THREADS };
/** --point, --scribble, --box (PromptOptions). */
const PROMPT_OPTIONS: Record<string, OptionSpec> = {
  point: { type: 'string', multiple: true },
  scribble: { type: 'string', multiple: true },
  box: { type: 'string' },
};
/** What is referred to, with --referrer (ReferringOptions). */
const REFERRING_OPTIONS: Record<string, OptionSpec> = {
  referrer: { type: 'string' },
  text: { type: 'string', multiple: true },
  'ref-image': { type: 'string', multiple: true },
  'text-weight': { type: 'string' },
  'ref-mask': { type: 'string' },
  'ref-box': { type: 'string' },
};

/** Options and positional arguments of each command. */
const SPECS: Record<CommandName, { options: Record<string, OptionSpec>; positionals: readonly string[] }> = {
  encode: {
    options: {
      ...MODEL_OPTIONS,
      'save-embedding': { type: 'string' },
      json: JSON_FLAG,
      help: HELP,
    },
    positionals: ['image'],
  },
  segment: {
    options: {
      ...MODEL_OPTIONS,
      ...PROMPT_OPTIONS,
      'mask-input': { type: 'string' },
      multimask: { type: 'boolean' },
      json: JSON_FLAG,
      'save-logits': { type: 'string' },
      out: { type: 'string' },
      ...REFERRING_OPTIONS,
      each: { type: 'boolean' },
      'threshold-heat': { type: 'string' },
      'min-area': { type: 'string' },
      vocabulary: { type: 'string', multiple: true },
      'vocabulary-file': { type: 'string' },
      help: HELP,
    },
    positionals: ['image'],
  },
  'segment-frames': {
    options: {
      ...MODEL_OPTIONS,
      ...PROMPT_OPTIONS,
      follow: { type: 'boolean' },
      multimask: { type: 'boolean' },
      'out-dir': { type: 'string' },
      json: JSON_FLAG,
      help: HELP,
    },
    positionals: ['frames'],
  },
  bench: {
    options: {
      ...MODEL_OPTIONS,
      image: { type: 'string' },
      runs: { type: 'string' },
      json: JSON_FLAG,
      help: HELP,
    },
    positionals: [],
  },
  info: { options: { json: JSON_FLAG, help: HELP }, positionals: [] },
  eval: {
    options: {
      gt: { type: 'string' },
      pred: { type: 'string' },
      heatmaps: { type: 'string' },
      clicks: { type: 'boolean' },
      dataset: { type: 'string' },
      referrer: { type: 'string' },
      out: { type: 'string' },
      report: { type: 'string' },
      convert: { type: 'string' },
      grefs: { type: 'string' },
      instances: { type: 'string' },
      images: { type: 'string' },
      split: { type: 'string' },
      ...MODEL_OPTIONS,
      'max-clicks': { type: 'string' },
      json: JSON_FLAG,
      help: HELP,
    },
    positionals: [],
  },
  serve: {
    options: {
      ...MODEL_OPTIONS,
      host: { type: 'string' },
      port: { type: 'string' },
      'cache-mb': { type: 'string' },
      'heatmap-cache-mb': { type: 'string' },
      'max-queue': { type: 'string' },
      'max-batch': { type: 'string' },
      'batch-delay-ms': { type: 'string' },
      'timeout-ms': { type: 'string' },
      referrer: { type: 'string' },
      help: HELP,
    },
    positionals: [],
  },
  heatmap: {
    options: {
      ...REFERRING_OPTIONS,
      model: MODEL,
      device: DEVICE,
      'cpu-matmul': CPU_MATMUL,
      threads: THREADS,
      save: { type: 'string' },
      out: { type: 'string' },
      'save-f32': { type: 'string' },
      json: JSON_FLAG,
      help: HELP,
    },
    positionals: ['image'],
  },
  pull: {
    options: { quiet: { type: 'boolean' }, 'allow-unverified': { type: 'boolean' }, help: HELP },
    positionals: ['id'],
  },
};

/** Parses `omniseg`'s arguments (process.argv.slice(2)). @throws UsageError */
export function parseCliArgs(argv: readonly string[]): CliCommand {
  const [first, ...rest] = argv;
  if (first === undefined) throw new UsageError(`Missing command (${COMMANDS.join(', ')}); see omniseg --help`);
  if (first === '--help' || first === '-h') return { command: 'help' };
  if (first === '--version' || first === '-v') return { command: 'version' };
  if (first === 'help') return helpFor(rest[0]);
  if (!isCommand(first)) {
    throw new UsageError(`Unknown command ${JSON.stringify(first)}; expected one of ${COMMANDS.join(', ')}`);
  }
  const values = readOptions(first, rest);
  if (values === 'help') return { command: 'help', topic: first };
  switch (first) {
    case 'encode':
      return {
        command: 'encode',
        image: values.positionals[0],
        ...modelOptions(values),
        saveEmbedding: values.required('save-embedding'),
        json: values.flag('json'),
      };
    case 'segment':
      return segmentCommand(values);
    case 'segment-frames':
      return segmentFramesCommand(values);
    case 'bench':
      return {
        command: 'bench',
        ...modelOptions(values),
        image: values.required('image'),
        runs: optionalPositiveInteger(values.string('runs'), '--runs') ?? DEFAULT_BENCH_RUNS,
        json: values.flag('json'),
      };
    case 'info':
      return { command: 'info', json: values.flag('json') };
    case 'eval':
      return evalCommand(values);
    case 'serve':
      return serveCommand(values);
    case 'heatmap':
      return heatmapCommand(values);
    case 'pull':
      return pullCommand(values);
  }
}

function pullCommand(values: Values): PullCommand {
  return { command: 'pull', id: values.positionals[0], quiet: values.flag('quiet'), allowUnverified: values.flag('allow-unverified') };
}

function heatmapCommand(values: Values): HeatmapCommand {
  return {
    command: 'heatmap',
    image: values.positionals[0],
    ...referringOptions(values, 'model'),
    device: optionalChoice(values.string('device'), '--device', DEVICES) ?? 'auto',
    ...cpuMatmul(values),
    ...threads(values),
    ...optionalString(values, 'save', 'save'),
    ...optionalString(values, 'out', 'out'),
    ...optionalString(values, 'save-f32', 'saveF32'),
    json: values.flag('json'),
  };
}

/**
 * The referring prompts: --text and --ref-image (each repeatable), --text-weight only with one of
 * each, --ref-mask / --ref-box only with one --ref-image. The checkpoint is --referrer (for
 * heatmap also --model, its name in the contract; not both).
 */
function referringOptions(values: Values, alias?: 'model'): ReferringOptions {
  const named = alias === undefined ? undefined : values.string(alias);
  if (named !== undefined && values.string('referrer') !== undefined) {
    throw new UsageError(`Options --${alias} and --referrer do not go together (they name the same checkpoint)`);
  }
  const referrer = named ?? values.string('referrer');
  if (referrer === undefined) throw new UsageError(`Missing required option --${alias ?? 'referrer'}`);
  const texts = values.list('text');
  const refImages = values.list('ref-image');
  if (texts.length + refImages.length === 0) {
    throw new UsageError('Missing referring prompt: give --text, --ref-image or both');
  }
  texts.forEach((t) => {
    if (t.trim() === '') throw new UsageError('Option --text must not be empty');
  });
  const weightRaw = values.string('text-weight');
  if (weightRaw !== undefined && (texts.length !== 1 || refImages.length !== 1)) {
    throw new UsageError('Option --text-weight goes with one --text and one --ref-image');
  }
  const refMask = values.string('ref-mask');
  const refBox = values.string('ref-box');
  if (refMask !== undefined && refBox !== undefined) throw new UsageError('Options --ref-mask and --ref-box do not go together');
  const region = refMask !== undefined ? 'ref-mask' : refBox !== undefined ? 'ref-box' : undefined;
  if (region !== undefined && refImages.length !== 1) throw new UsageError(`Option --${region} goes with one --ref-image`);
  const each = values.flag('each');
  if (each && weightRaw !== undefined) throw new UsageError('Options --each and --text-weight do not go together');
  return {
    referrer,
    texts,
    refImages,
    ...(weightRaw === undefined ? {} : { textWeight: fraction(weightRaw, '--text-weight') }),
    ...(refMask === undefined ? {} : { refMask }),
    ...(refBox === undefined ? {} : { refBox: parseBox(refBox, '--ref-box') }),
    each,
  };
}

/**
 * `segment --referrer`'s options. --point, --scribble and --box are prompts on the target image
 * that narrow the referred instances (SEEM-style composition); the mask-only options do not go
 * with it.
 */
function segmentReferring(values: Values): SegmentReferring {
  const other = ['mask-input', 'save-logits', 'out'].find((o) => values.list(o).length > 0);
  if (other !== undefined) throw new UsageError(`Option --${other} does not go with --referrer`);
  if (values.flag('multimask')) throw new UsageError('Option --multimask does not go with --referrer');
  const threshold = values.string('threshold-heat');
  const minArea = values.string('min-area');
  const vocabulary = values.list('vocabulary').flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
  if (values.list('vocabulary').length > 0 && vocabulary.length === 0) throw new UsageError('Option --vocabulary has no labels');
  const vocabularyFile = values.string('vocabulary-file');
  if (vocabularyFile !== undefined && vocabulary.length > 0) {
    throw new UsageError('Options --vocabulary and --vocabulary-file do not go together');
  }
  return {
    ...referringOptions(values),
    ...(threshold === undefined ? {} : { thresholdHeat: fraction(threshold, '--threshold-heat') }),
    ...(minArea === undefined ? {} : { minArea: fraction(minArea, '--min-area') }),
    ...(vocabulary.length === 0 ? {} : { vocabulary }),
    ...(vocabularyFile === undefined ? {} : { vocabularyFile }),
  };
}

function serveCommand(values: Values): ServeCommand {
  const port = values.string('port');
  const optional = <K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> =>
    value === undefined ? {} : ({ [key]: value } as Record<K, number>);
  return {
    command: 'serve',
    ...modelOptions(values),
    host: values.string('host') ?? '127.0.0.1',
    port: port === undefined ? 8080 : integerUpTo(port, '--port', 65535),
    ...optional('cacheMb', optionalNonNegativeNumber(values.string('cache-mb'), '--cache-mb')),
    ...optional('heatmapCacheMb', optionalNonNegativeNumber(values.string('heatmap-cache-mb'), '--heatmap-cache-mb')),
    ...optional('maxQueue', optionalPositiveInteger(values.string('max-queue'), '--max-queue')),
    ...optional('maxBatch', optionalPositiveInteger(values.string('max-batch'), '--max-batch', MAX_ENCODE_BATCH)),
    ...optional('batchDelayMs', optionalNonNegativeNumber(values.string('batch-delay-ms'), '--batch-delay-ms', MAX_TIMER_MS)),
    ...optional('timeoutMs', optionalPositiveInteger(values.string('timeout-ms'), '--timeout-ms', MAX_TIMER_MS)),
    ...(values.string('referrer') === undefined ? {} : { referrer: values.string('referrer') }),
  };
}

function isCommand(name: string): name is CommandName {
  return (COMMANDS as readonly string[]).includes(name);
}

function helpFor(topic: string | undefined): HelpCommand {
  if (topic === undefined) return { command: 'help' };
  if (!isCommand(topic)) throw new UsageError(`Unknown command ${JSON.stringify(topic)}; expected one of ${COMMANDS.join(', ')}`);
  return { command: 'help', topic };
}

function segmentCommand(values: Values): SegmentCommand {
  if (values.string('referrer') !== undefined) {
    return {
      command: 'segment',
      image: values.positionals[0],
      ...modelOptions(values),
      ...promptOptions(values),
      multimask: false,
      json: values.flag('json'),
      referring: segmentReferring(values),
    };
  }
  const referringOnly = [
    'text', 'ref-image', 'text-weight', 'ref-mask', 'ref-box', 'threshold-heat', 'min-area', 'vocabulary', 'vocabulary-file',
  ].find((o) => values.string(o) !== undefined);
  if (referringOnly !== undefined) throw new UsageError(`Option --${referringOnly} goes with --referrer`);
  if (values.flag('each')) throw new UsageError('Option --each goes with --referrer');
  const prompt = promptOptions(values);
  const maskInput = values.string('mask-input');
  if (!hasPrompt(prompt) && maskInput === undefined) {
    throw new UsageError('Missing prompt: give at least one --point, --scribble, --box or --mask-input');
  }
  return {
    command: 'segment',
    image: values.positionals[0],
    ...modelOptions(values),
    ...prompt,
    ...(maskInput === undefined ? {} : { maskInput }),
    multimask: values.flag('multimask'),
    json: values.flag('json'),
    ...optionalString(values, 'save-logits', 'saveLogits'),
    ...optionalString(values, 'out', 'out'),
  };
}

/** --point, --scribble and --box, parsed (each may be absent). */
function promptOptions(values: Values): PromptOptions {
  const boxRaw = values.string('box');
  return {
    points: values.list('point').map((raw) => parsePoint(raw)),
    scribbles: values.list('scribble').map((raw) => parseScribble(raw)),
    ...(boxRaw === undefined ? {} : { box: parseBox(boxRaw) }),
  };
}

function hasPrompt(p: PromptOptions): boolean {
  return p.points.length > 0 || p.scribbles.length > 0 || p.box !== undefined;
}

function segmentFramesCommand(values: Values): SegmentFramesCommand {
  const prompt = promptOptions(values);
  if (!hasPrompt(prompt)) throw new UsageError('Missing prompt: give at least one --point, --scribble or --box');
  return {
    command: 'segment-frames',
    frames: values.positionals[0],
    ...modelOptions(values),
    ...prompt,
    follow: values.flag('follow'),
    multimask: values.flag('multimask'),
    outDir: values.required('out-dir'),
    json: values.flag('json'),
  };
}

/**
 * Tokenises a command's arguments and checks them against its spec.
 * @returns the values, or 'help' when --help / -h is among them.
 */
function readOptions(command: CommandName, args: readonly string[]): Values | 'help' {
  const spec = SPECS[command];
  const { tokens } = parseArgs({
    args: [...args],
    options: spec.options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  // A short option only as an argument of its own: with strict: false, parseArgs splits
  // "-sheep.png" into -s -h -e ..., whose -h would print the help and exit 0 instead of the answer.
  for (const t of tokens) {
    if (t.kind === 'option' && !t.rawName.startsWith('--') && args[t.index] !== t.rawName) {
      throw new UsageError(
        `Unknown option ${args[t.index]} for omniseg ${command} (a file whose name starts with "-": write ./${args[t.index]}, or put it after --)`,
      );
    }
  }
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) return 'help';

  const strings = new Map<string, string[]>();
  const flags = new Set<string>();
  const positionals: string[] = [];
  for (const token of tokens) {
    if (token.kind === 'positional') {
      positionals.push(token.value);
      continue;
    }
    if (token.kind !== 'option') continue; // the '--' terminator
    const option = spec.options[token.name];
    if (option === undefined) {
      throw new UsageError(`Unknown option ${token.rawName} for omniseg ${command}; see omniseg ${command} --help`);
    }
    if (option.type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`Option --${token.name} does not take a value`);
      flags.add(token.name);
      continue;
    }
    const value = token.value;
    // With strict: false, "--model --json" would make "--json" the model: treat it as missing.
    if (value === undefined || value === '' || (!token.inlineValue && /^-(-|[a-zA-Z])/.test(value))) {
      // (the next option, as in "--model --json", is a missing value; "--text -x" may be the value)
      const next = value !== undefined && value.startsWith('--') && spec.options[value.slice(2).split('=')[0]] !== undefined;
      const dashed = value !== undefined && value !== '' && !next ? ` (a value starting with "-": write --${token.name}=${value})` : '';
      throw new UsageError(`Option --${token.name} requires a value${dashed}`);
    }
    const previous = strings.get(token.name);
    if (previous !== undefined && option.multiple !== true) {
      throw new UsageError(`Option --${token.name} was given more than once`);
    }
    strings.set(token.name, [...(previous ?? []), value]);
  }

  const expected = spec.positionals;
  if (positionals.length > expected.length) {
    throw new UsageError(`Unexpected argument ${JSON.stringify(positionals[expected.length])} for omniseg ${command}`);
  }
  if (positionals.length < expected.length) {
    throw new UsageError(`Missing the <${expected[positionals.length]}> argument; see omniseg ${command} --help`);
  }
  return new Values(strings, flags, positionals);
}
