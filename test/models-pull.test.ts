// pullModel against a local HTTP server with a test registry (OMNISEG_REGISTRY) and a temporary
// cache (OMNISEG_CACHE): the model directory and its manifest, the cache on a second pull,
// offline mode, mirror endpoints, unverified files, a 404, concurrent pulls and stale locks.
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { acquireLock, hubSettings, modelCacheDir } from '../lib/models/cache.js';
import { MAX_UNVERIFIED_METADATA_BYTES, needsOptIn, pullModel, type PullEvent } from '../lib/models/pull.js';
import { bytes, hubFixture, sha256, startHubServer, type HubServer, type TestModel } from './helpers/hub-server.js';

const WEIGHTS = bytes(2_000_003, 7);
const MODEL: TestModel = {
  id: 'test-sam',
  family: 'sam',
  repo: 'org/sam-test',
  revision: '0123456789abcdef0123456789abcdef01234567',
  files: { 'config.json': Buffer.from('{"model_type":"sam"}\n'), 'model.safetensors': WEIGHTS },
};
const UNVERIFIED: TestModel = {
  id: 'test-unverified',
  family: 'clipseg',
  repo: 'org/clipseg-test',
  revision: 'main',
  files: {
    'config.json': Buffer.from('{}\n'),
    'vocab.json': Buffer.from('{"a":0}\n'),
    'model.safetensors': Buffer.from('weights!'),
  },
  unverified: ['vocab.json', 'model.safetensors'],
  unsized: ['vocab.json'],
};
/** Metadata without a SHA-256 (as the Hub publishes none outside Git LFS): no opt-in needed, size capped. */
const METADATA: TestModel = {
  id: 'test-metadata',
  family: 'sam',
  repo: 'org/metadata-test',
  revision: 'main',
  files: { 'config.json': Buffer.from('{"x":1}\n'), 'merges.txt': Buffer.alloc(MAX_UNVERIFIED_METADATA_BYTES + 1, 97) },
  unverified: ['config.json', 'merges.txt'],
  unsized: ['config.json', 'merges.txt'],
};
const BROKEN: TestModel = {
  id: 'test-broken',
  family: 'sam',
  repo: 'org/broken',
  revision: 'main',
  files: { 'config.json': Buffer.from('{}\n') },
};

let hub: HubServer;
let fixture: Awaited<ReturnType<typeof hubFixture>>;
beforeAll(async () => {
  hub = await startHubServer();
  fixture = await hubFixture(hub, [MODEL, UNVERIFIED, BROKEN, METADATA]);
  hub.files.delete(fixture.urlPath(BROKEN, 'config.json')); // listed in the registry, 404 on the hub
});
afterAll(async () => {
  await hub.close();
  await fixture.dispose();
});
afterEach(async () => {
  hub.requests.length = 0;
  hub.delayMs = 0;
  await rm(fixture.cache, { recursive: true, force: true });
});

const events = () => {
  const list: PullEvent[] = [];
  return { list, onEvent: (_: unknown, e: PullEvent) => list.push(e) };
};

