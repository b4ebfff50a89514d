// Checkpoint config.json readers (native/models/sam/config.cc, native/models/clipseg/config.cc):
// regressions for what test/fuzz/config_fuzz.cc and its sanitizers found. Each config here used to
// crash the process or run the model out of bounds; now loading refuses it with an Error naming the
// file and key. The fuzzer's reproducers are in test/fuzz/crashes/config/.
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native } from '../lib/native.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const SAM_DIR = path.join(FIXTURES, 'sam-tiny', 'model');
const CLIPSEG_DIR = path.join(FIXTURES, 'clipseg-tiny', 'model');

type Json = Record<string, unknown>;

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'omniseg-config-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A copy of `modelDir`'s weights with `config` (a string, written as is) as its config.json. */
async function checkpointWith(name: string, modelDir: string, config: string): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  await copyFile(path.join(modelDir, 'model.safetensors'), path.join(dir, 'model.safetensors'));
  await writeFile(path.join(dir, 'config.json'), config);
  return dir;
}

async function configOf(modelDir: string): Promise<Json> {
  return JSON.parse(await readFile(path.join(modelDir, 'config.json'), 'utf8')) as Json;
}

/** The error loading `dir` rejects with (the test fails if it loads). */
async function loadError(load: () => Promise<{ dispose(): void }>): Promise<Error> {
  try {
    (await load()).dispose();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the load to fail');
}

const loadSam = (dir: string) => () => native().loadSam(dir, { threads: 1 });
const loadClipSeg = (dir: string) => () => native().loadClipSeg!(dir, { threads: 1 });

describe('SAM config.json', () => {
  it('a hidden_act nested a million levels deep is refused by its type (it overflowed the stack)', async () => {
    const depth = 1_000_000;
    const cfg = await configOf(SAM_DIR);
    const text = JSON.stringify({ ...cfg, vision_config: { ...(cfg.vision_config as Json), hidden_act: 0 } }).replace(
      '"hidden_act":0',
      `"hidden_act":${'['.repeat(depth)}${']'.repeat(depth)}`,
    );
    expect(text.length).toBeGreaterThan(2 * depth);
    const e = await loadError(loadSam(await checkpointWith('deep-act', SAM_DIR, text)));
    expect(e.message).toMatch(/config\.json vision_config: hidden_act of type array is not supported \(expected "gelu"\)/);
  });

  it('an mlp_ratio whose mlp_dim does not fit an int is refused before the conversion', async () => {
    const cfg = await configOf(SAM_DIR);
    const { mlp_dim: _, ...vision } = cfg.vision_config as Json;
    for (const ratio of [1e308, -4, 1e-9]) {
      const text = JSON.stringify({ ...cfg, vision_config: { ...vision, mlp_ratio: ratio } });
      const e = await loadError(loadSam(await checkpointWith(`mlp-ratio-${ratio}`, SAM_DIR, text)));
      expect(e.message).toMatch(/vision_config: hidden_size × "mlp_ratio" must be in \[1, 1048576\]/);
    }
  });

  it('a global_attn_indexes entry of 2^32 + 1 is not read as layer 1', async () => {
    const cfg = await configOf(SAM_DIR);
    const text = JSON.stringify({ ...cfg, vision_config: { ...(cfg.vision_config as Json), global_attn_indexes: [4294967297] } });
    const e = await loadError(loadSam(await checkpointWith('attn-index', SAM_DIR, text)));
    expect(e.message).toMatch(/vision_config: "global_attn_indexes" must be a list of integers/);
  });

  it('the fixture config still loads (the checks refuse only what they should)', async () => {
    const text = JSON.stringify(await configOf(SAM_DIR));
    const model = await native().loadSam(await checkpointWith('ok', SAM_DIR, text), { threads: 1 });
    expect(model.config.embeddingSize).toBe(16);
    model.dispose();
  });
});

describe('CLIPSeg config.json', () => {
  it('without extract_layers, the default [3, 6, 9] must fit the vision tower (it ran past its 4 layers)', async () => {
    const { extract_layers: _, ...cfg } = await configOf(CLIPSEG_DIR);
    const e = await loadError(loadClipSeg(await checkpointWith('no-extract', CLIPSEG_DIR, JSON.stringify(cfg))));
    expect(e.message).toMatch(/config\.json: "extract_layers" entry 6 is not a layer of the vision tower \(4 layers\)/);
  });

  it('explicit extract_layers within the tower still load', async () => {
    const text = JSON.stringify(await configOf(CLIPSEG_DIR));
    const model = await native().loadClipSeg!(await checkpointWith('clipseg-ok', CLIPSEG_DIR, text), { threads: 1 });
    expect(model.config.projectionDim).toBe(24);
    model.dispose();
  });
});
