// AVX-512 micro-kernels for CPU attention (ops/cpu/attention.cc): the two products of a block
// of query rows against all keys, without OpenBLAS's per-call packing and zeroing, so that a
// block's scores stay in the core's L2 cache between the products and the softmax.
//   scores:         s = scale · q · kᵀ, with k pre-packed once per head (packKeys)
//   weightedValues: o = (p · v) / sums
// Used where the CPU has AVX-512F and the head size is at most kMaxHeadDim; elsewhere
// attention.cc runs the same blocks through OpenBLAS.
#pragma once
#include <cstddef>
#include <cstdint>

namespace omniseg::ops::cpu::avx512 {

// Widest head the kernels handle (SAM ViT-H's 80); wider heads take the OpenBLAS path.
constexpr int64_t kMaxHeadDim = 80;

// Whether attention.cc uses these kernels: the CPU runs AVX-512F code (checked once) and they
// have not been switched off with setEnabled(false) (tests compare both paths).
bool supported();
void setEnabled(bool on);

// Floats of the packed form of S keys of size d: [ceil(S/32), d, 32], zero past key S.
size_t packedKeysSize(int64_t S, int64_t d);

// kp = the packed form of k [S, d ≤ kMaxHeadDim] (row stride ldk).
void packKeys(const float* k, int64_t ldk, int64_t S, int64_t d, float* kp);

// vp [S, d] (dense) = v [S, d] (row stride ldv): a head's values contiguous for weightedValues.
void packValues(const float* v, int64_t ldv, int64_t S, int64_t d, float* vp);

// SAM's decomposed rel-pos bias on a grid of width w, a multiple of 32 (so each 32-key block
// lies in one grid row): key j = (kh, kw) of query row i gets bh[i, kh] + bw[i, kw], where
// bh[i, kh] = (q·relPosHᵀ)[i, qh - kh + h - 1] and bw[i, kw] = (q·relPosWᵀ)[i, qw - kw + w - 1]
// (the query's grid row qh and column qw), gathered by the caller.
struct GridBias {
  const float* bh;  // [n, h]
  int64_t ldbh;
  const float* bw;  // [n, w]
  int64_t ldbw;
  int64_t w;
};

// s[i, j] = scale · Σ_c q[i, c] · k[j, c] (+ bias) for i < n, j < S (row strides ldq, lds; only
// columns j < S are written). kp: packKeys of k. rowMax (if not null) [n]: each row's max.
void scores(const float* q, int64_t ldq, int64_t n, const float* kp, int64_t S, int64_t d,
            float scale, float* s, int64_t lds, float* rowMax = nullptr, const GridBias* bias = nullptr);

// SAM's decomposed rel-pos bias on one query's row of h·w scores (query at grid row qh, column
// qw), where the blocked scores could not add it (AMX tiles; grid widths not a multiple of 32):
// s[kh·w + kw] += th[qh - kh + h - 1] + tw[qw - kw + w - 1] (the two terms summed first), for
// th = q·relPosHᵀ [2h-1] and tw = q·relPosWᵀ [2w-1]; returns the row's max. twRev: w floats of
// scratch. The same floats as the portable loop in attention.cc (addRelPosMax).
float relPosBiasMax(float* s, const float* th, const float* tw, int64_t h, int64_t w, int64_t qh, int64_t qw,
                    float* twRev);

// x[i] = exp(x[i] - mx) over n values (x[i] <= mx, a softmax row); returns their sum. The
// exponential as simd::expf computes it (same range reduction and polynomial) with FMAs and
// vscalefps: it differs from simd::expf by an ulp or so.
float expSum(float* x, int64_t n, float mx);

// o[i, 0:d] = Σ_j p[i, j] · v[j, 0:d] / sums[i] for i < n, j < S (sums null: no division).
// Row strides ldp, ldv, ldo.
void weightedValues(const float* p, int64_t ldp, int64_t n, const float* v, int64_t ldv,
                    int64_t S, int64_t d, const float* sums, float* o, int64_t ldo);

// Whole attention of one head where one side is short (SAM's two-way transformer: 4096 image
// tokens against ~7 prompt tokens, and back), softmax(scale·q·kᵀ)·v in registers:
//   fewKeys:    n queries against S <= kFewKeys keys (a query's scores are one vector)
//   fewQueries: n <= kFewQueries queries of head size d <= 16 against S keys (lanes = queries);
//               scratch: S·48 floats
constexpr int64_t kFewKeys = 16, kFewQueries = 16;
void fewKeys(const float* q, int64_t ldq, int64_t n, const float* k, int64_t ldk, const float* v,
             int64_t ldv, int64_t S, int64_t d, float scale, float* o, int64_t ldo);
void fewQueries(const float* q, int64_t ldq, int64_t n, const float* k, int64_t ldk, const float* v,
                int64_t ldv, int64_t S, int64_t d, float scale, float* scratch, float* o, int64_t ldo);

}  // namespace omniseg::ops::cpu::avx512