describe('pullModel', () => {
  it('downloads every file into <cache>/models/<id>/<revision> and writes the manifest', async () => {
    const { list, onEvent } = events();
    const result = await pullModel('test-sam', { env: fixture.env, onEvent });
    const dir = path.join(fixture.cache, 'models', 'test-sam', MODEL.revision);
    expect(result).toMatchObject({ dir, downloaded: true });
    expect((await readdir(dir)).sort()).toEqual(['.omniseg-model.json', 'config.json', 'model.safetensors']);
    expect((await readFile(path.join(dir, 'model.safetensors'))).equals(WEIGHTS)).toBe(true);
    expect(JSON.parse(await readFile(path.join(dir, '.omniseg-model.json'), 'utf8'))).toEqual({
      id: 'test-sam',
      repo: MODEL.repo,
      revision: MODEL.revision,
      files: [
        { path: 'config.json', size: 21, sha256: sha256(MODEL.files['config.json']), verified: true },
        { path: 'model.safetensors', size: WEIGHTS.length, sha256: sha256(WEIGHTS), verified: true },
      ],
    });
    expect(hub.requests.map((r) => r.path)).toEqual([
      fixture.urlPath(MODEL, 'config.json'),
      fixture.urlPath(MODEL, 'model.safetensors'),
    ]);
    expect(list.filter((e) => e.type === 'done')).toEqual([
      { type: 'done', file: 'config.json', size: 21, verified: true },
      { type: 'done', file: 'model.safetensors', size: WEIGHTS.length, verified: true },
    ]);
    expect(await readdir(path.join(fixture.cache, 'models', 'test-sam'))).toEqual([MODEL.revision]); // lock released
  });

  it('a second pull finds the model in the cache and makes no request', async () => {
    await pullModel('test-sam', { env: fixture.env });
    hub.requests.length = 0;
    const { list, onEvent } = events();
    expect(await pullModel('test-sam', { env: fixture.env, onEvent })).toMatchObject({ downloaded: false });
    expect(hub.requests).toEqual([]);
    expect(list).toEqual([{ type: 'cached' }]);
  });

  it('downloads again what is missing or damaged in the cache', async () => {
    const { dir } = await pullModel('test-sam', { env: fixture.env });
    await writeFile(path.join(dir, 'model.safetensors'), 'truncated');
    hub.requests.length = 0;
    expect(await pullModel('test-sam', { env: fixture.env })).toMatchObject({ downloaded: true });
    expect(hub.requests.map((r) => r.path)).toEqual([fixture.urlPath(MODEL, 'model.safetensors')]);
    expect((await readFile(path.join(dir, 'model.safetensors'))).equals(WEIGHTS)).toBe(true);
  });

  it('OMNISEG_OFFLINE=1 uses the cache and never the network', async () => {
    const offline = { ...fixture.env, OMNISEG_OFFLINE: '1' };
    const dir = modelCacheDir(fixture.cache, { id: 'test-sam', revision: MODEL.revision } as never);
    await expect(pullModel('test-sam', { env: offline })).rejects.toThrow(
      new Error(
        `Model test-sam is not in the cache (${dir}) and OMNISEG_OFFLINE is set: run "omniseg pull test-sam" where ` +
          `${hub.url} is reachable, or point OMNISEG_CACHE at a cache that has it`,
      ),
    );
    expect(hub.requests).toEqual([]);
    await pullModel('test-sam', { env: fixture.env });
    hub.requests.length = 0;
    expect(await pullModel('test-sam', { env: offline })).toMatchObject({ dir, downloaded: false });
    expect(hub.requests).toEqual([]);
  });

  it('takes the endpoint from OMNISEG_ENDPOINT, else HF_ENDPOINT (a mirror)', async () => {
    const mirror = { OMNISEG_REGISTRY: fixture.registry, OMNISEG_CACHE: fixture.cache, HF_ENDPOINT: `${hub.url}/` };
    await pullModel('test-sam', { env: mirror });
    expect(hub.requests).toHaveLength(2);
    await rm(fixture.cache, { recursive: true, force: true });
    const both = { ...mirror, HF_ENDPOINT: 'http://127.0.0.1:9', OMNISEG_ENDPOINT: hub.url };
    await pullModel('test-sam', { env: both });
    expect(hub.requests).toHaveLength(4);
    expect(hubSettings({}).endpoint).toBe('https://huggingface.co');
    expect(hubSettings({ HF_ENDPOINT: 'https://hf-mirror.example/' }).endpoint).toBe('https://hf-mirror.example');
  });

  it('refuses files without a SHA-256 unless allowed, then records what it got', async () => {
    await expect(pullModel('test-unverified', { env: fixture.env })).rejects.toThrow(
      new Error(
        'Refusing to download test-unverified: the registry has no SHA-256 for model.safetensors, so they cannot be verified; ' +
          'set OMNISEG_ALLOW_UNVERIFIED=1 (or run omniseg pull test-unverified --allow-unverified) to accept them unverified',
      ),
    );
    expect(hub.requests).toEqual([]);
    for (const allow of [{ allowUnverified: true }, { env: { ...fixture.env, OMNISEG_ALLOW_UNVERIFIED: '1' } }]) {
      await rm(fixture.cache, { recursive: true, force: true });
      const { list, onEvent } = events();
      const { dir } = await pullModel('test-unverified', { env: fixture.env, ...allow, onEvent });
      expect(list.slice(0, 2)).toEqual([
        {
          type: 'warning',
          message:
            'test-unverified: vocab.json have no published SHA-256 (small files outside Git LFS): taken at the pinned revision, ' +
            'at most 16 MiB each, checked by the model loaders',
        },
        {
          type: 'warning',
          message: 'test-unverified: model.safetensors will not be verified (no published SHA-256); what was downloaded is recorded in the manifest',
        },
      ]);
      const manifest = JSON.parse(await readFile(path.join(dir, '.omniseg-model.json'), 'utf8')) as { files: unknown[] };
      expect(manifest.files[1]).toEqual({ path: 'vocab.json', size: 8, sha256: sha256(UNVERIFIED.files['vocab.json']), verified: false });
      expect(manifest.files[2]).toMatchObject({ path: 'model.safetensors', verified: false });
    }
  });

  it('metadata files without a SHA-256 need no opt-in but are capped in size', async () => {
    expect(needsOptIn({ path: 'config.json', size: null, sha256: null })).toBe(false);
    expect(needsOptIn({ path: 'merges.txt', size: null, sha256: null })).toBe(false);
    expect(needsOptIn({ path: 'model.safetensors', size: null, sha256: null })).toBe(true);
    expect(needsOptIn({ path: 'pytorch_model.bin', size: 1, sha256: null })).toBe(true);
    expect(needsOptIn({ path: 'model.safetensors', size: 1, sha256: 'a'.repeat(64) })).toBe(false);
    await expect(pullModel('test-metadata', { env: fixture.env })).rejects.toThrow(
      `test-metadata/merges.txt: ${hub.url}${fixture.urlPath(METADATA, 'merges.txt')} sends more than 16777216 bytes, ` +
        'the most an unverified metadata file may have',
    );
    expect(await readdir(path.join(fixture.cache, 'models', 'test-metadata', 'main'))).toEqual(['config.json']);
    hub.files.set(fixture.urlPath(METADATA, 'merges.txt'), Buffer.from('#version: 0.2\n'));
    const { list, onEvent } = events();
    const { dir } = await pullModel('test-metadata', { env: fixture.env, onEvent });
    expect(list[0]).toMatchObject({ type: 'warning', message: expect.stringMatching(/^test-metadata: config.json, merges.txt have no published SHA-256/) });
    expect(await readFile(path.join(dir, 'merges.txt'), 'utf8')).toBe('#version: 0.2\n');
  });

  it('a file missing on the server (404) is an error naming the file and the URL', async () => {
    await expect(pullModel('test-broken', { env: fixture.env })).rejects.toThrow(
      new Error(`HTTP 404 Not Found from ${hub.url}${fixture.urlPath(BROKEN, 'config.json')}`),
    );
    const dir = path.join(fixture.cache, 'models', 'test-broken');
    expect(await readdir(dir)).toEqual(['main']); // nothing in it, lock released
    expect(await readdir(path.join(dir, 'main'))).toEqual([]);
  });

  it('refuses bad arguments by name before reading the cache or the network', async () => {
    const refused: Array<[unknown, unknown, Error]> = [
      [42, {}, new TypeError('Expected a non-empty string for id but received 42 of type number')],
      ['test-sam', null, new TypeError('Expected an object {env?, allowUnverified?, signal?, onEvent?, retryDelayMs?} for options but received null of type null')],
      ['test-sam', { env: 'x' }, new TypeError('Expected an object of environment variables (as process.env) for options.env but received "x" of type string')],
      ['test-sam', { allowUnverified: 1 }, new TypeError('Expected a boolean for options.allowUnverified but received 1 of type number')],
      ['test-sam', { signal: {} }, new TypeError('Expected an AbortSignal for options.signal but received {} of type object')],
      ['test-sam', { onEvent: 'log' }, new TypeError('Expected a function (model, event) => void for options.onEvent but received "log" of type string')],
      ['test-sam', { retryDelayMs: -1 }, new RangeError('Expected a number between 0 and 2147483647 for options.retryDelayMs but received -1 of type number')],
    ];
    for (const [id, options, error] of refused) {
      const opts = options !== null && typeof options === 'object' ? { env: fixture.env, ...options } : options;
      await expect(pullModel(id as string, opts as never)).rejects.toThrow(error);
    }
    expect(hub.requests).toEqual([]);
  });

  it('an error thrown by onEvent ends the pull with that error, not retried as a network failure', async () => {
    const seen: PullEvent['type'][] = [];
    const boom = new Error('display closed');
    const onEvent = (_: unknown, e: PullEvent) => {
      seen.push(e.type);
      if (e.type === 'progress') throw boom;
    };
    await expect(pullModel('test-sam', { env: fixture.env, onEvent, retryDelayMs: 1 })).rejects.toBe(boom);
    expect(seen).not.toContain('retry');
    expect(hub.requests).toHaveLength(1);
    // the next pull resumes and completes
    const again = await pullModel('test-sam', { env: fixture.env });
    expect(again.downloaded).toBe(true);
  });

  it('an unknown id lists the registry', async () => {
    await expect(pullModel('sam-vit-tiny', { env: fixture.env })).rejects.toThrow(
      /^Unknown model "sam-vit-tiny"; the registry has sam-vit-base, sam-vit-large, sam-vit-huge, slimsam-77, clipseg-rd64-refined, test-sam, test-unverified, test-broken, test-metadata$/,
    );
  });

  it('concurrent pulls of one model download it once', async () => {
    hub.delayMs = 50;
    const waits: PullEvent[] = [];
    const pulls = [0, 1, 2].map(() =>
      pullModel('test-sam', { env: fixture.env, onEvent: (_, e) => e.type === 'wait' && waits.push(e) }),
    );
    const results = await Promise.all(pulls);
    expect(new Set(results.map((r) => r.dir)).size).toBe(1);
    expect(results.filter((r) => r.downloaded)).toHaveLength(1);
    expect(hub.requests).toHaveLength(2); // each file once
    expect(waits).toEqual([
      { type: 'wait', pid: process.pid },
      { type: 'wait', pid: process.pid },
    ]);
    expect((await readFile(path.join(results[0].dir, 'model.safetensors'))).equals(WEIGHTS)).toBe(true);
  });

  it('concurrent pulls in two processes download it once (the lock file)', async () => {
    // The children run the compiled dist/lib (npm run build:ts; npm ci does it).
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
    const entry = pathToFileURL(path.join(root, 'dist', 'lib', 'models', 'pull.js')).href;
    const child = path.join(root, 'test', 'helpers', 'pull-child.mjs');
    hub.delayMs = 100;
    const outputs = await Promise.all(
      [0, 1].map(() => promisify(execFile)(process.execPath, [child, entry, 'test-sam'], { env: { ...process.env, ...fixture.env } })),
    );
    const results = outputs.map((o) => JSON.parse(o.stdout) as { downloaded: boolean; dir: string });
    expect(results.map((r) => r.downloaded).sort()).toEqual([false, true]);
    expect(hub.requests).toHaveLength(2);
    expect((await readFile(path.join(results[0].dir, 'model.safetensors'))).equals(WEIGHTS)).toBe(true);
  });

  it('takes over a lock left by a process that no longer runs', async () => {
    const dir = path.join(fixture.cache, 'models', 'test-sam', MODEL.revision);
    await mkdir(path.dirname(dir), { recursive: true });
    await writeFile(`${dir}.lock`, JSON.stringify({ pid: 2 ** 30, hostname: hostname(), token: 'dead' }));
    expect(await pullModel('test-sam', { env: fixture.env })).toMatchObject({ downloaded: true });
  });

  it('takes over a lock with this process\'s pid that this process does not hold (a restarted container)', async () => {
    const dir = path.join(fixture.cache, 'models', 'test-sam', MODEL.revision);
    await mkdir(path.dirname(dir), { recursive: true });
    await writeFile(`${dir}.lock`, JSON.stringify({ pid: process.pid, hostname: hostname(), token: 'an earlier life' }));
    const { list, onEvent } = events();
    expect(await pullModel('test-sam', { env: fixture.env, onEvent, signal: AbortSignal.timeout(5000) })).toMatchObject({ downloaded: true });
    expect(list.filter((e) => e.type === 'wait')).toEqual([]);
  });

  it('concurrent acquirers of one lock in one process never hold it together', { timeout: 30_000 }, async () => {
    const dir = path.join(fixture.cache, 'lock-race');
    await mkdir(path.dirname(dir), { recursive: true });
    let holders = 0;
    let most = 0;
    for (let round = 0; round < 60; round++) {
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          const lock = await acquireLock(`${dir}-${round}`, { pollMs: 1 });
          most = Math.max(most, ++holders);
          await new Promise((resolve) => setTimeout(resolve, 1));
          holders--;
          await lock.release();
        }),
      );
    }
    expect(most).toBe(1);
  });

  it('hashes a file an interrupted pull left in place: kept when it matches, downloaded again when not', async () => {
    const dir = path.join(fixture.cache, 'models', 'test-sam', MODEL.revision);
    await mkdir(dir, { recursive: true });
    // both in place, no manifest (the pull was interrupted): config.json right, the weights of the right size but not the file
    await writeFile(path.join(dir, 'config.json'), MODEL.files['config.json']);
    const forged = Buffer.from(WEIGHTS);
    forged[0] ^= 1;
    await writeFile(path.join(dir, 'model.safetensors'), forged);
    expect(await pullModel('test-sam', { env: fixture.env })).toMatchObject({ downloaded: true });
    expect(hub.requests.map((r) => r.path)).toEqual([fixture.urlPath(MODEL, 'model.safetensors')]);
    expect((await readFile(path.join(dir, 'model.safetensors'))).equals(WEIGHTS)).toBe(true);
    // both right: nothing to download
    await rm(path.join(dir, '.omniseg-model.json'));
    hub.requests.length = 0;
    expect(await pullModel('test-sam', { env: fixture.env })).toMatchObject({ downloaded: false });
    expect(hub.requests).toEqual([]);
  });
});
