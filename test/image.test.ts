import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeForEncoder, decodeImage, readInPlace, recyclePixels } from '../lib/image.js';

/** 3 × 2 RGB pixels, row-major. */
const RGB = new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90]);

function png(data: Uint8Array, width: number, height: number, channels: 1 | 2 | 3 | 4): Promise<Buffer> {
  const image = sharp(data, { raw: { width, height, channels } });
  return (channels <= 2 ? image.toColourspace('b-w') : image).png().toBuffer();
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'omniseg-image-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('decodeImage: raw pixels are copied when the call is made', () => {
  it('3-channel input: a copy (the encoder reads it later, off the JS thread)', async () => {
    const data = RGB.slice();
    const pending = decodeImage({ data, width: 3, height: 2, channels: 3 });
    data.fill(7); // the caller reuses its buffer at once
    structuredClone(data.buffer, { transfer: [data.buffer] }); // or detaches it
    expect(data.byteLength).toBe(0);
    const decoded = await pending;
    expect(Array.from(decoded.data)).toEqual(Array.from(RGB));
  });
});

describe('decodeForEncoder: recycled copies', () => {
  const raw = (fill: number) => ({ data: new Uint8Array(18).fill(fill), width: 3, height: 2, channels: 3 as const });

  it('copies raw pixels; a copy given back is refilled for the next image of its size', async () => {
    const first = raw(1);
    const a = await decodeForEncoder(first);
    expect(a.data).not.toBe(first.data);
    recyclePixels(a.data);
    const b = await decodeForEncoder(raw(2));
    expect(b.data).toBe(a.data); // the same memory, refilled
    expect(Array.from(b.data)).toEqual(Array(18).fill(2));
    const c = await decodeForEncoder(raw(3)); // (b not given back: a new buffer)
    expect(c.data).not.toBe(b.data);
    recyclePixels(b.data);
    recyclePixels(b.data); // a second give-back is ignored: never handed out twice
    const [d, e] = [await decodeForEncoder(raw(4)), await decodeForEncoder(raw(5))];
    expect(d.data).toBe(b.data);
    expect(e.data).not.toBe(d.data);
  });

  it('takes its own pixels back as they are; never recycles what decodeImage gave the caller', async () => {
    const own = await decodeForEncoder(raw(6));
    expect((await decodeForEncoder({ ...own, channels: 3 })).data).toBe(own.data);
    const users = await decodeImage(raw(7));
    recyclePixels(users.data);
    expect((await decodeForEncoder(raw(8))).data).not.toBe(users.data);
    // and decodeImage copies even this module's buffers: they may have reached user code
    expect((await decodeImage({ ...own, channels: 3 })).data).not.toBe(own.data);
  });
});

describe('decodeForEncoder: pixels read in place', () => {
  const raw = (fill: number) => ({ data: new Uint8Array(30).fill(fill), width: 5, height: 2, channels: 3 as const });

  it('only its own pixels; given back while read, they are recycled when the last read settles', async () => {
    expect(readInPlace((await decodeImage(raw(1))).data)).toBeUndefined();
    expect(readInPlace(new Uint8Array(30))).toBeUndefined();
    const a = await decodeForEncoder(raw(2));
    const [first, second] = [readInPlace(a.data), readInPlace(a.data)];
    expect(first).toBeTypeOf('function');
    recyclePixels(a.data); // (the encode settled while two reads are pending)
    expect((await decodeForEncoder(raw(3))).data).not.toBe(a.data);
    first!();
    first!(); // (a second call is ignored)
    expect((await decodeForEncoder(raw(4))).data).not.toBe(a.data);
    second!();
    const b = await decodeForEncoder(raw(5));
    expect(b.data).toBe(a.data); // recycled once nothing reads it
    expect(Array.from(b.data)).toEqual(Array(30).fill(5));
    // a read that settles without a give-back leaves the pixels alone
    readInPlace(b.data)!();
    expect((await decodeForEncoder(raw(6))).data).not.toBe(b.data);
  });
});

