// The built-in registry (models/registry.json) and the checks every registry file goes through.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileUrl, modelCacheDir } from '../lib/models/cache.js';
import { builtinRegistryFile, modelRegistry, parseRegistry } from '../lib/models/registry.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'omniseg-registry-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the built-in registry', () => {
  it('has the issue #8 ids, each pinned to a commit, with the files its loader needs', async () => {
    const registry = await modelRegistry({});
    expect([...registry.keys()]).toEqual(['sam-vit-base', 'sam-vit-large', 'sam-vit-huge', 'slimsam-77', 'clipseg-rd64-refined']);
    for (const model of registry.values()) {
      expect(model.revision).toMatch(/^[0-9a-f]{40}$/);
      expect(model.license).toBe('apache-2.0');
      const files = model.files.map((f) => f.path);
      expect(files).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'preprocessor_config.json']));
      if (model.family === 'clipseg') expect(files).toEqual(expect.arrayContaining(['vocab.json', 'merges.txt']));
      expect(model.sources?.length).toBeGreaterThan(0);
    }
  });

  it('the SAM weights have their published SHA-256 and size', async () => {
    const registry = await modelRegistry({});
    const weights = (id: string) => registry.get(id)?.files.find((f) => f.path === 'model.safetensors');
    expect(weights('sam-vit-base')).toEqual({
      path: 'model.safetensors',
      size: 374979480,
      sha256: '892c410e496344e527255ccdcb2cb7244a609acb5389c7c4fdba1288f861c579',
    });
    expect(weights('slimsam-77')?.sha256).toBe('b0ee221e3d33935807a820c157fec81a537b3b9979edc88b148a8dae8bbdd5d2');
    expect(weights('clipseg-rd64-refined')).toEqual({ path: 'model.safetensors', size: null, sha256: null });
  });

  it('builds Hub URLs and cache directories', async () => {
    const model = (await modelRegistry({})).get('sam-vit-base');
    if (model === undefined) throw new Error('sam-vit-base is missing');
    expect(fileUrl('https://huggingface.co', model, 'model.safetensors')).toBe(
      'https://huggingface.co/facebook/sam-vit-base/resolve/d0d9250bd6a38ebbb901aa29e8d37787e366f7be/model.safetensors',
    );
    expect(modelCacheDir('/c', model)).toBe(path.join('/c', 'models', 'sam-vit-base', model.revision));
    expect(builtinRegistryFile()).toBe(path.resolve('models', 'registry.json'));
  });
});

describe('registry files', () => {
  const entry = {
    id: 'x',
    family: 'sam',
    architecture: 'a',
    repo: 'o/r',
    revision: 'main',
    license: 'mit',
    files: [{ path: 'config.json', size: 2, sha256: null }],
  };

  it('OMNISEG_REGISTRY adds models and replaces those of the same id', async () => {
    const file = path.join(dir, 'extra.json');
    await writeFile(file, JSON.stringify({ models: [entry, { ...entry, id: 'sam-vit-base', repo: 'me/fork' }] }));
    const registry = await modelRegistry({ OMNISEG_REGISTRY: file });
    expect(registry.get('x')).toEqual(entry);
    expect(registry.get('sam-vit-base')?.repo).toBe('me/fork');
    expect(registry.size).toBe(6);
  });

  it('an unreadable registry file is an error naming it', async () => {
    const file = path.join(dir, 'none.json');
    await expect(modelRegistry({ OMNISEG_REGISTRY: file })).rejects.toThrow(
      /^Cannot read the model registry .*none\.json: no such file/,
    );
  });

  it.each([
    [{}, 'Model registry t: expected an object with a "models" array'],
    [{ models: [{ ...entry, id: 'Bad Id' }] }, 'Model registry t: models[0].id is missing or malformed: "Bad Id"'],
    [{ models: [entry, entry] }, 'Model registry t: models[1].id "x" appears twice'],
    [{ models: [{ ...entry, family: 'yolo' }] }, 'Model registry t: models[0].family must be one of sam, clipseg'],
    [{ models: [{ ...entry, repo: 'no-owner' }] }, 'Model registry t: models[0].repo is missing or malformed: "no-owner"'],
    // a revision or repo name of "." or ".." would leave the model's cache directory (and the URL's /resolve/)
    [{ models: [{ ...entry, revision: '..' }] }, 'Model registry t: models[0].revision is missing or malformed: ".."'],
    [{ models: [{ ...entry, revision: 'refs/../../x' }] }, 'Model registry t: models[0].revision is missing or malformed: "refs/../../x"'],
    [{ models: [{ ...entry, revision: '.' }] }, 'Model registry t: models[0].revision is missing or malformed: "."'],
    [{ models: [{ ...entry, repo: 'owner/..' }] }, 'Model registry t: models[0].repo is missing or malformed: "owner/.."'],

    [{ models: [{ ...entry, files: [] }] }, 'Model registry t: models[0].files must be a non-empty array'],
    [
      { models: [{ ...entry, files: [{ path: '../evil', size: 1, sha256: null }] }] },
      'Model registry t: models[0].files[0].path must be a relative path: "../evil"',
    ],
    [
      { models: [{ ...entry, files: [{ path: '/etc/passwd', size: 1, sha256: null }] }] },
      'Model registry t: models[0].files[0].path must be a relative path: "/etc/passwd"',
    ],
    [
      { models: [{ ...entry, files: [{ path: 'a', size: -1, sha256: null }] }] },
      'Model registry t: models[0].files[0].size must be a byte count or null: -1',
    ],
    [
      { models: [{ ...entry, files: [{ path: 'a', size: 1, sha256: 'ABC' }] }] },
      'Model registry t: models[0].files[0].sha256 must be 64 lowercase hex digits or null: "ABC"',
    ],
  ])('rejects %j', (json, message) => {
    expect(() => parseRegistry(json, 't')).toThrow(new Error(message));
  });

  it('describes a deeply nested value instead of serialising it (JSON.stringify overflowed the stack)', () => {
    const deep: unknown = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    expect(() => parseRegistry({ models: [{ ...entry, revision: deep }] }, 't')).toThrow(
      /^Model registry t: models\[0\]\.revision is missing or malformed: \[\[\[/,
    );
  });
});
