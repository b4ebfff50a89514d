#!/usr/bin/env bash
# Runs one fuzzer command line (the Makefile's run-<target>), once more if LeakSanitizer itself
# failed: "LeakSanitizer has encountered a fatal error" with no sanitizer or libFuzzer report is
# LSan unable to suspend the process's threads for its check (seen once in CI, at the end-of-run
# leak check of a loaded machine), not a finding. Anything else fails as it is.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
for attempt in 1 2; do
  "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  [ "$status" -eq 0 ] && exit 0
  if grep -q "LeakSanitizer has encountered a fatal error" "$log" &&
    ! grep -qE "ERROR: (AddressSanitizer|LeakSanitizer: detected|libFuzzer)|runtime error:" "$log"; then
    echo "fuzz.sh: LeakSanitizer could not run its check (attempt $attempt; not a finding)" >&2
    continue
  fi
  exit "$status"
done
exit "$status"