describe('decodeImage: encoded images', () => {
  it('decodes a PNG buffer to RGB HWC bytes', async () => {
    const decoded = await decodeImage(await png(RGB, 3, 2, 3));
    expect(decoded.width).toBe(3);
    expect(decoded.height).toBe(2);
    expect(decoded.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(decoded.data)).toEqual(Array.from(RGB));
  });

  it('decodes a file path', async () => {
    const file = path.join(dir, 'rgb.png');
    await writeFile(file, await png(RGB, 3, 2, 3));
    const decoded = await decodeImage(file);
    expect(Array.from(decoded.data)).toEqual(Array.from(RGB));
  });

  it('drops alpha without compositing (as PIL convert("RGB"))', async () => {
    const rgba = new Uint8Array([10, 20, 30, 0, 40, 50, 60, 128]);
    const decoded = await decodeImage(await png(rgba, 2, 1, 4));
    expect(Array.from(decoded.data)).toEqual([10, 20, 30, 40, 50, 60]);
  });

  it('expands greyscale (with or without alpha) to RGB', async () => {
    const grey = await decodeImage(await png(new Uint8Array([0, 128]), 2, 1, 1));
    expect(Array.from(grey.data)).toEqual([0, 0, 0, 128, 128, 128]);
    const greyAlpha = await decodeImage(await png(new Uint8Array([7, 0, 200, 255]), 2, 1, 2));
    expect(Array.from(greyAlpha.data)).toEqual([7, 7, 7, 200, 200, 200]);
  });

  it('applies the EXIF orientation', async () => {
    // 64 × 32 stored, its left half red and right half blue. Orientation 6 (rotate 90° clockwise
    // to display) → 32 × 64, red on top (orientation 8, counter-clockwise, would put blue there).
    const stored = new Uint8Array(64 * 32 * 3);
    for (let i = 0; i < 64 * 32; i++) stored[i * 3 + (i % 64 < 32 ? 0 : 2)] = 255;
    const jpeg = await sharp(stored, { raw: { width: 64, height: 32, channels: 3 } })
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const decoded = await decodeImage(jpeg);
    expect([decoded.width, decoded.height]).toEqual([32, 64]);
    expect(decoded.data.length).toBe(32 * 64 * 3);
    const pixel = (x: number, y: number) => Array.from(decoded.data.subarray((y * 32 + x) * 3, (y * 32 + x) * 3 + 3));
    const near = (rgb: number[], want: number[]) => rgb.every((v, c) => Math.abs(v - want[c]) <= 16);
    expect(near(pixel(16, 4), [255, 0, 0])).toBe(true);
    expect(near(pixel(16, 59), [0, 0, 255])).toBe(true);
  });

  it('decodes other formats (WebP, lossless)', async () => {
    const webp = await sharp(RGB, { raw: { width: 3, height: 2, channels: 3 } }).webp({ lossless: true }).toBuffer();
    expect(Array.from((await decodeImage(webp)).data)).toEqual(Array.from(RGB));
  });
});

describe('decodeImage: errors', () => {
  it('a corrupt buffer', async () => {
    await expect(decodeImage(Buffer.from('not an image'))).rejects.toThrow(
      new Error('Cannot decode image buffer: Input buffer contains unsupported image format'),
    );
  });

  it('a truncated PNG', async () => {
    const full = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#336699' } })
      .png()
      .toBuffer();
    await expect(decodeImage(full.subarray(0, full.length >> 1))).rejects.toThrow(/^Cannot decode image buffer: /);
  });

  it('a corrupt file names the path', async () => {
    const file = path.join(dir, 'corrupt.png');
    await writeFile(file, 'garbage');
    await expect(decodeImage(file)).rejects.toThrow(
      new Error(`Cannot decode image ${file}: Input file contains unsupported image format`),
    );
  });

  it('a missing file names the path', async () => {
    const file = path.join(dir, 'missing.png');
    await expect(decodeImage(file)).rejects.toThrow(new Error(`Image file not found: ${file}`));
  });

  it('a directory', async () => {
    await expect(decodeImage(dir)).rejects.toThrow(new Error(`Cannot decode image ${dir}: not a file`));
  });

  it('an image above limitInputPixels', async () => {
    await expect(decodeImage(await png(RGB, 3, 2, 3), { limitInputPixels: 5 })).rejects.toThrow(
      new Error('Cannot decode image buffer: 3x2 = 6 pixels exceeds the limit of 5 (limitInputPixels)'),
    );
    await expect(decodeImage(await png(RGB, 3, 2, 3), { limitInputPixels: 6 })).resolves.toMatchObject({ width: 3, height: 2 });
  });

  it('an invalid limitInputPixels', async () => {
    await expect(decodeImage(RGB, { limitInputPixels: -1 })).rejects.toThrow(
      new RangeError('Expected an integer >= 0 for limitInputPixels but received -1 of type number'),
    );
    // options that are not an object (null was read as an object, a string ignored)
    await expect(decodeImage(RGB, null as never)).rejects.toThrow(
      new TypeError('Expected an object {limitInputPixels?} for options but received null of type null'),
    );
    await expect(decodeImage(RGB, 'x' as never)).rejects.toThrow(TypeError);
  });

  it('inputs of the wrong type', async () => {
    const what = 'a file path, a Buffer/Uint8Array of an encoded image, or raw pixels {data, width, height, channels}';
    await expect(decodeImage(42 as unknown as string)).rejects.toThrow(
      new TypeError(`Expected ${what} for image but received 42 of type number`),
    );
    await expect(decodeImage('')).rejects.toThrow(new RangeError(`Expected ${what} for image but received "" of type string`));
  });
});

