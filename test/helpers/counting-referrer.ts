// A Referrer on the tiny CLIPSeg checkpoint whose native model counts its passes by method
// (textEmbedding, forward, decode, encodeImage, imageEmbedding), to see what a call ran.
import path from 'node:path';
import { vi } from 'vitest';
import { native } from '../../lib/native.js';
import { Referrer } from '../../lib/referrer.js';
import { FIXTURES } from './fixtures.js';

export const CLIPSEG_DIR = path.join(FIXTURES, '..', 'clipseg-tiny', 'model');

export async function countingReferrer(): Promise<{ referrer: Referrer; passes: Record<string, number> }> {
  const addon = native();
  const load = addon.loadClipSeg!.bind(addon);
  const passes: Record<string, number> = {};
  const spy = vi.spyOn(addon, 'loadClipSeg').mockImplementation(async (...args) => {
    const model = await load(...args);
    return new Proxy(model, {
      get: (target, key) => {
        const value: unknown = Reflect.get(target, key);
        if (typeof value !== 'function') return value;
        return (...call: unknown[]) => {
          passes[String(key)] = (passes[String(key)] ?? 0) + 1;
          return (value as (...a: unknown[]) => unknown).apply(target, call);
        };
      },
    });
  });
  try {
    return { referrer: await Referrer.load({ model: CLIPSEG_DIR, device: 'cpu', threads: 2 }), passes };
  } finally {
    spy.mockRestore();
  }
}
