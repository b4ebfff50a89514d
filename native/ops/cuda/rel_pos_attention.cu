// SAM ViT attention with decomposed relative-position bias (the encoder's windowed and global
// attention), with the CPU backend's semantics: scores = (q·kᵀ)·scale + relH + relW where
// relH[q, kh] = q·relPosH[qh - kh + h - 1] and relW[q, kw] = q·relPosW[qw - kw + w - 1] use the
// unscaled q; softmax; ·v.
// Steps: a permute kernel (split_heads.cuh) qkv [B, T, 3, heads, d] → Q, K, V [B*heads, T, d];
// two GEMMs for the rel-pos terms th = Q·relPosHᵀ [B*heads*T, 2h-1] and tw = Q·relPosWᵀ
// [.., 2w-1]; then per chunk of (window, head) pairs a strided-batched GEMM for the scores
// [chunk, T, T], the softmax kernel that adds the bias first (attention.cu), a batched GEMM
// O = P·V; finally a permute of O [B, heads, T, d] into out [B, T, heads*d].
// In half precision, Q, K and V are split and rounded to fp16 / bf16 in one pass, both rel-pos
// terms come from one GEMM of the half q with [relPosH; relPosW] (zero-padded to 8-row multiples),
// and the fused tensor-core kernel (flash_attention.cu) replaces the score GEMM, softmax and P·V
// where it supports the shape. The windowed half paths split the windows straight out of the
// grid and have the fused kernel write its output onto the grid (no partition passes);
// preNormRelPosAttention's takes the windows of all the batch's images in one pass of each.
#include <algorithm>
#include <cmath>

#include "core/arena.h"
#include "ops/cuda/flash_attention.h"
#include "ops/cuda/launch.h"
#include "ops/cuda/split_heads.cuh"

namespace omniseg::ops::cuda {

namespace {

using split::WindowSource;

template <class In, class T>
void splitHeads(Ctx& ctx, const In* qkv, int64_t B, int64_t Tn, int64_t heads, int64_t d, T* dst,
                WindowSource win = {}) {
  OMNISEG_CHECK(B * Tn <= INT32_MAX, "relPosAttention: too many tokens");
  const int64_t per = B * heads * Tn * d, chunks = B * Tn * 3 * heads * d / 8;
  const bool vec = d % 8 == 0 && chunks <= INT32_MAX && 3 * heads * d <= INT32_MAX &&
                   ((reinterpret_cast<uintptr_t>(qkv) | reinterpret_cast<uintptr_t>(dst)) & 15u) == 0;
  if (vec) {
    split::splitHeads8Kernel<<<gridFor(chunks), kThreads, 0, stream(ctx)>>>(
        qkv, static_cast<uint32_t>(chunks), static_cast<uint32_t>(Tn), static_cast<uint32_t>(heads),
        static_cast<uint32_t>(d), per, win, dst);
    gpu::checkLaunch("splitHeads8Kernel");
    return;
  }
  split::splitHeadsKernel<<<static_cast<unsigned>(B * Tn), kThreads, 0, stream(ctx)>>>(
      qkv, Tn, heads, d, per, win, dst);
  gpu::checkLaunch("splitHeadsKernel");
}

// O [B, heads, T, d] → out [B, T, heads, d].
__global__ void mergeHeadsKernel(const float* O, int64_t B, int64_t T, int64_t heads, int64_t d,
                                 float* out) {
  const int64_t n = B * T * heads * d;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t e = i % d, hd = (i / d) % heads, bt = i / (d * heads);
    const int64_t b = bt / T, t = bt - b * T;
    out[i] = O[((b * heads + hd) * T + t) * d + e];
  }
}

// Row-major y[M, N] = x[M, d]·R[N, d]ᵀ (x and R dense, of `type`; y fp32, row stride ldy).
void gemmNT(Ctx& ctx, const void* x, int64_t M, int64_t d, const void* R, int64_t N, float* y,
            cudaDataType_t type = CUDA_R_32F, int64_t ldy = 0) {
  ltGemm(ctx, linearGemm(R, x, d, M, d, N, y, ldy > 0 ? ldy : N, type));
}

// [relPosH; relPosW] as one half matrix [nhp + nwp, d], each part padded with zero rows to a
// multiple of 8 rows (nhp, nwp), so that both rel-pos terms come from one well-shaped GEMM. Made
// once per stream for a model's weights (gpu::Stream::derived), in the arena for other operands.
const void* relPosPair(Ctx& ctx, const float* relPosH, int64_t nh, const float* relPosW, int64_t nw,
                       int64_t d, int64_t nhp, int64_t nwp) {
  const cudaStream_t st = stream(ctx);
  const size_t row = static_cast<size_t>(d) * 2, bytes = (nhp + nwp) * row;
  const void* rh = halfOf(ctx, relPosH, nh, d);
  const void* rw = halfOf(ctx, relPosW, nw, d);
  auto make = [&](void* p) {
    auto* dst = static_cast<char*>(p);
    OMNISEG_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, st));
    OMNISEG_CUDA_CHECK(cudaMemcpyAsync(dst, rh, nh * row, cudaMemcpyDeviceToDevice, st));
    OMNISEG_CUDA_CHECK(cudaMemcpyAsync(dst + nhp * row, rw, nw * row, cudaMemcpyDeviceToDevice, st));
  };
  const bool weights = ctx.gpu->half(relPosH) && ctx.gpu->half(relPosW);
  if (const void* pair = weights ? ctx.gpu->derived(rh, rw, nh, nw, bytes, make) : nullptr) return pair;
  void* dst = ctx.arena.bytes(bytes);
  make(dst);
  return dst;
}

