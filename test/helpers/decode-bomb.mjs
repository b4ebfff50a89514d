// Child-process body for test/hostile-bomb.test.ts: feeds decompression bombs to the library
// (the compiled entry, dist/lib) and reports each error and the process's peak RSS as JSON.
// argv: entry-url model-dir file...
import { readFileSync } from 'node:fs';

const [entry, model, ...files] = process.argv.slice(2);
const { decodeImage, Segmenter } = await import(entry);

async function message(promise) {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return `${error.name}: ${error.message}`;
  }
}

const start = performance.now();
const segmenter = await Segmenter.load({ model, threads: 1 });
const click = { points: [{ x: 1, y: 1, label: 1 }] };
const results = [];
for (const file of files) {
  const bytes = readFileSync(file);
  results.push({
    file,
    decodeFile: await message(decodeImage(file)),
    decodeBuffer: await message(decodeImage(bytes)),
    encode: await message(segmenter.encode(file)),
    segment: await message(segmenter.segment(bytes, click)),
    stream: await message(
      (async () => {
        for await (const frame of segmenter.segmentStream([file], click)) frame.best.area;
      })(),
    ),
  });
}
// Still usable afterwards.
const { masks } = await segmenter.segment({ data: new Uint8Array(8 * 8 * 3), width: 8, height: 8, channels: 3 }, click);
segmenter.dispose();
console.log(
  JSON.stringify({
    results,
    afterwards: masks.length,
    ms: Math.round(performance.now() - start),
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
  }),
);
