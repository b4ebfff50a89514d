// Row-wise and elementwise kernels: layer norm, activations, add.
#include <algorithm>
#include <cmath>

#include "ops/cpu/simd.h"
#include "ops/ops.h"

namespace omniseg::ops::cpu {

namespace {

OMNISEG_SIMD void layerNormRows(const float* x, int64_t rows, int64_t C, const float* gamma,
                                const float* beta, float eps, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * C;
    float* yr = y + r * C;
    const float mean = simd::sum(xr, C) / static_cast<float>(C);
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t c = 0;
    for (; c + 8 <= C; c += 8)
      for (int j = 0; j < 8; ++j) acc[j] += (xr[c + j] - mean) * (xr[c + j] - mean);
    float sq = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; c < C; ++c) sq += (xr[c] - mean) * (xr[c] - mean);
    const float rstd = 1.f / std::sqrt(sq / static_cast<float>(C) + eps);
    for (int64_t c = 0; c < C; ++c) yr[c] = (xr[c] - mean) * rstd * gamma[c] + beta[c];
  }
}

OMNISEG_SIMD void geluSpan(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = simd::gelu(x[i]);
}

OMNISEG_SIMD void reluSpan(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 0.f ? x[i] : 0.f;
}

OMNISEG_SIMD void addSpan(const float* a, const float* b, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

OMNISEG_SIMD void scaleShiftRow(const float* x, int64_t C, const float* scale,
                                const float* shift, float* y) {
  for (int64_t c = 0; c < C; ++c) y[c] = x[c] * scale[c] + shift[c];
}

constexpr int64_t kGrain = 1 << 14;

}  // namespace

void layerNorm(Ctx& ctx, const float* x, int64_t rows, int64_t C, const float* gamma,
               const float* beta, float eps, float* y) {
  const int64_t grain = std::max<int64_t>(1, kGrain / C);
  ctx.pool.parallelFor(rows, grain, [&](int64_t r0, int64_t r1) {
    layerNormRows(x + r0 * C, r1 - r0, C, gamma, beta, eps, y + r0 * C);
  });
}

void gelu(Ctx& ctx, float* x, int64_t n) {
  ctx.pool.parallelFor(n, kGrain, [&](int64_t b, int64_t e) { geluSpan(x + b, e - b); });
}

void relu(Ctx& ctx, float* x, int64_t n) {
  ctx.pool.parallelFor(n, kGrain, [&](int64_t b, int64_t e) { reluSpan(x + b, e - b); });
}

void add(Ctx& ctx, const float* a, const float* b, int64_t n, float* y) {
  ctx.pool.parallelFor(n, kGrain, [&](int64_t s, int64_t e) { addSpan(a + s, b + s, e - s, y + s); });
}

void scaleShiftRows(Ctx& ctx, const float* x, int64_t rows, int64_t C, const float* scale,
                    const float* shift, float* y) {
  const int64_t grain = std::max<int64_t>(1, kGrain / C);
  ctx.pool.parallelFor(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) scaleShiftRow(x + r * C, C, scale, shift, y + r * C);
  });
}

}  // namespace omniseg::ops::cpu
