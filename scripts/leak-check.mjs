// The workload of scripts/leak-check.sh: load the sam-tiny checkpoint, then encode, segment
// (points, boxes, a mask prompt, multimask), run a session round and dispose, a few times.
// Raw pixels keep sharp out of the run, so that valgrind sees omniseg's native code and little else.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Segmenter } from '../dist/lib/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const model = path.join(root, 'test', 'fixtures', 'sam-tiny', 'model');
const cycles = Number(process.env.LEAK_CHECK_CYCLES ?? 3);

const width = 96;
const height = 64;
const data = new Uint8Array(width * height * 3);
for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 251;
const image = { data, width, height, channels: 3 };

for (let cycle = 0; cycle < cycles; cycle++) {
  const segmenter = await Segmenter.load({ model, device: 'cpu', threads: 2 });
  const embedding = await segmenter.encode(image);
  const first = await segmenter.segment(embedding, { points: [{ x: 40, y: 30, label: 1 }] }, { multimask: true });
  await segmenter.segment(embedding, {
    boxes: [
      [10, 10, 60, 50],
      [20, 5, 90, 60],
    ],
    maskInput: first.masks[0].lowResLogits,
  });
  const session = await segmenter.session(embedding);
  await session.add({ points: [{ x: 30, y: 20, label: 1 }] });
  await session.add({ points: [{ x: 70, y: 40, label: 0 }] });
  await segmenter.segment(image, { points: [{ x: 50, y: 32, label: 1 }] }); // encodes and frees its own embedding
  first.masks[0].toRLE();
  embedding.dispose();
  segmenter.dispose();
}
// The JS wrappers of the disposed models and embeddings still hold N-API's small bookkeeping
// record for their External (40 bytes each, freed by its GC finaliser); Node does not collect
// them at exit, so valgrind would count them as definitely lost. Collect them first.
if (typeof globalThis.gc === 'function') {
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}
console.log(`leak-check workload: ${cycles} cycles done`);
