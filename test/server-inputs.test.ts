// masksJson (lib/server/inputs.ts): the masks of a response formatted a few at a time, in order,
// stopping at a cancelled request or a failed mask.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Mask } from '../lib/mask.js';
import { native } from '../lib/native.js';
import { decodeBase64, masksJson } from '../lib/server/inputs.js';
import { seededRandom } from './helpers/random.js';

function masks(count: number): Mask[] {
  return Array.from({ length: count }, (_, i) => {
    const data = new Uint8Array(6 * 4);
    data[i % data.length] = 1;
    return new Mask({ data, width: 6, height: 4, score: i / 10, lowResLogits: new Float32Array(4) });
  });
}

describe('masksJson', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('formats every mask, in order, at most two at a time', async () => {
    let inFlight = 0;
    let most = 0;
    const addon = native();
    const trace = addon.tracePolygonsJsonAsync.bind(addon);
    vi.spyOn(addon, 'tracePolygonsJsonAsync').mockImplementation(async (...args) => {
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, 2));
      inFlight--;
      return trace(...args);
    });
    const list = masks(7);
    const out = await masksJson(list, 'polygons', new AbortController().signal);
    expect(out.map((m) => m.score)).toEqual(list.map((m) => m.score));
    // the polygons come as their JSON text, spliced into the response by jsonBody
    const polygons = out.map((m) => ('polygons' in m ? JSON.parse(Buffer.from(m.polygons.bytes).toString()) : undefined));
    expect(polygons).toEqual(list.map((m) => m.toPolygons()));
    expect(most).toBe(2);
  });

  it('a cancelled request stops between masks with an AbortError carrying the reason', async () => {
    const controller = new AbortController();
    let calls = 0;
    vi.spyOn(Mask.prototype, 'toPNG').mockImplementation(async () => {
      if (++calls === 2) controller.abort(new Error('deadline'));
      return Buffer.from('png');
    });
    const error = await masksJson(masks(10), 'png', controller.signal).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'AbortError', cause: new Error('deadline') });
    expect(calls).toBeLessThanOrEqual(3);
  });

  it('a failed mask rejects, and the other lane starts no more masks', async () => {
    let calls = 0;
    vi.spyOn(Mask.prototype, 'toPNG').mockImplementation(async () => {
      const call = ++calls;
      await new Promise((resolve) => setTimeout(resolve, call === 1 ? 1 : 5));
      if (call === 1) throw new Error('boom');
      return Buffer.from('png');
    });
    await expect(masksJson(masks(10), 'png', new AbortController().signal)).rejects.toThrow('boom');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(calls).toBe(2); // the first mask of each lane
  });
});

describe('decodeBase64', () => {
  // the whole check, as it was before the fast path: whitespace stripped, then the alphabet
  const reference = (text: string): Buffer | undefined => {
    const compact = text.replace(/\s+/g, '');
    return compact.length % 4 === 1 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact) ? undefined : Buffer.from(compact, 'base64');
  };
  const outcome = (text: string): Buffer | string => {
    try {
      return decodeBase64(text, 'image');
    } catch (error) {
      return (error as Error).message;
    }
  };

  it('accepts and refuses what the full check does (random texts near base64, whitespace, url-safe and stray characters)', () => {
    const random = seededRandom(3);
    const valid = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    // (Node 20 decodes a character past U+00FF by its low byte: Ł as A, U+205F as _)
    const odd = ['=', '-', '_', ' ', '\n', '*', '.', 'é', '\0', 'Ł', 'ｑ', '\u202f', '\u205f'];
    let accepted = 0;
    for (let trial = 0; trial < 4000; trial++) {
      const bytes = Buffer.from(Array.from({ length: Math.floor(random() * 12) }, () => Math.floor(random() * 256)));
      const chars = [...bytes.toString('base64')];
      if (trial % 3 === 0) for (let i = chars.length; i > 0 && chars[i - 1] === '='; i--) chars.pop(); // unpadded
      const edits = trial % 4;
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(random() * (chars.length + 1));
        const c = random() < 0.5 ? odd[Math.floor(random() * odd.length)] : valid[Math.floor(random() * 64)];
        if (random() < 0.5 || chars.length === 0) chars.splice(at, 0, c);
        else chars.splice(Math.min(at, chars.length - 1), 1);
      }
      const text = chars.join('');
      const expected = reference(text);
      const got = outcome(text);
      if (expected === undefined) {
        expect(got, JSON.stringify(text)).toBe('Expected base64 for image');
      } else {
        expect(got, JSON.stringify(text)).toEqual(expected);
        accepted++;
      }
    }
    expect(accepted).toBeGreaterThan(1500);
    expect(accepted).toBeLessThan(3800);
  });
});
