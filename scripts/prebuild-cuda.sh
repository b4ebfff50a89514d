#!/usr/bin/env bash
# npm run prebuild-cuda: the CUDA variant of the addon as a prebuilt binary,
# prebuilds/cuda/<platform>-<arch>/omniseg.node. node-gyp-build never picks it (it reads only
# prebuilds/<platform>-<arch>/); lib/cuda-probe.ts finds it, probes it in a child process and the
# CPU prebuild stays the fallback. Built like `npm run build:cuda` (same build-cuda/ folder), with
# OpenBLAS linked statically; the CUDA runtime is static too, so what it needs at run time beyond
# the base system is the NVIDIA driver (libcuda, loaded by the runtime) and libcublasLt.so.<major>
# (CUDA toolkit, or the nvidia-cublas wheel's lib/ on LD_LIBRARY_PATH). It is built in its own folder,
# build-cuda-prebuild, without the library search path a local build keeps to this machine's cuBLASLt
# (CMAKE_SKIP_BUILD_RPATH): a user's machine has its own.
set -euo pipefail
cd "$(dirname "$0")/.."

npx --no-install cmake-js compile --out build-cuda-prebuild --CDOMNISEG_CUDA=ON --CDOMNISEG_STATIC_OPENBLAS=ON \
  --CDCMAKE_SKIP_BUILD_RPATH=ON --CDOMNISEG_CUBLAS_ROOT="$(scripts/cublas.sh)"

dir="prebuilds/cuda/$(node -p 'process.platform + "-" + process.arch')"
mkdir -p "$dir"
strip --strip-all -o "$dir/omniseg.node" build-cuda-prebuild/Release/omniseg.node
if readelf -d "$dir/omniseg.node" | grep -q -E '\((RPATH|RUNPATH)\)'; then
  echo "prebuild-cuda: $dir/omniseg.node keeps a library search path of this machine:" >&2
  readelf -d "$dir/omniseg.node" | grep -E '\((RPATH|RUNPATH)\)' >&2
  exit 1
fi

allowed='^(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|ld-linux-[a-z0-9-]+|libcublasLt)\.so(\.[0-9]+)*$'
needed=$(readelf -d "$dir/omniseg.node" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
echo "prebuild-cuda: $dir/omniseg.node ($(du -h "$dir/omniseg.node" | cut -f1)), needs: $(echo $needed)"
for lib in $needed; do
  [[ "$lib" =~ $allowed ]] || { echo "prebuild-cuda: it needs $lib, which is neither a base system library nor cuBLASLt" >&2; exit 1; }
done