// The half-precision path; false (nothing done but scratch) when the fused kernel declines the
// shape. qkv: fp32, or already rounded (Half); out: fp32, or Half when outHalf. win: the sets are
// windows of a grid (split from it, out written onto it).
template <class Half, class In>
bool halfPath(Ctx& ctx, const In* qkv, int64_t B, int64_t h, int64_t w, int64_t heads, int64_t d,
              const float* relPosH, const float* relPosW, float scale, void* out, bool outHalf,
              WindowSource win = {}) {
  const int64_t T = h * w, BH = B * heads, per = BH * T * d;
  Half* qkvh = static_cast<Half*>(ctx.arena.bytes(static_cast<size_t>(3 * per) * sizeof(Half)));
  splitHeads(ctx, qkv, B, T, heads, d, qkvh, win);
  // th | tw side by side in one [BH*T, nhp + nwp] fp32 matrix from one GEMM of the half q with
  // the padded pair (rows 16-byte aligned for cuBLASLt's fast kernels).
  const int64_t nh = 2 * h - 1, nw = 2 * w - 1, nhp = (nh + 7) / 8 * 8, nwp = (nw + 7) / 8 * 8;
  const int64_t ld = nhp + nwp;
  float* terms = ctx.arena.floats(static_cast<size_t>(BH * T * ld));
  gemmNT(ctx, qkvh, BH * T, d, relPosPair(ctx, relPosH, nh, relPosW, nw, d, nhp, nwp), ld, terms,
         gemmType(ctx.gpu->precision()));
  return flashAttention(ctx, qkvh, qkvh + per, qkvh + 2 * per, B, heads, h, w, d, scale, terms,
                        terms + nhp, out, ld, ld, win.E, FlashKeys::Auto, outHalf);
}

// The precision's half path from fp32 qkv into fp32 out (true when it ran).
bool runHalfPath(Ctx& ctx, const float* qkv, int64_t B, int64_t h, int64_t w, int64_t heads, int64_t d,
                 const float* relPosH, const float* relPosW, float scale, float* out, WindowSource win = {}) {
  return ctx.gpu->precision() == Precision::Fp16
             ? halfPath<__half>(ctx, qkv, B, h, w, heads, d, relPosH, relPosW, scale, out, false, win)
             : halfPath<__nv_bfloat16>(ctx, qkv, B, h, w, heads, d, relPosH, relPosW, scale, out, false,
                                       win);
}

// preNormRelPosAttention's attention from its half qkv [B·E·E, 3C] into att (half), with
// flashAttentionQkv (no split pass, no rel-pos GEMM, no [relPosH; relPosW] copy per layer); false
// (nothing written, or to be overwritten) where it declines. Taken where OMNISEG_FLASH_QKV=1: it
// is checked in the CPU emulator (test/native/flash_attention_emu_test.cc) but not yet timed on a
// GPU, hence opt-in.
template <class Half>
bool qkvPath(Ctx& ctx, const Half* qkv, int64_t B, int64_t E, int64_t C, int64_t heads, int64_t ws,
             const float* bqkv, const float* relPosH, const float* relPosW, float scale, Half* att) {
  const int64_t d = C / heads, s = ws > 0 ? ws : E;
  const auto* rh = static_cast<const Half*>(halfOf(ctx, relPosH, 2 * s - 1, d));
  const auto* rw = static_cast<const Half*>(halfOf(ctx, relPosW, 2 * s - 1, d));
  // (the bias row: the windows' padding cells only)
  const auto* fill = bqkv && ws > 0 ? static_cast<const Half*>(halfOf(ctx, bqkv, 1, 3 * C)) : nullptr;
  if (ws == 0)
    return flashAttentionQkv<Half>(ctx, qkv, nullptr, B, heads, E, E, d, scale, rh, rw, att, 0, true);
  const int64_t nw = (E + ws - 1) / ws;  // (the windows of all B images in one launch)
  return flashAttentionQkv(ctx, qkv, fill, B * nw * nw, heads, ws, ws, d, scale, rh, rw, att, E, true);
}

}  // namespace

