#!/usr/bin/env bash
# npm run prebuild: the CPU addon as a prebuilt binary, prebuilds/<platform>-<arch>/omniseg.glibc.node
# (Node-API, so one binary serves every Node >= 20; the glibc tag keeps it off musl systems).
# OpenBLAS and libstdc++ are linked statically (binding.gyp's OMNISEG_STATIC_OPENBLAS and
# OMNISEG_STATIC_RUNTIME switches), so the binary needs nothing beyond glibc >= 2.34 and libgcc_s
# (RHEL 9, Amazon Linux 2023, Debian 12, Ubuntu 22.04 and later, whatever their libstdc++);
# scripts/check-prebuild.sh checks that before it finishes. (libgcc stays shared: GCC 12's static
# unwinder binds to glibc 2.35's _dl_find_object.)
# prebuildify rebuilds in build/ and moves the result out of build/Release: node-gyp-build then
# loads the prebuild, until `npm run build:native` makes a local build again.
set -euo pipefail
cd "$(dirname "$0")/.."

OMNISEG_STATIC_OPENBLAS=1 OMNISEG_STATIC_RUNTIME=1 npx --no-install prebuildify --napi --strip --tag-libc \
  --target "$(node -p process.versions.node)"

dir="prebuilds/$(node -p 'process.platform + "-" + process.arch')"
status=0
for addon in "$dir"/*.node; do
  scripts/check-prebuild.sh "$addon" || status=1
done
exit "$status"
