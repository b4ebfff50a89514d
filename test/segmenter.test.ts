// Segmenter against a fake native binding: argument validation, prompt packing, result
// slicing and lifetimes, without the addon. (Numerical parity is the native tests' job.)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { calls, CONFIG, resetCalls } from './helpers/fake-binding.js';

vi.mock('../lib/native.js', async () => {
  const { binding } = await import('./helpers/fake-binding.js');
  return { native: () => binding, nativeCuda: () => ({ error: 'not built' }) };
});

const { Segmenter, ImageEmbedding } = await import('../lib/index.js');

let modelDir: string;
beforeAll(async () => {
  modelDir = await mkdtemp(path.join(tmpdir(), 'omniseg-model-'));
});
afterAll(async () => {
  await rm(modelDir, { recursive: true, force: true });
});
beforeEach(() => {
  resetCalls();
});

/** 20 × 10 RGB raw pixels. */
const pixels = () => ({ data: new Uint8Array(20 * 10 * 3), width: 20, height: 10, channels: 3 as const });

describe('Segmenter.load', () => {
  it('loads with the hardware threads by default and exposes the config', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    expect(calls.loadSam).toEqual([{ dir: modelDir, threads: 7, device: 'cpu', precision: 'fp32', cpuMatmul: 'bf16x3' }]);
    expect(segmenter.threads).toBe(7);
    expect(segmenter.device).toBe('cpu');
    expect(segmenter.config).toEqual(CONFIG);
    expect(Object.isFrozen(segmenter.config)).toBe(true);
  });

  it('passes threads through', async () => {
    await Segmenter.load({ model: modelDir, threads: 2, device: 'cpu' });
    expect(calls.loadSam).toEqual([{ dir: modelDir, threads: 2, device: 'cpu', precision: 'fp32', cpuMatmul: 'bf16x3' }]);
  });

  it('validates options before touching the addon', async () => {
    await expect(Segmenter.load({} as { model: string })).rejects.toThrow(
      new TypeError('Expected a non-empty string for model but received undefined of type undefined'),
    );
    await expect(Segmenter.load({ model: modelDir, threads: 0 })).rejects.toThrow(
      new RangeError('Expected an integer between 1 and 1024 for threads but received 0 of type number'),
    );
    // (the addon keeps one OS thread per worker; 2^32 + 1 once wrapped to 1 on the way in)
    for (const threads of [1025, 2 ** 31, 2 ** 32 + 1]) {
      await expect(Segmenter.load({ model: modelDir, threads })).rejects.toThrow(
        new RangeError(`Expected an integer between 1 and 1024 for threads but received ${threads} of type number`),
      );
    }
    await expect(Segmenter.load({ model: modelDir, device: 'gpu' as 'cpu' })).rejects.toThrow(
      new RangeError("Expected one of 'cpu', 'cuda', 'auto' for device but received \"gpu\" of type string"),
    );
    await expect(Segmenter.load({ model: modelDir, limitInputPixels: -5 })).rejects.toThrow(
      new RangeError('Expected an integer >= 0 for limitInputPixels but received -5 of type number'),
    );
    expect(calls.loadSam).toHaveLength(0);
  });

  it("device 'cuda' names why CUDA is unusable; 'auto' falls back to the CPU", async () => {
    await expect(Segmenter.load({ model: modelDir, device: 'cuda' })).rejects.toThrow(
      new Error('The CUDA backend is not available: not built'),
    );
    expect(calls.loadSam).toHaveLength(0);
    const segmenter = await Segmenter.load({ model: modelDir, device: 'auto', precision: 'bf16' });
    expect(segmenter.device).toBe('cpu');
    expect(segmenter.precision).toBe('fp32');
    expect(calls.loadSam.at(-1)).toMatchObject({ device: 'cpu', precision: 'fp32' });
  });

  it('validates precision', async () => {
    await expect(Segmenter.load({ model: modelDir, precision: 'fp8' as 'fp16' })).rejects.toThrow(
      new RangeError("Expected one of 'fp32', 'fp16', 'bf16' for precision but received \"fp8\" of type string"),
    );
  });

  it('passes cpuMatmul through, and reports fp32 when the model config does not name one', async () => {
    const segmenter = await Segmenter.load({ model: modelDir, cpuMatmul: 'fp32' });
    expect(calls.loadSam).toEqual([{ dir: modelDir, threads: 7, device: 'cpu', precision: 'fp32', cpuMatmul: 'fp32' }]);
    expect(CONFIG).not.toHaveProperty('cpuMatmul');
    expect(segmenter.cpuMatmul).toBe('fp32');
  });

  it('validates cpuMatmul', async () => {
    await expect(Segmenter.load({ model: modelDir, cpuMatmul: 'fp16' as 'fp32' })).rejects.toThrow(
      new RangeError("Expected one of 'bf16x3', 'fp32' for cpuMatmul but received \"fp16\" of type string"),
    );
    await expect(Segmenter.load({ model: modelDir, cpuMatmul: null as never })).rejects.toThrow(
      new TypeError("Expected one of 'bf16x3', 'fp32' for cpuMatmul but received null of type null"),
    );
    expect(calls.loadSam).toHaveLength(0);
  });

  it('a missing model directory', async () => {
    const missing = path.join(modelDir, 'nope');
    await expect(Segmenter.load({ model: missing })).rejects.toThrow(new Error(`Model directory not found: ${missing}`));
  });
});

