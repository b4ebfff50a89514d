// omniseg pull and the registry section of omniseg info, run in-process against a local HTTP
// server (test registry in OMNISEG_REGISTRY, cache in a temporary OMNISEG_CACHE).
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../lib/cli/main.js';
import { formatBytes } from '../lib/models/progress.js';
import { run } from './helpers/cli.js';
import { bytes, hubFixture, startHubServer, type HubServer, type TestModel } from './helpers/hub-server.js';

const MODEL: TestModel = {
  id: 'cli-sam',
  family: 'sam',
  repo: 'org/cli-sam',
  revision: 'fedcba9876543210fedcba9876543210fedcba98',
  files: { 'config.json': Buffer.from('{}\n'), 'model.safetensors': bytes(1_500_000, 3) },
};
const LOOSE: TestModel = { ...MODEL, id: 'cli-loose', repo: 'org/cli-loose', unverified: ['model.safetensors'] };

let hub: HubServer;
let fixture: Awaited<ReturnType<typeof hubFixture>>;
let dir: string;
beforeAll(async () => {
  hub = await startHubServer();
  fixture = await hubFixture(hub, [MODEL, LOOSE]);
  dir = path.join(fixture.cache, 'models', 'cli-sam', MODEL.revision);
});
afterAll(async () => {
  await hub.close();
  await fixture.dispose();
});
afterEach(async () => {
  hub.requests.length = 0;
  await rm(fixture.cache, { recursive: true, force: true });
});

describe('omniseg pull', () => {
  it('prints the model directory on stdout and plain progress lines on stderr', async () => {
    const { code, stdout, stderr } = await run(['pull', 'cli-sam'], fixture.env);
    expect(code).toBe(0);
    expect(stdout).toBe(`${dir}\n`);
    const lines = stderr.split('\n');
    const quarters = lines.filter((l) => / \d+% \(/.test(l));
    expect(lines.filter((l) => !quarters.includes(l))).toEqual([
      'cli-sam: downloading config.json (3 B)',
      'cli-sam: config.json done (3 B, SHA-256 verified)',
      'cli-sam: downloading model.safetensors (1.50 MB)',
      'cli-sam: model.safetensors done (1.50 MB, SHA-256 verified)',
      '',
    ]);
    for (const line of quarters) expect(line).toMatch(/^cli-sam: model.safetensors (25|50|75)% \(\d.* of 1.50 MB\)$/);
    expect(lines.indexOf(quarters[0])).toBe(3); // between the start and the end of the file
    expect(stderr).not.toContain('\r');
    expect(await run(['pull', 'cli-sam'], fixture.env)).toEqual({
      code: 0,
      stdout: `${dir}\n`,
      stderr: 'cli-sam: already in the cache\n',
    });
  });

  it('--quiet prints only the directory', async () => {
    expect(await run(['pull', 'cli-sam', '--quiet'], fixture.env)).toEqual({ code: 0, stdout: `${dir}\n`, stderr: '' });
  });

  it('redraws one line per file on a terminal', async () => {
    let stderr = '';
    const code = await runCli(['pull', 'cli-sam'], {
      stdout: () => undefined,
      stderr: (t) => {
        stderr += t;
      },
      env: fixture.env,
      stderrIsTTY: true,
    });
    expect(code).toBe(0);
    const lines = stderr.split('\n');
    expect(lines).toHaveLength(3); // one finished line per file, then ''
    expect(lines[0].startsWith('\rcli-sam/config.json ')).toBe(true);
    expect(lines[0]).toMatch(/\rcli-sam\/config.json \[#{24}\] 100% {2}3 B\/3 B.* SHA-256 verified\x1b\[K$/);
    expect(lines[1].startsWith('\rcli-sam/model.safetensors ')).toBe(true);
    expect(lines[1]).toMatch(/\rcli-sam\/model.safetensors \[#{24}\] 100% {2}1.50 MB\/1.50 MB.* SHA-256 verified\x1b\[K$/);
  });

  it('unverified files need --allow-unverified, and then are announced', async () => {
    const refused = await run(['pull', 'cli-loose'], fixture.env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      'omniseg: Refusing to download cli-loose: the registry has no SHA-256 for model.safetensors, so they cannot be verified; ' +
        'set OMNISEG_ALLOW_UNVERIFIED=1 (or run omniseg pull cli-loose --allow-unverified) to accept them unverified\n',
    );
    const allowed = await run(['pull', 'cli-loose', '--allow-unverified'], fixture.env);
    expect(allowed.code).toBe(0);
    expect(allowed.stderr).toMatch(/^warning: cli-loose: model.safetensors will not be verified \(no published SHA-256\)/);
    expect(allowed.stderr).toMatch(/cli-loose: model.safetensors done \(.*, unverified\)/);
  });

  it('errors are one line: an unknown id, offline without the model', async () => {
    const unknown = await run(['pull', 'nope'], fixture.env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^omniseg: Unknown model "nope"; the registry has sam-vit-base, .*, cli-sam, cli-loose\n$/);
    const offline = await run(['pull', 'cli-sam'], { ...fixture.env, OMNISEG_OFFLINE: '1' });
    expect(offline.code).toBe(1);
    expect(offline.stderr).toMatch(/^omniseg: Model cli-sam is not in the cache \(.*\) and OMNISEG_OFFLINE is set/);
    expect(hub.requests).toEqual([]);
  });
});

describe('omniseg info', () => {
  it('lists the registry with the cache status of each model', async () => {
    await run(['pull', 'cli-sam', '--quiet'], fixture.env);
    const { code, stdout } = await run(['info', '--json'], fixture.env);
    expect(code).toBe(0);
    const { models } = JSON.parse(stdout) as { models: { id: string; cached: boolean; dir: string }[] };
    expect(models.map((m) => m.id)).toEqual(['sam-vit-base', 'sam-vit-large', 'sam-vit-huge', 'slimsam-77', 'clipseg-rd64-refined', 'cli-sam', 'cli-loose']);
    expect(models.find((m) => m.id === 'cli-sam')).toMatchObject({ cached: true, dir });
    expect(models.filter((m) => m.cached)).toHaveLength(1);
    const text = await run(['info'], fixture.env);
    expect(text.stdout).toContain(`models (omniseg pull <id>; cache ${fixture.cache}):\n`);
    expect(text.stdout).toMatch(/\n {2}cli-sam {16}sam {6}org\/cli-sam {2}\[cached\]\n/);
  });
});

describe('omniseg info with a registry that cannot be read', () => {
  it('reports the backends and says what is wrong with the registry', async () => {
    const env = { ...fixture.env, OMNISEG_REGISTRY: path.join(fixture.cache, 'no-registry.json') };
    const { code, stdout } = await run(['info', '--json'], env);
    expect(code).toBe(0);
    const info = JSON.parse(stdout) as { backends: { cpu: { available: boolean } }; models: unknown[]; registryError: string };
    expect(info.backends.cpu.available).toBe(true);
    expect(info.models).toEqual([]);
    expect(info.registryError).toMatch(/^Cannot read the model registry .*no-registry\.json: no such file/);
    expect((await run(['info'], env)).stdout).toMatch(/\n {2}the model registry cannot be read: Cannot read the model registry /);
  });
});

describe('formatBytes', () => {
  it('uses the decimal units of the Hub', () => {
    expect([466, 38_931_272, 374_979_480, 2_564_432_288].map(formatBytes)).toEqual(['466 B', '38.9 MB', '375 MB', '2.56 GB']);
  });
});
