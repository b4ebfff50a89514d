#!/usr/bin/env bash
# scripts/check-prebuild.sh FILE [EXTRA_LIB_REGEX]: what a prebuilt addon needs from the system it
# lands on, checked against what the README promises (x86-64 Linux, glibc >= 2.34, any libstdc++):
# only glibc's libraries and libgcc_s (plus EXTRA_LIB_REGEX, e.g. libcublasLt for the CUDA
# prebuild), no glibc symbol newer than 2.34, no libgcc_s symbol newer than GCC 7, no symbol of the
# system's libstdc++ (it carries its own), and no library search path of the build machine.
# Prints one summary line; exits 1 naming each breach.
set -euo pipefail
file=$1
extra=${2:-}
libs='libc|libm|libgcc_s|libpthread|libdl|librt|ld-linux-[a-z0-9-]+'
[ -z "$extra" ] || libs="$libs|$extra"
dynamic=$(readelf -d "$file")
symbols=$(objdump -T "$file")
status=0
breach() { echo "check-prebuild: $file $*" >&2; status=1; }
newest() { grep -o "($1_[0-9.]*)" <<<"$symbols" | tr -d '()' | sed "s/^$1_//" | sort -uV | tail -1; }
above() { [ -n "$1" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -1)" != "$2" ]; }

needed=$(sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' <<<"$dynamic")
for lib in $needed; do
  [[ "$lib" =~ ^($libs)\.so(\.[0-9]+)*$ ]] || breach "needs $lib, which the base system does not have"
done
glibc=$(newest GLIBC)
above "$glibc" 2.34 && breach "needs GLIBC_$glibc ($(grep "(GLIBC_$glibc)" <<<"$symbols" | awk '{print $NF}' | tr '\n' ' ')), above 2.34"
gcc=$(newest GCC)
above "$gcc" 7.0.0 && breach "needs libgcc_s GCC_$gcc, above GCC_7.0.0"
grep -E '\((GLIBCXX|CXXABI)_' <<<"$symbols" >/dev/null && breach "binds to the system's libstdc++, which it should carry"
grep -E '\((RPATH|RUNPATH)\)' <<<"$dynamic" >/dev/null && breach "keeps a library search path: $(grep -E '\((RPATH|RUNPATH)\)' <<<"$dynamic")"
echo "check-prebuild: $file ($(du -h "$file" | cut -f1)), needs: $(echo $needed) (GLIBC_${glibc:-none}, GCC_${gcc:-none})"
exit "$status"
