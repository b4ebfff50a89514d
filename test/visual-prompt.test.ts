// Visual prompt engineering of reference-image regions (lib/referring/visual-prompt.ts) on
// constructed images: crop bounds, blurred and darkened background, region kept, validation.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { native } from '../lib/native.js';
import { maskToCounts } from '../lib/rle.js';
import {
  VISUAL_PROMPT_DARKEN,
  blurPlan,
  blurSigma,
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

  it('blurSigma: σ 3 at 352 px, scaled with the longer side, at least 0.3', () => {
    expect(blurSigma(352, 100)).toBe(3);
    expect(blurSigma(704, 704)).toBe(6);
    expect(blurSigma(10, 5)).toBe(0.3);
  });

  it('blurPlan: at the crop size below σ 8, else reduced by floor(σ / 4) with the σ that adds up', () => {
    expect(blurPlan(900, 700)).toEqual({ factor: 1, width: 900, height: 700, sigma: blurSigma(900, 700) });
    expect(blurPlan(938, 10).factor).toBe(1); // σ 7.99
    expect(blurPlan(939, 10).factor).toBe(2);
    const hd = blurPlan(1920, 1080); // σ 16.4
    expect([hd.factor, hd.width, hd.height]).toEqual([4, 480, 270]);
    expect(hd.sigma).toBeCloseTo(Math.sqrt(blurSigma(1920, 1080) ** 2 - 16 / 3) / 4, 12);
    const photo = blurPlan(4000, 3000); // σ 34.1
    expect([photo.factor, photo.width, photo.height]).toEqual([8, 500, 375]);
    expect(blurPlan(4000, 2)).toMatchObject({ factor: 8, width: 500, height: 1 });
  });

  it('a large crop: as a blur at full size, within 2 levels after darkening; the region exact', async () => {
    // 1400 × 1000 (σ 11.9: blurred at half size), smooth shading, texture and a step
    const [width, height] = [1400, 1000];
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < 3; c++) {
          const v = 128 + 80 * Math.sin(x / (37 + 11 * c)) * Math.cos(y / 53) + ((x * 7 + y * 13 + c) % 31) - 15 + (x > 500 && y > 400 ? 50 : 0);
          data[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
        }
      }
    }
    const big: RgbImage = { data, width, height, channels: 3 };
    const mask = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) if (((x - 700) / 620) ** 2 + ((y - 500) / 440) ** 2 < 1) mask[y * width + x] = 1;
    }
    const rect = promptCrop(mask, width, height) as number[];
    const [cw, ch] = [rect[2] - rect[0], rect[3] - rect[1]];
    expect(blurPlan(cw, ch).factor).toBe(2);
    const prompt = await visualPrompt(big, { mask: { data: mask, width, height } });
    expect([prompt.width, prompt.height]).toEqual([cw, ch]);
    const full = await sharp(data, { raw: { width, height, channels: 3 } })
      .extract({ left: rect[0], top: rect[1], width: cw, height: ch })
      .blur(blurSigma(cw, ch))
      .raw()
      .toBuffer();
    let differ = 0;
    let background = 0;
    for (let y = 0; y < ch; y++) {
      for (let x = 0; x < cw; x++) {
        const i = (y + rect[1]) * width + x + rect[0];
        for (let c = 0; c < 3; c++) {
          const k = (y * cw + x) * 3 + c;
          if (mask[i] !== 0) {
            if (prompt.data[k] !== data[i * 3 + c]) throw new Error(`region pixel ${i} changed`);
            continue;
          }
          background++;
          const d = Math.abs(prompt.data[k] - Math.round(VISUAL_PROMPT_DARKEN * full[k]));
          if (d > 2) throw new Error(`background pixel (${x}, ${y}) differs by ${d}`);
          if (d > 0) differ++;
        }
      }
    }
    expect(background).toBeGreaterThan(100000);
    expect(differ / background).toBeLessThan(0.1);
  });

  it("reads the caller's pixels and region when called: they may change at once", async () => {
    const big = checkerboard(400, 300);
    const mask = rectMask(400, 300, [100, 75, 299, 224]);
    const expected = await visualPrompt({ ...big, data: big.data.slice() }, { mask: { data: mask.slice(), width: 400, height: 300 } });
    const pending = visualPrompt(big, { mask: { data: mask, width: 400, height: 300 } });
    big.data.fill(0);
    mask.fill(0);
    const got = await pending;
    expect(Buffer.from(got.data).equals(Buffer.from(expected.data))).toBe(true);
  });

  it('an empty region is a RangeError', async () => {
    const mask = { data: new Uint8Array(64 * 48), width: 64, height: 48 };
    await expect(visualPrompt(image, { mask }, 'options.refRegion')).rejects.toThrow(RangeError);
    await expect(visualPrompt(image, { mask }, 'options.refRegion')).rejects.toThrow(
      /^Expected a region that covers at least one pixel of the reference image for options.refRegion but received /,
    );
  });
});

