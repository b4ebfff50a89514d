// The check scripts/pack-test.sh runs inside a project where the packed omniseg tarball is
// installed (copied there, so that `import 'omniseg'` resolves to the installed package):
// segments the committed tiny checkpoint through the public API, compares the masks and scores
// with the transformers reference (test/fixtures/sam-tiny, case "point" on wide.png), and reads
// /proc/self/maps for the addon file this process actually mapped, which must lie under
// node_modules/omniseg/prebuilds/. Prints one JSON line; exits 1 naming what is wrong.
// Usage: node pack-check.mjs <test/fixtures/sam-tiny>
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Segmenter, cudaStatus } from 'omniseg';

const fixtures = process.argv[2];
if (fixtures === undefined) {
  console.error('usage: node pack-check.mjs <test/fixtures/sam-tiny>');
  process.exit(2);
}
const cases = JSON.parse(readFileSync(path.join(fixtures, 'cases.json'), 'utf8'));
const reference = cases.cases.find((c) => c.name === 'point' && c.image === 'wide.png');
const bytes = (file) => readFileSync(path.join(fixtures, file));
const f32 = (file) => {
  const b = bytes(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
};

const failures = [];
const sam = await Segmenter.load({ model: path.join(fixtures, cases.model), threads: 1 });
const embedding = await sam.encode(path.join(fixtures, reference.image));
const [[[x, y]]] = reference.points;
const { masks } = await sam.segment(embedding, { points: [{ x, y, label: 1 }] }, { multimask: true });

// As test/native-sam.test.ts: scores within 1e-5, masks identical but for pixels within
// rounding of the threshold (at most 1 in 10^4).
const iou = f32(reference.iou);
const refMasks = bytes(reference.masks);
const { H, W, M } = reference.shape;
if (masks.length !== M) failures.push(`expected ${M} masks, got ${masks.length}`);
masks.forEach((mask, i) => {
  if (Math.abs(mask.score - iou[i]) > 1e-5) failures.push(`mask ${i}: score ${mask.score}, reference ${iou[i]}`);
  let differ = 0;
  for (let p = 0; p < H * W; p++) if (mask.data[p] !== refMasks[i * H * W + p]) differ++;
  if (differ > Math.ceil(H * W * 1e-4)) failures.push(`mask ${i}: ${differ} of ${H * W} pixels differ from the reference`);
});

const mapped = [
  ...new Set(
    readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .map((line) => line.split(/\s+/).slice(5).join(' '))
      .filter((file) => /^omniseg(\.[a-z0-9]+)*\.node$/.test(path.basename(file))),
  ),
];
const prebuilds = `${path.sep}node_modules${path.sep}omniseg${path.sep}prebuilds${path.sep}`;
if (mapped.length === 0) failures.push('no omniseg addon is mapped into this process');
for (const file of mapped) {
  if (!file.includes(prebuilds)) failures.push(`the addon was loaded from ${file}, not from node_modules/omniseg/prebuilds/`);
}

const cuda = cudaStatus();
console.log(JSON.stringify({ addons: mapped, device: sam.device, scores: masks.map((m) => m.score), cuda }));
sam.dispose();
if (failures.length > 0) {
  console.error(`pack-check: ${failures.join('; ')}`);
  process.exit(1);
}
