// sharp is loaded on first use (lib/sharp.ts), not when omniseg or its server is imported: where
// sharp's binaries cannot load, importing omniseg and `omniseg info` still work. Checked in a child
// Node on the compiled package (dist/), whose module cache starts empty.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const SCRIPT = `
import { createRequire } from 'node:module';
const cache = createRequire(process.cwd() + '/').cache;
const sharpLoaded = () => Object.keys(cache).some((f) => f.includes('/node_modules/sharp/'));
const m = await import('./dist/lib/index.js');
await import('./dist/lib/server/index.js');
const before = sharpLoaded();
const image = await m.decodeImage({ data: new Uint8Array(16), width: 2, height: 2, channels: 4 }); // RGBA: made RGB by sharp
console.log(JSON.stringify({ before, after: sharpLoaded(), width: image.width }));
`;

describe('sharp', () => {
  it('is loaded by the first image operation, not by importing omniseg', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', SCRIPT], { cwd: root });
    expect(JSON.parse(stdout)).toEqual({ before: false, after: true, width: 2 });
  });
});
