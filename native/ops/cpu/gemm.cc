// GEMM-based ops through OpenBLAS (cblas), and linear layers on AMX tiles where the Ctx has the
// model's weights packed for them (ops/cpu/gemm_amx.h). OpenBLAS runs single-threaded in each
// calling thread; omniseg splits the rows (or, for few rows, the output columns) across its pool
// so that every thread makes one large call.
#include <cblas.h>

#include <algorithm>
#include <cstring>

#include "ops/cpu/gemm_amx.h"
#include "ops/cpu/scratch.h"
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

// OpenBLAS's small-matrix kernels read the operands in place instead of packing them first; the
// SKYLAKEX builds of 0.3.21 take them for calls of at most 100³ multiply-adds whose output has
// at most 1200 elements (and K >= 32). With few rows a call is mostly the packing of W, so
// columnsGemm splits its columns into calls of that size: each weight is then read once, not
// copied (text towers, token MLPs: ~1.8× faster).
constexpr int64_t kSmallMacs = 1000000, kSmallOutputs = 1200;

// y[:, c0:c1] (+)= x · W[c0:c1, :]ᵀ, in small-kernel-sized column chunks where M and K allow.
void columnsGemm(const float* x, int64_t M, int64_t K, int64_t ldx, const float* W, int64_t c0, int64_t c1,
                 float beta, float* y, int64_t ldy) {
  const int64_t fit = M > 0 && K > 0 ? std::min(kSmallMacs / (M * K), kSmallOutputs / M) / 16 * 16 : 0;
  const int64_t chunk = K >= 32 && fit >= 16 ? fit : c1 - c0;
  for (int64_t c = c0; c < c1; c += chunk)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, std::min(chunk, c1 - c), K, 1.f, x, ldx,
                W + c * K, K, beta, y + c, ldy);
}

// bias + activation of a block of y the AMX kernel has written (its columns from col0).
struct BiasAct {
  const float* b;
  Act act;
};
void finishBlock(const void* arg, float* y, int64_t rows, int64_t cols, int64_t ldy, int64_t col0) {
  const auto* f = static_cast<const BiasAct*>(arg);
  biasAct(y, rows, cols, ldy, f->b ? f->b + col0 : nullptr, f->act);
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
  if (M >= amx::kMinRows && amx::active(ctx)) {
    if (const amx::PackedWeight* w = ctx.packs->find(ctx, W, N, K)) {
      const BiasAct f{b, act};
      const bool finish = b != nullptr || act != Act::None;
      amx::linear(ctx, x, M, ldx, *w, y, ldy, accumulate, finish ? finishBlock : nullptr, &f);
      return;
    }
  }
  if (M * N * K < kInlineMacs) {
    // Too small to be worth waking other threads (prompt-token matrices in the decoder).
    columnsGemm(x, M, K, ldx, W, 0, N, beta, y, ldy);
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
      columnsGemm(x, M, K, ldx, W, c0, c1, biasAsC ? 1.f : beta, y, ldy);
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

namespace {

// The weight's columns reordered from (co, dy, dx) to (dy, dx, co) [Cin, k*k*Cout], so that
// x [pixels, Cin] · that holds each output pixel's Cout channels contiguous (the same dot
// products as with the checkpoint's order, so the same values).
float* permutedConvTWeights(Ctx& ctx, const float* weight, int64_t Cin, int64_t k, int64_t Cout) {
  const int64_t kk = k * k;
  float* wp = ctx.arena.floats(Cin * kk * Cout);
  for (int64_t ci = 0; ci < Cin; ++ci)
    for (int64_t co = 0; co < Cout; ++co)
      for (int64_t j = 0; j < kk; ++j) wp[(ci * kk + j) * Cout + co] = weight[(ci * Cout + co) * kk + j];
  return wp;
}

// Runs fn(iy0, iy1, t) over chunks of input rows, t [(iy1-iy0)·W, k·k·Cout] = act(their
// pixels · wp + b) (per output pixel, Cout channels contiguous). A chunk's t (~512 pixels) stays
// in the core's L2 for fn; wp is small (packed again per chunk at little cost).
template <class Fn>
void convTChunks(Ctx& ctx, const float* x, int64_t H, int64_t W, int64_t Cin, int64_t k,
                 const float* wp, const float* b, int64_t Cout, Act act, const Fn& fn) {
  const int64_t n = k * k * Cout, rows = std::max<int64_t>(1, 512 / W);
  ctx.pool.parallelFor(H, rows, [&](int64_t y0, int64_t y1) {
    const int64_t px = (y1 - y0) * W;
    float* t = threadScratch(static_cast<size_t>(px * n));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, px, n, Cin, 1.f, x + y0 * W * Cin, Cin, wp, n, 0.f, t, n);
    biasAct(t, px * k * k, Cout, Cout, b, act);
    fn(y0, y1, t);
  });
}

// out[p] = Σ_c z[c] · proj[p, c] for p < P (8 running partial sums per dot, as simd::sum).
OMNISEG_SIMD void projectPixel(const float* z, int64_t C, const float* proj, int64_t P, float* out) {
  for (int64_t p = 0; p < P; ++p) {
    const float* w = proj + p * C;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t c = 0;
    for (; c + 8 <= C; c += 8)
      for (int j = 0; j < 8; ++j) acc[j] += z[c + j] * w[c + j];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; c < C; ++c) s += z[c] * w[c];
    out[p] = s;
  }
}

}  // namespace

