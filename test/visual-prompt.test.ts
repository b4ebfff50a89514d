// Visual prompt engineering of reference-image regions (lib/referring/visual-prompt.ts) on
// constructed images: crop bounds, blurred and darkened background, region kept, validation.
import { describe, expect, it } from 'vitest';
import {
  VISUAL_PROMPT_DARKEN,
  blurSigma,
  composePrompt,
  promptCrop,
  refRegion,
  regionMask,
  visualPrompt,
  type RgbImage,
} from '../lib/referring/visual-prompt.js';

/** A width × height RGB checkerboard of 0 / 255 one-pixel squares, tinted per channel. */
function checkerboard(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const on = (x + y) % 2 === 0;
      data.set(on ? [255, 200, 160] : [0, 0, 0], (y * width + x) * 3);
    }
  }
  return { data, width, height, channels: 3 };
}

/** A mask with the rectangle [x0, x1] × [y0, y1] (inclusive) set. */
function rectMask(width: number, height: number, [x0, y0, x1, y1]: number[]): Uint8Array {
  const mask = new Uint8Array(width * height);
  for (let y = y0; y <= y1; y++) mask.fill(255, y * width + x0, y * width + x1 + 1);
  return mask;
}

describe('promptCrop', () => {
  it('grows the bounding box by ceil(0.1 · side) per side', () => {
    expect(promptCrop(rectMask(50, 40, [20, 10, 29, 29]), 50, 40)).toEqual([19, 8, 31, 32]);
  });

  it('clamps the margin at the image borders', () => {
    expect(promptCrop(rectMask(50, 40, [0, 0, 9, 4]), 50, 40)).toEqual([0, 0, 11, 6]);
    expect(promptCrop(rectMask(50, 40, [45, 30, 49, 39]), 50, 40)).toEqual([44, 29, 50, 40]);
    expect(promptCrop(rectMask(50, 40, [0, 0, 49, 39]), 50, 40)).toEqual([0, 0, 50, 40]);
  });

  it('is undefined for an empty mask', () => {
    expect(promptCrop(new Uint8Array(12), 4, 3)).toBeUndefined();
  });

  it('random sparse masks: the bounding box of every non-zero pixel, grown', () => {
    let state = 7;
    const random = () => (state = (state * 48271) % 2147483647) / 2147483647;
    for (let trial = 0; trial < 200; trial++) {
      const width = 1 + Math.floor(random() * 30);
      const height = 1 + Math.floor(random() * 30);
      const mask = Uint8Array.from({ length: width * height }, () => (random() < 0.03 ? 1 + Math.floor(random() * 255) : 0));
      let box: number[] | undefined;
      mask.forEach((v, i) => {
        if (v === 0) return;
        const [x, y] = [i % width, Math.floor(i / width)];
        box = box === undefined ? [x, y, x, y] : [Math.min(box[0], x), Math.min(box[1], y), Math.max(box[2], x), Math.max(box[3], y)];
      });
      const expected =
        box === undefined
          ? undefined
          : [
              Math.max(0, box[0] - Math.ceil(0.1 * (box[2] - box[0] + 1))),
              Math.max(0, box[1] - Math.ceil(0.1 * (box[3] - box[1] + 1))),
              Math.min(width, box[2] + 1 + Math.ceil(0.1 * (box[2] - box[0] + 1))),
              Math.min(height, box[3] + 1 + Math.ceil(0.1 * (box[3] - box[1] + 1))),
            ];
      expect(promptCrop(mask, width, height), `${width}x${height}`).toEqual(expected);
    }
  });
});