describe('visualPrompt arguments', () => {
  it('checks the pixels and the region before reading them (it read short data as zeros)', async () => {
    const img = { data: new Uint8Array(100 * 100 * 3), width: 100, height: 100, channels: 3 as const };
    await expect(visualPrompt({ ...img, data: new Uint8Array(3) }, { box: [0, 0, 50, 50] })).rejects.toThrow(
      new RangeError('Expected a Uint8Array of 100 × 100 × 3 = 30000 bytes for image.data but received Uint8Array(3) of type Uint8Array'),
    );
    await expect(visualPrompt({ ...img, channels: 1 as never }, { box: [0, 0, 50, 50] })).rejects.toThrow(/for image\.channels but received 1/);
    await expect(visualPrompt(img, 'x' as never)).rejects.toThrow(
      new TypeError('Expected an object with exactly one of mask, box or scribble for region but received "x" of type string'),
    );
    await expect(visualPrompt(img, { mask: { data: new Uint8Array(5), width: 100, height: 100 } })).rejects.toThrow(/for region\.mask\.data/);
    expect((await visualPrompt(img, { box: [0, 0, 50, 50] })).width).toBeGreaterThan(0);
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

describe('composeVisualPromptAsync (native)', () => {
  let state = 11;
  const random = () => (state = (state * 48271) % 2147483647) / 2147483647;
  const bytes = (n: number, max = 256) => Uint8Array.from({ length: n }, () => Math.floor(random() * max));

  /** The documented composite, in JS doubles: the region's pixels, else floor(darken · B + 0.5). */
  function reference(crop: Uint8Array, mask: Uint8Array, w: number, h: number, blurred: Uint8Array, bw: number, bh: number, darken: number) {
    const taps = (out: number, inSize: number) =>
      Array.from({ length: out }, (_, i) => {
        const s = Math.min(Math.max((i + 0.5) * (inSize / out) - 0.5, 0), inSize - 1);
        const lo = Math.floor(s);
        return { lo, hi: Math.min(lo + 1, inSize - 1), w: s - lo };
      });
    const [xs, ys] = [taps(w, bw), taps(h, bh)];
    const out = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let c = 0; c < 3; c++) {
          const k = (y * w + x) * 3 + c;
          if (mask[y * w + x] !== 0) {
            out[k] = crop[k];
            continue;
          }
          const at = (r: number, col: number) => blurred[(r * bw + col) * 3 + c];
          const row = (r: number) => (1 - xs[x].w) * at(r, xs[x].lo) + xs[x].w * at(r, xs[x].hi);
          const b = (1 - ys[y].w) * row(ys[y].lo) + ys[y].w * row(ys[y].hi);
          out[k] = Math.floor(darken * b + 0.5);
        }
      }
    }
    return out;
  }

  it('region pixels kept, the rest the darkened blur; at the same size the blur itself', async () => {
    const [w, h] = [37, 23];
    const crop = bytes(w * h * 3);
    const blurred = bytes(w * h * 3);
    const mask = Uint8Array.from({ length: w * h }, () => (random() < 0.4 ? Math.floor(random() * 255) + 1 : 0));
    for (const darken of [0.1, 0.25, 0.5, 0.9, 1, 0]) {
      const got = await native().composeVisualPromptAsync(crop, mask, w, h, blurred, w, h, darken);
      const expected = Array.from(crop, (v, k) => (mask[Math.floor(k / 3)] !== 0 ? v : Math.round(darken * blurred[k])));
      expect([...got], `darken ${darken}`).toEqual(expected);
    }
  });

  it('a blur of another size is resampled bilinearly, with half-pixel centres and clamped edges', async () => {
    for (const [w, h, bw, bh] of [
      [40, 30, 5, 4],
      [33, 17, 8, 8],
      [7, 50, 1, 6],
      [64, 1, 9, 1],
      [1, 1, 3, 2],
      [12, 9, 24, 18], // larger than the crop: the same formula
    ]) {
      const crop = bytes(w * h * 3);
      const blurred = bytes(bw * bh * 3);
      const mask = Uint8Array.from({ length: w * h }, () => (random() < 0.3 ? 1 : 0));
      const got = await native().composeVisualPromptAsync(crop, mask, w, h, blurred, bw, bh, 0.1);
      expect(Buffer.from(got).equals(Buffer.from(reference(crop, mask, w, h, blurred, bw, bh, 0.1))), `${w}x${h} from ${bw}x${bh}`).toBe(true);
    }
  });

  it("a mask as the whole image's run lengths: its crop decoded natively, as the crop's bytes give", async () => {
    for (let trial = 0; trial < 60; trial++) {
      const [W, H] = [1 + Math.floor(random() * 40), 1 + Math.floor(random() * 40)];
      // runs of every length, from single pixels to several columns
      const full = new Uint8Array(W * H);
      for (let i = 0, on = random() < 0.5; i < full.length; on = !on) {
        const n = 1 + Math.floor(random() * (random() < 0.2 ? 3 * H : 6));
        full.fill(on ? 1 : 0, i, i + n);
        i += n;
      }
      const mask = Uint8Array.from({ length: W * H }, (_, i) => full[(i % W) * H + Math.floor(i / W)]); // column-major → row-major
      const counts = Uint32Array.from(maskToCounts(mask, H, W));
      const [x0, y0] = [Math.floor(random() * W), Math.floor(random() * H)];
      const [x1, y1] = trial === 0 ? [W, H] : [x0 + 1 + Math.floor(random() * (W - x0)), y0 + 1 + Math.floor(random() * (H - y0))];
      const [cw, ch] = trial === 0 ? [W, H] : [x1 - x0, y1 - y0];
      const [left, top] = trial === 0 ? [0, 0] : [x0, y0];
      const cropMask = Uint8Array.from({ length: cw * ch }, (_, i) => mask[(top + Math.floor(i / cw)) * W + left + (i % cw)]);
      const crop = bytes(cw * ch * 3);
      const blurred = bytes(3 * 3 * 3);
      const fromBytes = await native().composeVisualPromptAsync(crop, cropMask, cw, ch, blurred, 3, 3, 0.1);
      const fromRuns = await native().composeVisualPromptAsync(crop, { counts, width: W, height: H, left, top }, cw, ch, blurred, 3, 3, 0.1);
      expect(Buffer.from(fromRuns).equals(Buffer.from(fromBytes)), `${W}x${H}, crop ${cw}x${ch} at ${left},${top}`).toBe(true);
    }
  });

  it('run lengths that do not sum to the image, or a crop outside it, are refused', async () => {
    const crop = new Uint8Array(2 * 2 * 3);
    const blurred = new Uint8Array(3);
    const compose = (mask: { counts: Uint32Array; width: number; height: number; left: number; top: number }) =>
      native().composeVisualPromptAsync(crop, mask, 2, 2, blurred, 1, 1, 0.1);
    await expect(compose({ counts: Uint32Array.of(3, 5), width: 3, height: 3, left: 0, top: 0 })).rejects.toThrow(RangeError);
    expect(() => compose({ counts: Uint32Array.of(9), width: 3, height: 3, left: 2, top: 0 })).toThrow(TypeError);
    expect(() => compose({ counts: Uint32Array.of(9), width: 3, height: 3, left: 0, top: -1 })).toThrow(TypeError);
    await expect(compose({ counts: new Uint32Array(0), width: 3, height: 3, left: 0, top: 0 })).rejects.toThrow(RangeError);
    await expect(compose({ counts: Uint32Array.of(4, 5), width: 3, height: 3, left: 1, top: 1 })).resolves.toHaveLength(12);
  });

  it('malformed calls throw a TypeError instead of reading out of bounds', () => {
    const ok = [new Uint8Array(12), new Uint8Array(4), 2, 2, new Uint8Array(3), 1, 1, 0.1] as const;
    const call = (...args: unknown[]) => () => (native().composeVisualPromptAsync as (...a: unknown[]) => unknown)(...args);
    expect(call(...ok)).not.toThrow();
    expect(call(new Uint8Array(11), ...ok.slice(1))).toThrow(TypeError);
    expect(call(ok[0], new Uint8Array(5), ...ok.slice(2))).toThrow(TypeError);
    expect(call(...ok.slice(0, 4), new Uint8Array(2), ...ok.slice(5))).toThrow(TypeError);
    expect(call(...ok.slice(0, 2), 0, ...ok.slice(3))).toThrow(TypeError);
    expect(call(...ok.slice(0, 2), 2.5, ...ok.slice(3))).toThrow(TypeError);
    expect(call(...ok.slice(0, 7), 2)).toThrow(TypeError);
    expect(call(new Float32Array(3), ...ok.slice(1))).toThrow(TypeError);
    expect(call(...ok.slice(0, 7))).toThrow(TypeError);
    // sides that pass alone but whose bytes overflow int64 (UBSan: undefined behaviour before)
    expect(call(ok[0], ok[1], 2 ** 31 - 1, 2 ** 31 - 1, ...ok.slice(4))).toThrow(TypeError);
    expect(call(...ok.slice(0, 5), 2 ** 31 - 1, 2 ** 31 - 1, 0.1)).toThrow(TypeError);
  });
});
