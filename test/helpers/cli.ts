// Runs the CLI in-process (runCli) and collects what it prints; parses command lines.
import { expect } from 'vitest';
import { parseCliArgs, UsageError } from '../../lib/cli/args.js';
import { runCli } from '../../lib/cli/main.js';

/** parseCliArgs on a space-separated command line. */
export const parse = (line: string) => parseCliArgs(line.split(' ').filter((s) => s !== ''));

/** Asserts that parsing `line` throws a UsageError with exactly this message. */
export function expectUsage(line: string, message: string): void {
  expect(() => parse(line)).toThrow(new UsageError(message));
}

export async function run(argv: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    env,
  });
  return { code, stdout, stderr };
}
