// Memory: 1,000 encode / segment / dispose cycles on the tiny checkpoint leave RSS flat.
//
// Each run is a child process (node --expose-gc, the compiled entry dist/lib/index.js: run
// `npm run build:ts` first) so that the test runner's own allocations do not count. RSS is read
// after a full GC at cycle 200 (allocator pools, V8 heap and the native arenas have grown to
// their working size by then) and at cycle 1,000.
//
// Measured on the development machine (2 threads): growth over those 800 cycles 2–9 MB without
// a leak (V8 heap pages and malloc arenas settling); 74 MB when every embedding is kept (one
// embedding per cycle: 32 KB of float32 [32, 16, 16] plus its native and JS bookkeeping). The
// bound, 24 MB (≈ 30 KB per cycle), sits between the two with a margin of more than 2× on each
// side; the second test checks that the same measurement does catch that leak.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MODEL_DIR } from './helpers/fixtures.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = path.join(ROOT, 'dist', 'lib', 'index.js');
const SCRIPT = path.join(ROOT, 'test', 'helpers', 'memory-cycles.mjs');

const CYCLES = 1000;
const WARMUP = 200;
/** Most RSS growth (MB) allowed from cycle WARMUP to cycle CYCLES. */
const GROWTH_BOUND_MB = 24;

interface Report {
  baseline: number;
  final: number;
  growth: number;
  samples: number[];
  kept: number;
}

function cycles(mode: 'dispose' | 'keep'): Report {
  expect(existsSync(ENTRY), `${ENTRY} is missing: run "npm run build:ts"`).toBe(true);
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', SCRIPT, pathToFileURL(ENTRY).href, MODEL_DIR, String(CYCLES), String(WARMUP), mode],
    { encoding: 'utf8', timeout: 50_000 },
  );
  expect({ status: child.status, signal: child.signal, stderr: child.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
  return JSON.parse(child.stdout) as Report;
}

describe('memory', () => {
  it(`${CYCLES} encode/segment/dispose cycles: RSS grows less than ${GROWTH_BOUND_MB} MB after cycle ${WARMUP}`, { timeout: 60_000 }, () => {
    const report = cycles('dispose');
    expect(report.samples).toHaveLength(CYCLES / 100);
    expect(report.growth, `RSS MB every 100 cycles: ${report.samples.join(' ')}`).toBeLessThan(GROWTH_BOUND_MB);
  });

  it('the same measurement catches a leak of one embedding per cycle', { timeout: 60_000 }, () => {
    const report = cycles('keep');
    expect(report.kept).toBe(CYCLES);
    expect(report.growth).toBeGreaterThan(2 * GROWTH_BOUND_MB);
  });
});
