// omniseg serve: its flags, and a run in-process (against the fake addon) from start to SIGTERM.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { helpText } from '../lib/cli/help.js';
import { solidPng } from './helpers/server.js';
import { calls } from './helpers/fake-binding.js';
import { expectUsage, parse } from './helpers/cli.js';

vi.mock('../lib/native.js', async () => {
  const { binding } = await import('./helpers/fake-binding.js');
  return { native: () => binding, nativeCuda: () => ({ error: 'not built' }) };
});

const { runCli } = await import('../lib/cli/main.js');


describe('omniseg serve arguments', () => {
  it('has defaults for everything but --model', () => {
    expect(parse('serve --model m')).toEqual({
      command: 'serve',
      model: 'm',
      device: 'auto',
      precision: 'fp32',
      host: '127.0.0.1',
      port: 8080,
    });
  });

  it('parses every flag', () => {
    expect(
      parse(
        'serve --model m --host 0.0.0.0 --port 0 --threads 4 --cache-mb 0.5 --heatmap-cache-mb 0 --max-queue 16 ' +
          '--max-batch 4 --batch-delay-ms 1.5 --timeout-ms 2000 --device cpu --precision fp16 --cpu-matmul fp32',
      ),
    ).toEqual({
      command: 'serve',
      model: 'm',
      device: 'cpu',
      precision: 'fp16',
      cpuMatmul: 'fp32',
      threads: 4,
      host: '0.0.0.0',
      port: 0,
      cacheMb: 0.5,
      heatmapCacheMb: 0,
      maxQueue: 16,
      maxBatch: 4,
      batchDelayMs: 1.5,
      timeoutMs: 2000,
    });
  });

  it('refuses bad values with a usage error', () => {
    expectUsage('serve', 'Missing required option --model');
    expectUsage('serve --model m --port 70000', 'Expected an integer from 0 to 65535 for --port but received "70000" of type string');
    expectUsage('serve --model m --cache-mb=-1', 'Expected a number >= 0 for --cache-mb but received "-1" of type string');
    expectUsage('serve --model m --cache-mb lots', 'Expected a number >= 0 for --cache-mb but received "lots" of type string');
    expectUsage('serve --model m --heatmap-cache-mb=-2', 'Expected a number >= 0 for --heatmap-cache-mb but received "-2" of type string');
    expectUsage('serve --model m --max-queue 0', 'Expected a positive integer for --max-queue but received "0" of type string');
    expectUsage('serve --model m --max-batch 65', 'Expected an integer from 1 to 64 for --max-batch but received "65" of type string');
    expectUsage('serve --model m --text cat', 'Unknown option --text for omniseg serve; see omniseg serve --help');
    // (as --timeout-ms: setTimeout's longest; it was a runtime error naming options.batchDelayMs)
    expectUsage(
      'serve --model m --batch-delay-ms 1e12',
      'Expected a number from 0 to 2147483647 for --batch-delay-ms but received "1e12" of type string',
    );
  });

  it('is in the help', () => {
    expect(helpText()).toMatch(/serve {5}run the HTTP segmentation server/);
    expect(helpText('serve')).toMatch(/--cache-mb <m>/);
    expect(helpText('serve')).toMatch(/--cpu-matmul <m>\s+the image encoders' matrix products \(linear layers, attention\) on CPU/);
    expect(helpText('serve')).toMatch(/--heatmap-cache-mb <m>\s+heat-map cache budget, MiB, 0 for none[^]*\(default: 64\)/);
  });

  it('exits 2 on a usage error', async () => {
    let stderr = '';
    const code = await runCli(['serve', '--model', 'm', '--port', 'x'], { stdout: () => {}, stderr: (t) => (stderr += t), env: {} });
    expect(code).toBe(2);
    expect(stderr).toMatch(/--port/);
  });
});

describe('omniseg serve', () => {
  let modelDir: string;
  beforeAll(async () => {
    modelDir = await mkdtemp(path.join(tmpdir(), 'omniseg-model-'));
  });
  afterAll(async () => {
    await rm(modelDir, { recursive: true, force: true });
  });

  it('serves until SIGTERM, logging JSON lines, then shuts down and exits 0', async () => {
    let stdout = '';
    const io = { stdout: (t: string) => (stdout += t), stderr: (t: string) => (stdout += t), env: {} };
    const exit = runCli(
      ['serve', '--model', modelDir, '--port', '0', '--cache-mb', '1', '--heatmap-cache-mb', '0.5', '--cpu-matmul', 'fp32'],
      io,
    );
    const deadline = Date.now() + 5000;
    while (!/model loaded/.test(stdout) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const base = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1];
    expect(base).toBeDefined();
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect(calls.loadSam.at(-1)).toMatchObject({ dir: modelDir, cpuMatmul: 'fp32' });
    const res = await fetch(`${base}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: new Uint8Array(await solidPng(8, 8, 200)),
    });
    expect(res.status).toBe(200);
    process.emit('SIGTERM');
    expect(await exit).toBe(0);
    const lines = stdout.trim().split('\n').map((line) => JSON.parse(line) as { msg: string; level: number });
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining([expect.stringMatching(/shutting down/), 'stopped']));
    expect(lines.find((l) => /model loaded/.test(l.msg))).toMatchObject({ cacheBytes: 1024 * 1024, heatmapCacheBytes: 512 * 1024 });
    expect(process.listenerCount('SIGTERM')).toBe(0);
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });

  it('exits 1 naming the problem when the model cannot be loaded', async () => {
    let stderr = '';
    const code = await runCli(['serve', '--model', path.join(modelDir, 'nope'), '--port', '0'], {
      stdout: () => {},
      stderr: (t) => (stderr += t),
      env: {},
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^omniseg: Model directory not found: /);
  });
});
