// Helpers for the vectorised CPU kernels. Kernels are plain loops over floats that GCC
// auto-vectorises; OMNISEG_SIMD compiles each marked function three times (AVX-512 "x86-64-v4",
// AVX2+FMA "x86-64-v3" and the portable baseline) and picks one at load time, so one binary runs
// everywhere and uses the widest vectors the CPU has. The build uses -ffp-contract=off and the
// reductions keep explicit partial sums, so every clone rounds alike (identical results).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(OMNISEG_NO_CLONES)
#define OMNISEG_SIMD __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define OMNISEG_SIMD
#endif

namespace omniseg::simd {

// exp(x) for float, Cephes-style range reduction + degree-6 polynomial (≈1 ulp on the range
// used here). Branch-free so loops around it vectorise.
static inline float expf(float x) {
  x = x < 88.3762626647949f ? x : 88.3762626647949f;
  x = x > -87.3365447504f ? x : -87.3365447504f;
  float fx = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - fx * 0.693359375f + fx * 2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  const int32_t n = static_cast<int32_t>(fx) + 127;
  const int32_t bits = n << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return y * scale;
}

// erf(x), Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), the approximation PyTorch's
// vectorised CPU kernels use.
static inline float erf(float x) {
  const float ax = x < 0 ? -x : x;
  const float t = 1.0f / (1.0f + 0.3275911f * ax);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float y = 1.0f - p * t * expf(-ax * ax);
  return x < 0 ? -y : y;
}

// Reductions with 8 independent partial results, so they vectorise without reassociating a
// single accumulator (which strict IEEE semantics forbid).
static inline float sum(const float* x, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += x[i + j];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += x[i];
  return s;
}

static inline float max(const float* x, int64_t n) {
  float acc[8];
  for (int j = 0; j < 8; ++j) acc[j] = x[0];
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];
  float m = acc[0];
  for (int j = 1; j < 8; ++j) m = acc[j] > m ? acc[j] : m;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

static inline float gelu(float x) { return 0.5f * x * (1.0f + erf(x * 0.70710678118654752f)); }

// x·sigmoid(1.702·x) (transformers' QuickGELUActivation).
static inline float quickGelu(float x) { return x * (1.0f / (1.0f + expf(-(1.702f * x)))); }

}  // namespace omniseg::simd
