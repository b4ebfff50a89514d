// Shared pieces of the CUDA op tests (test/gpu/*_ops_test.cc, one program: cuda_ops_test):
// random inputs, the comparison that prints one line per case, the two backends' contexts.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "core/arena.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "gpu/check.h"
#include "gpu/device.h"
#include "gpu/stream.h"
#include "ops/ops.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace omniseg::ops::cuda {
// y [n] ← act(y) in place, y in the stream's half precision (ops/cuda/convert.cu; declared in
// ops/cuda/launch.h, which only nvcc compiles).
void actHalf(Ctx& ctx, void* y, int64_t n, Act act);
}  // namespace omniseg::ops::cuda

namespace optest {

using namespace omniseg;
using ops::Act;

inline int failures = 0;
inline std::mt19937 rng(12345);

inline std::vector<float> randn(size_t n, float scale = 1.f) {
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// v rounded to nearest even in fp16 / bf16, as its bits; and back (exact).
inline uint16_t toHalfBits(float v, Precision p) {
  if (p == Precision::Fp16) return __half_as_ushort(__float2half_rn(v));
  return __bfloat16_as_ushort(__float2bfloat16_rn(v));
}
inline float fromHalfBits(uint16_t b, Precision p) {
  if (p == Precision::Fp16) return __half2float(__ushort_as_half(b));
  return __bfloat162float(__ushort_as_bfloat16(b));
}
inline std::vector<uint16_t> toHalfBits(const std::vector<float>& v, Precision p) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = toHalfBits(v[i], p);
  return h;
}

enum class Norm { Magnitude, Element, Exact };

// Compares got against ref over n values and prints the case's line. The inputs of these tests
// are finite, so a NaN on either side fails the case (the CPU reference's too: a broken
// reference must not hide a broken kernel).
inline void report(const std::string& op, const std::string& shape, const float* ref,
                   const float* got, size_t n, double bound, Norm norm) {
  double maxAbs = 0, maxRef = 0, maxRel = 0;
  bool nan = false;
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(ref[i]) || std::isnan(got[i])) {
      nan = true;
      continue;
    }
    const double d = std::fabs(static_cast<double>(ref[i]) - got[i]);
    maxAbs = std::max(maxAbs, d);
    maxRef = std::max(maxRef, std::fabs(static_cast<double>(ref[i])));
    if (norm == Norm::Element && d > 0)
      maxRel = std::max(maxRel, d / std::max(std::fabs(static_cast<double>(ref[i])), 1e-30));
  }
  if (norm != Norm::Element) maxRel = maxAbs > 0 ? maxAbs / std::max(maxRef, 1e-30) : 0.0;
  const bool pass = !nan && (norm == Norm::Exact ? maxAbs == 0 : maxRel <= bound);
  if (!pass) ++failures;
  std::printf("%-18s %-44s %.3e %.3e %.1e %s%s\n", op.c_str(), shape.c_str(), maxAbs, maxRel, bound,
              pass ? "PASS" : "FAIL", nan ? " (NaN)" : "");
  std::fflush(stdout);
}

inline void reportBytes(const std::string& op, const std::string& shape, const uint8_t* ref,
                 const uint8_t* got, size_t n) {
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) bad += ref[i] != got[i];
  if (bad) ++failures;
  std::printf("%-18s %-44s %.3e %.3e %.1e %s\n", op.c_str(), shape.c_str(), bad ? 1.0 : 0.0,
              bad ? 1.0 : 0.0, 0.0, bad ? "FAIL" : "PASS");
  std::fflush(stdout);
}

inline double gemmBound(int64_t K) { return 1e-5 * std::sqrt(static_cast<double>(K)); }

inline std::string dims(std::initializer_list<int64_t> v) {
  std::string s;
  for (int64_t x : v) s += (s.empty() ? "" : "x") + std::to_string(x);
  return s;
}

