// SAM's cross attention between a few prompt tokens and the image, without projecting the image.
//
// The decoder's image side is N = 4096 rows of C = 256; the tokens are Nt ≈ 7 (iou, 4 mask,
// the prompt's points/box), the attention I = 128 wide in 8 heads of d = 16. Projecting the
// image rows (k_proj, v_proj, or q_proj and out_proj) costs N·C·I multiply-adds each, and those
// projections are most of a decode. For one head h and one token t, the product with a
// projection folds onto the token instead (W_h: head h's d rows of W):
//   scores   q_t · (W_h x_n + b_h)  =  (W_hᵀ q_t) · x_n + q_t · b_h
//   values   Σ_n p_n (W_h x_n + b_h) =  W_h (Σ_n p_n x_n) + b_h          (Σ_n p_n = 1)
//   out_proj Wo (Σ_t p_t v_t) + bo   =  Σ_{h,t} p_{h,t} (Wo_h v_{h,t}) + bo
// so every product with the image is one of heads·Nt (= 56) columns instead of I (= 128): a
// decode's image-side work drops from 1.9 to 0.8 GFLOP. The same attention in exact arithmetic;
// in fp32 only the rounding order differs. When heads·Nt > I (many prompt points) the plain
// order is the cheaper one and runs instead.
#include <cblas.h>

#include <algorithm>

#include "ops/cpu/scratch.h"
#include "ops/cpu/simd.h"
#include "ops/ops.h"

namespace omniseg::ops::cpu {

namespace {

// Keys per task of tokensAttendImage and image rows per task of imageAttendsTokens: fixed, so
// the results do not depend on the thread count. A task's scores (56 × 512) stay in L2.
constexpr int64_t kKeyChunk = 512, kRowChunk = 256;

// bd [heads*n, heads*d]: row (h, t) = scale · a[t, head h's d columns] in those columns, zeros
// elsewhere (a [n, heads*d]), so that bd · W applies each head's rows of W to its own slice.
void blockDiagonal(const float* a, int64_t n, int64_t heads, int64_t d, float scale, float* bd) {
  const int64_t I = heads * d;
  std::fill(bd, bd + heads * n * I, 0.f);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t t = 0; t < n; ++t)
      for (int64_t j = 0; j < d; ++j) bd[(h * n + t) * I + h * d + j] = scale * a[t * I + h * d + j];
}

// Each row of s [rows, n] ← exp(row − its max); mx[r], sum[r] ← that max and the row's sum.
OMNISEG_SIMD void expRows(float* s, int64_t rows, int64_t n, float* mx, float* sum) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = s + r * n;
    const float m = simd::max(row, n);
    for (int64_t i = 0; i < n; ++i) row[i] = simd::expf(row[i] - m);
    mx[r] = m;
    sum[r] = simd::sum(row, n);
  }
}

// p [rows, ld]: in each row, columns [0, groups*n) are `groups` softmax groups of n scores
// (+ shift[col] first, when given), normalised in place; column groups*n ← 1.
OMNISEG_SIMD void softmaxGroups(float* p, int64_t rows, int64_t ld, int64_t groups, int64_t n,
                                const float* shift) {
  const int64_t R = groups * n;
  for (int64_t r = 0; r < rows; ++r) {
    float* row = p + r * ld;
    if (shift)
      for (int64_t i = 0; i < R; ++i) row[i] += shift[i];
    for (int64_t g = 0; g < groups; ++g) {
      float* x = row + g * n;
      const float m = simd::max(x, n);
      for (int64_t i = 0; i < n; ++i) x[i] -= m;
    }
    for (int64_t i = 0; i < R; ++i) row[i] = simd::expf(row[i]);
    for (int64_t g = 0; g < groups; ++g) {
      float* x = row + g * n;
      const float inv = 1.f / simd::sum(x, n);
      for (int64_t i = 0; i < n; ++i) x[i] *= inv;
    }
    row[R] = 1.f;
  }
}

}  // namespace

