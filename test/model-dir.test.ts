// resolveModelDirectory and first use of a registry id: Segmenter.load / Referrer.load pull the
// committed tiny checkpoints from a local HTTP server into a temporary cache, then load them
// with the native addon exactly as from their directories.
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi, type MockInstance } from 'vitest';
import { Referrer, Segmenter } from '../lib/index.js';
import { resolveModelDirectory } from '../lib/model-dir.js';
import { fixtureFiles, hubFixture, startHubServer, type HubServer, type TestModel } from './helpers/hub-server.js';
import { MODEL_DIR } from './helpers/fixtures.js';

const CLIPSEG_DIR = path.join(path.dirname(path.dirname(MODEL_DIR)), 'clipseg-tiny', 'model');

let hub: HubServer;
let fixture: Awaited<ReturnType<typeof hubFixture>>;
let sam: TestModel;
let clipseg: TestModel;
let stderrWrite: MockInstance<typeof process.stderr.write>;
beforeAll(async () => {
  hub = await startHubServer();
  sam = {
    id: 'tiny-sam',
    family: 'sam',
    repo: 'omniseg/sam-tiny',
    revision: 'main',
    files: await fixtureFiles(MODEL_DIR, ['config.json', 'preprocessor_config.json', 'model.safetensors']),
  };
  clipseg = {
    id: 'tiny-clipseg',
    family: 'clipseg',
    repo: 'omniseg/clipseg-tiny',
    revision: 'main',
    files: await fixtureFiles(CLIPSEG_DIR, ['config.json', 'preprocessor_config.json', 'vocab.json', 'merges.txt', 'model.safetensors']),
  };
  fixture = await hubFixture(hub, [sam, clipseg]);
  for (const [name, value] of Object.entries(fixture.env)) vi.stubEnv(name, value);
  stderrWrite = vi.spyOn(process.stderr, 'write').mockImplementation(() => true); // first-use progress
});
afterAll(async () => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  await hub.close();
  await fixture.dispose();
});
afterEach(() => {
  hub.requests.length = 0;
});

describe('resolveModelDirectory', () => {
  it('a path that exists is used as it is, without the registry or the network', async () => {
    expect(await resolveModelDirectory(MODEL_DIR, 'sam')).toBe(MODEL_DIR);
    expect(hub.requests).toEqual([]);
  });

  it('a name that is neither a path nor a registry id keeps the directory error, with the ids and the nearest one', async () => {
    const sam = 'sam-vit-base, sam-vit-large, sam-vit-huge, slimsam-77, tiny-sam'; // (tiny-sam: this file's registry)
    await expect(resolveModelDirectory('no-such-model', 'sam')).rejects.toThrow(
      new Error(`Model directory not found: no-such-model (nor a registry id: Segmenter takes ${sam})`),
    );
    await expect(resolveModelDirectory('sam-vit-bas', 'sam')).rejects.toThrow(
      new Error(`Model directory not found: sam-vit-bas (nor a registry id: Segmenter takes ${sam}; did you mean sam-vit-base?)`),
    );
    await expect(resolveModelDirectory('SlimSAM-77', 'sam')).rejects.toThrow(/; did you mean slimsam-77\?\)$/);
    await expect(resolveModelDirectory('clipseg-rd64', 'clipseg')).rejects.toThrow(
      new Error('Model directory not found: clipseg-rd64 (nor a registry id: Referrer takes clipseg-rd64-refined, tiny-clipseg)'),
    );
    await expect(resolveModelDirectory('clipseg-rd64-refine', 'clipseg')).rejects.toThrow(/; did you mean clipseg-rd64-refined\?\)$/);
    // a path (with a separator) is only a missing directory
    await expect(resolveModelDirectory('models/sam-vit-bas', 'sam')).rejects.toThrow(new Error('Model directory not found: models/sam-vit-bas'));
  });

  it('a name that is not a path, with a registry that cannot be read, is named as the missing directory first', async () => {
    const registry = process.env.OMNISEG_REGISTRY ?? '';
    vi.stubEnv('OMNISEG_REGISTRY', path.join(MODEL_DIR, 'no-registry.json'));
    try {
      await expect(resolveModelDirectory('/no/such/model-dir', 'sam')).rejects.toThrow(
        /^Model directory not found: \/no\/such\/model-dir \(nor a registry id: Cannot read the model registry .*no-registry\.json: no such file\)$/,
      );
    } finally {
      vi.stubEnv('OMNISEG_REGISTRY', registry);
    }
  });

  it('a registry id of the other family is refused before any download', async () => {
    await expect(Segmenter.load({ model: 'tiny-clipseg' })).rejects.toThrow(
      new Error('Model tiny-clipseg is a clipseg model: load it with Referrer, not Segmenter'),
    );
    await expect(Referrer.load({ model: 'sam-vit-base' })).rejects.toThrow(
      new Error('Model sam-vit-base is a sam model: load it with Segmenter, not Referrer'),
    );
    expect(hub.requests).toEqual([]);
  });
});

describe('first use of a registry id', () => {
  it('Segmenter.load pulls the model once and loads it like its directory', async () => {
    const pulled = await Segmenter.load({ model: 'tiny-sam', device: 'cpu', threads: 1 });
    const direct = await Segmenter.load({ model: MODEL_DIR, device: 'cpu', threads: 1 });
    try {
      expect(pulled.config).toEqual(direct.config);
      expect(hub.requests.map((r) => path.basename(r.path))).toEqual(['config.json', 'preprocessor_config.json', 'model.safetensors']);
      const pixels = { data: new Uint8Array(32 * 24 * 3).fill(90), width: 32, height: 24, channels: 3 as const };
      const prompt = { points: [{ x: 10, y: 12, label: 1 as const }] };
      const [a, b] = [await pulled.segment(pixels, prompt), await direct.segment(pixels, prompt)];
      expect(a.masks[0].score).toBe(b.masks[0].score);
      expect(a.masks[0].data).toEqual(b.masks[0].data);
    } finally {
      pulled.dispose();
      direct.dispose();
    }
    const printed = stderrWrite.mock.calls.map((c) => String(c[0])).join('');
    expect(printed).toContain('tiny-sam: model.safetensors done (');
    hub.requests.length = 0;
    stderrWrite.mockClear();
    (await Segmenter.load({ model: 'tiny-sam', device: 'cpu', threads: 1 })).dispose();
    expect(hub.requests).toEqual([]); // cached, and silent
    expect(stderrWrite).not.toHaveBeenCalled();
  });

  it('Referrer.load pulls a CLIPSeg model with its tokenizer', async () => {
    const referrer = await Referrer.load({ model: 'tiny-clipseg', device: 'cpu', threads: 1 });
    try {
      expect(referrer.config.imageSize).toBeGreaterThan(0);
      expect(hub.requests.map((r) => path.basename(r.path))).toEqual(Object.keys(clipseg.files));
    } finally {
      referrer.dispose();
    }
  });

  it('offline, an id missing from the cache is a clear error', async () => {
    vi.stubEnv('OMNISEG_OFFLINE', '1');
    try {
      await expect(Segmenter.load({ model: 'slimsam-77' })).rejects.toThrow(
        /^Model slimsam-77 is not in the cache \(.*slimsam-77.*\) and OMNISEG_OFFLINE is set/,
      );
    } finally {
      vi.stubEnv('OMNISEG_OFFLINE', '');
    }
    expect(hub.requests).toEqual([]);
  });
});
