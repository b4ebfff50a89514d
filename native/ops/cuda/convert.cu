// Rounding to half precision (fp16 / bf16, round to nearest even) of the activations that enter
// a half-precision GEMM or attention.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "core/arena.h"
#include "ops/cuda/launch.h"

namespace omniseg::ops::cuda {

namespace {

template <class Half>
__device__ Half round(float v);
template <>
__device__ __half round<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __nv_bfloat16 round<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// dst [rows, cols] (dense) ← x [rows, cols] (row stride ld).
template <class Half>
__global__ void toHalfKernel(const float* x, int64_t rows, int64_t cols, int64_t ld, Half* dst) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i - r * cols;
    dst[i] = round<Half>(x[r * ld + c]);
  }
}

}  // namespace

const void* toHalf(Ctx& ctx, const float* x, int64_t rows, int64_t cols, int64_t ld,
                   Precision p) {
  OMNISEG_CHECK(p != Precision::Fp32, "toHalf: fp32 precision");
  OMNISEG_CHECK(rows >= 0 && cols > 0 && ld >= cols, "toHalf: bad shape");
  void* dst = ctx.arena.bytes(static_cast<size_t>(rows * cols) * 2);
  if (rows == 0) return dst;
  if (p == Precision::Fp16) {
    toHalfKernel<<<gridFor(rows * cols), kThreads, 0, stream(ctx)>>>(x, rows, cols, ld,
                                                                    static_cast<__half*>(dst));
  } else {
    toHalfKernel<<<gridFor(rows * cols), kThreads, 0, stream(ctx)>>>(
        x, rows, cols, ld, static_cast<__nv_bfloat16*>(dst));
  }
  gpu::checkLaunch("toHalfKernel");
  return dst;
}

}  // namespace omniseg::ops::cuda