// The two backends' contexts and device buffer helpers.
struct Env {
  ThreadPool pool{static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))};
  Arena hostArena;
  Arena devArena{gpu::deviceAllocator()};
  gpu::Stream stream;
  Ctx cpu{pool, hostArena, nullptr};
  Ctx gpu{pool, devArena, &stream};

  // Device copy of a host vector (arena memory, released by reset()).
  float* dev(const std::vector<float>& h) {
    float* d = devArena.floats(h.size());
    ops::upload(gpu, h.data(), h.size() * sizeof(float), d);
    return d;
  }
  float* devAlloc(size_t n) { return devArena.floats(n); }
  std::vector<float> host(const float* d, size_t n) {
    std::vector<float> h(n);
    ops::download(gpu, d, n * sizeof(float), h.data());
    return h;
  }
  void reset() {
    stream.synchronize();
    devArena.reset();
    hostArena.reset();
  }
};

inline const char* precisionName(Precision p) {
  return p == Precision::Fp16 ? "fp16" : p == Precision::Bf16 ? "bf16" : "fp32";
}

// Bound of one half-precision GEMM layer (or attention) relative to the magnitude.
inline double halfBound(Precision p, int64_t K, int layers = 1) {
  if (p == Precision::Fp32) return gemmBound(K) * layers;
  return (p == Precision::Fp16 ? 3e-3 : 2e-2) * layers;
}

// Runs f with the GPU stream in precision p, then back to fp32.
template <class F>
void withPrecision(Env& e, Precision p, F&& f) {
  e.stream.setPrecision(p);
  try {
    f();
  } catch (...) {
    e.stream.setPrecision(Precision::Fp32);
    throw;
  }
  e.stream.setPrecision(Precision::Fp32);
}

// Runs f with the environment variable `name` set to value (the CUDA ops' switches, read on every
// call), then unset.
template <class F>
void withEnv(const char* name, const char* value, F&& f) {
  setenv(name, value, 1);
  try {
    f();
  } catch (...) {
    unsetenv(name);
    throw;
  }
  unsetenv(name);
}

inline const char* actName(Act a) {
  return a == Act::Gelu ? "gelu" : a == Act::Relu ? "relu" : a == Act::QuickGelu ? "quick_gelu" : "none";
}

// GPU time of one run of f on the test stream (ms): the mean of `reps` runs after `warm` warm-ups.
template <class F>
float gpuMs(Env& e, F&& f, int warm = 2, int reps = 10) {
  cudaEvent_t a, b;
  OMNISEG_CUDA_CHECK(cudaEventCreate(&a));
  OMNISEG_CUDA_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < warm; ++i) f();
  OMNISEG_CUDA_CHECK(cudaEventRecord(a, e.stream.get()));
  for (int i = 0; i < reps; ++i) f();
  OMNISEG_CUDA_CHECK(cudaEventRecord(b, e.stream.get()));
  OMNISEG_CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0;
  OMNISEG_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / reps;
}

// --bench: GPU time of the heaviest ops at ViT-B shapes (mean of 10 after 2 warm-ups).
template <class F>
void bench(Env& e, const char* what, F&& f) {
  std::printf("bench %-48s %8.3f ms\n", what, gpuMs(e, f));
}

// The cases of each file, run by main() in cuda_ops_test.cc.
void attentionTests(Env& e);       // attention_ops_test.cc
void attentionBenchmarks(Env& e);  // attention_ops_test.cc
void gemmAlgoBenchmarks(Env& e);   // gemm_algos_bench.cc
void imageTests(Env& e);           // image_ops_test.cc
void clipSegTests(Env& e);         // clipseg_ops_test.cc
// relPosAttention CUDA vs CPU on B grids of h×w in precision p (attention_ops_test.cc).
void testRelPos(Env& e, int64_t B, int64_t h, int64_t w, int64_t heads, int64_t d,
                Precision p = Precision::Fp32);
void blockTests(Env& e);           // block_ops_test.cc
void blockBenchmarks(Env& e);      // block_ops_test.cc

}  // namespace optest
