// Row-wise layer norm. Matches ops/cpu/elementwise.cc bit for bit: the CPU sums each row in 8
// interleaved partial sums (simd::sum's order), combines them pairwise, adds the tail, and does
// the same for Σ(x - mean)²; here 8 lanes of a warp own one row, lane j keeps partial sum j, and
// every operation rounds like the CPU's (no FMA contraction).
#include "ops/cuda/launch.h"

namespace omniseg::ops::cuda {

namespace {

constexpr int kLanes = 8;  // lanes per row (simd::sum's 8 partial sums)

__device__ __forceinline__ float combine8(float acc, unsigned mask) {
  float a[kLanes];
#pragma unroll
  for (int k = 0; k < kLanes; ++k) a[k] = __shfl_sync(mask, acc, k, kLanes);
  return dev::add(dev::add(dev::add(a[0], a[1]), dev::add(a[2], a[3])),
                  dev::add(dev::add(a[4], a[5]), dev::add(a[6], a[7])));
}

__global__ void layerNormKernel(const float* x, int64_t rows, int64_t C, const float* gamma,
                                const float* beta, float eps, float* y) {
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t row = t / kLanes;
  const int j = static_cast<int>(t % kLanes);
  if (row >= rows) return;  // whole 8-lane groups leave together
  const unsigned mask = 0xFFu << (threadIdx.x & 31 & ~(kLanes - 1));
  const float* xr = x + row * C;
  float* yr = y + row * C;
  const int64_t C8 = C / kLanes * kLanes;
  const float fC = static_cast<float>(C);

  float acc = 0.f;
  for (int64_t c = 0; c < C8; c += kLanes) acc = dev::add(acc, xr[c + j]);
  float s = combine8(acc, mask);
  for (int64_t c = C8; c < C; ++c) s = dev::add(s, xr[c]);
  const float mean = __fdiv_rn(s, fC);

  acc = 0.f;
  for (int64_t c = 0; c < C8; c += kLanes) {
    const float d = dev::add(xr[c + j], -mean);
    acc = dev::add(acc, dev::mul(d, d));
  }
  float sq = combine8(acc, mask);
  for (int64_t c = C8; c < C; ++c) {
    const float d = dev::add(xr[c], -mean);
    sq = dev::add(sq, dev::mul(d, d));
  }
  const float rstd = __fdiv_rn(1.f, __fsqrt_rn(dev::add(__fdiv_rn(sq, fC), eps)));

  for (int64_t c = j; c < C; c += kLanes) {
    const float v = dev::mul(dev::mul(dev::add(xr[c], -mean), rstd), gamma[c]);
    yr[c] = dev::add(v, beta[c]);
  }
}

}  // namespace

void layerNorm(Ctx& ctx, const float* x, int64_t rows, int64_t C, const float* gamma,
               const float* beta, float eps, float* y) {
  OMNISEG_CHECK(rows >= 0 && C > 0, "layerNorm: bad shape");
  OMNISEG_CHECK(x && gamma && beta && y, "layerNorm: null operand");
  if (rows == 0) return;
  const int64_t threads = rows * kLanes;
  const unsigned blocks = static_cast<unsigned>((threads + kThreads - 1) / kThreads);
  OMNISEG_CHECK((threads + kThreads - 1) / kThreads <= INT32_MAX, "layerNorm: too many rows");
  layerNormKernel<<<blocks, kThreads, 0, stream(ctx)>>>(x, rows, C, gamma, beta, eps, y);
  gpu::checkLaunch("layerNormKernel");
}

}  // namespace omniseg::ops::cuda
