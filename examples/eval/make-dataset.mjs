// Builds the example evaluation dataset (examples/eval/) from the shared photographs
// (../shared/images, CC0 / public domain). The ground truth is true, not drawn by hand:
//   - horse.png is a black horse silhouette on white: the horse is every pixel darker than mid-grey;
//   - horse-on-cat.jpg is that silhouette (scaled, anti-aliased) laid over chelsea.png: the horse
//     is every pixel the silhouette covers at least half of;
//   - coffee.jpg (coffee.png, scaled) has no horse at all: no-target samples for referring prompts.
// Prompts are derived from the masks: the interior point farthest from the boundary (as the NoC
// protocol's first click), the farthest background point as a negative click, the tight box.
// Writes images/*.{png,jpg}, horse.jsonl (SAM: points / boxes) and referring.jsonl (text,
// reference image + region, text narrowed by a click and a box; needs --referrer).
//
// Run from the repository root after `npm run build:ts`:
//   node examples/eval/make-dataset.mjs [shared-images-dir]
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { encodeRLE, firstClick } from '../../dist/lib/index.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SHARED = path.resolve(process.argv[2] ?? path.join(HERE, '..', '..', '..', 'shared', 'images'));
const IMAGES = path.join(HERE, 'images');

/** Row-major 0/1 of the pixels of a greyscale image darker than mid-grey. */
function darkMask(grey) {
  return Uint8Array.from(grey, (v) => (v < 128 ? 1 : 0));
}

/** The tight box [x0, y0, x1, y1] of a mask (pixel edges: the box covers the pixels' centres). */
function tightBox(mask, width) {
  let [x0, y0, x1, y1] = [Infinity, Infinity, -1, -1];
  mask.forEach((v, i) => {
    if (v === 0) return;
    const [x, y] = [i % width, Math.floor(i / width)];
    [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
  });
  return [x0, y0, x1 + 1, y1 + 1];
}

const click = (p, label) => [p.x, p.y, label];

async function horse() {
  const { data, info } = await sharp(path.join(SHARED, 'horse.png')).removeAlpha().greyscale().raw().toBuffer({ resolveWithObject: true });
  await writeFile(path.join(IMAGES, 'horse.png'), await sharp(data, { raw: { width: info.width, height: info.height, channels: 1 } }).png({ compressionLevel: 9 }).toBuffer());
  return { file: 'images/horse.png', width: info.width, height: info.height, mask: darkMask(data) };
}

/** The silhouette scaled to `scale` of the background's width and laid over it at (left, top). */
async function horseOnCat(width = 300, height = 200, scale = 0.55, left = 110, top = 50) {
  const bg = await sharp(path.join(SHARED, 'chelsea.png')).resize(width, height, { fit: 'cover' }).removeAlpha().raw().toBuffer();
  const hw = Math.round(width * scale);
  const { data: grey, info } = await sharp(path.join(SHARED, 'horse.png')).removeAlpha().greyscale().resize({ width: hw }).raw().toBuffer({ resolveWithObject: true });
  const rgb = Buffer.from(bg);
  const mask = new Uint8Array(width * height);
  for (let y = 0; y < info.height; y++) {
    for (let x = 0; x < info.width; x++) {
      const [tx, ty] = [left + x, top + y];
      if (tx >= width || ty >= height) continue;
      const cover = 1 - grey[y * info.width + x] / 255;
      const i = ty * width + tx;
      for (let c = 0; c < 3; c++) rgb[3 * i + c] = Math.round(rgb[3 * i + c] * (1 - cover));
      mask[i] = cover >= 0.5 ? 1 : 0;
    }
  }
  await writeFile(path.join(IMAGES, 'horse-on-cat.jpg'), await sharp(rgb, { raw: { width, height, channels: 3 } }).jpeg({ quality: 85 }).toBuffer());
  return { file: 'images/horse-on-cat.jpg', width, height, mask };
}

async function coffee(width = 240, height = 160) {
  await writeFile(path.join(IMAGES, 'coffee.jpg'), await sharp(path.join(SHARED, 'coffee.png')).resize(width, height, { fit: 'cover' }).jpeg({ quality: 80 }).toBuffer());
  return { file: 'images/coffee.jpg', width, height, mask: new Uint8Array(width * height) };
}

function sample(id, image, prompts) {
  const empty = !image.mask.some((v) => v !== 0);
  const masks = empty ? [] : [encodeRLE(image.mask, image.height, image.width)];
  return { id, image: image.file, height: image.height, width: image.width, masks, ...prompts };
}

async function main() {
  await mkdir(IMAGES, { recursive: true });
  const h = await horse();
  const c = await horseOnCat();
  const empty = await coffee();
  const prompts = (img) => {
    const inverse = img.mask.map((v) => 1 - v);
    return {
      inside: click(firstClick(img.mask, img.width, img.height), 1),
      outside: click(firstClick(inverse, img.width, img.height), 0),
      box: tightBox(img.mask, img.width),
    };
  };
  const ph = prompts(h);
  const pc = prompts(c);
  const sam = [
    sample('horse-point', h, { points: [ph.inside] }),
    sample('horse-box', h, { boxes: [ph.box] }),
    sample('horse-points', h, { points: [ph.inside, ph.outside] }),
    sample('cat-horse-point', c, { points: [pc.inside] }),
    sample('cat-horse-box', c, { boxes: [pc.box] }),
    sample('cat-horse-box-point', c, { points: [pc.inside], boxes: [pc.box] }),
  ];
  const region = { mask: encodeRLE(h.mask, h.height, h.width) };
  const referring = [
    sample('text-horse', h, { text: 'a black horse' }),
    sample('text-cat-horse', c, { text: 'a horse' }),
    sample('text-click-box', c, { text: 'a horse', points: [pc.inside], boxes: [pc.box] }),
    sample('ref-box', c, { refImage: h.file, refRegion: { box: ph.box } }),
    sample('text-coffee', empty, { text: 'a horse' }),
    sample('ref-mask-coffee', empty, { refImage: h.file, refRegion: region }),
  ];
  const jsonl = (records) => records.map((r) => JSON.stringify(r)).join('\n') + '\n';
  await writeFile(path.join(HERE, 'horse.jsonl'), jsonl(sam));
  await writeFile(path.join(HERE, 'referring.jsonl'), jsonl(referring));
  console.log(`wrote ${sam.length} samples to horse.jsonl and ${referring.length} to referring.jsonl in ${HERE}`);
}

await main();
