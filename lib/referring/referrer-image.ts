// ReferrerImage: a query image run through a Referrer's vision tower, whose native activations
// only that Referrer's calls read (handleOf).
import type { NativeClipSegImage } from '../native.js';
import type { Referrer } from '../referrer.js';

/** The native handle of each live ReferrerImage (module-private). */
const handles = new WeakMap<ReferrerImage, NativeClipSegImage>();

/** @internal The native handle of a live ReferrerImage, for its Referrer's calls. */
export function handleOf(image: ReferrerImage): NativeClipSegImage {
  const handle = handles.get(image);
  if (handle === undefined) throw new Error('The encoded image has been disposed; call Referrer.encode() again');
  return handle;
}

/**
 * A query image run through a Referrer's vision tower (`Referrer.encode`): heat maps over it cost
 * only their prompt embeddings and the decoder. Holds native memory until `dispose()`.
 */
export class ReferrerImage {
  /** The Referrer that encoded it (the only one that can use it). */
  readonly referrer: Referrer;
  /** The original image's size (heat maps come at this size). */
  readonly width: number;
  readonly height: number;
  /** Milliseconds the vision tower took. */
  readonly encodeMs: number;
  /** Bytes of native memory held. */
  readonly bytes: number;

  /** @internal Made by Referrer.encode(). */
  constructor(referrer: Referrer, handle: NativeClipSegImage, width: number, height: number) {
    this.referrer = referrer;
    this.width = width;
    this.height = height;
    this.encodeMs = handle.encodeMs;
    this.bytes = handle.bytes;
    handles.set(this, handle);
  }

  get disposed(): boolean {
    return !handles.has(this);
  }

  /** Frees the activations. Idempotent; heat maps on it then throw. */
  dispose(): void {
    handles.get(this)?.dispose();
    handles.delete(this);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
