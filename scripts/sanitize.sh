#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer over the whole native path on the tiny fixture
# models: builds the addon (core, ops, SAM, CLIPSeg and the N-API layer, from the same CMake
# source list) with -fsanitize=address,undefined into build-asan/, then runs the vitest files that
# drive it (test/fixtures/sam-tiny, test/fixtures/clipseg-tiny) with the sanitizer runtime
# preloaded into node, which is not instrumented itself (so detect_leaks=0: leaks are
# scripts/leak-check.sh's job, under valgrind).
#
# node-gyp-build loads build-asan/build/Release/omniseg.node instead of build/Release through its
# OMNISEG_PREBUILD override, in the test processes and in the CLI processes they spawn; a
# preflight checks that the sanitized addon is the one mapped. Any ASan report (heap or stack
# overflow, use after free, ...) or UBSan report (signed overflow, misaligned access, an
# out-of-range float-to-int conversion, ...) aborts the process and fails the run; the report is
# on stderr.
#
# Usage: scripts/sanitize.sh [vitest files...]    (default: the files below; ~3 min build + ~1 min)
set -euo pipefail
cd "$(dirname "$0")/.."

SAN="-fsanitize=address,undefined -fsanitize=float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer -g1"
# cmake-js sets CMAKE_CXX_FLAGS itself, so the flags go in through the Release configuration's;
# configure every time (cheap) so that a change of flags reaches an existing build-asan/.
npx cmake-js configure --out build-asan/build \
  --CDCMAKE_CXX_FLAGS_RELEASE="-O3 -DNDEBUG $SAN" \
  --CDCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined"
npx cmake-js build --out build-asan/build --parallel 2

runtime="$(${CXX:-g++} -print-file-name=libasan.so)"
[ -f "$runtime" ] || { echo "sanitize: no ASan runtime ($runtime)" >&2; exit 2; }
export OMNISEG_PREBUILD="$PWD/build-asan"
export LD_PRELOAD="$runtime"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1"

# Preflight: the addon the package loads is the sanitized one.
node --input-type=module -e "
  import { readFileSync } from 'node:fs';
  import { native } from './dist/lib/native.js';
  native();
  if (!readFileSync('/proc/self/maps', 'utf8').includes('$OMNISEG_PREBUILD/build/Release/omniseg.node')) {
    console.error('sanitize: the sanitized addon was not the one loaded');
    process.exit(1);
  }"

# Everything that runs the real addon on the tiny models, except the tests that measure RSS or
# time (ASan's shadow memory and slowdown are not what they measure).
default_tests=(
  test/native-sam.test.ts test/native-clipseg.test.ts test/native-config.test.ts test/model-files.test.ts
  test/session-sam.test.ts test/stream-sam.test.ts test/referrer.test.ts test/referring.test.ts
  test/abort.test.ts test/worker.test.ts test/mask-prompt.test.ts test/hostile-non-image.test.ts
  test/cli-e2e.test.ts test/eval-clicks.test.ts test/server-http.test.ts test/server-referrer.test.ts
  test/visual-prompt.test.ts test/rle.test.ts test/mask.test.ts test/image.test.ts
)
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=("${default_tests[@]}")
npx vitest run "${tests[@]}"
echo "sanitize: ${#tests[@]} test files passed under ASan + UBSan (build-asan/)"
