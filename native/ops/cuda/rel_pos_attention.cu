// SAM ViT attention with decomposed relative-position bias (the encoder's windowed and global
// attention), with the CPU backend's semantics: scores = (q·kᵀ)·scale + relH + relW where
// relH[q, kh] = q·relPosH[qh - kh + h - 1] and relW[q, kw] = q·relPosW[qw - kw + w - 1] use the
// unscaled q; softmax; ·v.
// Steps: a permute kernel qkv [B, T, 3, heads, d] → Q, K, V [B*heads, T, d]; two GEMMs for the
// rel-pos terms th = Q·relPosHᵀ [B*heads*T, 2h-1] and tw = Q·relPosWᵀ [.., 2w-1]; then per chunk
// of (window, head) pairs a strided-batched GEMM for the scores [chunk, T, T], the softmax kernel
// that adds the bias first (attention.cu), a batched GEMM O = P·V; finally a permute of
// O [B, heads, T, d] into out [B, T, heads*d].
// In half precision, Q, K and V are split and rounded to fp16 / bf16 in one pass, both rel-pos
// terms come from one GEMM of the half q with [relPosH; relPosW] (zero-padded to 8-row multiples),
// and the fused tensor-core kernel (flash_attention.cu) replaces the score GEMM, softmax and P·V
// where it supports the shape. windowRelPosAttention's half path splits the windows straight out
// of the grid and has the fused kernel write its output onto the grid (no partition passes).
#include <cmath>

#include "core/arena.h"
#include "ops/cuda/flash_attention.h"
#include "ops/cuda/launch.h"

