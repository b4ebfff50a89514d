// masksJson (lib/server/inputs.ts): the masks of a response formatted a few at a time, in order,
// stopping at a cancelled request or a failed mask.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Mask } from '../lib/mask.js';
import { native } from '../lib/native.js';
import { masksJson } from '../lib/server/inputs.js';

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