describe('Segmenter.encode', () => {
  it('hands the addon a copy of raw RGB pixels, taken when encode() is called', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    const image = pixels();
    image.data.fill(5);
    const pending = segmenter.encode(image);
    image.data.fill(0); // the caller's buffer may change (or be detached) once the call returns
    const embedding = await pending;
    expect(calls.encode).toHaveLength(1);
    expect(calls.encode[0].pixels).not.toBe(image.data);
    expect(calls.encode[0].pixels.every((v: number) => v === 5)).toBe(true);
    expect(calls.encode[0]).toMatchObject({ width: 20, height: 10, channels: 3 });
    expect(embedding).toBeInstanceOf(ImageEmbedding);
    expect([embedding.width, embedding.height, embedding.encodeMs]).toEqual([20, 10, 12.5]);
    expect(embedding.shape).toEqual([8, 4, 4]);
    expect(embedding.toFloat32Array()).toHaveLength(128);
  });

  it('a disposed embedding cannot be used', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    const embedding = await segmenter.encode(pixels());
    embedding.dispose();
    embedding.dispose(); // idempotent
    expect(embedding.disposed).toBe(true);
    expect(() => embedding.toFloat32Array()).toThrow(
      new Error('The ImageEmbedding has been disposed; call segmenter.encode() again'),
    );
    await expect(segmenter.segment(embedding, { points: [{ x: 1, y: 1, label: 1 }] })).rejects.toThrow(
      new Error('The ImageEmbedding has been disposed; call segmenter.encode() again'),
    );
  });

  it('supports await using (Symbol.asyncDispose)', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    const embedding = await segmenter.encode(pixels());
    await embedding[Symbol.asyncDispose]();
    expect(embedding.disposed).toBe(true);
  });
});

