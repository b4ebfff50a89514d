// Synthetic video frames from the shared photographs (../shared/images, read-only): the horse
// silhouette (horse.png, black on transparent) pasted over a fixed background (chelsea.png),
// shifted a few pixels per frame.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

export const SHARED_IMAGES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'images');
export const HAVE_SHARED_IMAGES = existsSync(path.join(SHARED_IMAGES, 'horse.png')) && existsSync(path.join(SHARED_IMAGES, 'chelsea.png'));

export interface SyntheticFrames {
  /** Frame files, in order: <dir>/frame_<i>.png, i from 1 (so that natural order matters past 9). */
  files: string[];
  width: number;
  height: number;
  /** Top-left corner of the pasted object in each frame. */
  offsets: Array<[x: number, y: number]>;
  /** Size of the pasted object. */
  object: [width: number, height: number];
}

/**
 * Writes `count` frames of width × height: the background resized to fill the frame, the horse
 * resized to a third of the frame's width and moved by `step` pixels right (and step / 2 down)
 * per frame.
 */
export async function writeSyntheticFrames(dir: string, count: number, width = 160, height = 120, step = 3): Promise<SyntheticFrames> {
  await mkdir(dir, { recursive: true });
  const background = await sharp(path.join(SHARED_IMAGES, 'chelsea.png')).resize(width, height, { fit: 'cover' }).removeAlpha().png().toBuffer();
  const objectWidth = Math.round(width / 3);
  const horse = await sharp(path.join(SHARED_IMAGES, 'horse.png')).resize({ width: objectWidth }).png().toBuffer({ resolveWithObject: true });
  const files: string[] = [];
  const offsets: Array<[number, number]> = [];
  for (let i = 0; i < count; i++) {
    const x = 10 + step * i;
    const y = 10 + Math.floor((step * i) / 2);
    const file = path.join(dir, `frame_${i + 1}.png`);
    await writeFile(file, await sharp(background).composite([{ input: horse.data, left: x, top: y }]).png().toBuffer());
    files.push(file);
    offsets.push([x, y]);
  }
  return { files, width, height, offsets, object: [horse.info.width, horse.info.height] };
}
