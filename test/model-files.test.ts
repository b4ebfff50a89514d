// Malformed checkpoints on purpose: every one is a clear Error naming the problem (and, through
// the CLI, one line on stderr with exit code 1) — never a crash of the process.
import { execFileSync } from 'node:child_process';
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Referrer, Segmenter } from '../lib/index.js';
import { MAX_CLIP_INPUT_SIDE } from '../lib/clip/image-processor.js';
import { MAX_MODEL_TEXT_BYTES } from '../lib/model-text.js';
import { run } from './helpers/cli.js';
import { FIXTURES, MODEL_DIR } from './helpers/fixtures.js';
import { parseSafetensors, rewriteSafetensors, type ParsedSafetensors, type SafetensorsHeader } from './helpers/safetensors.js';

let root: string;
let fixture: ParsedSafetensors;
let weights: Buffer; // fixture.bytes
let dataStart: number; // fixture.dataStart

/** A checkpoint directory whose model.safetensors is `bytes` and config.json is `config`. */
async function checkpoint(name: string, bytes: Buffer, config?: string): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'model.safetensors'), bytes);
  if (config === undefined) await copyFile(path.join(MODEL_DIR, 'config.json'), path.join(dir, 'config.json'));
  else await writeFile(path.join(dir, 'config.json'), config);
  await copyFile(path.join(MODEL_DIR, 'preprocessor_config.json'), path.join(dir, 'preprocessor_config.json'));
  return dir;
}

/** Re-serialises the fixture's tensors with `edit` applied to the header entries. */
function rewrite(edit: (h: SafetensorsHeader) => void): Buffer {
  return rewriteSafetensors(fixture, edit);
}

/** The fixture's data section behind `edited` header entries, serialised exactly as given (offsets included). */
function rawHeader(edit: (h: SafetensorsHeader) => void): Buffer {
  const h = structuredClone(fixture.header);
  edit(h);
  const json = Buffer.from(JSON.stringify(h));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, fixture.bytes.subarray(fixture.dataStart)]);
}