void tokensAttendImage(Ctx& ctx, const float* q, int64_t Nq, const float* k, const float* v,
                       int64_t N, int64_t C, const float* Wk, const float* bk, const float* Wv,
                       const float* bv, int64_t heads, int64_t d, float scale, float* out) {
  const int64_t I = heads * d, R = heads * Nq;
  ArenaScope scope(ctx.arena);
  if (R > I) {  // the plain order: project the image rows, then attend
    float* K = ctx.arena.floats(static_cast<size_t>(N * I));  // [N, I]
    float* V = ctx.arena.floats(static_cast<size_t>(N * I));  // [N, I]
    cpu::linear(ctx, k, N, C, Wk, bk, I, K);
    cpu::linear(ctx, v, N, C, Wv, bv, I, V);
    cpu::attention(ctx, q, I, K, I, V, I, Nq, N, heads, d, scale, out);
    return;
  }
  // qk [R, C]: row (h, t) = scale · Wk_hᵀ q_h[t]; its dot product with k[n] is the score of
  // query t, head h, with key n up to scale · q_h[t] · bk_h, a constant of the row that the
  // softmax cancels (so bk is not read).
  float* qbd = ctx.arena.floats(static_cast<size_t>(R * I));
  blockDiagonal(q, Nq, heads, d, scale, qbd);
  float* qk = ctx.arena.floats(static_cast<size_t>(R * C));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, C, I, 1.f, qbd, I, Wk, C, 0.f, qk, C);

  // Per chunk of keys: e = exp(qk · kᵀ − max) [R, n], its max and sum, and A_c = e · v [R, C].
  const int64_t chunks = (N + kKeyChunk - 1) / kKeyChunk;
  float* part = ctx.arena.floats(static_cast<size_t>(chunks * R * C));  // [chunks, R, C]
  float* mx = ctx.arena.floats(static_cast<size_t>(chunks * R));        // [chunks, R]
  float* sum = ctx.arena.floats(static_cast<size_t>(chunks * R));       // [chunks, R]
  ctx.pool.parallelFor(chunks, 1, [&](int64_t c0, int64_t c1) {
    float* s = threadScratch(static_cast<size_t>(R * kKeyChunk));
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t n0 = c * kKeyChunk, n = std::min(kKeyChunk, N - n0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, n, C, 1.f, qk, C, k + n0 * C, C, 0.f, s, n);
      expRows(s, R, n, mx + c * R, sum + c * R);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, C, n, 1.f, s, n, v + n0 * C, C, 0.f,
                  part + c * R * C, C);
    }
  });
  // a [R, C] = Σ_n p_n v[n] per row: the chunks rescaled to the common max, in chunk order.
  float* a = ctx.arena.floats(static_cast<size_t>(R * C));
  float* w = ctx.arena.floats(static_cast<size_t>(chunks));  // each chunk's weight e^(its max - m)
  for (int64_t r = 0; r < R; ++r) {
    float m = mx[r];
    for (int64_t c = 1; c < chunks; ++c) m = std::max(m, mx[c * R + r]);
    float total = 0.f;
    for (int64_t c = 0; c < chunks; ++c) total += sum[c * R + r] * (w[c] = simd::expf(mx[c * R + r] - m));
    float* ar = a + r * C;
    std::fill(ar, ar + C, 0.f);
    for (int64_t c = 0; c < chunks; ++c) {
      const float* pr = part + (c * R + r) * C;
      const float f = w[c] / total;
      for (int64_t i = 0; i < C; ++i) ar[i] += f * pr[i];
    }
  }
  // out[t, head h] = Wv_h · a[(h, t)] + bv_h: the diagonal blocks of a · Wvᵀ [R, I].
  float* av = ctx.arena.floats(static_cast<size_t>(R * I));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, I, C, 1.f, a, C, Wv, C, 0.f, av, I);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t t = 0; t < Nq; ++t)
      for (int64_t j = 0; j < d; ++j)
        out[t * I + h * d + j] = av[(h * Nq + t) * I + h * d + j] + (bv ? bv[h * d + j] : 0.f);
}

void imageAttendsTokens(Ctx& ctx, const float* xq, const float* Q, int64_t N, int64_t C,
                        const float* Wq, const float* bq, const float* K, const float* V,
                        int64_t Nt, int64_t heads, int64_t d, float scale, const float* Wo,
                        const float* bo, float* x) {
  const int64_t I = heads * d, R = heads * Nt;
  ArenaScope scope(ctx.arena);
  if (R > I) {  // the plain order: project the image rows, attend, out_proj into x
    if (!Q) {
      float* t = ctx.arena.floats(static_cast<size_t>(N * I));  // [N, I]
      cpu::linear(ctx, xq, N, C, Wq, bq, I, t);
      Q = t;
    }
    float* att = ctx.arena.floats(static_cast<size_t>(N * I));  // [N, I]
    cpu::attention(ctx, Q, I, K, I, V, I, N, Nt, heads, d, scale, att);
    cpu::linear(ctx, att, N, I, Wo, bo, C, x, Act::None, /*accumulate=*/true);
    return;
  }
  // Scores [N, R] = src · Bᵀ (+ shift): with Q given, src = Q and B = the block-diagonal keys
  // kbd [R, I] (row (h, t) = scale · K_h[t]); otherwise src = xq and B = kbd · Wq [R, C], shift
  // = kbd · bq (the query bias's part, which varies along the softmax's tokens).
  float* kbd = ctx.arena.floats(static_cast<size_t>(R * I));
  blockDiagonal(K, Nt, heads, d, scale, kbd);
  const float* src = Q ? Q : xq;
  const int64_t width = Q ? I : C;
  const float* B = kbd;
  float* shift = nullptr;
  if (!Q) {
    float* kw = ctx.arena.floats(static_cast<size_t>(R * C));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, C, I, 1.f, kbd, I, Wq, C, 0.f, kw, C);
    B = kw;
    if (bq) {
      shift = ctx.arena.floats(static_cast<size_t>(R));
      for (int64_t r = 0; r < R; ++r) {
        float acc = 0.f;
        for (int64_t i = 0; i < I; ++i) acc += kbd[r * I + i] * bq[i];
        shift[r] = acc;
      }
    }
  }
  // u [R + 1, C]: row (h, t) = Wo_h V_h[t], what token t adds through head h; row R = bo (each
  // probability row carries a 1 there, so x += p · u is the whole out_proj).
  float* vbd = ctx.arena.floats(static_cast<size_t>(R * I));
  blockDiagonal(V, Nt, heads, d, 1.f, vbd);
  float* u = ctx.arena.floats(static_cast<size_t>((R + 1) * C));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, C, I, 1.f, vbd, I, Wo, I, 0.f, u, C);
  for (int64_t i = 0; i < C; ++i) u[R * C + i] = bo ? bo[i] : 0.f;

  const int64_t chunks = (N + kRowChunk - 1) / kRowChunk, ld = R + 1;
  ctx.pool.parallelFor(chunks, 1, [&](int64_t c0, int64_t c1) {
    float* p = threadScratch(static_cast<size_t>(kRowChunk * ld));
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t r0 = c * kRowChunk, rows = std::min(kRowChunk, N - r0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, R, width, 1.f, src + r0 * width, width,
                  B, width, 0.f, p, ld);
      softmaxGroups(p, rows, ld, heads, Nt, shift);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, C, ld, 1.f, p, ld, u, C, 1.f,
                  x + r0 * C, C);
    }
  });
}

}  // namespace omniseg::ops::cpu