namespace omniseg::ops::cuda {

namespace {

// Where the windowed split reads its tokens: window b, token t of a ws×ws window over the E×E
// grid qkv [E*E, 3C] (padded to a multiple of ws; padding cells read `fill`, or zeros).
struct WindowSource {
  int64_t E = 0, ws = 0;  // E = 0: qkv is already [B, T, 3C]
  const float* fill = nullptr;
};

// Four values at o (4-aligned element offset): one 16-byte store of floats, one 8-byte store of halves.
template <class T>
__device__ __forceinline__ void store4(T* o, float4 f) {
  struct alignas(8) H4 { T v[4]; };
  *reinterpret_cast<H4*>(o) = H4{{dev::to<T>(f.x), dev::to<T>(f.y), dev::to<T>(f.z), dev::to<T>(f.w)}};
}
template <>
__device__ __forceinline__ void store4<float>(float* o, float4 f) {
  *reinterpret_cast<float4*>(o) = f;
}

// A value as fp32 (exact for __half / __nv_bfloat16), and four at once from a 4-aligned offset.
__device__ __forceinline__ float toFloat(float v) { return v; }
__device__ __forceinline__ float toFloat(__half v) { return __half2float(v); }
__device__ __forceinline__ float toFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class R>
__device__ __forceinline__ float4 load4(const R* p) {
  struct alignas(4 * sizeof(R)) R4 { R v[4]; };
  const R4 r = *reinterpret_cast<const R4*>(p);
  return make_float4(toFloat(r.v[0]), toFloat(r.v[1]), toFloat(r.v[2]), toFloat(r.v[3]));
}

// Token t of set b: its qkv row src [3, heads, d] (of R: fp32 or half; null: zeros) → dst
// [3][B, heads, Tn, d] as T (per = B*heads*Tn*d). One block per token.
template <class R, class T>
__device__ __forceinline__ void splitRow(const R* src, int64_t b, int64_t t, int64_t Tn, int64_t heads,
                                         int64_t d, int64_t per, T* dst) {
  const int64_t C = heads * d;
  auto at = [&](int64_t i) {
    const int64_t which = i / C, r = i - which * C, hd = r / d, e = r - hd * d;
    return dst + which * per + ((b * heads + hd) * Tn + t) * d + e;
  };
  if (!src) {
    for (int64_t i = threadIdx.x; i < 3 * C; i += blockDim.x) *at(i) = dev::to<T>(0.f);
  } else if (d % 4 == 0 && (reinterpret_cast<uintptr_t>(src) & (4 * sizeof(R) - 1)) == 0) {
    // Four values of one head at a time (16- or 8-byte loads).
    for (int64_t i = 4 * threadIdx.x; i < 3 * C; i += 4 * blockDim.x) store4(at(i), load4(src + i));
  } else {
    for (int64_t i = threadIdx.x; i < 3 * C; i += blockDim.x) *at(i) = dev::to<T>(toFloat(src[i]));
  }
}

// One block per token (b, t) of qkv [B, T, 3, heads, d] (fp32, or already half: In) → dst
// [3][B, heads, T, d] as T (fp32, or rounded to half; per = B*heads*T*d). With a window source,
// token t of window b is read from its grid cell, or from the fill row (fp32) on padding.
template <class In, class T>
__global__ void splitHeadsKernel(const In* qkv, int64_t Tn, int64_t heads, int64_t d,
                                 int64_t per, WindowSource win, T* dst) {
  const int64_t bt = blockIdx.x, b = bt / Tn, t = bt - b * Tn, C = heads * d;
  if (win.E > 0) {
    const int64_t nw = (win.E + win.ws - 1) / win.ws, wy = b / nw, wx = b - wy * nw;
    const int64_t ty = t / win.ws, gy = wy * win.ws + ty, gx = wx * win.ws + (t - ty * win.ws);
    if (gy < win.E && gx < win.E)
      splitRow(qkv + (gy * win.E + gx) * 3 * C, b, t, Tn, heads, d, per, dst);
    else
      splitRow(win.fill, b, t, Tn, heads, d, per, dst);
    return;
  }
  splitRow(qkv + bt * 3 * C, b, t, Tn, heads, d, per, dst);
}

// Eight values at a 16-byte aligned element offset, as floats, and back (exact for halves in,
// rounded to nearest even for halves out).
template <class R>
__device__ __forceinline__ void load8(const R* p, float (&v)[8]) {
  struct alignas(16) R8 { R v[8]; };
  if constexpr (sizeof(R) == 4) {
    const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  } else {
    const R8 r = *reinterpret_cast<const R8*>(p);
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = toFloat(r.v[j]);
  }
}
template <class T>
__device__ __forceinline__ void store8(T* o, const float (&v)[8]) {
  store4(o, make_float4(v[0], v[1], v[2], v[3]));
  store4(o + 4, make_float4(v[4], v[5], v[6], v[7]));
}

// splitHeadsKernel's layout, one thread per eight values of a head (d % 8 == 0, every row and
// dst 16-byte aligned, fewer than 2^31 chunks and 3·heads·d < 2^31): a flat grid with 32-bit
// index arithmetic. One block per token left the copy latency-bound: ViT-B's 12 splits took
// 356 µs per encode under ncu on an H100, and take 215 this way. Same values as splitHeadsKernel.
template <class In, class T>
__global__ void splitHeads8Kernel(const In* qkv, uint32_t chunks, uint32_t Tn, uint32_t heads,
                                  uint32_t d, int64_t per, WindowSource win, T* dst) {
  const uint32_t C = heads * d, rowChunks = 3 * C / 8;
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < chunks; i += gridDim.x * blockDim.x) {
    const uint32_t bt = i / rowChunks, e0 = (i - bt * rowChunks) * 8;
    const uint32_t b = bt / Tn, t = bt - b * Tn;
    const uint32_t which = e0 / C, r = e0 - which * C, hd = r / d, e = r - hd * d;
    float v[8];
    const In* src = qkv + static_cast<int64_t>(bt) * 3 * C;
    bool zero = false;
    const float* fill = nullptr;
    if (win.E > 0) {
      const uint32_t ws = static_cast<uint32_t>(win.ws), E = static_cast<uint32_t>(win.E);
      const uint32_t nw = (E + ws - 1) / ws, wy = b / nw, wx = b - wy * nw;
      const uint32_t ty = t / ws, gy = wy * ws + ty, gx = wx * ws + (t - ty * ws);
      if (gy < E && gx < E)
        src = qkv + (static_cast<int64_t>(gy) * E + gx) * 3 * C;
      else if (win.fill)
        fill = win.fill;
      else
        zero = true;
    }
    if (fill) {
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = fill[e0 + j];
    } else if (zero) {
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = 0.f;
    } else {
      load8(src + e0, v);
    }
    store8(dst + which * per + ((static_cast<int64_t>(b) * heads + hd) * Tn + t) * d + e, v);
  }
}

template <class In, class T>
void splitHeads(Ctx& ctx, const In* qkv, int64_t B, int64_t Tn, int64_t heads, int64_t d, T* dst,
                WindowSource win = {}) {
  OMNISEG_CHECK(B * Tn <= INT32_MAX, "relPosAttention: too many tokens");
  const int64_t per = B * heads * Tn * d, chunks = B * Tn * 3 * heads * d / 8;
  const bool vec = d % 8 == 0 && chunks <= INT32_MAX && 3 * heads * d <= INT32_MAX &&
                   ((reinterpret_cast<uintptr_t>(qkv) | reinterpret_cast<uintptr_t>(dst)) & 15u) == 0;
  if (vec) {
    splitHeads8Kernel<<<gridFor(chunks), kThreads, 0, stream(ctx)>>>(
        qkv, static_cast<uint32_t>(chunks), static_cast<uint32_t>(Tn), static_cast<uint32_t>(heads),
        static_cast<uint32_t>(d), per, win, dst);
    gpu::checkLaunch("splitHeads8Kernel");
    return;
  }
  splitHeadsKernel<<<static_cast<unsigned>(B * Tn), kThreads, 0, stream(ctx)>>>(
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
// multiple of 8 rows (nhp, nwp), so that both rel-pos terms come from one well-shaped GEMM.
const void* relPosPair(Ctx& ctx, const float* relPosH, int64_t nh, const float* relPosW, int64_t nw,
                       int64_t d, int64_t nhp, int64_t nwp) {
  const cudaStream_t st = stream(ctx);
  const size_t row = static_cast<size_t>(d) * 2;
  auto* dst = static_cast<char*>(ctx.arena.bytes((nhp + nwp) * row));
  OMNISEG_CUDA_CHECK(cudaMemsetAsync(dst, 0, (nhp + nwp) * row, st));
  const void* rh = halfOf(ctx, relPosH, nh, d);
  const void* rw = halfOf(ctx, relPosW, nw, d);
  OMNISEG_CUDA_CHECK(cudaMemcpyAsync(dst, rh, nh * row, cudaMemcpyDeviceToDevice, st));
  OMNISEG_CUDA_CHECK(cudaMemcpyAsync(dst + nhp * row, rw, nw * row, cudaMemcpyDeviceToDevice, st));
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
    WindowSource win;
    win.E = E;
    win.ws = ws;
    win.fill = fill;
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
      if (envIs("OMNISEG_FLASH_QKV", "1") && qkvPath(ctx, q, B, E, C, heads, ws, bqkv, relPosH, relPosW, scale, o)) return true;
      if (ws == 0) return halfPath<Half>(ctx, q, B, E, E, heads, d, relPosH, relPosW, scale, o, true);
      const int64_t nw = (E + ws - 1) / ws;
      WindowSource win;
      win.E = E;
      win.ws = ws;
      win.fill = bqkv;  // window_partition's zero tokens: their qkv is the bias
      for (int64_t b = 0; b < B; ++b) {
        ArenaScope perImage(ctx.arena);
        if (!halfPath<Half>(ctx, q + b * N * 3 * C, nw * nw, ws, ws, heads, d, relPosH, relPosW, scale,
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
