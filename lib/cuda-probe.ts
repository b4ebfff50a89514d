// Finds the CUDA build of the addon and probes it in a child process before this process loads
// it (as node-llama-cpp tests its GPU builds): a CUDA build that cannot load (libcublasLt missing,
// a driver too old) or that crashes while the driver initialises costs a fallback to the CPU
// build with the reason, never the host process. Verdicts are cached per file for the life of
// the process.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { CudaInfo } from './native.js';
import { packageRoot } from './package-root.js';

/** Most time a probe may take: CUDA initialisation on a machine with several GPUs takes seconds. */
export const CUDA_PROBE_TIMEOUT_MS = 30_000;

/** What the child process found: the build's own CudaInfo, or why it is unusable. */
export type CudaProbe = { ok: true; info: CudaInfo } | { ok: false; reason: string };

/** The CUDA build to use, or why there is none. */
export type CudaAddon = { file: string } | { file?: undefined; reason: string };

/**
 * Where a CUDA build is looked for, in order: `OMNISEG_CUDA_ADDON` (a path) when set; else the
 * local build (`npm run build:cuda` → build-cuda/Release/omniseg.node) and then the CUDA prebuild
 * (`npm run prebuild-cuda` → prebuilds/cuda/<platform>-<arch>/omniseg.node).
 * @param root the package's root (this package's by default).
 */
export function findCudaAddon(root = packageRoot(import.meta.url)): CudaAddon {
  const named = process.env.OMNISEG_CUDA_ADDON;
  if (named !== undefined && named !== '') {
    const file = path.resolve(named);
    return existsSync(file) ? { file } : { reason: `OMNISEG_CUDA_ADDON names ${file}, which does not exist` };
  }
  const candidates = [
    path.join(root, 'build-cuda', 'Release', 'omniseg.node'),
    path.join(root, 'prebuilds', 'cuda', `${process.platform}-${process.arch}`, 'omniseg.node'),
  ];
  const file = candidates.find((f) => existsSync(f));
  if (file !== undefined) return { file };
  const [local, prebuild] = candidates.map((f) => path.relative(root, f));
  return { reason: `no CUDA build (${local}) or CUDA prebuild (${prebuild}) found in ${root}` };
}

/** Starts the verdict's line in the child's stdout: what else a child prints (a banner) is ignored. */
const VERDICT_MARK = 'omniseg-cuda-probe:';

// Runs in the child: load the build, ask it about the driver and devices, print the verdict.
// A load error becomes a verdict (dlopen's message without the file name it starts with); a crash
// shows as the child's signal.
const PROBE_SCRIPT = `
const file = process.argv[1];
let verdict;
try {
  verdict = { ok: true, info: require(file).cudaInfo() };
} catch (error) {
  const message = String(error && error.message ? error.message : error).split('\\n')[0];
  verdict = { ok: false, reason: message.startsWith(file + ': ') ? message.slice(file.length + 2) : message };
}
process.stdout.write('\\n${VERDICT_MARK}' + JSON.stringify(verdict) + '\\n', () => process.exit(0));
`;

/**
 * The child's options: this process's environment without NODE_OPTIONS, whose preloads (dotenv's
 * --require, an APM agent) would run in the child too and could print or fail there.
 */
function childOptions(timeoutMs: number) {
  return {
    encoding: 'utf8' as const,
    timeout: timeoutMs,
    killSignal: 'SIGKILL' as const,
    windowsHide: true,
    env: { ...process.env, NODE_OPTIONS: '' },
  };
}

/** How the child process ended, whichever API ran it. */
interface ProbeOutcome {
  stdout: string;
  stderr: string;
  status: number | null;
  signal: string | null;
  timedOut: boolean;
  spawnError?: string;
}

const verdicts = new Map<string, CudaProbe>();
const inFlight = new Map<string, Promise<CudaProbe>>();

