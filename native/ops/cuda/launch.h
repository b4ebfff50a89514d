// Shared pieces of the CUDA op implementations (ops/cuda/*.cu): the pass's stream, grid sizing,
// the cuBLASLt GEMM every GEMM-based op goes through, and device copies of the CPU backend's
// scalar math (ops/cpu/simd.h) so elementwise results match the CPU bit for bit.
#pragma once
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "gpu/check.h"
#include "gpu/stream.h"
#include "ops/cuda/device_cast.cuh"
#include "ops/ops.h"

namespace omniseg::ops::cuda {

inline cudaStream_t stream(Ctx& ctx) {
  OMNISEG_CHECK(ctx.gpu != nullptr, "CUDA op called without a GPU stream");
  return ctx.gpu->get();
}

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n items (capped; the loop covers the rest).
inline unsigned gridFor(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(b, 65535LL * 8)));
}

// A GEMM in cuBLASLt's column-major terms: D[m, n] = alpha · op(A) · op(B) + beta · C (+ epilogue),
// over `batch` matrices at the given element strides. A and B are `type` (fp32, or fp16 / bf16
// for the half-precision mode), D is fp32 (or of type, dType), CUBLAS_COMPUTE_32F (no TF32). C is D (in place) when
// beta != 0. bias: length m, with CUBLASLT_EPILOGUE_BIAS or RELU_BIAS; must be 16-byte aligned
// (callers fall back to their own kernel otherwise).
struct Gemm {
  bool transA = false, transB = false;
  int64_t m = 0, n = 0, k = 0;
  cudaDataType_t type = CUDA_R_32F;  // of A and B
  const void* A = nullptr;
  int64_t lda = 0, strideA = 0;
  const void* B = nullptr;
  int64_t ldb = 0, strideB = 0;
  void* D = nullptr;
  int64_t ldd = 0, strideD = 0;
  cudaDataType_t dType = CUDA_R_32F;  // of D (and C): fp32, or `type` for a half output
  int64_t batch = 1;
  float alpha = 1.f, beta = 0.f;
  const void* bias = nullptr;  // of dType
  bool relu = false;  // RELU_BIAS / RELU epilogue
};
void ltGemm(Ctx& ctx, const Gemm& g);  // gemm.cu
// The Gemm of row-major y [M, N] (row stride ldy) = x [M, K] (row stride ldx) · W [N, K]ᵀ
// (x and W of `type`): W row-major is col-major [K, N] (ld K), transposed. gemm.cu.
Gemm linearGemm(const void* W, const void* x, int64_t ldx, int64_t M, int64_t K, int64_t N, void* y,
                int64_t ldy, cudaDataType_t type = CUDA_R_32F);

// The cuBLASLt type of a precision's GEMM operands.
inline cudaDataType_t gemmType(Precision p) {
  return p == Precision::Fp16 ? CUDA_R_16F : p == Precision::Bf16 ? CUDA_R_16BF : CUDA_R_32F;
}

// act(x) [rows, cols] (x with row stride ld; GELU as actHalf computes it) rounded to half
// precision p (Fp16 / Bf16), dense, in the arena (convert.cu). Returns 2-byte elements.
const void* toHalf(Ctx& ctx, const float* x, int64_t rows, int64_t cols, int64_t ld,
                   Precision p, Act act = Act::None);
// x [rows, cols] (dense) in ctx's half precision: a weight's copy from the model's mirror
// (WeightMirror::half), or else x rounded into the arena now (toHalf).
const void* halfOf(Ctx& ctx, const float* x, int64_t rows, int64_t cols);
// Whether the environment variable `name` is set to exactly `value` (the CUDA ops' switches, read
// on every call so that a test can change them).
inline bool envIs(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, value) == 0;
}
// y [n] ← act(y) in place, y in ctx's half precision (computed in fp32, rounded back; GELU with
// CUDA's erff, not the CPU's bit-exact copy; convert.cu).
void actHalf(Ctx& ctx, void* y, int64_t n, Act act);
// layerNorm(x) [rows, C] computed in fp32 as the layerNorm op does, rounded to the precision of
// ctx (Fp16 / Bf16), dense, in the arena (layer_norm.cu): the input of a half-precision GEMM
// without an fp32 round trip.
const void* layerNormHalf(Ctx& ctx, const float* x, int64_t rows, int64_t C, const float* gamma,
                          const float* beta, float eps);
// linear on an input already rounded to ctx's half precision: y [M, N] (row stride ldy, 0 =
// dense) = act(xh·Wᵀ + b) (+ y when accumulate), xh [M, K] dense 2-byte elements (gemm.cu).
void linearHalfInput(Ctx& ctx, const void* xh, int64_t M, int64_t K, const float* W,
                     const float* b, int64_t N, float* y, Act act = Act::None,
                     bool accumulate = false, int64_t ldy = 0);
// act(xh·Wᵀ + b) [M, N] in ctx's half precision, dense, in the arena (gemm.cu): a hidden layer
// whose only reader is the next half-precision GEMM. The bias is added in fp32 in the GEMM's
// epilogue from its half copy; the sum is rounded to half, then act (in fp32 from the rounded
// value; GELU with CUDA's erff, see actHalf) rounds again.
const void* linearHalfOutput(Ctx& ctx, const void* xh, int64_t M, int64_t K, const float* W,
                             const float* b, int64_t N, Act act);

