// The README's TypeScript examples, checked as a user would meet them: every ```ts block of
// README.md is type-checked against the package's published types (`import … from 'omniseg'`
// resolves to dist/ through the package's own exports, as in an installed copy), then run in a
// child Node process against the tiny checkpoints. A renamed export, option or method, or an
// example that throws, fails here. (`npm run build:ts` first: the blocks import dist/.)
//
// What is changed in a block before it runs, and only this:
// - the model directories it names ('/models/sam-vit-base', '/models/clipseg-rd64-refined') become
//   the tiny test checkpoints, and its image files ('photo.jpg', 'a.jpg', …) images made here;
// - `port: 8080` becomes `port: 0` (any free port);
// - variables a block uses without declaring them (a fragment continuing an earlier one: `sam`,
//   `clipseg`, `img`, `masks`, `frames`) are declared before it, in PRELUDE below.
// Blocks that ask for `device: 'cuda'` are type-checked everywhere and run only where CUDA works.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cudaStatus } from '../lib/backends.js';
import { MODEL_DIR } from './helpers/fixtures.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLIPSEG_DIR = path.join(ROOT, 'test', 'fixtures', 'clipseg-tiny', 'model');
// Inside the package, so that 'omniseg' and 'omniseg/server' resolve to it by name (self-reference).
const DIR = path.join(ROOT, '.cache', 'readme-examples');

interface Block {
  line: number; // of the opening fence in README.md
  code: string;
}

/** The ```ts blocks of a Markdown text. */
function tsBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== '```ts') continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i].trim() !== '```'; i++) body.push(lines[i]);
    blocks.push({ line: start + 1, code: body.join('\n') });
  }
  return blocks;
}

// Declarations for what a fragment uses without declaring, in dependency order.
const PRELUDE: [name: string, code: string][] = [
  ['sam', "const sam = await ReadmeSegmenter.load({ model: '/models/sam-vit-base' });"],
  ['clipseg', "const clipseg = await ReadmeReferrer.load({ model: '/models/clipseg-rd64-refined' });"],
  ['img', "const img = 'photo.jpg';"],
  ['frames', "const frames = ['photo.jpg', 'a.jpg', 'b.jpg'];"],
  ['masks', "const { masks } = await sam.segment(img, { points: [{ x: 400, y: 650, label: 1 }] }, { multimask: true });"],
];

function declares(code: string, name: string): boolean {
  const n = `\\b${name}\\b`;
  return new RegExp(`\\b(?:const|let|var)\\s+(?:\\{[^}]*${n}[^}]*\\}|\\[[^\\]]*${n}[^\\]]*\\]|${name}\\b)`).test(code);
}

/** The block as the module that runs: prelude, then the block with the fixtures' paths. */
function moduleSource(block: Block): string {
  const prelude = PRELUDE.filter(([name]) => new RegExp(`\\b${name}\\b`).test(block.code) && !declares(block.code, name));
  const header = [`// README.md line ${block.line}`];
  if (prelude.length > 0) {
    header.push("import { Segmenter as ReadmeSegmenter, Referrer as ReadmeReferrer } from 'omniseg';");
    header.push('void ReadmeSegmenter; void ReadmeReferrer;');
    header.push(...prelude.map(([, code]) => code));
  }
  return `${header.join('\n')}\n${block.code}\nexport {};\n`
    .replaceAll("'/models/sam-vit-base'", JSON.stringify(MODEL_DIR))
    .replaceAll("'/models/clipseg-rd64-refined'", JSON.stringify(CLIPSEG_DIR))
    .replace(/'([\w-]+\.jpg)'/g, (_, file: string) => JSON.stringify(path.join(DIR, file)))
    .replaceAll('port: 8080', 'port: 0');
}

const blocks = tsBlocks(readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
const files = blocks.map((b) => path.join(DIR, `readme-${b.line}.ts`));

beforeAll(async () => {
  await rm(DIR, { recursive: true, force: true });
  await mkdir(DIR, { recursive: true });
  // A 1024 × 1024 JPEG (the README's coordinates are those of a photo of that order of size).
  const side = 1024;
  const pixels = Buffer.alloc(side * side * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7919) % 251;
  await sharp(pixels, { raw: { width: side, height: side, channels: 3 } }).jpeg().toFile(path.join(DIR, 'photo.jpg'));
  const names = new Set(blocks.flatMap((b) => [...b.code.matchAll(/'([\w-]+\.jpg)'/g)].map((m) => m[1])));
  for (const name of names) if (name !== 'photo.jpg') await copyFile(path.join(DIR, 'photo.jpg'), path.join(DIR, name));
  for (let i = 0; i < blocks.length; i++) await writeFile(files[i], moduleSource(blocks[i]));
});

afterAll(async () => {
  await rm(DIR, { recursive: true, force: true });
});

describe('README.md TypeScript examples', () => {
  it('finds them (the library, referring, the five scenarios, the server, CUDA)', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(6);
    expect(tsBlocks('text\n```ts\nconst a = 1;\n```\n```sh\nls\n```\n')).toEqual([{ line: 2, code: 'const a = 1;' }]);
  });

  it('type-check against the published types', { timeout: 60_000 }, () => {
    expect(existsSync(path.join(ROOT, 'dist', 'lib', 'index.d.ts')), 'run "npm run build:ts" first').toBe(true);
    const config = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, 'tsconfig.json'), {}, {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    });
    const program = ts.createProgram(files, { ...config!.options, noEmit: true, rootDir: ROOT, declaration: false });
    const problems = ts.getPreEmitDiagnostics(program).map((d) => {
      const where = d.file ? `${path.basename(d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}` : '';
      return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
    expect(problems).toEqual([]);
  });

  const run = promisify(execFile);
  for (const [i, block] of blocks.entries()) {
    const cuda = /device: 'cuda'/.test(block.code);
    it(`the block at README.md line ${block.line} runs${cuda ? ' (CUDA)' : ''}`, { timeout: 60_000 }, async ({ skip }) => {
      if (cuda && !cudaStatus().available) skip();
      const js = files[i].replace(/\.ts$/, '.mjs');
      const source = ts.transpileModule(readFileSync(files[i], 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      }).outputText;
      await writeFile(js, source);
      const { stderr } = await run(process.execPath, [js], { cwd: DIR, env: { ...process.env, OMNISEG_DEVICE: cuda ? '' : 'cpu' } });
      expect(stderr).toBe('');
    });
  }
});
