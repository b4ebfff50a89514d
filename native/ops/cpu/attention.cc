// Attention kernels. Each task handles one (grid or window, head, block of query rows): scores
// by GEMM into a per-thread buffer, bias + softmax in one pass over the row, then the GEMM with
// V written straight into the output's head columns. Nothing of size tokens² per head is kept.
#include <cblas.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "ops/cpu/simd.h"
#include "ops/ops.h"

namespace omniseg::ops::cpu {

namespace {

// Per-thread scratch that survives between calls (sized to the largest use).
float* scratch(size_t n) {
  thread_local std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// Softmax over `rows` contiguous rows of n (short) scores: the exponentials in one vectorised
// pass over the block instead of a scalar tail per row (n < 8 never fills a vector).
OMNISEG_SIMD void softmaxShortRows(float* s, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = s + r * n;
    const float mx = simd::max(row, n);
    for (int64_t i = 0; i < n; ++i) row[i] -= mx;
  }
  for (int64_t i = 0; i < rows * n; ++i) s[i] = simd::expf(s[i]);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = s + r * n;
    const float inv = 1.f / simd::sum(row, n);
    for (int64_t i = 0; i < n; ++i) row[i] *= inv;
  }
}

// Keys below which softmaxShortRows is used (image-to-token attention: 4096 queries, ~7 keys).
constexpr int64_t kShortRow = 64;

// scores[kh*w + kw] += th[qh - kh + h - 1] + tw[qw - kw + w - 1] (decomposed rel-pos bias), and
// the row's max afterwards, in the same pass. twRev holds the w width terms for this query in key
// order, colMax [w] the running max of each key column.
OMNISEG_SIMD float addRelPosMax(float* scores, const float* th, const float* tw, int64_t h, int64_t w,
                                int64_t qh, int64_t qw, float* twRev, float* colMax) {
  for (int64_t kw = 0; kw < w; ++kw) {
    twRev[kw] = tw[qw - kw + w - 1];
    colMax[kw] = -std::numeric_limits<float>::infinity();
  }
  for (int64_t kh = 0; kh < h; ++kh) {
    const float bh = th[qh - kh + h - 1];
    float* s = scores + kh * w;
    for (int64_t kw = 0; kw < w; ++kw) {
      const float v = s[kw] + (bh + twRev[kw]);
      s[kw] = v;
      colMax[kw] = v > colMax[kw] ? v : colMax[kw];
    }
  }
  return simd::max(colMax, w);
}

// x[i] = exp(x[i] - mx) over n values; returns their sum (16 running partial sums).
OMNISEG_SIMD float expSum(float* x, int64_t n, float mx) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) {
      const float e = simd::expf(x[i + j] - mx);
      x[i + j] = e;
      acc[j] += e;
    }
  float s = 0.f;
  for (int j = 0; j < 16; ++j) s += acc[j];
  for (; i < n; ++i) {
    const float e = simd::expf(x[i] - mx);
    x[i] = e;
    s += e;
  }
  return s;
}

// o[i, 0:d] /= sums[i] for n rows of stride ld (softmax normalisation after P·V).
OMNISEG_SIMD void scaleRows(float* o, int64_t n, int64_t d, int64_t ld, const float* sums) {
  for (int64_t i = 0; i < n; ++i) {
    const float inv = 1.f / sums[i];
    for (int64_t j = 0; j < d; ++j) o[i * ld + j] *= inv;
  }
}

}  // namespace

