#!/usr/bin/env node
// `omniseg` executable (package.json "bin"): see lib/cli/main.ts.
import { runCli } from './cli/main.js';

process.exitCode = await runCli(process.argv.slice(2));