// Whether p is aligned for the cuBLASLt bias epilogue.
inline bool biasAligned(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// y[r, c] = act(y[r, c] + b[c]) over rows × cols with row stride ldy (b may be null). gemm.cu.
void biasAct(Ctx& ctx, float* y, int64_t rows, int64_t cols, int64_t ldy, const float* b, Act act);

// ---- Device copies of ops/cpu/simd.h (explicit round-to-nearest intrinsics: no FMA
// contraction, so results equal the CPU build's, which uses -ffp-contract=off) ------------------
namespace dev {

__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float add(float a, float b) { return __fadd_rn(a, b); }

__device__ __forceinline__ float expf(float x) {
  x = x < 88.3762626647949f ? x : 88.3762626647949f;
  x = x > -87.3365447504f ? x : -87.3365447504f;
  const float fx = floorf(add(mul(x, 1.44269504088896341f), 0.5f));
  const float r = add(add(x, -mul(fx, 0.693359375f)), mul(fx, 2.12194440e-4f));
  float y = 1.9875691500e-4f;
  y = add(mul(y, r), 1.3981999507e-3f);
  y = add(mul(y, r), 8.3334519073e-3f);
  y = add(mul(y, r), 4.1665795894e-2f);
  y = add(mul(y, r), 1.6666665459e-1f);
  y = add(mul(y, r), 5.0000001201e-1f);
  y = add(add(mul(mul(y, r), r), r), 1.0f);
  const int n = static_cast<int>(fx) + 127;
  return mul(y, __int_as_float(n << 23));
}

__device__ __forceinline__ float erf(float x) {
  const float ax = fabsf(x);
  const float t = __fdiv_rn(1.0f, add(1.0f, mul(0.3275911f, ax)));
  float p = 1.061405429f;
  p = add(mul(p, t), -1.453152027f);
  p = add(mul(p, t), 1.421413741f);
  p = add(mul(p, t), -0.284496736f);
  p = add(mul(p, t), 0.254829592f);
  const float y = add(1.0f, -mul(mul(p, t), expf(mul(-ax, ax))));
  return x < 0 ? -y : y;
}

// Exact (erf) GELU as the CPU computes it: 0.5·x·(1 + erf(x/√2)).
__device__ __forceinline__ float gelu(float x) {
  return mul(mul(0.5f, x), add(1.0f, erf(mul(x, 0.70710678118654752f))));
}

// x·sigmoid(1.702·x) as the CPU computes it (simd::quickGelu).
__device__ __forceinline__ float quickGelu(float x) {
  return mul(x, __fdiv_rn(1.0f, add(1.0f, expf(-mul(1.702f, x)))));
}

__device__ __forceinline__ float act(float v, Act a) {
  if (a == Act::Gelu) return gelu(v);
  if (a == Act::Relu) return v > 0.f ? v : 0.f;
  if (a == Act::QuickGelu) return quickGelu(v);
  return v;
}

// Block-wide copy of one row of n floats (src null: zeros), 16 bytes at a time when both rows
// allow it. For the row-per-block layout kernels.
__device__ __forceinline__ void copyRow(const float* src, float* dst, int64_t n) {
  const bool vec = n % 4 == 0 && ((reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(dst)) & 15u) == 0;
  if (vec) {
    const float4* s4 = reinterpret_cast<const float4*>(src);
    float4* d4 = reinterpret_cast<float4*>(dst);
    for (int64_t i = threadIdx.x; i < n / 4; i += blockDim.x) d4[i] = src ? s4[i] : make_float4(0.f, 0.f, 0.f, 0.f);
  } else {
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) dst[i] = src ? src[i] : 0.f;
  }
}

__device__ __forceinline__ float warpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warpMax(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

}  // namespace dev

// Softmax over the rows of S [rows, n] in place (attention.cu). With rel-pos bias (th/tw non-null):
// row r = (bh, t) of T = h·w queries gets S[r, kh·w + kw] += th[r, qh - kh + h - 1] +
// tw[r, qw - kw + w - 1] first (qh = t / w, qw = t % w); th [rows, 2h-1], tw [rows, 2w-1].
// causalNq > 0: row r is query i = r % causalNq, and its entries j > i become 0 (causal mask).
void softmaxRows(Ctx& ctx, float* S, int64_t rows, int64_t n, const float* th = nullptr,
                 const float* tw = nullptr, int64_t h = 0, int64_t w = 0, int64_t causalNq = 0);

// Attention with materialised scores over `batch` independent sets (attention.cu): set i has
// Q_i [Nq, d] at q + i·strideQ (row stride ldq), K_i / V_i [Nk, d] likewise, and writes
// O_i [Nq, d] at out + i·strideO (row stride ldo). Scores are computed in chunks of sets
// (strided-batched cuBLASLt GEMMs), soft-maxed by softmaxRows with the optional rel-pos bias
// (th / tw rows follow the sets' query rows), then multiplied by V.
struct AttentionBatch {
  int64_t batch = 1, Nq = 0, Nk = 0, d = 0;
  const float* q = nullptr;
  int64_t ldq = 0, strideQ = 0;
  const float* k = nullptr;
  int64_t ldk = 0, strideK = 0;
  const float* v = nullptr;
  int64_t ldv = 0, strideV = 0;
  float* out = nullptr;
  int64_t ldo = 0, strideO = 0;
  float scale = 1.f;
  const float *th = nullptr, *tw = nullptr;  // [batch*Nq, 2h-1], [batch*Nq, 2w-1]
  int64_t h = 0, w = 0;
  bool causal = false;  // query i attends to keys 0..i only
};
void attentionBatched(Ctx& ctx, const AttentionBatch& a);

// Bytes of attention scores computed per chunk of heads (bounds the arena's high water).
constexpr int64_t kScoreChunkFloats = int64_t{1} << 27;  // 512 MiB

}  // namespace omniseg::ops::cuda
