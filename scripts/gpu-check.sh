#!/usr/bin/env bash
# The CUDA backend's whole check, in one call:
#   scripts/gpu-check.sh build   (here: a machine with nvcc, cmake, g++, libopenblas-dev)
#       builds the standalone check programs (test/gpu) with the CUDA backend into .gpu/bin
#       (OpenBLAS and the CUDA runtime linked statically; cuBLASLt from the nvidia-cublas wheel,
#       scripts/cublas.sh) and packs them with the test images into .gpu/ for the GPU machine.
#   scripts/gpu-check.sh run [ops bench sam clipseg profile]   (the GPU machine: NVIDIA GPU,
#       PyTorch + transformers, no Node; all steps, or the ones named)
#       1. op-by-op parity, CUDA vs CPU on random inputs (test/gpu/cuda_ops_test.cc), and the
#          ops' timings with host <-> device copies from pageable and pinned memory (--bench),
#       2. full SAM parity against transformers on the GPU, 3. the benchmark next to PyTorch
#       eager (models/sam/gpu_check.py), 4. CLIPSeg parity against transformers on the GPU and its
#       timings (models/clipseg/gpu_check.py), 5. where the bf16 encoder's GPU time goes: per-kernel
#       Nsight Compute times, when ncu is installed (CSV into $OUT/ncu when run by the device tool).
#       cuBLASLt is taken from PyTorch's nvidia-cublas.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}

if [ "$mode" = build ]; then
  root=$(scripts/cublas.sh)
  cmake -S . -B build-gpu-tools -DCMAKE_BUILD_TYPE=Release -DOMNISEG_CUDA=ON -DOMNISEG_GPU_TOOLS=ON \
    -DOMNISEG_ADDON=OFF -DOMNISEG_STATIC_OPENBLAS=ON -DOMNISEG_CUBLAS_ROOT="$root" >/dev/null
  cmake --build build-gpu-tools -j "$(nproc)"
  mkdir -p .gpu/images
  cp ../shared/images/chelsea.png ../shared/images/astronaut.png .gpu/images/
  mkdir -p .gpu/clip-tokenizer && cp ../shared/clip-tokenizer/{vocab.json,merges.txt} .gpu/clip-tokenizer/
  bins="cuda_ops_test sam_gpu clipseg_gpu"
  for b in $bins; do strip -o ".gpu/$b" "build-gpu-tools/$b"; done
  tar -C .gpu -cJf .gpu/bin.tar.xz $bins && (cd .gpu && rm $bins)
  ls -la .gpu
  exit 0
fi

# run [STEP...]: all steps, or only those named (ops, bench, sam, clipseg, profile), so that a
# run can be split across calls that each stay under a device tool's time limit.
shift || true
steps=" ${*:-ops bench sam clipseg profile} "
want() { [[ "$steps" == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
site=$(python3 -c 'import site; print(site.getsitepackages()[0])')
export LD_LIBRARY_PATH="$site/nvidia/cu13/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
bin=/tmp/omniseg-gpu-bin
mkdir -p "$bin" && tar -C "$bin" -xJf .gpu/bin.tar.xz
status=0
if want ops; then
  echo "== op parity (CUDA vs CPU)"
  "$bin/cuda_ops_test" || status=1
fi
if want bench; then
  echo "== op timings (incl. host <-> device copies, pageable vs pinned)"
  "$bin/cuda_ops_test" --bench || status=1
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
exit $status