void attention(Ctx& ctx, const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v,
               int64_t ldv, int64_t Nq, int64_t Nk, int64_t heads, int64_t d, float scale,
               float* out, bool causal) {
  const int64_t C = heads * d;
  const int64_t qb = std::min<int64_t>(Nq, 256);
  const int64_t blocks = (Nq + qb - 1) / qb;
  ctx.pool.parallelFor(heads * blocks, 1, [&](int64_t t0, int64_t t1) {
    float* s = scratch(static_cast<size_t>(qb * Nk + qb));  // scores [qb, Nk] | sums [qb]
    float* sums = s + qb * Nk;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t hd = t / blocks, i0 = (t % blocks) * qb, n = std::min(qb, Nq - i0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, Nk, d, scale, q + i0 * ldq + hd * d,
                  ldq, k + hd * d, ldk, 0.f, s, Nk);
      float* o = out + i0 * C + hd * d;
      if (!causal && Nk < kShortRow) {
        softmaxShortRows(s, n, Nk);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, Nk, 1.f, s, Nk, v + hd * d, ldv, 0.f, o, C);
        continue;
      }
      // Long rows: max, then exp + sum in one pass; 1/sum scales the d outputs after P·V.
      for (int64_t i = 0; i < n; ++i) {
        // causal: keys after the query get probability 0 (the reference adds -inf)
        const int64_t valid = causal ? std::min(Nk, i0 + i + 1) : Nk;
        float* row = s + i * Nk;
        sums[i] = expSum(row, valid, simd::max(row, valid));
        std::fill(row + valid, row + Nk, 0.f);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, Nk, 1.f, s, Nk, v + hd * d, ldv, 0.f, o, C);
      scaleRows(o, n, d, C, sums);
    }
  });
}

void relPosAttention(Ctx& ctx, const float* qkv, int64_t B, int64_t h, int64_t w, int64_t heads,
                     int64_t d, const float* relPosH, const float* relPosW, float* out) {
  const int64_t S = h * w, C = heads * d, ld = 3 * C;
  // Query rows per block: the whole grid for windows; 512 for global attention, so that K and V
  // (packed by each GEMM call) are packed once per 512 queries.
  const int64_t qb = S <= 512 ? S : 512;
  const int64_t blocks = (S + qb - 1) / qb;
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  ctx.pool.parallelFor(B * heads * blocks, 1, [&](int64_t t0, int64_t t1) {
    // scores [qb, S] | th [qb, 2h-1] | tw [qb, 2w-1] | twRev [w] | colMax [w] | sums [qb]
    float* s = scratch(static_cast<size_t>(qb * S + qb * (2 * h - 1) + qb * (2 * w - 1) + 2 * w + qb));
    float* th = s + qb * S;
    float* tw = th + qb * (2 * h - 1);
    float* twRev = tw + qb * (2 * w - 1);
    float* colMax = twRev + w;
    float* sums = colMax + w;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / (heads * blocks), hd = (t / blocks) % heads;
      const int64_t i0 = (t % blocks) * qb, n = std::min(qb, S - i0);
      const float* base = qkv + b * S * ld;
      const float* Q = base + i0 * ld + hd * d;  // [n, d] stride ld
      const float* K = base + C + hd * d;        // [S, d]
      const float* V = base + 2 * C + hd * d;    // [S, d]
      // scores = (q·scale)·kᵀ ; th = q·relPosHᵀ ; tw = q·relPosWᵀ  (bias uses the unscaled q)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, S, d, scale, Q, ld, K, ld, 0.f, s, S);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, 2 * h - 1, d, 1.f, Q, ld, relPosH, d,
                  0.f, th, 2 * h - 1);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, 2 * w - 1, d, 1.f, Q, ld, relPosW, d,
                  0.f, tw, 2 * w - 1);
      // softmax in two passes over each row (bias + max, exp + sum); the 1/sum scales the d
      // outputs of the row after P·V instead of its S probabilities.
      for (int64_t i = 0; i < n; ++i) {
        const int64_t qi = i0 + i;
        const float mx = addRelPosMax(s + i * S, th + i * (2 * h - 1), tw + i * (2 * w - 1), h, w, qi / w,
                                      qi % w, twRev, colMax);
        sums[i] = expSum(s + i * S, S, mx);
      }
      float* o = out + (b * S + i0) * C + hd * d;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, S, 1.f, s, S, V, ld, 0.f, o, C);
      scaleRows(o, n, d, C, sums);
    }
  });
}

}  // namespace omniseg::ops::cpu
