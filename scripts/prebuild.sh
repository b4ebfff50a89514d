#!/usr/bin/env bash
# npm run prebuild: the CPU addon as a prebuilt binary, prebuilds/<platform>-<arch>/omniseg.glibc.node
# (Node-API, so one binary serves every Node >= 20; the glibc tag keeps it off musl systems).
# OpenBLAS is linked statically (binding.gyp's OMNISEG_STATIC_OPENBLAS switch), so the binary needs
# nothing beyond glibc, libstdc++ and libgcc; this script checks that before it finishes.
# prebuildify rebuilds in build/ and moves the result out of build/Release: node-gyp-build then
# loads the prebuild, until `npm run build:native` makes a local build again.
set -euo pipefail
cd "$(dirname "$0")/.."

OMNISEG_STATIC_OPENBLAS=1 npx --no-install prebuildify --napi --strip --tag-libc \
  --target "$(node -p process.versions.node)"

dir="prebuilds/$(node -p 'process.platform + "-" + process.arch')"
allowed='^(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|ld-linux-[a-z0-9-]+)\.so(\.[0-9]+)*$'
status=0
for addon in "$dir"/*.node; do
  while read -r lib; do
    if ! [[ "$lib" =~ $allowed ]]; then
      echo "prebuild: $addon needs $lib, which is not a base system library" >&2
      status=1
    fi
  done < <(readelf -d "$addon" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  echo "prebuild: $addon ($(du -h "$addon" | cut -f1)), needs: $(readelf -d "$addon" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
done
exit "$status"