/** The error `Loader.load` of the checkpoint in `dir` throws (Segmenter by default). */
async function loadError(dir: string, Loader: typeof Segmenter | typeof Referrer = Segmenter): Promise<Error> {
  try {
    const model = await Loader.load({ model: dir, threads: 1 });
    model.dispose();
  } catch (e) {
    return e as Error;
  }
  throw new Error(`expected ${Loader.name}.load to fail`);
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'omniseg-models-'));
  fixture = parseSafetensors(await readFile(path.join(MODEL_DIR, 'model.safetensors')));
  ({ bytes: weights, dataStart } = fixture);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('malformed checkpoints', () => {
  it('the fixture itself loads (the rewrite helper is faithful)', async () => {
    const s = await Segmenter.load({ model: await checkpoint('ok', rewrite(() => {})), threads: 1 });
    expect(s.config.embeddingDim).toBe(32);
    s.dispose();
  });

  it('truncated file', async () => {
    const e = await loadError(await checkpoint('truncated', weights.subarray(0, weights.length - 100)));
    expect(e.message).toMatch(/model\.safetensors: .*(out of range|beyond|exceed|past)/i);
  });

  it('header length larger than the file', async () => {
    const b = Buffer.from(weights);
    b.writeBigUInt64LE(BigInt(weights.length * 2), 0);
    const e = await loadError(await checkpoint('hdrlen', b));
    expect(e.message).toMatch(/model\.safetensors: header/i);
  });

  it('a file shorter than the 8-byte header length', async () => {
    const e = await loadError(await checkpoint('tiny', Buffer.from([1, 2, 3])));
    expect(e.message).toMatch(/model\.safetensors/);
  });

  it('garbage instead of JSON', async () => {
    const b = Buffer.from(weights);
    b.fill(0x7b, 8, 40);
    const e = await loadError(await checkpoint('garbage', b));
    expect(e.message).toMatch(/model\.safetensors: .*JSON/i);
  });

  it('a missing tensor is named', async () => {
    const key = 'mask_decoder.iou_token.weight';
    const e = await loadError(await checkpoint('missing', rewrite((h) => delete h[key])));
    expect(e.message).toContain(`missing tensor "${key}"`);
  });

  it('an unexpected tensor is named', async () => {
    const extra = rewrite((h) => {
      h['vision_encoder.extra.weight'] = { ...h['mask_decoder.iou_token.weight'] };
    });
    const e = await loadError(await checkpoint('extra', extra));
    expect(e.message).toContain('"vision_encoder.extra.weight"');
  });

  it('a mis-shaped tensor is named with both shapes', async () => {
    const key = 'mask_decoder.mask_tokens.weight'; // [4, 32]
    const e = await loadError(await checkpoint('shape', rewrite((h) => (h[key].shape = [32, 4]))));
    expect(e.message).toContain(`"${key}" has shape [32, 4] but the model configuration expects [4, 32]`);
  });

  it('config.json that is not JSON, or not a SAM config', async () => {
    let e = await loadError(await checkpoint('badcfg', weights, '{ not json'));
    expect(e.message).toMatch(/config\.json: not a valid JSON object/);
    e = await loadError(await checkpoint('clipcfg', weights, '{"model_type": "clip"}'));
    expect(e.message).toMatch(/is not a SAM checkpoint/);
  });

  it('config sizes that disagree with the weights', async () => {
    const cfg = JSON.parse(await readFile(path.join(MODEL_DIR, 'config.json'), 'utf8'));
    cfg.vision_config.num_hidden_layers = 4;
    const e = await loadError(await checkpoint('layers', weights, JSON.stringify(cfg)));
    expect(e.message).toContain('missing tensor "vision_encoder.layers.3.');
  });

  it('a header length over the 100 MiB limit is refused before reading it', async () => {
    const b = Buffer.from(weights);
    b.writeBigUInt64LE(1n << 62n, 0);
    const e = await loadError(await checkpoint('hugehdr', b));
    expect(e.message).toMatch(/model\.safetensors: header length 4611686018427387904 exceeds the limit of 104857600 bytes \(100 MiB\)$/);
  });

  it('data offsets past the end of the data section', async () => {
    const key = 'mask_decoder.iou_token.weight';
    const size = weights.length - dataStart;
    const e = await loadError(
      await checkpoint('oob', rawHeader((h) => (h[key].data_offsets = [size - 64, size + 64]))),
    );
    expect(e.message).toContain(`tensor "${key}": data_offsets [${size - 64}, ${size + 64}] out of range: data section is ${size} bytes`);
  });

  it('overlapping data offsets', async () => {
    // Move the second tensor (in data order) 4 bytes back, into the first.
    const [, [key, entry]] = Object.entries(fixture.header).sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
    const [b, e] = entry.data_offsets;
    const err = await loadError(await checkpoint('overlap', rawHeader((h) => (h[key].data_offsets = [b - 4, e - 4]))));
    expect(err.message).toContain(`tensor "${key}": byte range [${b - 4}, ${e - 4}) overlaps tensor`);
  });

  it('a shape whose byte count overflows 64 bits', async () => {
    const key = 'mask_decoder.iou_token.weight';
    const e = await loadError(await checkpoint('overflow', rawHeader((h) => (h[key].shape = [4294967296, 4294967296, 16]))));
    expect(e.message).toContain(`tensor "${key}": shape [4294967296, 4294967296, 16] with dtype F32 overflows a 64-bit byte count`);
  });

  it('an unknown dtype', async () => {
    const key = 'mask_decoder.iou_token.weight';
    const e = await loadError(await checkpoint('dtype', rawHeader((h) => (h[key].dtype = 'F128'))));
    expect(e.message).toContain(`tensor "${key}": unknown dtype "F128"`);
  });

  it('a missing config.json or model.safetensors is named', async () => {
    const noConfig = await checkpoint('noconfig', weights);
    await rm(path.join(noConfig, 'config.json'));
    expect((await loadError(noConfig)).message).toMatch(/config\.json/);
    const noWeights = await checkpoint('noweights', weights);
    await rm(path.join(noWeights, 'model.safetensors'));
    expect((await loadError(noWeights)).message).toMatch(/model\.safetensors/);
  });

  it('every malformed checkpoint above: one line from the CLI, exit code 1, and the process goes on', async () => {
    const names = ['truncated', 'hdrlen', 'tiny', 'garbage', 'missing', 'shape', 'badcfg', 'hugehdr', 'oob', 'overlap', 'overflow', 'dtype', 'noconfig', 'noweights'];
    for (const name of names) {
      const { code, stdout, stderr } = await run(['segment', path.join(FIXTURES, 'wide.png'), '--model', path.join(root, name), '--point', '10,10,1']);
      expect({ name, code, stdout }).toEqual({ name, code: 1, stdout: '' });
      expect(stderr).toMatch(/^omniseg: [^\n]*(config\.json|model\.safetensors)[^\n]*\n$/);
    }
    // The fixture itself still loads in this process.
    (await Segmenter.load({ model: MODEL_DIR, threads: 1 })).dispose();
  });

  it('the CLI reports a bad checkpoint in one line with exit code 1', async () => {
    const { code, stderr } = await run(
      ['segment', path.join(FIXTURES, 'wide.png'), '--model', await checkpoint('cli', weights.subarray(0, 1000)), '--point', '10,10,1'],
    );
    expect(code).toBe(1);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^omniseg: .*model\.safetensors/);
  });
});