void relPosAttention(Ctx& ctx, const float* qkv, int64_t B, int64_t h, int64_t w, int64_t heads,
                     int64_t d, const float* relPosH, const float* relPosW, float* out) {
  OMNISEG_CHECK(B > 0 && h > 0 && w > 0 && heads > 0 && d > 0, "relPosAttention: bad shape");
  OMNISEG_CHECK(qkv && relPosH && relPosW && out, "relPosAttention: null operand");
  const int64_t T = h * w, BH = B * heads, per = T * d;
  OMNISEG_CHECK(T <= (int64_t{1} << 24), "relPosAttention: grid too large");
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  const cudaStream_t st = stream(ctx);
  ArenaScope scope(ctx.arena);
  const Precision p = ctx.gpu->precision();
  if (p != Precision::Fp32) {
    // Half precision: Q, K, V split and rounded in one pass; rel-pos terms from the half q and
    // the half copies of relPosH / relPosW; the fused kernel for the rest.
    ArenaScope halfScratch(ctx.arena);
    if (runHalfPath(ctx, qkv, B, h, w, heads, d, relPosH, relPosW, scale, out)) return;
  }
  const int64_t nh = 2 * h - 1, nw = 2 * w - 1;
  float* th = ctx.arena.floats(static_cast<size_t>(BH * T * nh));
  float* tw = ctx.arena.floats(static_cast<size_t>(BH * T * nw));

  float* Q = ctx.arena.floats(static_cast<size_t>(3 * BH * per));
  float* K = Q + BH * per;
  float* V = K + BH * per;
  splitHeads(ctx, qkv, B, T, heads, d, Q);

  gemmNT(ctx, Q, BH * T, d, relPosH, nh, th);
  gemmNT(ctx, Q, BH * T, d, relPosW, nw, tw);

  float* O = ctx.arena.floats(static_cast<size_t>(BH * per));
  AttentionBatch a;  // one set per (window, head), dense [T, d] each
  a.batch = BH;
  a.Nq = T;
  a.Nk = T;
  a.d = d;
  a.q = Q;
  a.k = K;
  a.v = V;
  a.out = O;
  a.ldq = a.ldk = a.ldv = a.ldo = d;
  a.strideQ = a.strideK = a.strideV = a.strideO = per;
  a.scale = scale;
  a.th = th;
  a.tw = tw;
  a.h = h;
  a.w = w;
  attentionBatched(ctx, a);
  mergeHeadsKernel<<<gridFor(BH * per), kThreads, 0, st>>>(O, B, T, heads, d, out);
  gpu::checkLaunch("mergeHeadsKernel");
}

void windowRelPosAttention(Ctx& ctx, const float* qkv, int64_t E, int64_t ws, const float* fill,
                           int64_t heads, int64_t d, const float* relPosH, const float* relPosW,
                           float* out) {
  OMNISEG_CHECK(E > 0 && ws > 0 && heads > 0 && d > 0, "windowRelPosAttention: bad shape");
  OMNISEG_CHECK(qkv && relPosH && relPosW && out, "windowRelPosAttention: null operand");
  const int64_t nw = (E + ws - 1) / ws, B = nw * nw, T = B * ws * ws, C = heads * d;
  ArenaScope scope(ctx.arena);
  if (ctx.gpu->precision() != Precision::Fp32) {
    // The split reads the windows straight from the grid; the fused kernel writes onto it.
    ArenaScope halfScratch(ctx.arena);
    const WindowSource win{E, ws, fill};
    if (runHalfPath(ctx, qkv, B, ws, ws, heads, d, relPosH, relPosW, 1.f / std::sqrt(static_cast<float>(d)),
                    out, win))
      return;
  }
  float* qkvWin = ctx.arena.floats(static_cast<size_t>(T * 3 * C));  // [nW, ws*ws, 3C]
  float* outWin = ctx.arena.floats(static_cast<size_t>(T * C));      // [nW, ws*ws, C]
  cuda::windowPartition(ctx, qkv, E, 3 * C, ws, fill, qkvWin);
  cuda::relPosAttention(ctx, qkvWin, B, ws, ws, heads, d, relPosH, relPosW, outWin);
  cuda::windowUnpartition(ctx, outWin, E, C, ws, out);
}

