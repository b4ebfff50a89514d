// The pieces of the packed-package test (scripts/pack-test.sh, run by .ci/run after
// `npm run prebuild`; it needs the registry and the prebuilds): what `npm pack` puts in the
// tarball, and scripts/pack-check.mjs, which must pass the segmentation against the reference and
// still fail when the addon does not come from an installed package's prebuilds/.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');

describe('npm pack', () => {
  it('ships the compiled library, the install script, the native sources and every prebuild, but no sources or tests', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root });
    const files = (JSON.parse(stdout) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
    for (const file of ['package.json', 'binding.gyp', 'CMakeLists.txt', 'scripts/install.cjs', 'native/sources.json', 'native/addon/addon.cc']) {
      expect(files).toContain(file);
    }
    const prebuilds = existsSync(path.join(root, 'prebuilds'))
      ? readdirSync(path.join(root, 'prebuilds'), { recursive: true, withFileTypes: true })
          .filter((e) => e.isFile())
          .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
      : [];
    expect(files.filter((f) => f.startsWith('prebuilds/')).sort()).toEqual(prebuilds.sort());
    // No sources, tests, benchmarks or build folders.
    expect(files.filter((f) => /^(lib|test|bench|build[^/]*|node_modules|\.cache)\//.test(f))).toEqual([]);
  });
});

describe('scripts/pack-check.mjs', () => {
  it('segments like the reference, and rejects an addon that is not an installed prebuild', async () => {
    // Run in the repository, `import 'omniseg'` is the package itself (dist/), whose addon is the
    // local build (or the repository's own prebuilds/), not node_modules/omniseg/prebuilds/.
    const fixtures = path.join(root, 'test/fixtures/sam-tiny');
    const failure = await run(process.execPath, [path.join(root, 'scripts/pack-check.mjs'), fixtures], { cwd: root }).then(
      () => undefined,
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    expect(failure).toBeDefined();
    expect(failure!.code).toBe(1);
    const report = JSON.parse(failure!.stdout) as { addons: string[]; device: string; scores: number[] };
    expect(report.device).toBe('cpu');
    expect(report.addons).toHaveLength(1);
    expect(report.scores).toHaveLength(3);
    // The only complaint is where the addon came from: the masks and scores matched.
    expect(failure!.stderr.trim()).toBe(
      `pack-check: the addon was loaded from ${report.addons[0]}, not from node_modules/omniseg/prebuilds/`,
    );
  });
});
