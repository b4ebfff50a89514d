// Worker-thread body for test/worker.test.ts: loads omniseg (the compiled package entry,
// dist/lib/index.js: a worker runs plain JavaScript), segments an image several times and posts
// the masks back. workerData: { entry, model, image, prompts, threads }.
import { parentPort, workerData } from 'node:worker_threads';

const { entry, model, image, prompts, threads } = workerData;
const { Segmenter } = await import(entry);
const segmenter = await Segmenter.load({ model, threads });
const embedding = await segmenter.encode(image);
const results = [];
for (const prompt of prompts) {
  const { masks } = await segmenter.segment(embedding, prompt, { multimask: true });
  results.push(masks.map((m) => ({ score: m.score, area: m.area, rle: m.toRLE() })));
}
embedding.dispose();
segmenter.dispose();
parentPort.postMessage(results);
