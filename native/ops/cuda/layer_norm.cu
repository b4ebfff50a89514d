// Row-wise layer norm, one warp per row: mean, then Σ(x - mean)² (two passes, as the CPU), then
// (x - mean)·rstd·γ + β. The lanes read consecutive columns (coalesced; rows of 128·V floats, as
// ViT-B's 768 and SAM's 256, as float4s kept in registers); sums are reduced across the warp, so
// only their order differs from the CPU's. y may alias x. layerNormHalf writes the
// same values rounded to half precision, for a GEMM input.
#include "core/arena.h"
#include "ops/cuda/launch.h"

namespace omniseg::ops::cuda {

namespace {

constexpr int kRowsPerBlock = kThreads / 32;

template <class T>
__device__ __forceinline__ void store4(T* y, float a, float b, float c, float d) {
  y[0] = dev::to<T>(a);
  y[1] = dev::to<T>(b);
  y[2] = dev::to<T>(c);
  y[3] = dev::to<T>(d);
}
template <>
__device__ __forceinline__ void store4<float>(float* y, float a, float b, float c, float d) {
  *reinterpret_cast<float4*>(y) = make_float4(a, b, c, d);
}

// Rows of C = 128·V floats (V ∈ {1, 2, 4, 6, 8}; x, γ, β 16-byte aligned): each lane keeps its V float4s
// of the row in registers, so the row is read once.
template <class T, int V>
__global__ void layerNormVecKernel(const float* x, int64_t rows, const float* gamma, const float* beta,
                                   float eps, T* y) {
  constexpr int C = 128 * V;
  const int64_t row = blockIdx.x * static_cast<int64_t>(kRowsPerBlock) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;  // whole warps leave together
  const float4* xr = reinterpret_cast<const float4*>(x + row * C);
  float4 v[V];
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    v[i] = xr[lane + 32 * i];
    s = dev::add(dev::add(dev::add(dev::add(s, v[i].x), v[i].y), v[i].z), v[i].w);
  }
  const float mean = __fdiv_rn(dev::warpSum(s), static_cast<float>(C));
  float sq = 0.f;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const float a = dev::add(v[i].x, -mean), b = dev::add(v[i].y, -mean), c = dev::add(v[i].z, -mean),
                d = dev::add(v[i].w, -mean);
    sq = dev::add(dev::add(dev::add(dev::add(sq, dev::mul(a, a)), dev::mul(b, b)), dev::mul(c, c)), dev::mul(d, d));
  }
  const float rstd = __fdiv_rn(1.f, __fsqrt_rn(dev::add(__fdiv_rn(dev::warpSum(sq), static_cast<float>(C)), eps)));
  const float4* g4 = reinterpret_cast<const float4*>(gamma);
  const float4* b4 = reinterpret_cast<const float4*>(beta);
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = lane + 32 * i;
    const float4 g = g4[c], b = b4[c];
    auto norm = [&](float xv, float gv, float bv) {
      return dev::add(dev::mul(dev::mul(dev::add(xv, -mean), rstd), gv), bv);
    };
    store4(y + row * C + 4 * c, norm(v[i].x, g.x, b.x), norm(v[i].y, g.y, b.y), norm(v[i].z, g.z, b.z),
           norm(v[i].w, g.w, b.w));
  }
}

// Any C: lane-strided scalar passes over the row (mean, Σ(x - mean)², output).
template <class T>
__global__ void layerNormKernel(const float* x, int64_t rows, int64_t C, const float* gamma,
                                const float* beta, float eps, T* y) {
  const int64_t row = blockIdx.x * static_cast<int64_t>(kRowsPerBlock) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;  // whole warps leave together
  const float* xr = x + row * C;
  T* yr = y + row * C;
  const float fC = static_cast<float>(C);
  float s = 0.f;
  for (int64_t c = lane; c < C; c += 32) s = dev::add(s, xr[c]);
  const float mean = __fdiv_rn(dev::warpSum(s), fC);
  float sq = 0.f;
  for (int64_t c = lane; c < C; c += 32) {
    const float d = dev::add(xr[c], -mean);
    sq = dev::add(sq, dev::mul(d, d));
  }
  const float rstd = __fdiv_rn(1.f, __fsqrt_rn(dev::add(__fdiv_rn(dev::warpSum(sq), fC), eps)));
  for (int64_t c = lane; c < C; c += 32) {
    const float v = dev::mul(dev::mul(dev::add(xr[c], -mean), rstd), gamma[c]);
    yr[c] = dev::to<T>(dev::add(v, beta[c]));
  }
}

template <class T, int V>
void launchVec(Ctx& ctx, const float* x, int64_t rows, const float* gamma, const float* beta, float eps,
               T* y, unsigned blocks) {
  layerNormVecKernel<T, V><<<blocks, kThreads, 0, stream(ctx)>>>(x, rows, gamma, beta, eps, y);
}

template <class T>
void launchLayerNorm(Ctx& ctx, const float* x, int64_t rows, int64_t C, const float* gamma,
                     const float* beta, float eps, T* y) {
  OMNISEG_CHECK(rows >= 0 && C > 0, "layerNorm: bad shape");
  OMNISEG_CHECK(x && gamma && beta && y, "layerNorm: null operand");
  if (rows == 0) return;
  const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  OMNISEG_CHECK(blocks <= INT32_MAX, "layerNorm: too many rows");
  const unsigned nb = static_cast<unsigned>(blocks);
  const bool aligned = ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(gamma) |
                         reinterpret_cast<uintptr_t>(beta)) & 15u) == 0 &&
                       (reinterpret_cast<uintptr_t>(y) & (sizeof(T) * 4 - 1)) == 0;
  // y may alias x: each lane reads its values before writing them, so the vector path is safe.
  switch (aligned && C % 128 == 0 ? C / 128 : 0) {
    case 1: launchVec<T, 1>(ctx, x, rows, gamma, beta, eps, y, nb); break;
    case 2: launchVec<T, 2>(ctx, x, rows, gamma, beta, eps, y, nb); break;
    case 4: launchVec<T, 4>(ctx, x, rows, gamma, beta, eps, y, nb); break;
    case 6: launchVec<T, 6>(ctx, x, rows, gamma, beta, eps, y, nb); break;
    case 8: launchVec<T, 8>(ctx, x, rows, gamma, beta, eps, y, nb); break;
    default:
      layerNormKernel<T><<<nb, kThreads, 0, stream(ctx)>>>(x, rows, C, gamma, beta, eps, y);
  }
  gpu::checkLaunch("layerNormKernel");
}

}  // namespace

const void* layerNormHalf(Ctx& ctx, const float* x, int64_t rows, int64_t C, const float* gamma,
                          const float* beta, float eps) {
  const Precision p = ctx.gpu->precision();
  OMNISEG_CHECK(p != Precision::Fp32, "layerNormHalf: fp32 precision");
  void* y = ctx.arena.bytes(static_cast<size_t>(std::max<int64_t>(rows, 0) * C) * 2);
  if (p == Precision::Fp16)
    launchLayerNorm(ctx, x, rows, C, gamma, beta, eps, static_cast<__half*>(y));
  else
    launchLayerNorm(ctx, x, rows, C, gamma, beta, eps, static_cast<__nv_bfloat16*>(y));
  return y;
}

void layerNorm(Ctx& ctx, const float* x, int64_t rows, int64_t C, const float* gamma,
               const float* beta, float eps, float* y) {
  launchLayerNorm(ctx, x, rows, C, gamma, beta, eps, y);
}

}  // namespace omniseg::ops::cuda
