// `omniseg eval`'s argument parsing: the --gt/--pred, --heatmaps, --clicks, --dataset and
// --convert modes and which options go with each.
import { DEFAULT_MAX_CLICKS } from '../eval/clicks.js';
import type { EvalCommand } from './commands.js';
import { backend, modelOptions, optionalString, threads, type Values } from './options.js';
import { optionalPositiveInteger, UsageError } from './values.js';

export function evalCommand(values: Values): EvalCommand {
  if (values.string('convert') !== undefined) return evalConvertCommand(values);
  const convertOnly = ['grefs', 'instances', 'images', 'split'].find((o) => values.string(o) !== undefined);
  if (convertOnly !== undefined) throw new UsageError(`Option --${convertOnly} goes with --convert`);
  if (values.string('dataset') !== undefined) return evalDatasetCommand(values);
  const gt = values.required('gt');
  const pred = values.string('pred');
  const heatmaps = values.string('heatmaps');
  const clicks = values.flag('clicks');
  const modes = [pred !== undefined, heatmaps !== undefined, clicks].filter(Boolean).length;
  if (modes !== 1) {
    throw new UsageError('Give exactly one of --pred (masks), --heatmaps (PointM) or --clicks (NoC, with --model)');
  }
  const datasetOnly = ['referrer', 'out'].find((o) => values.string(o) !== undefined);
  if (datasetOnly !== undefined) throw new UsageError(`Option --${datasetOnly} goes with --dataset`);
  if (pred === undefined && values.string('report') !== undefined) throw new UsageError('Option --report goes with --pred or --dataset');
  const model = values.string('model');
  if (clicks && model === undefined) throw new UsageError('Missing required option --model (for --clicks)');
  if (!clicks) {
    const modelOnly = ['model', 'device', 'precision', 'cpu-matmul', 'threads', 'max-clicks'].find((o) => values.string(o) !== undefined);
    if (modelOnly !== undefined) throw new UsageError(`Option --${modelOnly} goes with --clicks`);
  }
  return {
    command: 'eval',
    gt,
    ...(pred === undefined ? {} : { pred }),
    ...(heatmaps === undefined ? {} : { heatmaps }),
    clicks,
    ...(model === undefined ? {} : { model }),
    ...backend(values),
    ...threads(values),
    maxClicks: optionalPositiveInteger(values.string('max-clicks'), '--max-clicks') ?? DEFAULT_MAX_CLICKS,
    json: values.flag('json'),
    ...optionalString(values, 'report', 'report'),
  };
}

/** eval --convert grefcoco: a dataset conversion, no evaluation (only --out goes with it). */
function evalConvertCommand(values: Values): EvalCommand {
  const format = values.required('convert');
  if (format !== 'grefcoco') throw new UsageError(`Invalid value for --convert: ${JSON.stringify(format)}; expected grefcoco`);
  // (it runs no model: the backend options are refused too, as with --pred)
  const other = ['gt', 'pred', 'heatmaps', 'dataset', 'model', 'referrer', 'report', 'max-clicks', 'device', 'precision', 'cpu-matmul', 'threads'].find(
    (o) => values.string(o) !== undefined,
  );
  if (other !== undefined || values.flag('clicks') || values.flag('json')) {
    throw new UsageError(`Option --${other ?? (values.flag('clicks') ? 'clicks' : 'json')} does not go with --convert`);
  }
  const convert = { format, grefs: values.required('grefs'), instances: values.required('instances'), images: values.required('images') } as const;
  return {
    command: 'eval',
    convert: { ...convert, ...optionalString(values, 'split', 'split') },
    out: values.required('out'),
    clicks: false,
    device: 'auto',
    precision: 'fp32',
    maxClicks: DEFAULT_MAX_CLICKS,
    json: false,
  };
}

/** eval --dataset: runs --model (and --referrer) over the dataset; the other modes do not go with it. */
function evalDatasetCommand(values: Values): EvalCommand {
  const other = ['gt', 'pred', 'heatmaps', 'max-clicks'].find((o) => values.string(o) !== undefined);
  if (other !== undefined) throw new UsageError(`Option --${other} does not go with --dataset`);
  if (values.flag('clicks')) throw new UsageError('Option --clicks does not go with --dataset');
  if (values.string('model') === undefined) throw new UsageError('Missing required option --model (for --dataset)');
  return {
    command: 'eval',
    dataset: values.required('dataset'),
    clicks: false,
    ...modelOptions(values),
    ...optionalString(values, 'referrer', 'referrer'),
    ...optionalString(values, 'out', 'out'),
    ...optionalString(values, 'report', 'report'),
    maxClicks: DEFAULT_MAX_CLICKS,
    json: values.flag('json'),
  };
}
