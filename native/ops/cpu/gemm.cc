// GEMM-based ops through OpenBLAS (cblas). OpenBLAS runs single-threaded in each calling
// thread; omniseg splits the rows (or, for few rows, the output columns) across its pool so
// that every thread makes one large call.
#include <cblas.h>

#include <algorithm>
#include <cstring>

#include "ops/cpu/simd.h"
#include "ops/ops.h"

extern "C" void openblas_set_num_threads(int);

namespace omniseg::ops {

void initBlas() { openblas_set_num_threads(1); }

namespace cpu {

namespace {

OMNISEG_SIMD void biasAct(float* y, int64_t rows, int64_t cols, int64_t ldy, const float* b,
                          Act act) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = y + r * ldy;
    if (b) {
      for (int64_t c = 0; c < cols; ++c) row[c] += b[c];
    }
    if (act == Act::Gelu) {
      for (int64_t c = 0; c < cols; ++c) row[c] = simd::gelu(row[c]);
    } else if (act == Act::Relu) {
      for (int64_t c = 0; c < cols; ++c) row[c] = row[c] > 0.f ? row[c] : 0.f;
    } else if (act == Act::QuickGelu) {
      for (int64_t c = 0; c < cols; ++c) row[c] = simd::quickGelu(row[c]);
    }
  }
}

// y[rows, cols] = broadcast b: the bias as the GEMM's C operand (beta = 1), which spares
// OpenBLAS zeroing y (beta = 0) and a second pass adding b.
OMNISEG_SIMD void fillRows(float* y, int64_t rows, int64_t cols, int64_t ldy, const float* b) {
  for (int64_t r = 0; r < rows; ++r) std::memcpy(y + r * ldy, b, static_cast<size_t>(cols) * sizeof(float));
}

// Rows per thread below which splitting the output columns is better than splitting rows.
constexpr int64_t kMinRowsPerThread = 64;
// Multiply-adds below which a GEMM runs on the calling thread alone.
constexpr int64_t kInlineMacs = 1 << 20;

}  // namespace

void linear(Ctx& ctx, const float* x, int64_t M, int64_t K, const float* W, const float* b,
            int64_t N, float* y, Act act, bool accumulate, int64_t ldx, int64_t ldy) {
  if (ldx == 0) ldx = K;
  if (ldy == 0) ldy = N;
  const float beta = accumulate ? 1.f : 0.f;
  const int threads = ctx.pool.size();
  if (M * N * K < kInlineMacs) {
    // Too small to be worth waking other threads (prompt-token matrices in the decoder).
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.f, x, ldx, W, K, beta, y, ldy);
    biasAct(y, M, N, ldy, b, act);
  } else if ((M >= kMinRowsPerThread * threads && M >= N) || N < 64) {
    // y[r0:r1, :] = x[r0:r1, :] · Wᵀ (+ b, as C with beta 1, unless accumulating)
    const bool biasAsC = b != nullptr && !accumulate;
    ctx.pool.parallelRanges(M, 16, [&](int64_t r0, int64_t r1) {
      if (biasAsC) fillRows(y + r0 * ldy, r1 - r0, N, ldy, b);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, N, K, 1.f, x + r0 * ldx, ldx,
                  W, K, biasAsC ? 1.f : beta, y + r0 * ldy, ldy);
      if (act != Act::None || (b && !biasAsC)) biasAct(y + r0 * ldy, r1 - r0, N, ldy, biasAsC ? nullptr : b, act);
    });
  } else {
    // y[:, c0:c1] = x · W[c0:c1, :]ᵀ: each thread packs its share of W and all of x, the
    // cheaper split when x has fewer rows than W (a row split packs all of W in every thread).
    const bool biasAsC = b != nullptr && !accumulate;
    ctx.pool.parallelRanges(N, 16, [&](int64_t c0, int64_t c1) {
      if (biasAsC) fillRows(y + c0, M, c1 - c0, ldy, b + c0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, c1 - c0, K, 1.f, x, ldx, W + c0 * K,
                  K, biasAsC ? 1.f : beta, y + c0, ldy);
      if (act != Act::None || (b && !biasAsC))
        biasAct(y + c0, M, c1 - c0, ldy, b && !biasAsC ? b + c0 : nullptr, act);
    });
  }
}

void matmul(Ctx& ctx, const float* x, int64_t M, int64_t K, const float* B, int64_t N, float* y,
            bool accumulate) {
  const float beta = accumulate ? 1.f : 0.f;
  ctx.pool.parallelRanges(M, 16, [&](int64_t r0, int64_t r1) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, N, K, 1.f, x + r0 * K, K, B, N,
                beta, y + r0 * N, N);
  });
}

void convTranspose(Ctx& ctx, const float* x, int64_t H, int64_t W, int64_t Cin, int64_t k,
                   const float* weight, const float* b, int64_t Cout, float* y, Act act) {
  // The weight's columns reordered from (co, dy, dx) to (dy, dx, co) [Cin, k*k*Cout], so that
  // tmp [H*W, k*k*Cout] = x [H*W, Cin] · that holds each output pixel's Cout channels contiguous
  // (the same dot products as with the checkpoint's order, so the same values).
  ArenaScope scope(ctx.arena);
  const int64_t kk = k * k, OW = k * W;
  float* wp = ctx.arena.floats(Cin * kk * Cout);
  for (int64_t ci = 0; ci < Cin; ++ci)
    for (int64_t co = 0; co < Cout; ++co)
      for (int64_t j = 0; j < kk; ++j) wp[(ci * kk + j) * Cout + co] = weight[(ci * Cout + co) * kk + j];
  float* tmp = ctx.arena.floats(H * W * Cout * kk);
  matmul(ctx, x, H * W, Cin, wp, Cout * kk, tmp);
  const size_t rowBytes = static_cast<size_t>(Cout) * sizeof(float);
  ctx.pool.parallelFor(H, 1, [&](int64_t y0, int64_t y1) {
    for (int64_t iy = y0; iy < y1; ++iy) {
      for (int64_t ix = 0; ix < W; ++ix) {
        const float* t = tmp + (iy * W + ix) * kk * Cout;
        for (int64_t dy = 0; dy < k; ++dy)
          for (int64_t dx = 0; dx < k; ++dx)
            std::memcpy(y + ((k * iy + dy) * OW + k * ix + dx) * Cout, t + (dy * k + dx) * Cout, rowBytes);
      }
      // the k output rows of this input row: [k·OW pixels, Cout], one bias/activation pass
      biasAct(y + k * iy * OW * Cout, k * OW, Cout, Cout, b, act);
    }
  });
}

}  // namespace cpu
}  // namespace omniseg::ops
