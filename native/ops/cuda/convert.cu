// Rounding to half precision (fp16 / bf16, round to nearest even) of the activations that enter
// a half-precision GEMM or attention, optionally after an activation; and the in-place activation
// of a half-precision hidden layer (actHalf). Both take GELU as halfAct computes it.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "core/arena.h"
#include "ops/cuda/launch.h"

namespace omniseg::ops::cuda {

namespace {

// Four values at a time: 16-byte loads, 8-byte stores.
template <class Half>
struct alignas(8) Half4 {
  Half v[4];
};

// The activation of a half-precision hidden layer. GELU is 0.5·x·(1 + erff(x/√2)) with CUDA's erff
// (2 ulp in fp32; PyTorch's CUDA formula) rather than dev::gelu, the CPU's bit-exact copy (an IEEE
// division and a polynomial exp per value): that made this pass memory-bound, 0.030 → 0.017 ms for
// ViT-B's 4096×3072 hidden layer on an H100 (ReLU's 0.012 ms is the floor), for one rounding of
// difference in 1.5 % (bf16) / 4.9 % (fp16) of the outputs. The fp32 ops keep dev::gelu.
__device__ __forceinline__ float halfAct(float v, Act act) {
  if (act == Act::Gelu) return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
  return dev::act(v, act);
}

template <class Half>
__device__ __forceinline__ Half half(float v, Act act) {
  return dev::to<Half>(halfAct(v, act));
}

// dst [n] ← act(x [n]) (dense; n % 4 == 0, x 16-byte aligned).
template <class Half>
__global__ void toHalfDense4(const float4* x, int64_t n4, Act act, Half4<Half>* dst) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n4;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float4 f = x[i];
    dst[i] = Half4<Half>{{half<Half>(f.x, act), half<Half>(f.y, act), half<Half>(f.z, act), half<Half>(f.w, act)}};
  }
}

// One block per row: dst [rows, cols] (dense) ← act(x [rows, cols] (row stride ld)).
template <class Half>
__global__ void toHalfRows(const float* x, int64_t cols, int64_t ld, Act act, Half* dst) {
  const float* src = x + blockIdx.x * ld;
  Half* out = dst + blockIdx.x * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) out[c] = half<Half>(src[c], act);
}

template <class Half>
void launchToHalf(Ctx& ctx, const float* x, int64_t rows, int64_t cols, int64_t ld, Act act, Half* dst) {
  const int64_t n = rows * cols;
  if (ld == cols && n % 4 == 0 && (reinterpret_cast<uintptr_t>(x) & 15u) == 0) {
    toHalfDense4<<<gridFor(n / 4), kThreads, 0, stream(ctx)>>>(
        reinterpret_cast<const float4*>(x), n / 4, act, reinterpret_cast<Half4<Half>*>(dst));
  } else {
    OMNISEG_CHECK(rows <= INT32_MAX, "toHalf: too many rows");
    toHalfRows<<<static_cast<unsigned>(rows), kThreads, 0, stream(ctx)>>>(x, cols, ld, act, dst);
  }
  gpu::checkLaunch("toHalf");
}

// y [n] ← act(y) in half precision: eight values at a time (16-byte loads and stores) when
// n % 8 == 0 and y is 16-byte aligned (every GEMM output in the arena), else one at a time.
template <class Half>
struct alignas(16) Half8 {
  Half v[8];
};

template <class Half>
__global__ void actHalf8Kernel(Half8<Half>* y, int64_t n8, Act act) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n8;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    Half8<Half> h = y[i];
#pragma unroll
    for (int j = 0; j < 8; ++j) h.v[j] = dev::to<Half>(halfAct(static_cast<float>(h.v[j]), act));
    y[i] = h;
  }
}

template <class Half>
__global__ void actHalfKernel(Half* y, int64_t n, Act act) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = dev::to<Half>(halfAct(static_cast<float>(y[i]), act));
}

template <class Half>
void launchActHalf(Ctx& ctx, Half* y, int64_t n, Act act) {
  if (n % 8 == 0 && (reinterpret_cast<uintptr_t>(y) & 15u) == 0) {
    actHalf8Kernel<<<gridFor(n / 8), kThreads, 0, stream(ctx)>>>(reinterpret_cast<Half8<Half>*>(y), n / 8, act);
    gpu::checkLaunch("actHalf8Kernel");
  } else {
    actHalfKernel<<<gridFor(n), kThreads, 0, stream(ctx)>>>(y, n, act);
    gpu::checkLaunch("actHalfKernel");
  }
}

}  // namespace

void actHalf(Ctx& ctx, void* y, int64_t n, Act act) {
  const Precision p = ctx.gpu->precision();
  OMNISEG_CHECK(p != Precision::Fp32, "actHalf: fp32 precision");
  if (n <= 0 || act == Act::None) return;
  if (p == Precision::Fp16)
    launchActHalf(ctx, static_cast<__half*>(y), n, act);
  else
    launchActHalf(ctx, static_cast<__nv_bfloat16*>(y), n, act);
}

const void* toHalf(Ctx& ctx, const float* x, int64_t rows, int64_t cols, int64_t ld,
                   Precision p, Act act) {
  OMNISEG_CHECK(p != Precision::Fp32, "toHalf: fp32 precision");
  OMNISEG_CHECK(rows >= 0 && cols > 0 && ld >= cols, "toHalf: bad shape");
  void* dst = ctx.arena.bytes(static_cast<size_t>(rows * cols) * 2);
  if (rows == 0) return dst;
  if (p == Precision::Fp16)
    launchToHalf(ctx, x, rows, cols, ld, act, static_cast<__half*>(dst));
  else
    launchToHalf(ctx, x, rows, cols, ld, act, static_cast<__nv_bfloat16*>(dst));
  return dst;
}

const void* halfOf(Ctx& ctx, const float* x, int64_t rows, int64_t cols) {
  const void* h = ctx.gpu->half(x);
  return h ? h : toHalf(ctx, x, rows, cols, cols, ctx.gpu->precision());
}

}  // namespace omniseg::ops::cuda
