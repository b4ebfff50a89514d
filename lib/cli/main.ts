// The `omniseg` command line: parse, dispatch, and report errors in one line.
import { packageVersion } from '../version.js';
import { parseCliArgs, UsageError, type CliCommand } from './args.js';
import { runBench } from './bench.js';
import { runEncode } from './encode.js';
import { runEval } from './eval.js';
import { runHeatmap } from './heatmap.js';
import { helpText } from './help.js';
import { runInfo } from './info.js';
import { checkFiles, checkOutputNames } from './outputs.js';
import type { CliIO } from './io.js';
import { runPull } from './pull.js';
import { runSegment } from './segment.js';
import { runSegmentFrames } from './segment-frames.js';
import { runServe } from './serve.js';

const processIO: CliIO = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  stderrIsTTY: process.stderr.isTTY === true,
};

/**
 * Runs `omniseg` with `argv` (process.argv.slice(2)).
 * @returns the exit code: 0 success, 1 error, 2 usage error. Errors print one line
 *   `omniseg: <message>` on stderr (plus the stack when OMNISEG_DEBUG is set).
 */
export async function runCli(argv: readonly string[], io: CliIO = processIO): Promise<number> {
  try {
    await dispatch(parseCliArgs(argv), io);
    return 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(`omniseg: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
    if (debugEnabled(io.env) && error instanceof Error && error.stack !== undefined) io.stderr(`${error.stack}\n`);
    return error instanceof UsageError ? error.exitCode : 1;
  }
}

async function dispatch(command: CliCommand, io: CliIO): Promise<void> {
  checkOutputNames(command);
  await checkFiles(command);
  switch (command.command) {
    case 'help':
      return io.stdout(helpText(command.topic));
    case 'version':
      return io.stdout(`${packageVersion()}\n`);
    case 'encode':
      return runEncode(command, io);
    case 'segment':
      return runSegment(command, io);
    case 'segment-frames':
      return runSegmentFrames(command, io);
    case 'bench':
      return runBench(command, io);
    case 'info':
      return runInfo(command, io);
    case 'eval':
      return runEval(command, io);
    case 'serve':
      return runServe(command, io);
    case 'heatmap':
      return runHeatmap(command, io);
    case 'pull':
      return runPull(command, io);
  }
}

/**
 * A reader that stops early (`| head`) closes the pipe: the rest of the output is not wanted, which
 * is no error (the default is an unhandled 'error' event and a stack trace), so the run ends there
 * with its exit code so far. `serve` logs there: it goes on serving without its log reader (and
 * shuts down gracefully on its signals).
 */
export function onClosedPipe(
  stream: NodeJS.EventEmitter,
  command: string | undefined,
  exit: (code: number) => void = (code) => process.exit(code),
): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    if (command !== 'serve') exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  });
}

function debugEnabled(env: CliIO['env']): boolean {
  const value = env.OMNISEG_DEBUG;
  return value !== undefined && value !== '' && value !== '0';
}
