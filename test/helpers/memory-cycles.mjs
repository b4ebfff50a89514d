// Child-process body for test/memory.test.ts (run with --expose-gc): encode / segment / dispose
// cycles on a small model, printing RSS as JSON. Runs the compiled package entry (dist/lib).
// argv: entry-url model-dir cycles warmup keep ("keep" retains every embedding: a simulated leak).
const [entry, model, cyclesArg, warmupArg, mode] = process.argv.slice(2);
const cycles = Number(cyclesArg);
const warmup = Number(warmupArg);
const { Segmenter } = await import(entry);

const segmenter = await Segmenter.load({ model, threads: 2 });
const width = 96;
const height = 64;
const data = new Uint8Array(width * height * 3);
for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 255;
const image = { data, width, height, channels: 3 };
const prompt = { points: [{ x: 40, y: 30, label: 1 }] };
const kept = [];

const rssMB = () => {
  globalThis.gc();
  return process.memoryUsage().rss / 2 ** 20;
};

let baseline = 0;
const samples = [];
for (let i = 1; i <= cycles; i++) {
  const embedding = await segmenter.encode(image);
  const { masks } = await segmenter.segment(embedding, prompt, { multimask: true });
  masks[0].toRLE();
  if (mode === 'keep') kept.push(embedding);
  else embedding.dispose();
  if (i === warmup) baseline = rssMB();
  if (i % 100 === 0) samples.push(Math.round(rssMB() * 10) / 10);
}
const final = rssMB();
segmenter.dispose();
console.log(JSON.stringify({ baseline, final, growth: final - baseline, samples, kept: kept.length }));
