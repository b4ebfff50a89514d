#!/usr/bin/env bash
# The CUDA backend's whole check, in one call:
#   scripts/gpu-check.sh build   (here: a machine with nvcc, cmake, g++, libopenblas-dev, Node and
#       the npm dependencies installed)
#       builds the standalone check programs (test/gpu) and the CUDA addon in one CMake build
#       (build-gpu-tools; OpenBLAS and the CUDA runtime linked statically; cuBLASLt from the
#       nvidia-cublas wheel, scripts/cublas.sh), and the CPU prebuild (npm run prebuild, which moves
#       build/Release/omniseg.node into prebuilds/: `npm run build:native` makes a local build
#       again). Packs into .gpu/ for the GPU machine: the check programs (bin.tar.xz); the library as
#       a user installs it (node.tar.xz: Node itself, dist/, the production dependencies, the CPU
#       prebuild and the CUDA addon as the CUDA prebuild); the test images and the CLIP tokenizer
#       (the layout of ../shared, which does not travel: OMNISEG_SHARED=.gpu there).
#   scripts/gpu-check.sh run [ops bench sam clipseg profile node parity]   (the GPU machine: NVIDIA
#       GPU, PyTorch + transformers, no Node; all steps, or the ones named)
#       1. op-by-op parity, CUDA vs CPU on random inputs (test/gpu/cuda_ops_test.cc), and the
#          ops' timings with host <-> device copies from pageable and pinned memory (--bench),
#          and every cuBLASLt candidate timed for the encoder's linear layers (--gemm-algos),
#       2. full SAM parity against transformers on the GPU (the half encoder also with the fused
#       attention's opt-in variants, OMNISEG_FLASH_QTILE=128 and OMNISEG_FLASH_QKV=1), 3. the
#       benchmark next to PyTorch eager (models/sam/gpu_check.py), 4. CLIPSeg parity against transformers on the GPU and its
#       timings (models/clipseg/gpu_check.py), 5. where the bf16 encoder's GPU time goes: per-kernel
#       Nsight Compute times, when ncu is installed (CSV into $OUT/ncu when run by the device tool),
#       6. `node`: the library itself on the GPU (scripts/gpu-node-check.mjs: the prebuilds found and
#          probed, CUDA against the CPU prebuild through the public API, rle, transfers, batches,
#          concurrency, the event loop, timings), then the HTTP server on CUDA (bench/server.mjs
#          sections 1 and 2), 7. `parity`: npm run parity's SAM and CLIPSeg checks against
#          transformers through the CLI with --device cuda (fp32); 8. `parity-shapes` (only when
#          named): the same SAM check at sam-vit-large's and sam-vit-huge's shapes (heads of 64 and 80).
#       cuBLASLt is taken from PyTorch's nvidia-cublas.
# The device tool carries .gpu (`carry: [".gpu"]`); the steps fit its 10-minute calls as
# `ops bench`, `sam clipseg`, `profile`, `node`, `parity`.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
if [ "$mode" != build ] && [ "$mode" != run ]; then
  echo "usage: scripts/gpu-check.sh build | run [ops bench sam clipseg profile node parity parity-shapes]" >&2
  exit 2
fi

if [ "$mode" = build ]; then
  root=$(scripts/cublas.sh)
  npx --no-install cmake-js compile --out build-gpu-tools --CDOMNISEG_CUDA=ON --CDOMNISEG_GPU_TOOLS=ON \
    --CDOMNISEG_STATIC_OPENBLAS=ON --CDOMNISEG_CUBLAS_ROOT="$root"
  npm run prebuild
  npm run build:ts
  tuple=$(node -p 'process.platform + "-" + process.arch')
  rm -rf .gpu
  lib=.gpu/stage/lib
  mkdir -p .gpu/images .gpu/clip-tokenizer .gpu/stage/bin "$lib/.gpu-node/bin" "$lib/prebuilds/cuda/$tuple"
  cp ../shared/images/chelsea.png ../shared/images/astronaut.png .gpu/images/
  cp ../shared/clip-tokenizer/{vocab.json,merges.txt} .gpu/clip-tokenizer/
  bins="cuda_ops_test sam_gpu clipseg_gpu"
  for b in $bins; do strip -o ".gpu/stage/bin/$b" "build-gpu-tools/$b"; done
  tar -C .gpu/stage/bin -cf - $bins | xz -T0 -9 >.gpu/bin.tar.xz
  # the library, laid over the checkout there: `tar -xJf .gpu/node.tar.xz` in its root
  cp "$(command -v node)" "$lib/.gpu-node/bin/node"
  cp -r dist "$lib/"
  cp -r "prebuilds/$tuple" "$lib/prebuilds/"
  strip --strip-all -o "$lib/prebuilds/cuda/$tuple/omniseg.node" build-gpu-tools/Release/omniseg.node
  npm ls --omit=dev --all --parseable | tail -n +2 | sed "s|^$PWD/||" | xargs cp -r --parents -t "$lib"
  tar -C "$lib" -cf - . | xz -T0 -9 >.gpu/node.tar.xz
  rm -rf .gpu/stage
  ls -la .gpu
  echo "carried with the checkout: $(du -sh .gpu | cut -f1) (the device tool takes 64 MiB in all)"
  exit 0
