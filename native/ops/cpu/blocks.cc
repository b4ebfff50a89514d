// Fused transformer-layer ops on the CPU: compositions of the single ops (ops/op_list.inc), with
// scratch from the arena. The results are the ops' own, so a model that calls these matches one
// that calls the pieces bit for bit.
#include "core/profile.h"
#include "ops/ops.h"

namespace omniseg::ops::cpu {

void layerNormLinear(Ctx& ctx, const float* x, int64_t M, int64_t K, const float* gamma,
                     const float* beta, float eps, const float* W, const float* b, int64_t N,
                     float* y) {
  ArenaScope scope(ctx.arena);
  float* ln = ctx.arena.floats(static_cast<size_t>(M * K));  // [M, K]
  cpu::layerNorm(ctx, x, M, K, gamma, beta, eps, ln);
  cpu::linear(ctx, ln, M, K, W, b, N, y);
}

void preNormMlp(Ctx& ctx, float* x, int64_t M, int64_t C, const float* gamma, const float* beta,
                float eps, const float* W1, const float* b1, int64_t H, Act act, const float* W2,
                const float* b2) {
  ArenaScope scope(ctx.arena);
  float* ln = ctx.arena.floats(static_cast<size_t>(M * C));  // [M, C]
  cpu::layerNorm(ctx, x, M, C, gamma, beta, eps, ln);
  float* h = ctx.arena.floats(static_cast<size_t>(M * H));  // [M, H]
  cpu::linear(ctx, ln, M, C, W1, b1, H, h, act);
  cpu::linear(ctx, h, M, H, W2, b2, C, x, Act::None, /*accumulate=*/true);
}

void windowRelPosAttention(Ctx& ctx, const float* qkv, int64_t E, int64_t ws, const float* fill,
                           int64_t heads, int64_t d, const float* relPosH, const float* relPosW,
                           float* out) {
  const int64_t nw = (E + ws - 1) / ws, B = nw * nw, T = B * ws * ws, C = heads * d;
  ArenaScope scope(ctx.arena);
  float* qkvWin = ctx.arena.floats(static_cast<size_t>(T * 3 * C));  // [nW, ws*ws, 3C]
  float* outWin = ctx.arena.floats(static_cast<size_t>(T * C));      // [nW, ws*ws, C]
  cpu::windowPartition(ctx, qkv, E, 3 * C, ws, fill, qkvWin);
  cpu::relPosAttention(ctx, qkvWin, B, ws, ws, heads, d, relPosH, relPosW, outWin);
  cpu::windowUnpartition(ctx, outWin, E, C, ws, out);
}

void preNormRelPosAttention(Ctx& ctx, float* x, int64_t B, int64_t E, int64_t C, const float* gamma,
                            const float* beta, float eps, const float* Wqkv, const float* bqkv,
                            int64_t heads, int64_t ws, const float* relPosH, const float* relPosW,
                            const float* Wproj, const float* bproj) {
  const int64_t N = E * E, M = B * N, d = C / heads;
  ArenaScope scope(ctx.arena);
  float* qkv = ctx.arena.floats(static_cast<size_t>(M * 3 * C));  // [B*E*E, 3C]
  {
    ProfileScope ps("layer norm + qkv");
    cpu::layerNormLinear(ctx, x, M, C, gamma, beta, eps, Wqkv, bqkv, 3 * C, qkv);
  }
  float* att = ctx.arena.floats(static_cast<size_t>(M * C));  // [B*E*E, C]
  if (ws > 0) {
    ProfileScope ps("attention (window)");
    // window_partition pads the grid with zero tokens, whose qkv is the qkv bias
    for (int64_t b = 0; b < B; ++b)
      cpu::windowRelPosAttention(ctx, qkv + b * N * 3 * C, E, ws, bqkv, heads, d, relPosH, relPosW,
                                 att + b * N * C);
  } else {
    ProfileScope ps("attention (global)");
    cpu::relPosAttention(ctx, qkv, B, E, E, heads, d, relPosH, relPosW, att);
  }
  ProfileScope ps("proj");
  cpu::linear(ctx, att, M, C, Wproj, bproj, C, x, Act::None, /*accumulate=*/true);
}

}  // namespace omniseg::ops::cpu