/** Probes `file` in a child process without blocking the event loop; cached per file. */
export function probeCudaAddon(file: string, timeoutMs = CUDA_PROBE_TIMEOUT_MS): Promise<CudaProbe> {
  const known = verdicts.get(file);
  if (known !== undefined) return Promise.resolve(known);
  let pending = inFlight.get(file);
  if (pending === undefined) {
    pending = new Promise<ProbeOutcome>((resolve) => {
      try {
        execFile(process.execPath, ['-e', PROBE_SCRIPT, file], childOptions(timeoutMs), (error, stdout, stderr) => {
          const e = error as (NodeJS.ErrnoException & { killed?: boolean; signal?: string | null }) | null;
          resolve({
            stdout,
            stderr,
            status: e === null ? 0 : typeof e.code === 'number' ? e.code : null,
            signal: e?.signal ?? null,
            timedOut: e?.killed === true,
            spawnError: e !== null && typeof e.code === 'string' ? e.message : undefined,
          });
        });
      } catch (error) {
        // e.g. ERR_ACCESS_DENIED under Node's permission model without --allow-child-process
        resolve(spawnFailure(error));
      }
    }).then((outcome) => remember(file, verdictOf(file, outcome, timeoutMs)));
    inFlight.set(file, pending);
  }
  return pending;
}

/**
 * Probes `file` in a child process, waiting for it; cached per file. For the synchronous
 * cudaStatus() / bindingFor(): callers that can await use probeCudaAddon() first.
 */
export function probeCudaAddonSync(file: string, timeoutMs = CUDA_PROBE_TIMEOUT_MS): CudaProbe {
  const known = verdicts.get(file);
  if (known !== undefined) return known;
  let r;
  try {
    r = spawnSync(process.execPath, ['-e', PROBE_SCRIPT, file], childOptions(timeoutMs));
  } catch (error) {
    return remember(file, verdictOf(file, spawnFailure(error), timeoutMs));
  }
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  const outcome: ProbeOutcome = {
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? '',
    status: r.status,
    signal: r.signal,
    timedOut,
    spawnError: r.error !== undefined && !timedOut ? r.error.message : undefined,
  };
  return remember(file, verdictOf(file, outcome, timeoutMs));
}

function spawnFailure(error: unknown): ProbeOutcome {
  const message = error instanceof Error ? error.message : String(error);
  return { stdout: '', stderr: '', status: null, signal: null, timedOut: false, spawnError: message };
}

function remember(file: string, verdict: CudaProbe): CudaProbe {
  verdicts.set(file, verdict);
  inFlight.delete(file);
  return verdict;
}

function firstLine(text: string): string {
  return text.trim().split('\n', 1)[0].trim();
}

/** The verdict a child's ending gives: only a clean exit with a well-formed verdict counts. */
export function verdictOf(file: string, o: ProbeOutcome, timeoutMs: number): CudaProbe {
  const what = `the CUDA build ${file}`;
  if (o.spawnError !== undefined) return { ok: false, reason: `cannot start a process to probe ${what} (${o.spawnError})` };
  if (o.timedOut) return { ok: false, reason: `${what} did not finish loading within ${timeoutMs / 1000} s (probed in a child process)` };
  if (o.signal !== null) return { ok: false, reason: `${what} crashed the process that probed it (${o.signal})` };
  if (o.status !== 0) {
    const detail = firstLine(o.stderr) || 'no message';
    return { ok: false, reason: `probing ${what} failed (exit code ${o.status}: ${detail})` };
  }
  let verdict: unknown;
  const line = o.stdout.split('\n').reverse().find((l) => l.startsWith(VERDICT_MARK));
  try {
    verdict = line === undefined ? undefined : JSON.parse(line.slice(VERDICT_MARK.length));
  } catch {
    verdict = undefined;
  }
  if (typeof verdict === 'object' && verdict !== null) {
    const v = verdict as { ok?: unknown; reason?: unknown; info?: unknown };
    if (v.ok === false && typeof v.reason === 'string') return { ok: false, reason: `cannot load ${what} (${v.reason})` };
    if (v.ok === true && isCudaInfo(v.info)) return { ok: true, info: v.info };
  }
  return { ok: false, reason: `probing ${what} gave no verdict (output: ${JSON.stringify(o.stdout.slice(0, 80))})` };
}

function isCudaInfo(value: unknown): value is CudaInfo {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<Record<keyof CudaInfo, unknown>>;
  return typeof v.compiled === 'boolean' && typeof v.available === 'boolean' && Array.isArray(v.devices);
}
