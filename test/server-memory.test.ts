// Memory: 1,000 requests to the server (a quarter of them new images, evicting older embeddings)
// leave RSS flat. A child process (node --expose-gc, the compiled entry dist/lib/server: run
// `npm run build:ts` first), RSS read after a full GC at request 400 (the heap, malloc arenas and
// native pools grow by ~15 MB over the first 400) and at request 1,400.
// Measured on the development machine: growth 3–4 MB over those 1,000 requests (about 0.3 MB per
// 100, flattening); the bound leaves a 4× margin.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MODEL_DIR, addonAvailable } from './helpers/fixtures.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = path.join(ROOT, 'dist', 'lib', 'server', 'index.js');
const SCRIPT = path.join(ROOT, 'test', 'helpers', 'server-requests.mjs');
const REQUESTS = 1400;
const WARMUP = 400;
const GROWTH_BOUND_MB = 16;

describe.skipIf(!addonAvailable())('server memory', () => {
  it(`${REQUESTS} requests: RSS grows less than ${GROWTH_BOUND_MB} MB after request ${WARMUP}`, { timeout: 60_000 }, () => {
    expect(existsSync(ENTRY), `${ENTRY} is missing: run "npm run build:ts"`).toBe(true);
    const child = spawnSync(
      process.execPath,
      ['--expose-gc', SCRIPT, pathToFileURL(ENTRY).href, MODEL_DIR, String(REQUESTS), String(WARMUP)],
      { encoding: 'utf8', timeout: 50_000, cwd: ROOT },
    );
    expect({ status: child.status, signal: child.signal, stderr: child.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
    const report = JSON.parse(child.stdout) as { growth: number; samples: number[]; cached: number };
    expect(report.samples).toHaveLength(REQUESTS / 100);
    expect(report.cached).toBe(0); // close() emptied the cache
    expect(report.growth, `RSS MB every 100 requests: ${report.samples.join(' ')}`).toBeLessThan(GROWTH_BOUND_MB);
  });
});