void convTranspose(Ctx& ctx, const float* x, int64_t H, int64_t W, int64_t Cin, int64_t k,
                   const float* weight, const float* b, int64_t Cout, float* y, Act act) {
  ArenaScope scope(ctx.arena);
  const float* wp = permutedConvTWeights(ctx, weight, Cin, k, Cout);
  const int64_t OW = k * W;
  const size_t rowBytes = static_cast<size_t>(Cout) * sizeof(float);
  convTChunks(ctx, x, H, W, Cin, k, wp, b, Cout, act, [&](int64_t y0, int64_t y1, const float* t) {
    for (int64_t iy = y0; iy < y1; ++iy)
      for (int64_t ix = 0; ix < W; ++ix, t += k * k * Cout)
        for (int64_t dy = 0; dy < k; ++dy)
          for (int64_t dx = 0; dx < k; ++dx)
            std::memcpy(y + ((k * iy + dy) * OW + k * ix + dx) * Cout, t + (dy * k + dx) * Cout, rowBytes);
  });
}

void convTransposeProject(Ctx& ctx, const float* x, int64_t H, int64_t W, int64_t Cin, int64_t k,
                          const float* weight, const float* b, int64_t Cout, Act act,
                          const float* proj, int64_t P, float* y) {
  ArenaScope scope(ctx.arena);
  const float* wp = permutedConvTWeights(ctx, weight, Cin, k, Cout);
  const int64_t OW = k * W, plane = k * H * OW;
  convTChunks(ctx, x, H, W, Cin, k, wp, b, Cout, act, [&](int64_t y0, int64_t y1, const float* t) {
    float out[64];
    for (int64_t iy = y0; iy < y1; ++iy)
      for (int64_t ix = 0; ix < W; ++ix)
        for (int64_t dy = 0; dy < k; ++dy)
          for (int64_t dx = 0; dx < k; ++dx, t += Cout)
            for (int64_t p0 = 0; p0 < P; p0 += 64) {
              const int64_t np = std::min<int64_t>(64, P - p0);
              projectPixel(t, Cout, proj + p0 * Cout, np, out);
              for (int64_t p = 0; p < np; ++p) y[(p0 + p) * plane + (k * iy + dy) * OW + k * ix + dx] = out[p];
            }
  });
}

}  // namespace cpu
}  // namespace omniseg::ops
