#!/usr/bin/env bash
# Prints a directory with cuBLASLt's headers and libraries (include/, lib/) for the CUDA build:
# the toolkit's own when it has them, else the nvidia-cublas wheel from the local pip cache
# unpacked (once) into .cache/cublas. The machines here have nvcc and the CUDA runtime but no
# cuBLAS in the toolkit.
set -euo pipefail
cd "$(dirname "$0")/.."
for d in "${CUDA_HOME:-/usr/local/cuda}" /usr/local/cuda; do
  if [ -f "$d/include/cublasLt.h" ] && ls "$d"/lib64/libcublasLt.so* >/dev/null 2>&1; then
    echo "$d"; exit 0
  fi
done
dest=.cache/cublas/nvidia/cu13
if [ ! -f "$dest/include/cublasLt.h" ] || [ ! -f "$dest/lib/libcublasLt.so" ]; then
  wheel=$(ls /opt/pypi*/files/nvidia_cublas-13*.whl 2>/dev/null | head -1 || true)
  if [ -z "$wheel" ]; then
    mkdir -p .cache/cublas-wheel
    python3 -m pip download -q --no-deps -d .cache/cublas-wheel "nvidia-cublas>=13,<14" >&2
    wheel=$(ls .cache/cublas-wheel/nvidia_cublas-*.whl | head -1)
  fi
  mkdir -p .cache/cublas
  unzip -q -o "$wheel" 'nvidia/cu13/include/*' 'nvidia/cu13/lib/libcublasLt.so.13' -d .cache/cublas >&2
  ln -sf libcublasLt.so.13 "$dest/lib/libcublasLt.so"
fi
echo "$PWD/$dest"