fi

# run [STEP...]: all steps but parity-shapes, or only those named (ops, bench, sam, clipseg, profile,
# node, parity, parity-shapes), so that a run can be split across calls that each stay under a
# device tool's time limit.
shift || true
steps=" ${*:-ops bench sam clipseg profile node parity} "
want() { [[ "$steps" == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
site=$(python3 -c 'import site; print(site.getsitepackages()[0])')
export LD_LIBRARY_PATH="$site/nvidia/cu13/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
bin=/tmp/omniseg-gpu-bin
if want ops || want bench || want sam || want clipseg || want profile; then
  mkdir -p "$bin" && tar -C "$bin" -xJf .gpu/bin.tar.xz
fi
status=0
if want ops; then
  echo "== op parity (CUDA vs CPU)"
  "$bin/cuda_ops_test" || status=1
fi
if want bench; then
  echo "== op timings (incl. host <-> device copies, pageable vs pinned)"
  "$bin/cuda_ops_test" --bench || status=1
  echo "== cuBLASLt's candidates for the encoder's linear layers (first heuristic vs fastest)"
  "$bin/cuda_ops_test" --gemm-algos || status=1
fi
if want sam; then
  echo "== SAM parity and benchmark (sam-vit-base, random weights)"
  PYTHONUNBUFFERED=1 python3 models/sam/gpu_check.py --sam-gpu "$bin/sam_gpu" --images .gpu/images || status=1
fi
if want clipseg; then
  echo "== CLIPSeg parity and timings (clipseg-rd64-refined shape, random weights)"
  PYTHONUNBUFFERED=1 python3 models/clipseg/gpu_check.py --clipseg-gpu "$bin/clipseg_gpu" --images .gpu/images \
    --tokenizer .gpu/clip-tokenizer || status=1
fi
if want profile; then
  if command -v ncu >/dev/null; then
    echo "== per-kernel GPU time of a bf16 encode + decode (Nsight Compute)"
    PYTHONUNBUFFERED=1 python3 models/sam/gpu_check.py --sam-gpu "$bin/sam_gpu" --images .gpu/images \
      --profile "${OUT:-/tmp/omniseg-gpu}/ncu" --profile-precisions bf16 || true
  else
    echo "== (no ncu here: per-kernel times skipped)"
  fi
fi
# The library as a user installs it (node.tar.xz), laid over this checkout once, with the models and
# images of the parity harness (built by transformers here).
library() {
  [ -x .gpu-node/bin/node ] || tar -xJf .gpu/node.tar.xz
  export PATH="$PWD/.gpu-node/bin:$PATH" OMNISEG_SHARED="$PWD/.gpu"
  python3 models/sam/parity.py --prepare-only && python3 models/clipseg/parity.py --prepare-only
}
if want node; then
  echo "== the library on the GPU (Node, the CPU and CUDA prebuilds)"
  library
  node dist/lib/cli.js info --json || status=1
  node scripts/gpu-node-check.mjs --sam .cache/parity/sam-vit-base --clipseg .cache/parity/clipseg-rd64-refined \
    --images .cache/parity/run || status=1
  echo "== the HTTP server on CUDA (bench/server.mjs sections 1 and 2, sam-vit-base shape, 1024x1024 PNG)"
  node bench/server.mjs --model .cache/parity/sam-vit-base --image .cache/parity/run/astronaut1024.png \
    --sections 1,2 --threads "$(nproc)" --device cuda || status=1
  echo "== the HTTP server's encodes on CUDA in bf16 (bench/server.mjs section 2; fp32 above is GPU-bound at ~30 images/s)"
  node bench/server.mjs --model .cache/parity/sam-vit-base --image .cache/parity/run/astronaut1024.png \
    --sections 2 --threads "$(nproc)" --device cuda --precision bf16 || status=1
fi
if want parity; then
  echo "== npm run parity's SAM and CLIPSeg checks through the CLI on CUDA (fp32)"
  library
  PYTHONUNBUFFERED=1 python3 models/sam/parity.py --device cuda || status=1
  PYTHONUNBUFFERED=1 python3 models/clipseg/parity.py --device cuda || status=1
fi
if want parity-shapes; then
  echo "== npm run parity's SAM check on CUDA at sam-vit-large's and sam-vit-huge's shapes (fp32)"
  library
  for shape in sam-vit-large sam-vit-huge; do
    PYTHONUNBUFFERED=1 python3 models/sam/parity.py --device cuda --shape "$shape" || status=1
  done
fi
exit $status
