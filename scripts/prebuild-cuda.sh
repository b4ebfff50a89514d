#!/usr/bin/env bash
# npm run prebuild-cuda: the CUDA variant of the addon as a prebuilt binary,
# prebuilds/cuda/<platform>-<arch>/omniseg.node. node-gyp-build never picks it (it reads only
# prebuilds/<platform>-<arch>/); lib/cuda-probe.ts finds it, probes it in a child process and the
# CPU prebuild stays the fallback. Built like `npm run build:cuda`, with OpenBLAS linked statically;
# the CUDA runtime is static too, so what it needs at run time beyond the base system is the
# NVIDIA driver (libcuda, loaded by the runtime) and libcublasLt.so.<major> (CUDA toolkit, or the
# nvidia-cublas wheel's lib/ on LD_LIBRARY_PATH); libstdc++ is linked in
# (OMNISEG_STATIC_RUNTIME), as in the CPU prebuild. It is built in its own folder,
# build-cuda-prebuild, without the library search path a local build keeps to this machine's
# cuBLASLt (CMAKE_SKIP_BUILD_RPATH): a user's machine has its own. cmake-js ignores --CD options
# on a configured folder, so its cache is dropped first (the objects stay).
set -euo pipefail
cd "$(dirname "$0")/.."

rm -f build-cuda-prebuild/CMakeCache.txt
npx --no-install cmake-js compile --out build-cuda-prebuild --CDOMNISEG_CUDA=ON --CDOMNISEG_STATIC_OPENBLAS=ON \
  --CDOMNISEG_STATIC_RUNTIME=ON --CDCMAKE_SKIP_BUILD_RPATH=ON --CDOMNISEG_CUBLAS_ROOT="$(scripts/cublas.sh)"

dir="prebuilds/cuda/$(node -p 'process.platform + "-" + process.arch')"
mkdir -p "$dir"
strip --strip-all -o "$dir/omniseg.node" build-cuda-prebuild/Release/omniseg.node
scripts/check-prebuild.sh "$dir/omniseg.node" 'libcublasLt'