describe('decodeImage: raw pixels', () => {
  it('copies RGB (the native encoder must not read memory the caller still controls)', async () => {
    const data = new Uint8Array(RGB);
    const decoded = await decodeImage({ data, width: 3, height: 2, channels: 3 });
    expect(decoded.data.buffer).not.toBe(data.buffer);
    expect(Array.from(decoded.data)).toEqual(Array.from(RGB));
    expect([decoded.width, decoded.height]).toEqual([3, 2]);
  });

  it('copies exactly the bytes of a Buffer view', async () => {
    const backing = Buffer.alloc(64, 9);
    const data = backing.subarray(8, 8 + 18);
    data.set(RGB);
    const decoded = await decodeImage({ data, width: 3, height: 2, channels: 3 });
    expect(decoded.data.buffer).not.toBe(backing.buffer);
    expect(decoded.data.byteLength).toBe(18);
    expect(Array.from(decoded.data)).toEqual(Array.from(RGB));
  });

  it('converts grey and RGBA to RGB', async () => {
    const grey = await decodeImage({ data: new Uint8Array([1, 2]), width: 2, height: 1, channels: 1 });
    expect(Array.from(grey.data)).toEqual([1, 1, 1, 2, 2, 2]);
    const rgba = await decodeImage({ data: new Uint8Array([1, 2, 3, 0, 4, 5, 6, 255]), width: 2, height: 1, channels: 4 });
    expect(Array.from(rgba.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('converts grey and RGBA exactly as copying the grey thrice or dropping alpha, from a copy made when called', async () => {
    // (sharp converts them in a worker thread; the definition here is the JS loop it replaced)
    const [width, height] = [97, 61];
    for (const channels of [1, 4] as const) {
      const data = Uint8Array.from({ length: width * height * channels }, (_, i) => (i * 2654435761) >>> 24);
      const expected = new Uint8Array(width * height * 3);
      for (let i = 0; i < width * height; i++) {
        for (let c = 0; c < 3; c++) expected[i * 3 + c] = data[i * channels + (channels === 1 ? 0 : c)];
      }
      const decoding = decodeImage({ data, width, height, channels });
      data.fill(7); // the caller's buffer, changed as soon as the call returns
      expect(Buffer.from((await decoding).data).equals(Buffer.from(expected)), `${channels} channels`).toBe(true);
    }
  });

  it('rejects unsupported channel counts', async () => {
    await expect(decodeImage({ data: new Uint8Array(4), width: 2, height: 1, channels: 2 as 3 })).rejects.toThrow(
      new RangeError('Expected 1, 3 or 4 for image.channels but received 2 of type number'),
    );
  });

  it('rejects data of the wrong size or type', async () => {
    await expect(decodeImage({ data: new Uint8Array(5), width: 3, height: 2, channels: 1 })).rejects.toThrow(
      new RangeError(
        'Expected a Uint8Array of width × height × channels = 6 bytes for image.data but received Uint8Array(5) of type Uint8Array',
      ),
    );
    await expect(
      decodeImage({ data: new Float32Array(6) as unknown as Uint8Array, width: 3, height: 2, channels: 1 }),
    ).rejects.toThrow(
      new TypeError(
        'Expected a Uint8Array of width × height × channels = 6 bytes for image.data but received Float32Array(6) of type Float32Array',
      ),
    );
  });

  it('rejects invalid dimensions', async () => {
    await expect(decodeImage({ data: new Uint8Array(0), width: 0, height: 2, channels: 3 })).rejects.toThrow(
      new RangeError('Expected an integer >= 1 for image.width but received 0 of type number'),
    );
  });

  it('applies limitInputPixels', async () => {
    await expect(decodeImage({ data: RGB, width: 3, height: 2, channels: 3 }, { limitInputPixels: 5 })).rejects.toThrow(
      new RangeError(
        'Expected an image of at most 5 pixels (limitInputPixels) for image but received {data: Uint8Array(18), width: 3, height: 2, channels: 3} of type object',
      ),
    );
  });
});