void preNormRelPosAttention(Ctx& ctx, float* x, int64_t B, int64_t E, int64_t C, const float* gamma,
                            const float* beta, float eps, const float* Wqkv, const float* bqkv,
                            int64_t heads, int64_t ws, const float* relPosH, const float* relPosW,
                            const float* Wproj, const float* bproj) {
  OMNISEG_CHECK(B > 0 && E > 0 && C > 0 && heads > 0 && C % heads == 0 && ws >= 0,
                "preNormRelPosAttention: bad shape");
  OMNISEG_CHECK(x && gamma && beta && Wqkv && relPosH && relPosW && Wproj,
                "preNormRelPosAttention: null operand");
  const int64_t N = E * E, M = B * N, d = C / heads;
  ArenaScope scope(ctx.arena);
  const Precision p = ctx.gpu->precision();
  if (p != Precision::Fp32 && flashHeadSize(d)) {
    // Half precision: the layer norm and the qkv GEMM write half values (bias in the epilogue),
    // the split reads them, the fused kernel writes att in half precision, the proj GEMM reads it.
    ArenaScope halfScratch(ctx.arena);
    const void* qkvh = linearHalfOutput(ctx, layerNormHalf(ctx, x, M, C, gamma, beta, eps), M, C, Wqkv,
                                        bqkv, 3 * C, Act::None);
    void* att = ctx.arena.bytes(static_cast<size_t>(M * C) * 2);
    const float scale = 1.f / std::sqrt(static_cast<float>(d));
    auto run = [&](auto tag) {
      using Half = decltype(tag);
      const Half* q = static_cast<const Half*>(qkvh);
      Half* o = static_cast<Half*>(att);
      if (envIs("OMNISEG_FLASH_QKV", "1") &&
          qkvPath(ctx, q, B, E, C, heads, ws, bqkv, relPosH, relPosW, scale, o))
        return true;
      if (ws == 0) return halfPath<Half>(ctx, q, B, E, E, heads, d, relPosH, relPosW, scale, o, true);
      // The windows of all B images in one pass, or of as many as one launch of the fused kernel
      // takes. Padding cells read the bias row (window_partition's zero tokens: their qkv is the
      // bias).
      const int64_t nw = (E + ws - 1) / ws;
      const int64_t group = std::max<int64_t>(1, kFlashMaxSetHeads / (nw * nw * heads));
      const WindowSource win{E, ws, bqkv};
      for (int64_t b = 0; b < B; b += group) {
        ArenaScope images(ctx.arena);
        const int64_t n = std::min(group, B - b);
        if (!halfPath<Half>(ctx, q + b * N * 3 * C, n * nw * nw, ws, ws, heads, d, relPosH, relPosW, scale,
                            o + b * N * C, true, win))
          return false;
      }
      return true;
    };
    if (p == Precision::Fp16 ? run(__half{}) : run(__nv_bfloat16{})) {
      linearHalfInput(ctx, att, M, C, Wproj, bproj, C, x, Act::None, /*accumulate=*/true);
      return;
    }
  }
  // fp32 (and shapes the fused kernel declines): the ops in sequence, as the CPU runs them.
  float* qkv = ctx.arena.floats(static_cast<size_t>(M * 3 * C));  // [B*E*E, 3C]
  cuda::layerNormLinear(ctx, x, M, C, gamma, beta, eps, Wqkv, bqkv, 3 * C, qkv);
  float* att = ctx.arena.floats(static_cast<size_t>(M * C));  // [B*E*E, C]
  if (ws > 0) {
    for (int64_t b = 0; b < B; ++b)
      cuda::windowRelPosAttention(ctx, qkv + b * N * 3 * C, E, ws, bqkv, heads, d, relPosH, relPosW,
                                  att + b * N * C);
  } else {
    cuda::relPosAttention(ctx, qkv, B, E, E, heads, d, relPosH, relPosW, att);
  }
  cuda::linear(ctx, att, M, C, Wproj, bproj, C, x, Act::None, /*accumulate=*/true);
}

}  // namespace omniseg::ops::cuda
