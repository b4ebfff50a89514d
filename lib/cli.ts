#!/usr/bin/env node
// `omniseg` executable (package.json "bin"): see lib/cli/main.ts.
import { runCli } from './cli/main.js';

// A reader that stops early (`| head`) closes the pipe: the rest of the output is not wanted, which
// is no error (the default would be an unhandled 'error' event and a stack trace).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(process.exitCode ?? 0);
  });
}

process.exitCode = await runCli(process.argv.slice(2));
