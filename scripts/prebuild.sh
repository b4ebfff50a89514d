#!/usr/bin/env bash
# npm run prebuild: the CPU addon as a prebuilt binary, prebuilds/<platform>-<arch>/omniseg.glibc.node
# (Node-API, so one binary serves every Node >= 20; the glibc tag keeps it off musl systems).
# OpenBLAS and libstdc++ are linked statically (binding.gyp's OMNISEG_STATIC_OPENBLAS and
# OMNISEG_STATIC_RUNTIME switches), so the binary needs nothing beyond glibc >= 2.34 and libgcc_s
# (RHEL 9, Amazon Linux 2023, Debian 12, Ubuntu 22.04 and later, whatever their libstdc++); this
# script checks both before it finishes. (libgcc stays shared: GCC 12's static unwinder binds to
# glibc 2.35's _dl_find_object.)
# prebuildify rebuilds in build/ and moves the result out of build/Release: node-gyp-build then
# loads the prebuild, until `npm run build:native` makes a local build again.
set -euo pipefail
cd "$(dirname "$0")/.."

OMNISEG_STATIC_OPENBLAS=1 OMNISEG_STATIC_RUNTIME=1 npx --no-install prebuildify --napi --strip --tag-libc \
  --target "$(node -p process.versions.node)"

dir="prebuilds/$(node -p 'process.platform + "-" + process.arch')"
allowed='^(libc|libm|libgcc_s|libpthread|libdl|librt|ld-linux-[a-z0-9-]+)\.so(\.[0-9]+)*$'
glibc_floor=2.34  # the README's promise
status=0
for addon in "$dir"/*.node; do
  while read -r lib; do
    if ! [[ "$lib" =~ $allowed ]]; then
      echo "prebuild: $addon needs $lib, which is neither a glibc library nor libgcc_s" >&2
      status=1
    fi
  done < <(readelf -d "$addon" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  # The newest symbol version it binds to, per library: glibc's must stay at the floor.
  newest=$(objdump -T "$addon" | grep -o '(GLIBC_[0-9.]*)' | tr -d '()' | sed 's/GLIBC_//' | sort -uV | tail -1)
  if [ "$(printf '%s\n%s\n' "$newest" "$glibc_floor" | sort -V | tail -1)" != "$glibc_floor" ]; then
    echo "prebuild: $addon needs GLIBC_$newest ($(objdump -T "$addon" | grep "(GLIBC_$newest)" | awk '{print $NF}' | tr '\n' ' ')), above the promised $glibc_floor" >&2
    status=1
  fi
  if objdump -T "$addon" | grep -q -E '\((GLIBCXX|CXXABI)_'; then
    echo "prebuild: $addon binds to the system libstdc++, which it should carry statically" >&2
    status=1
  fi
  echo "prebuild: $addon ($(du -h "$addon" | cut -f1)), needs: $(readelf -d "$addon" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')(GLIBC_$newest)"
done
exit "$status"
