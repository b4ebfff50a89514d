// omniseg pull <id> [--quiet] [--allow-unverified]
import { pullModel } from '../models/pull.js';
import { progressReporter } from '../models/progress.js';
import type { PullCommand } from './args.js';
import type { CliIO } from './io.js';

/** Pulls a registry model into the cache; prints its directory on stdout, progress on stderr. */
export async function runPull(args: PullCommand, io: CliIO): Promise<void> {
  const { dir } = await pullModel(args.id, {
    env: io.env,
    allowUnverified: args.allowUnverified,
    ...(args.quiet ? {} : { onEvent: progressReporter({ write: io.stderr, tty: io.stderrIsTTY === true }) }),
  });
  io.stdout(`${dir}\n`);
}