describe('Segmenter.segment', () => {
  it('decodes several boxes in one native call, masks in prompt then output order', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    const embedding = await segmenter.encode(pixels());
    const result = await segmenter.segment(
      embedding,
      {
        points: [{ x: 3, y: 4, label: 0 }],
        boxes: [
          [0, 0, 10, 5],
          [5, 5, 20, 10],
        ],
      },
      { multimask: true },
    );
    expect(calls.decode).toHaveLength(1);
    expect(calls.decode[0]).toMatchObject({ promptCount: 2, pointsPerPrompt: 1, multimask: true, threshold: 0 });
    expect(calls.decode[0].points).toEqual(new Float32Array([3, 4, 3, 4]));
    expect(result.masks.map((m) => m.score)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(result.masks[0]).toMatchObject({ width: 20, height: 10 });
    expect(result.timings).toEqual({ encodeMs: 0, decodeMs: 3.25 });
  });

  it('encodes an image given directly, then frees its embedding', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    const result = await segmenter.segment(pixels(), { boxes: [[0, 0, 20, 10]] }, { threshold: 0.5 });
    expect(calls.encode).toHaveLength(1);
    expect(calls.decode[0]).toMatchObject({ promptCount: 1, multimask: false, threshold: 0.5 });
    expect(result.masks).toHaveLength(1);
    expect(result.masks[0].threshold).toBe(0.5);
    expect(result.timings).toEqual({ encodeMs: 12.5, decodeMs: 3.25 });
  });

  it('asks the native decode for run lengths with rle, and builds the masks from them', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    const bytes = await segmenter.segment(pixels(), { boxes: [[0, 0, 20, 10]] });
    expect(calls.decode[0].rle).toBe(false);
    const runs = await segmenter.segment(pixels(), { boxes: [[0, 0, 20, 10]] }, { multimask: true, rle: true });
    expect(calls.decode[1]).toMatchObject({ multimask: true, rle: true });
    expect(runs.masks).toHaveLength(3);
    for (const m of runs.masks) {
      expect(m.toRLE()).toEqual(bytes.masks[0].toRLE());
      expect([m.area, m.box]).toEqual([0, [0, 0, 0, 0]]);
      expect(m.data).toEqual(new Uint8Array(200));
    }
  });

  it('validates the prompt before any native work', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    await expect(segmenter.segment(pixels(), {})).rejects.toThrow(
      new RangeError('Expected at least one of points, scribbles, boxes, mask or maskInput for prompt but received {} of type object'),
    );
    await expect(segmenter.segment(pixels(), { points: [{ x: 21, y: 0, label: 1 }] })).rejects.toThrow(
      new RangeError('Expected a number between 0 and 20 for prompt.points[0].x but received 21 of type number'),
    );
    await expect(segmenter.segment(pixels(), { boxes: [[0, 0, 5, 5]] }, { multimask: 1 as unknown as boolean })).rejects.toThrow(
      new TypeError('Expected a boolean for multimask but received 1 of type number'),
    );
    await expect(segmenter.segment(pixels(), { boxes: [[0, 0, 5, 5]] }, { threshold: NaN })).rejects.toThrow(
      new RangeError('Expected a finite number for threshold but received NaN of type number'),
    );
    await expect(segmenter.segment(pixels(), { boxes: [[0, 0, 5, 5]] }, { rle: 'yes' as unknown as boolean })).rejects.toThrow(
      new TypeError('Expected a boolean for rle but received "yes" of type string'),
    );
    expect(calls.encode).toHaveLength(0);
    expect(calls.decode).toHaveLength(0);
  });

  it('checks the mask input against the model low-res size', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    await expect(segmenter.segment(pixels(), { maskInput: new Float32Array(256 * 256) })).rejects.toThrow(
      new RangeError(
        'Expected a Float32Array of 256 finite values (16x16 logits) for prompt.maskInput but received Float32Array(65536) of type Float32Array',
      ),
    );
  });

  it('refuses an embedding from another Segmenter', async () => {
    const a = await Segmenter.load({ model: modelDir });
    const b = await Segmenter.load({ model: modelDir });
    const embedding = await a.encode(pixels());
    await expect(b.segment(embedding, { boxes: [[0, 0, 1, 1]] })).rejects.toThrow(
      new Error('The ImageEmbedding was created by another Segmenter; encode the image with this one'),
    );
  });

  it('native errors keep their message and get the caller stack', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    calls.decodeError = new Error('decoder exploded');
    const error = await segmenter.segment(pixels(), { boxes: [[0, 0, 1, 1]] }).catch((e: unknown) => e);
    expect(error).toEqual(new Error('decoder exploded'));
    expect((error as Error).stack).toContain('segmenter.test.ts');
  });
});

describe('Segmenter lifetime', () => {
  it('dispose() frees the model; later calls throw', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    segmenter.dispose();
    segmenter.dispose();
    await expect(segmenter.encode(pixels())).rejects.toThrow(
      new Error('The Segmenter has been disposed; call Segmenter.load() again'),
    );
    expect(segmenter.config.lowResSize).toBe(16);
  });
});