const CLIPSEG_DIR = path.join(FIXTURES, '..', 'clipseg-tiny', 'model');

/** A copy of the tiny CLIPSeg checkpoint with `edit` applied to its directory. */
async function clipsegCheckpoint(name: string, edit: (dir: string) => Promise<void>): Promise<string> {
  const dir = path.join(root, name);
  await cp(CLIPSEG_DIR, dir, { recursive: true });
  await edit(dir);
  return dir;
}


describe('a checkpoint of the other model', () => {
  it('is named by its config.json model_type, before the loader looks for its own files', async () => {
    expect((await loadError(MODEL_DIR, Referrer)).message).toBe(
      `${MODEL_DIR}/config.json: model_type "sam" is not a CLIPSeg checkpoint (expected "clipseg")`,
    );
    expect((await loadError(CLIPSEG_DIR, Segmenter)).message).toBe(
      `${CLIPSEG_DIR}/config.json: model_type "clipseg" is not a SAM checkpoint (expected "sam")`,
    );
  });
});

/** Puts a FIFO at `file` (read from, it would block for a writer forever). */
async function fifo(file: string): Promise<void> {
  await rm(file, { force: true });
  execFileSync('mkfifo', [file]);
}

/** Puts a link to /dev/zero at `file` (read to its end, it would fill memory). */
async function zeros(file: string): Promise<void> {
  await rm(file, { force: true });
  await symlink('/dev/zero', file);
}