describe('regionMask', () => {
  it('a box covers the pixels whose centres are inside it', () => {
    const mask = regionMask({ box: [1, 1, 3, 2] }, 4, 3);
    expect([...mask]).toEqual([0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
    expect([...regionMask({ box: [0, 0, 4, 3] }, 4, 3)]).toEqual(new Array(12).fill(1));
    expect([...regionMask({ box: [1.2, 1.2, 1.4, 1.4] }, 4, 3)]).toEqual(new Array(12).fill(0));
  });
});

describe('visualPrompt', () => {
  const image = checkerboard(64, 48);
  // pixels 16..47 × 12..35: a 32 × 24 region, margins ceil(3.2) = 4 and ceil(2.4) = 3
  const box = { box: [16, 12, 48, 36] as [number, number, number, number] };

  it('without a region: the image itself', async () => {
    expect(await visualPrompt(image)).toBe(image);
  });

  it('crops with the margin, keeps the region, blurs and darkens the rest', async () => {
    // 400 × 300, region 200 × 150 at (100, 75): margins 20 and 15, crop 240 × 180, blur σ ≈ 2
    const big = checkerboard(400, 300);
    const prompt = await visualPrompt(big, { box: [100, 75, 300, 225] });
    expect([prompt.width, prompt.height, prompt.channels]).toEqual([240, 180, 3]);
    let blurredAway = 0;
    let background = 0;
    for (let y = 0; y < 180; y++) {
      for (let x = 0; x < 240; x++) {
        const [ix, iy] = [x + 80, y + 60];
        const inside = ix >= 100 && ix < 300 && iy >= 75 && iy < 225;
        for (let c = 0; c < 3; c++) {
          const got = prompt.data[(y * 240 + x) * 3 + c];
          const orig = big.data[(iy * 400 + ix) * 3 + c];
          if (inside) {
            if (got !== orig) throw new Error(`region pixel (${ix}, ${iy}) changed`);
          } else {
            background++;
            if (got > Math.round(VISUAL_PROMPT_DARKEN * 255)) throw new Error(`background (${ix}, ${iy}) not darkened`);
            // a blurred checkerboard is near its mean, far from the darkened original
            if (Math.abs(got - Math.round(VISUAL_PROMPT_DARKEN * orig)) >= 5) blurredAway++;
          }
        }
      }
    }
    expect(background).toBe(3 * (240 * 180 - 200 * 150));
    expect(blurredAway / background).toBeGreaterThan(0.9);
  });

  it('a box and the equivalent mask give the same prompt', async () => {
    const mask = { data: rectMask(64, 48, [16, 12, 47, 35]), width: 64, height: 48 };
    const fromBox = await visualPrompt(image, box);
    const fromMask = await visualPrompt(image, { mask });
    expect([fromMask.width, fromMask.height]).toEqual([fromBox.width, fromBox.height]);
    expect(Buffer.from(fromMask.data).equals(Buffer.from(fromBox.data))).toBe(true);
  });

  it('a scribble is its brush stroke: crop around it, stroke pixels kept', async () => {
    const prompt = await visualPrompt(image, { scribble: [[20, 24], [40, 24]] });
    // brush max(64, 48) / 64 = 1 px wide: radius 0.5, the row y = 24 from x = 20 to 40
    expect([prompt.width, prompt.height]).toEqual([21 + 2 * 3, 1 + 2]);
    for (let x = 0; x <= 20; x++) {
      const k = (1 * prompt.width + x + 3) * 3;
      expect([...prompt.data.subarray(k, k + 3)]).toEqual([...image.data.subarray((24 * 64 + 20 + x) * 3, (24 * 64 + 21 + x) * 3)]);
    }
  });

  it('composePrompt and blurSigma: the documented composite and σ', () => {
    expect([...composePrompt(Uint8Array.of(9, 9, 9, 200, 100, 50), Uint8Array.of(100, 100, 100, 0, 0, 0), Uint8Array.of(0, 1))]).toEqual([
      10, 10, 10, 200, 100, 50,
    ]);
    // every byte value, and other darkening factors: region pixels as they are, the rest round(f · v)
    const values = Uint8Array.from({ length: 3 * 512 }, (_, k) => (k * 7) % 256);
    const blurred = Uint8Array.from({ length: 3 * 512 }, (_, k) => k % 256);
    const mask = Uint8Array.from({ length: 512 }, (_, i) => (i % 3 === 0 ? 0 : i % 5));
    for (const f of [0.1, 0.5, 0.25, 0.9]) {
      const expected = Array.from(values, (v, k) => (mask[Math.floor(k / 3)] !== 0 ? v : Math.round(f * blurred[k])));
      expect([...composePrompt(values, blurred, mask, f)], `darken ${f}`).toEqual(expected);
    }
    expect(blurSigma(352, 100)).toBe(3);
    expect(blurSigma(704, 704)).toBe(6);
    expect(blurSigma(10, 5)).toBe(0.3);
  });

  it('an empty region is a RangeError', async () => {
    const mask = { data: new Uint8Array(64 * 48), width: 64, height: 48 };
    await expect(visualPrompt(image, { mask }, 'options.refRegion')).rejects.toThrow(RangeError);
    await expect(visualPrompt(image, { mask }, 'options.refRegion')).rejects.toThrow(
      /^Expected a region that covers at least one pixel of the reference image for options.refRegion but received /,
    );
  });
});

describe('refRegion validation', () => {
  const check = (value: unknown) => () => refRegion(value, 'options.refRegion', 64, 48);

  it('accepts exactly one of mask, box, scribble', () => {
    expect(check({ box: [0, 0, 64, 48] })()).toEqual({ box: [0, 0, 64, 48] });
    expect(check({ scribble: [[1, 2]] })()).toEqual({ scribble: [[1, 2]] });
    const data = new Uint8Array(64 * 48);
    expect(check({ mask: { data, width: 64, height: 48 } })()).toEqual({ mask: { data, width: 64, height: 48 } });
  });

  it('errors name the option', () => {
    expect(check({})).toThrow(
      new TypeError('Expected an object with exactly one of mask, box or scribble for options.refRegion but received {} of type object'),
    );
    expect(check({ box: [0, 0, 1, 1], scribble: [[1, 1]] })).toThrow(TypeError);
    expect(check('box')).toThrow(TypeError);
    expect(check({ box: [0, 0, 65, 48] })).toThrow(RangeError);
    expect(check({ box: [0, 0, 65, 48] })).toThrow(/for options\.refRegion\.box\[2\]/);
    expect(check({ mask: { data: new Uint8Array(10), width: 5, height: 2 } })).toThrow(RangeError);
    expect(check({ mask: { data: new Uint8Array(10), width: 5, height: 2 } })).toThrow(/for options\.refRegion\.mask\.width/);
    expect(check({ scribble: [] })).toThrow(RangeError);
    expect(check({ scribble: [[70, 1]] })).toThrow(/for options\.refRegion\.scribble\[0\]\[0\]/);
  });
});
