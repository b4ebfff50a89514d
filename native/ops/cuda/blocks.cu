// Fused transformer-layer ops on CUDA. In fp32 precision (the parity path) they run the single
// ops in sequence, as the CPU does (ops/cpu/blocks.cc). In half precision the intermediate that
// feeds a GEMM is written once, already rounded for it: the layer norm writes half values
// (layerNormHalf), and the MLP's first GEMM writes its hidden layer in half precision with the
// bias added in its epilogue, the activation then applied in place (linearHalfOutput). That
// saves the fp32 round trip and the separate rounding pass of each GEMM input.
#include "core/arena.h"
#include "ops/cuda/launch.h"

namespace omniseg::ops::cuda {

void layerNormLinear(Ctx& ctx, const float* x, int64_t M, int64_t K, const float* gamma,
                     const float* beta, float eps, const float* W, const float* b, int64_t N,
                     float* y) {
  OMNISEG_CHECK(M >= 0 && K > 0 && N > 0, "layerNormLinear: bad shape");
  OMNISEG_CHECK(x && gamma && beta && W && y, "layerNormLinear: null operand");
  if (M == 0) return;
  ArenaScope scope(ctx.arena);
  if (ctx.gpu->precision() == Precision::Fp32 || M <= 16) {  // (as in preNormMlp)
    float* ln = ctx.arena.floats(static_cast<size_t>(M * K));  // [M, K]
    cuda::layerNorm(ctx, x, M, K, gamma, beta, eps, ln);
    cuda::linear(ctx, ln, M, K, W, b, N, y);
    return;
  }
  linearHalfInput(ctx, layerNormHalf(ctx, x, M, K, gamma, beta, eps), M, K, W, b, N, y);
}

void preNormMlp(Ctx& ctx, float* x, int64_t M, int64_t C, const float* gamma, const float* beta,
                float eps, const float* W1, const float* b1, int64_t H, Act act, const float* W2,
                const float* b2) {
  OMNISEG_CHECK(M >= 0 && C > 0 && H > 0, "preNormMlp: bad shape");
  OMNISEG_CHECK(x && gamma && beta && W1 && W2, "preNormMlp: null operand");
  if (M == 0) return;
  ArenaScope scope(ctx.arena);
  const Precision p = ctx.gpu->precision();
  if (p == Precision::Fp32 || M <= 16) {  // (up to 16 rows, linear's fp32 small-M kernels)
    float* h = ctx.arena.floats(static_cast<size_t>(M * H));  // [M, H]
    float* ln = ctx.arena.floats(static_cast<size_t>(M * C));  // [M, C]
    cuda::layerNorm(ctx, x, M, C, gamma, beta, eps, ln);
    cuda::linear(ctx, ln, M, C, W1, b1, H, h, act);
    cuda::linear(ctx, h, M, H, W2, b2, C, x, Act::None, /*accumulate=*/true);
    return;
  }
  // lin1 writes its half output directly (bias in the epilogue), act in place on it; lin2 reads it.
  const void* hh = linearHalfOutput(ctx, layerNormHalf(ctx, x, M, C, gamma, beta, eps), M, C, W1, b1, H, act);
  linearHalfInput(ctx, hh, M, H, W2, b2, C, x, Act::None, /*accumulate=*/true);
}

void convTransposeProject(Ctx& ctx, const float* x, int64_t H, int64_t W, int64_t Cin, int64_t k,
                          const float* weight, const float* b, int64_t Cout, Act act,
                          const float* proj, int64_t P, float* y) {
  // the two ops in sequence (the intermediate is one graph node's output on the GPU)
  ArenaScope scope(ctx.arena);
  float* up = ctx.arena.floats(static_cast<size_t>(k * k * H * W * Cout));  // [(kH)*(kW), Cout]
  cuda::convTranspose(ctx, x, H, W, Cin, k, weight, b, Cout, up, act);
  cuda::linear(ctx, proj, P, Cout, up, nullptr, k * k * H * W, y);
}

// SAM's token ↔ image cross attention: the projections, attention and out_proj in sequence, as
// the reference orders them (the CPU's factored order, ops/cpu/cross_attention.cc, pays off
// where the image-side GEMMs are the time; on the GPU a decode is launch-bound).
void tokensAttendImage(Ctx& ctx, const float* q, int64_t Nq, const float* k, const float* v,
                       int64_t N, int64_t C, const float* Wk, const float* bk, const float* Wv,
                       const float* bv, int64_t heads, int64_t d, float scale, float* out) {
  const int64_t I = heads * d;
  ArenaScope scope(ctx.arena);
  float* K = ctx.arena.floats(static_cast<size_t>(N * I));  // [N, I]
  float* V = ctx.arena.floats(static_cast<size_t>(N * I));  // [N, I]
  cuda::linear(ctx, k, N, C, Wk, bk, I, K);
  cuda::linear(ctx, v, N, C, Wv, bv, I, V);
  cuda::attention(ctx, q, I, K, I, V, I, Nq, N, heads, d, scale, out);
}

void imageAttendsTokens(Ctx& ctx, const float* xq, const float* Q, int64_t N, int64_t C,
                        const float* Wq, const float* bq, const float* K, const float* V,
                        int64_t Nt, int64_t heads, int64_t d, float scale, const float* Wo,
                        const float* bo, float* x) {
  const int64_t I = heads * d;
  ArenaScope scope(ctx.arena);
  if (!Q) {
    float* t = ctx.arena.floats(static_cast<size_t>(N * I));  // [N, I]
    cuda::linear(ctx, xq, N, C, Wq, bq, I, t);
    Q = t;
  }
  float* att = ctx.arena.floats(static_cast<size_t>(N * I));  // [N, I]
  cuda::attention(ctx, Q, I, K, I, V, I, N, Nt, heads, d, scale, att);
  cuda::linear(ctx, att, N, I, Wo, bo, C, x, Act::None, /*accumulate=*/true);
}

}  // namespace omniseg::ops::cuda