describe('model text files that are not what they should be', () => {
  it('SAM: config.json or preprocessor_config.json as a FIFO or a link to /dev/zero is refused, not read', { timeout: 20_000 }, async () => {
    for (const name of ['config.json', 'preprocessor_config.json']) {
      for (const [kind, make] of [['fifo', fifo], ['zero', zeros]] as const) {
        const dir = await checkpoint(`${kind}_${name}`, weights);
        await make(path.join(dir, name));
        const e = await loadError(dir);
        expect(e.message, `${name} ${kind}`).toBe(`cannot read ${path.join(dir, name)}: not a regular file`);
      }
    }
  });

  it('SAM: a config file over 16 MiB is refused before it is read', async () => {
    const dir = await checkpoint('big_config', weights);
    await truncate(path.join(dir, 'preprocessor_config.json'), 16 * 1024 * 1024 + 1); // sparse
    expect((await loadError(dir)).message).toMatch(/preprocessor_config\.json: 16777217 bytes, more than a config file's 16777216-byte limit/);
  });

  it('CLIPSeg: a tokenizer or processor file as a FIFO or a link to /dev/zero is refused, not read', { timeout: 20_000 }, async () => {
    for (const name of ['config.json', 'vocab.json', 'merges.txt', 'preprocessor_config.json', 'tokenizer_config.json']) {
      for (const [kind, make] of [['fifo', fifo], ['zero', zeros]] as const) {
        const dir = await clipsegCheckpoint(`clip_${kind}_${name}`, (d) => make(path.join(d, name)));
        const e = await loadError(dir, Referrer);
        const file = path.join(dir, name);
        expect(e.message, `${name} ${kind}`).toMatch(name === 'config.json' ? `cannot read ${file}: not a regular file` : `${file}: cannot read the file (not a regular file)`);
      }
    }
  });

  it(`CLIPSeg: a tokenizer file over ${MAX_MODEL_TEXT_BYTES} bytes is refused before it is read`, async () => {
    const dir = await clipsegCheckpoint('clip_big_merges', (d) => truncate(path.join(d, 'merges.txt'), MAX_MODEL_TEXT_BYTES + 1));
    expect((await loadError(dir, Referrer)).message).toBe(
      `${path.join(dir, 'merges.txt')}: ${MAX_MODEL_TEXT_BYTES + 1} bytes, more than the ${MAX_MODEL_TEXT_BYTES} bytes a model's text file may have`,
    );
  });
});

describe('config values past what the models can be', () => {
  const samConfig = async (edit: (cfg: Record<string, any>, pp: Record<string, any>) => void, name: string): Promise<string> => {
    const cfg = JSON.parse(await readFile(path.join(MODEL_DIR, 'config.json'), 'utf8'));
    const pp = JSON.parse(await readFile(path.join(MODEL_DIR, 'preprocessor_config.json'), 'utf8'));
    edit(cfg, pp);
    const dir = await checkpoint(name, weights, JSON.stringify(cfg));
    await writeFile(path.join(dir, 'preprocessor_config.json'), JSON.stringify(pp));
    return dir;
  };

  it('SAM: image_size over 8192 (its buffers grow with the square: 65536 took 8 GB before failing)', async () => {
    const dir = await samConfig((cfg) => (cfg.vision_config.image_size = 16384), 'image_size');
    expect((await loadError(dir)).message).toMatch(/vision_config: "image_size" = 16384 is out of range \[1, 8192\]/);
  });

  it('layer_norm_eps of 0 or below, or not finite (it is added under a square root)', async () => {
    for (const eps of [0, -1e-6]) {
      const dir = await samConfig((cfg) => (cfg.mask_decoder_config.layer_norm_eps = eps), `eps_${eps}`);
      expect((await loadError(dir)).message).toMatch(/mask_decoder_config: "layer_norm_eps" must be a finite number above 0/);
    }
    const dir = await clipsegCheckpoint('clip_eps', async (d) => {
      const cfg = JSON.parse(await readFile(path.join(d, 'config.json'), 'utf8'));
      cfg.vision_config.layer_norm_eps = 0;
      await writeFile(path.join(d, 'config.json'), JSON.stringify(cfg));
    });
    expect((await loadError(dir, Referrer)).message).toMatch(/vision_config: "layer_norm_eps" must be a finite number above 0/);
  });

  it('SAM: image_std of 0 or below (the pixels are divided by it)', async () => {
    for (const std of [[0, 1, 1], [1, -0.5, 1]]) {
      const dir = await samConfig((_, pp) => (pp.image_std = std), `std_${std.join('_')}`);
      expect((await loadError(dir)).message).toMatch(/preprocessor_config\.json: "image_std" must be a list of 3 positive numbers/);
    }
  });

  it('SAM: a size or pad_size of another shape is refused (the processor only resizes by longest_edge)', async () => {
    for (const size of [{ height: 64, width: 64 }, 64, { shortest_edge: 64 }]) {
      const dir = await samConfig((_, pp) => (pp.size = size), `size_${JSON.stringify(size).replace(/\W/g, '')}`);
      expect((await loadError(dir)).message).toMatch(/preprocessor_config\.json: size must be \{"longest_edge": N\}/);
    }
    for (const padSize of [{ height: 64 }, [64, 64], '64']) {
      const dir = await samConfig((_, pp) => (pp.pad_size = padSize), `pad_${JSON.stringify(padSize).replace(/\W/g, '')}`);
      expect((await loadError(dir)).message).toMatch(/preprocessor_config\.json: pad_size must be \{"height": H, "width": W\} or N/);
    }
    // an integer N is N x N, as transformers reads it: the model's 128 loads, 64 is the wrong size
    const square = await samConfig((_, pp) => (pp.pad_size = 128), 'pad_int_128');
    (await Segmenter.load({ model: square, threads: 1 })).dispose();
    const small = await samConfig((_, pp) => (pp.pad_size = 64), 'pad_int_64');
    expect((await loadError(small)).message).toMatch(/pad_size must equal the model's image_size \(128\)/);
  });

  it('CLIPSeg: max_position_embeddings below 2 (a start and an end token), image_size over 4096', async () => {
    const edit = (f: (cfg: Record<string, any>) => void) => async (d: string) => {
      const cfg = JSON.parse(await readFile(path.join(d, 'config.json'), 'utf8'));
      f(cfg);
      await writeFile(path.join(d, 'config.json'), JSON.stringify(cfg));
    };
    let dir = await clipsegCheckpoint('clip_positions', edit((cfg) => (cfg.text_config.max_position_embeddings = 1)));
    expect((await loadError(dir, Referrer)).message).toMatch(/text_config: "max_position_embeddings" = 1 is out of range \[2, 65536\]/);
    dir = await clipsegCheckpoint('clip_image_size', edit((cfg) => (cfg.vision_config.image_size = 8192)));
    expect((await loadError(dir, Referrer)).message).toMatch(/vision_config: "image_size" = 8192 is out of range \[1, 4096\]/);
  });

  it(`CLIPSeg: a processor size over ${MAX_CLIP_INPUT_SIDE} px`, async () => {
    const dir = await clipsegCheckpoint('clip_pp_size', async (d) => {
      const pp = JSON.parse(await readFile(path.join(d, 'preprocessor_config.json'), 'utf8'));
      pp.size = { height: 65536, width: 65536 };
      await writeFile(path.join(d, 'preprocessor_config.json'), JSON.stringify(pp));
    });
    expect((await loadError(dir, Referrer)).message).toMatch(
      new RegExp(`preprocessor_config\\.json: size must be \\{"height": H, "width": W\\} \\(integers from 1 to ${MAX_CLIP_INPUT_SIDE}\\)`),
    );
  });
});
