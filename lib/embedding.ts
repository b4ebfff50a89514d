// ImageEmbedding: the image encoder's output for one image, held in native memory.
import type { NativeEmbedding } from './native.js';

interface Handle {
  native: NativeEmbedding;
  /** The Segmenter that created it: only that model may decode it. */
  owner: object;
}

// Kept outside the class so that the native handle is not part of the public surface.
const handles = new WeakMap<ImageEmbedding, Handle>();

/**
 * The encoded image: the heavy part of segmentation, computed once and reused for any number of
 * prompts. Holds native memory until `dispose()` (or `await using`); later use throws.
 * Created by `Segmenter.encode()` or `Segmenter.embeddingFromFloat32Array()`.
 */
export class ImageEmbedding {
  /** Width of the original image, pixels. */
  readonly width: number;
  /** Height of the original image, pixels. */
  readonly height: number;
  /** Milliseconds the native encode took (preprocessing + image encoder); 0 for a loaded embedding. */
  readonly encodeMs: number;
  /** [embeddingDim, embeddingSize, embeddingSize], e.g. [256, 64, 64]. */
  readonly shape: readonly [channels: number, height: number, width: number];
  /**
   * Bytes of native memory (host, or GPU with CUDA) the embedding holds at most: the embedding
   * itself and what its first decode without a mask prompt caches for the following ones (the
   * decoder's first-layer image-side projections). sam-vit-*: 4 MiB + 6 MiB.
   */
  readonly byteLength: number;

  /** @internal Use Segmenter.encode(). */
  constructor(native: NativeEmbedding, owner: object, shape: readonly [number, number, number]) {
    handles.set(this, { native, owner });
    this.width = native.width;
    this.height = native.height;
    this.encodeMs = native.encodeMs;
    this.byteLength = native.bytes;
    this.shape = Object.freeze([...shape]) as readonly [number, number, number];
  }

  /** true once dispose() was called. */
  get disposed(): boolean {
    return handles.get(this)?.native.disposed ?? true;
  }

  /**
   * A copy of the embedding, float32 [embeddingDim, E, E] (CHW), e.g. to save it, made on the
   * calling thread (on CUDA: waiting for the device). See `toFloat32ArrayAsync`.
   */
  toFloat32Array(): Float32Array {
    return nativeEmbedding(this).toCHW();
  }

  /**
   * toFloat32Array made in a worker thread: on CUDA the device copy, which waits for the GPU, and
   * on the CPU the 4 MiB transpose stay off the event loop. Disposing the embedding meanwhile is
   * safe (the copy still completes).
   */
  async toFloat32ArrayAsync(): Promise<Float32Array> {
    return nativeEmbedding(this).toCHWAsync();
  }

  /** Frees the native memory now. Idempotent. */
  dispose(): void {
    handles.get(this)?.native.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }
}

/**
 * @internal The native handle of a live embedding.
 * @throws Error if it was disposed, or if `owner` is given and did not create it.
 */
export function nativeEmbedding(embedding: ImageEmbedding, owner?: object): NativeEmbedding {
  const handle = handles.get(embedding);
  if (handle === undefined || handle.native.disposed) {
    throw new Error('The ImageEmbedding has been disposed; call segmenter.encode() again');
  }
  if (owner !== undefined && handle.owner !== owner) {
    throw new Error('The ImageEmbedding was created by another Segmenter; encode the image with this one');
  }
  return handle.native;
}
