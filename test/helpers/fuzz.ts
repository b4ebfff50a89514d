// Property-based fuzzing of the TypeScript parsers (fast-check through @fast-check/vitest): the
// contract every parser is held to, whatever the input, is
//   - return a valid value (each test states what valid means), or
//   - throw the error class the API documents, with the message template naming the parameter
//     (TypeError / RangeError from lib/errors.ts, UsageError for CLI values);
//   - never throw anything else (a TypeError from reading a property of undefined, say), and
//     never take long (each call is timed).
// OMNISEG_FUZZ_RUNS sets the runs per property (default 1000; CI may raise it). The seed is fixed
// (OMNISEG_FUZZ_SEED, default 20261122) so that the suite is reproducible; OMNISEG_FUZZ_SEED=random
// explores new inputs on every run. A failure prints fast-check's seed and shrunk counterexample:
// replay it with { seed, path } in the test options.
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { expect } from 'vitest';

export const FUZZ_RUNS = Number(process.env.OMNISEG_FUZZ_RUNS ?? 1000);

const seed = process.env.OMNISEG_FUZZ_SEED ?? '20261122';
if (seed !== 'random') fc.configureGlobal({ seed: Number(seed) });

/** Test timeout for a property: about 5 ms a run, at least vitest's default 5 s. */
export const FUZZ_TIMEOUT_MS = Math.max(5000, FUZZ_RUNS * 5);

/** A call that takes longer than this on a small input is a hang (or a quadratic blow-up). */
export const CALL_LIMIT_MS = 1000;

type ErrorClass = new (...args: never[]) => Error;

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: Error };

/**
 * Runs `fn` once and times it. A throw must be one of `classes` (the exact class, not a subclass
 * such as an unexpected AbortError) with a message matching `message`; anything else fails the test.
 */
export function outcome<T>(fn: () => T, classes: readonly ErrorClass[], message: RegExp): Outcome<T> {
  const t0 = performance.now();
  let result: Outcome<T>;
  try {
    result = { ok: true, value: fn() };
  } catch (e) {
    expect(e).toBeInstanceOf(Error);
    const error = e as Error;
    const allowed = classes.some((c) => error.constructor === c);
    if (!allowed) throw new Error(`unexpected ${error.constructor.name}: ${error.message}`, { cause: error });
    expect(error.message).toMatch(message);
    result = { ok: false, error };
  }
  const ms = performance.now() - t0;
  if (ms > CALL_LIMIT_MS) throw new Error(`the call took ${ms.toFixed(0)} ms (limit ${CALL_LIMIT_MS} ms)`);
  return result;
}

/** The argument template of lib/errors.ts naming a parameter that starts with `param`. */
export function namesParam(param: string): RegExp {
  const escaped = param.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^Expected .+ for ${escaped}\\S* but received .* of type \\S+$`, 's');
}