describe('images the processor cannot resize', () => {
  it('a side that would round to 0 px is a RangeError naming the image (longestEdge 64: up to 128:1)', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    const strip = (w: number, h: number) => ({ data: new Uint8Array(w * h * 3), width: w, height: h, channels: 3 as const });
    const message = (w: number, h: number) =>
      new RangeError(
        `Expected an image whose longest side is at most 128 times its shortest (it is resized to 64 px) for image but received "${w}x${h}" of type string`,
      );
    await expect(segmenter.encode(strip(129, 1))).rejects.toThrow(message(129, 1));
    await expect(segmenter.segment(strip(1, 200), { boxes: [[0, 0, 1, 1]] })).rejects.toThrow(message(1, 200));
    await expect(segmenter.encodeBatch([strip(2, 2), strip(300, 2)])).rejects.toThrow(/for images\[1\] but received "300x2"/);
    expect(calls.encode).toHaveLength(0);
    (await segmenter.encode(strip(128, 1))).dispose(); // 64 × 0.5 rounds up to 1 px
  });
});

describe('Segmenter.embeddingFromFloat32Array', () => {
  it('wraps a saved embedding and checks its size', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    const embedding = segmenter.embeddingFromFloat32Array(new Float32Array(128), 30, 20);
    expect([embedding.width, embedding.height]).toEqual([30, 20]);
    const result = await segmenter.segment(embedding, { points: [{ x: 30, y: 20, label: 1 }] });
    expect(result.masks[0].data).toHaveLength(600);
    expect(() => segmenter.embeddingFromFloat32Array(new Float32Array(127), 30, 20)).toThrow(
      new RangeError(
        'Expected a Float32Array of 128 finite values (8x4x4) for data but received Float32Array(127) of type Float32Array',
      ),
    );
  });

  it('refuses an image size whose shorter side the resize would round to 0 (its decodes made empty masks)', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    expect(() => segmenter.embeddingFromFloat32Array(new Float32Array(128), 10000, 1)).toThrow(
      /longest side is at most 128 times its shortest .* for width × height but received "10000x1"/,
    );
    expect(segmenter.embeddingFromFloat32Array(new Float32Array(128), 128, 1).width).toBe(128);
  });

  it('embeddingFromFloat32ArrayAsync checks the same and wraps the same; toFloat32ArrayAsync answers as toFloat32Array', async () => {
    const segmenter = await Segmenter.load({ model: modelDir });
    const embedding = await segmenter.embeddingFromFloat32ArrayAsync(new Float32Array(128), 30, 20);
    expect([embedding.width, embedding.height]).toEqual([30, 20]);
    expect(await embedding.toFloat32ArrayAsync()).toEqual(embedding.toFloat32Array());
    await expect(segmenter.embeddingFromFloat32ArrayAsync(new Float32Array(127), 30, 20)).rejects.toThrow(
      /for data but received Float32Array\(127\)/,
    );
    await expect(segmenter.embeddingFromFloat32ArrayAsync(new Float32Array(128), 0, 20)).rejects.toThrow(RangeError);
    embedding.dispose();
    await expect(embedding.toFloat32ArrayAsync()).rejects.toThrow(/has been disposed/);
  });

  it('holds the image size to limitInputPixels (every decode makes width × height masks)', async () => {
    const segmenter = await Segmenter.load({ model: modelDir, limitInputPixels: 600 });
    expect(segmenter.embeddingFromFloat32Array(new Float32Array(128), 30, 20).width).toBe(30);
    expect(() => segmenter.embeddingFromFloat32Array(new Float32Array(128), 2 ** 26, 2 ** 26)).toThrow(
      new RangeError(
        'Expected an image of at most 600 pixels (limitInputPixels) for width × height but received 4503599627370496 of type number',
      ),
    );
    const unlimited = await Segmenter.load({ model: modelDir, limitInputPixels: 0 });
    expect(unlimited.embeddingFromFloat32Array(new Float32Array(128), 31, 20).width).toBe(31);
  });
});
