#!/usr/bin/env bash
# Native leak check: runs scripts/leak-check.mjs (load the sam-tiny checkpoint, then encode,
# segment, session rounds and dispose, a few times) under valgrind's memcheck, with the built
# addon (build/Release/omniseg.node) and TypeScript (dist/).
#
# Fails only on what is omniseg's: a definitely-lost block, or a memory error (invalid read or
# write, use of uninitialised memory, ...), whose stack has a frame in omniseg.node or an
# omniseg:: function. Node's and V8's own findings (e.g. glibc's dlopen over-reading a string,
# a known false positive) are counted and printed, not failed on. The addon is built -O3 without
# -g but not stripped, so its frames carry their symbol names; build with `npx node-gyp rebuild
# --debug` and point the workload at build/Debug for file:line in the stacks.
#
# Usage: scripts/leak-check.sh [cycles]      (default 3; about a minute on 2 cores)
# Env:   LEAK_CHECK_LOG=path  keep valgrind's log there (default: a temporary file, printed on failure)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
  echo "leak-check: valgrind is not installed (apt-get install -y valgrind)" >&2
  exit 2
fi
for built in build/Release/omniseg.node dist/lib/index.js; do
  [ -f "$built" ] || { echo "leak-check: $built is missing; run npm run build:all" >&2; exit 2; }
done

log="${LEAK_CHECK_LOG:-$(mktemp -t omniseg-leak-check.XXXXXX.log)}"
export LEAK_CHECK_CYCLES="${1:-3}"
# --error-exitcode=99 tells valgrind's findings (parsed below) from a failing workload.
set +e
valgrind --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
  --error-exitcode=99 --num-callers=50 --log-file="$log" \
  node --expose-gc scripts/leak-check.mjs
rc=$?
set -e
if [ "$rc" -ne 0 ] && [ "$rc" -ne 99 ]; then
  echo "leak-check: the workload failed under valgrind (exit $rc); log: $log" >&2
  exit 1
fi

# valgrind's log is blocks of "==pid== ..." lines separated by "==pid== " alone. Each block that
# reports a leak or an error is classified by whether its stack reaches omniseg's code.
summary=$(awk '
  function flush() {
    if (header == "") return
    ours = (block ~ /omniseg\.node|omniseg::/)
    if (header ~ /are definitely lost in loss record/) {
      bytes = header; sub(/^==[0-9]+== /, "", bytes); sub(/ .*/, "", bytes); gsub(/,/, "", bytes)
      if (ours) { ourLeak += bytes; ourLeakRecords++ } else { otherLeak += bytes }
    } else if (header ~ /^(Invalid |Conditional jump|Use of uninitialised|Syscall param|Mismatched|Source and destination|Argument .* of function)/) {
      if (ours) ourErrors++; else otherErrors++
    }
    header = ""; block = ""
  }
  /^==[0-9]+== *$/ { flush(); next }
  /^==[0-9]+== / {
    line = $0; sub(/^==[0-9]+== /, "", line)
    if (line ~ /^[A-Z0-9]/ && line !~ /^(Address|Block|Uninitialised value)/) { flush(); header = line }
    block = block "\n" line
  }
  END {
    flush()
    printf "%d %d %d %d %d\n", ourLeak, ourLeakRecords, ourErrors, otherLeak, otherErrors
  }' "$log")
read -r ourLeak ourLeakRecords ourErrors otherLeak otherErrors <<<"$summary"
total=$(grep -m1 'definitely lost:' "$log" | sed 's/^==[0-9]*== *//')

echo "leak-check ($LEAK_CHECK_CYCLES cycles): definitely lost in omniseg frames: $ourLeak bytes" \
  "($ourLeakRecords records); memory errors in omniseg frames: $ourErrors"
echo "leak-check: whole process: $total; outside omniseg: $otherLeak bytes definitely lost, $otherErrors memory errors (not failed on)"
if [ "$ourLeak" -ne 0 ] || [ "$ourErrors" -ne 0 ]; then
  echo "leak-check: FAILED; valgrind log: $log" >&2
  exit 1
fi
[ -n "${LEAK_CHECK_LOG:-}" ] || rm -f "$log"
