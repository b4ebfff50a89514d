// Child-process body for test/models-pull.test.ts: one pull of a model in its own process (the
// compiled dist/lib: `npm run build:ts` first), so that two of them contend for the lock file.
// argv: <pull.js URL> <id>; environment: OMNISEG_*. Prints {"downloaded": boolean, "dir": ...}.
const [entry, id] = process.argv.slice(2);
const { pullModel } = await import(entry);
const { downloaded, dir } = await pullModel(id);
process.stdout.write(`${JSON.stringify({ downloaded, dir })}\n`);
