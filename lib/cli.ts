#!/usr/bin/env node
// `omniseg` executable (package.json "bin"): see lib/cli/main.ts.
import { onClosedPipe, runCli } from './cli/main.js';

for (const stream of [process.stdout, process.stderr]) onClosedPipe(stream, process.argv[2]);

process.exitCode = await runCli(process.argv.slice(2));
