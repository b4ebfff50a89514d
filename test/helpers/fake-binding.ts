// A fake native binding for tests of the TypeScript layer: records what reaches the addon,
// returns results with recognisable values, and can hold calls open to test queueing and abort.
//
// Use it with
//   vi.mock('../lib/native.js', async () => ({ native: () => (await import('./helpers/fake-binding.js')).binding,
//     nativeCuda: () => ({ error: 'not built' }) }));
// Decode results: masks M = 3 with multimask, else 1; iou of mask i (over all prompt sets) = i;
// lowRes of mask i filled with 100 + i; binary masks all 0.
import { vi } from 'vitest';
import type {
  NativeBinding,
  NativeDecodeResult,
  NativeEmbedding,
  NativePrompt,
  NativeSamConfig,
  NativeSamModel,
} from '../../lib/native.js';

// Typed by assertion so that the fake fits the binding's interface with and without the fields
// the CUDA backend adds (`device`, `cudaInfo`).
export const CONFIG = {
  imageSize: 64,
  longestEdge: 64,
  embeddingSize: 4,
  embeddingDim: 8,
  lowResSize: 16,
  numMultimaskOutputs: 3,
  device: 'cpu',
  precision: 'fp32',
} as NativeSamConfig;

const LOW_RES = CONFIG.lowResSize * CONFIG.lowResSize;

/** A promise with its resolve function exposed. */
export interface Gate {
  promise: Promise<void>;
  open(): void;
}

export function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

export interface FakeEmbedding extends NativeEmbedding {
  readonly id: number;
}

/** What the fake addon saw, and how it behaves. */
export const calls = {
  loadSam: [] as Array<{ dir: string; threads: number; device?: string; precision?: string; cpuMatmul?: string }>,
  /** Native encodes started, in order (one per image, by encode or encodeBatch). */
  encode: [] as Array<{ pixels: Uint8Array; width: number; height: number; channels: number }>,
  /** Images per native encodeBatch call, in order. */
  encodeBatches: [] as number[],
  /** Native decodes started, in order. */
  decode: [] as NativePrompt[],
  /** Every embedding the fake created. */
  embeddings: [] as FakeEmbedding[],
  decodeError: undefined as Error | undefined,
  /** When set, each native encode (or encodeBatch) waits for it before returning. */
  encodeGate: undefined as Gate | undefined,
  /** When set, each native decode waits for it before returning. */
  decodeGate: undefined as Gate | undefined,
  /** When set, may change each decode result (e.g. draw a mask) before it is returned. */
  decodeHook: undefined as ((result: NativeDecodeResult, embedding: NativeEmbedding, prompt: NativePrompt) => void) | undefined,
};

export function resetCalls(): void {
  calls.loadSam.length = 0;
  calls.encode.length = 0;
  calls.encodeBatches.length = 0;
  calls.decode.length = 0;
  calls.embeddings.length = 0;
  calls.decodeError = undefined;
  calls.encodeGate = undefined;
  calls.decodeGate = undefined;
  calls.decodeHook = undefined;
}

function fakeEmbedding(width: number, height: number): FakeEmbedding {
  let disposed = false;
  const embedding: FakeEmbedding = {
    id: calls.embeddings.length,
    width,
    height,
    resizedWidth: width,
    resizedHeight: height,
    encodeMs: 12.5,
    bytes: 8 * 4 * 4 * 4,
    toCHW: () => Float32Array.from({ length: 8 * 4 * 4 }, (_, i) => i),
    toCHWAsync: async () => embedding.toCHW(),
    dispose: () => {
      disposed = true;
    },
    get disposed() {
      return disposed;
    },
  };
  calls.embeddings.push(embedding);
  return embedding;
}

function fakeModel(): NativeSamModel {
  return {
    config: CONFIG,
    bytes: 0,
    encode: async (pixels, width, height, channels) => {
      calls.encode.push({ pixels, width, height, channels });
      await calls.encodeGate?.promise;
      return fakeEmbedding(width, height);
    },
    encodeBatch: async (images) => {
      calls.encodeBatches.push(images.length);
      for (const { pixels, width, height } of images) calls.encode.push({ pixels, width, height, channels: 3 });
      await calls.encodeGate?.promise;
      return images.map(({ width, height }) => fakeEmbedding(width, height));
    },
    embeddingFromCHW: (_data, width, height) => fakeEmbedding(width, height),
    embeddingFromCHWAsync: async (_data, width, height) => fakeEmbedding(width, height),
    decode: async (embedding, prompt): Promise<NativeDecodeResult> => {
      calls.decode.push(prompt);
      await calls.decodeGate?.promise;
      if (calls.decodeError) throw calls.decodeError;
      const m = prompt.multimask ? 3 : 1;
      const n = prompt.promptCount * m;
      const pixels = embedding.width * embedding.height;
      // Empty masks, as bytes or (rle) as one run of zeros each.
      const result: NativeDecodeResult = {
        masksPerPrompt: m,
        iou: Float32Array.from({ length: n }, (_, i) => i),
        lowRes: Float32Array.from({ length: n * LOW_RES }, (_, i) => 100 + Math.floor(i / LOW_RES)),
        masks: new Uint8Array(prompt.rle === true ? 0 : n * pixels),
        ...(prompt.rle === true ? { runs: new Uint32Array(n).fill(pixels), runsPerMask: new Uint32Array(n).fill(1) } : {}),
        decodeMs: 3.25,
      };
      calls.decodeHook?.(result, embedding, prompt);
      return result;
    },
    dispose: vi.fn(),
  };
}

// The real addon's model-free raster tools (masks: run lengths, bounds, polygons), which the
// library's Mask and RLE functions call: the fake replaces the models, not those.
const actual = await vi.importActual<typeof import('../../lib/native.js')>('../../lib/native.js');
const { loadSam: _loadSam, loadClipSeg: _loadClipSeg, hardwareThreads: _threads, cudaInfo: _cuda, ...rasterTools } = actual.native();

export const binding = {
  ...rasterTools,
  loadSam: async (dir: string, options: { threads: number; device?: string; precision?: string; cpuMatmul?: string }) => {
    calls.loadSam.push({ dir, ...options });
    return fakeModel();
  },
  hardwareThreads: () => 7,
  cudaInfo: () => ({ compiled: false, available: false, devices: [] }),
} as NativeBinding;

/** Lets pending promise callbacks (and a few rounds of their continuations) run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
