// Child-process body for test/worker.test.ts: 8 times, starts a worker that keeps the addon busy
// (encodes in a loop) and terminates it mid-work; then segments in the main thread. Prints
// "survived 1" and exits 0 when the process outlives the workers.
// argv: entry (file: URL of dist/lib/index.js; import() takes URLs on every platform) model image.
import { Worker } from 'node:worker_threads';

const [entry, model, image] = process.argv.slice(2);
const body = `
  const { parentPort, workerData } = await import('node:worker_threads');
  const { Segmenter } = await import(workerData.entry);
  const segmenter = await Segmenter.load({ model: workerData.model, threads: 1 });
  const side = 1500;
  const pixels = { data: new Uint8Array(side * side * 3), width: side, height: side, channels: 3 };
  const first = segmenter.encode(pixels);
  parentPort.postMessage('busy');
  (await first).dispose();
  for (;;) (await segmenter.encode(pixels)).dispose();
`;
for (let i = 0; i < 8; i++) {
  const worker = new Worker(body, { eval: true, workerData: { entry, model } });
  await new Promise((resolve) => worker.once('message', resolve));
  await new Promise((resolve) => setTimeout(resolve, 5 + 5 * i));
  await worker.terminate();
}
const { Segmenter } = await import(entry);
const segmenter = await Segmenter.load({ model, threads: 1 });
const { masks } = await segmenter.segment(image, { points: [{ x: 75, y: 50, label: 1 }] });
process.stdout.write(`survived ${masks.length}\n`);
