// Row-wise layer norm, one warp per row: mean, then Σ(x - mean)² (two passes, as the CPU), then
// (x - mean)·rstd·γ + β. The lanes read consecutive columns (coalesced); sums are reduced across
// the warp, so only their order differs from the CPU's. y may alias x. layerNormHalf writes the
// same values rounded to half precision, for a GEMM input.
#include "core/arena.h"
#include "ops/cuda/launch.h"

namespace omniseg::ops::cuda {

namespace {

constexpr int kRowsPerBlock = kThreads / 32;

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

template <class T>
void launchLayerNorm(Ctx& ctx, const float* x, int64_t rows, int64_t C, const float* gamma,
                     const float* beta, float eps, T* y) {
  OMNISEG_CHECK(rows >= 0 && C > 0, "layerNorm: bad shape");
  OMNISEG_CHECK(x && gamma && beta && y, "layerNorm: null operand");
  if (rows == 0) return;
  const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  OMNISEG_CHECK(blocks <= INT32_MAX, "layerNorm: too many rows");
  layerNormKernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream(ctx)>>>(x, rows, C, gamma,
                                                                                  beta, eps, y);
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
