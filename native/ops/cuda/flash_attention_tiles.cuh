// The pieces the fused attention kernel (flash_attention_kernel.cuh) is built from: its
// parameters (where it reads Q, K, V and the rel-pos terms: FaSource), the loads of 64-row tiles
// into shared memory (dense sets, rows of the qkv GEMM's output, windows gathered from a grid),
// the key-table of the per-score bias, Q·Kᵀ of a tile on tensor cores (scoreTile) and the rel-pos
// terms computed from the block's q (relPosTerms). Written over warp_mma.cuh's primitives, which
// the includer provides (see flash_attention_kernel.cuh).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace omniseg::ops::cuda::flash {

constexpr int kBc = 64;          // keys per tile
constexpr int kFaThreads = 128;  // 4 warps
constexpr float kLog2e = 1.4426950408889634f;
template <int M>
constexpr int kBr = 64 * M;  // query rows per block
template <int M>
constexpr int kBiasLd = kBr<M> + 4;  // row stride (floats) of the staged bias tables

// Sources (FaSource::kind): kDense (Q, K, V [B·heads, T, d], the terms from memory), kQkv (the
// qkv GEMM's output, the terms computed here), kQkvGather (the same, the sets being windows
// gathered from a grid). Separate instantiations, so that each keeps its registers
// (kDense's row stride is d, known at compile time).
enum Source { kDense, kQkv, kQkvGather };

// Where the kernel reads its operands and rel-pos terms (denseSource, qkvSource below).
struct FaSource {
  int kind = kDense;  // Source
  // Token t of set b, head hd of Q, K, V (half): element b·setStride + hd·headStride + t·rowStride
  // of each; with gather, set b is a window of a gridE grid (window b % n² of image b / n², n²
  // windows per image) and its token t is the grid cell's row ((image·gridE² + cell)·rowStride +
  // hd·headStride), padding cells reading the fill rows (+ hd·headStride; zeros where null).
  const void* Q = nullptr;
  const void* K = nullptr;
  const void* V = nullptr;
  int64_t setStride = 0, headStride = 0;
  int rowStride = 0;
  const void* fillQ = nullptr;
  const void* fillK = nullptr;
  const void* fillV = nullptr;
  // The rel-pos terms: relH / relW (half [2h-1, D], [2w-1, D]) — computed in the kernel from the
  // block's q (both set), or th / tw read from memory (rows (b·heads + hd)·T + t; either may be
  // null: a zero term).
  const void* relH = nullptr;
  const void* relW = nullptr;
  const float* th = nullptr;
  const float* tw = nullptr;
  int ldth = 0, ldtw = 0;  // row strides of th and tw (0 in a source: dense, 2h-1 and 2w-1)
};

// The kernel's parameters: the source, and the shape and output.
struct FaParams : FaSource {
  void* out;      // fp32, or Half when outHalf
  bool outHalf;
  int T, h, w, heads;
  int gridE;  // > 0: out is the E×E grids the h×w windows tile, n² per grid (see flashAttention)
  float scaleLog2;  // scale · log2(e)
};

// Two floats rounded (to nearest) into one register of two halves, lo in the low 16 bits.
template <class Half>
__device__ __forceinline__ uint32_t pack(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack<__half>(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}
template <>
__device__ __forceinline__ uint32_t pack<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// 64 rows of D halves into a [64][D + 8] shared tile: tile row r from rowPtr(r), or zeros where
// that is null (any global address, e.g. the operand's base, stands in as the unread source).
template <class Half, int D, class RowPtr>
__device__ __forceinline__ void loadRows(Half* dst, RowPtr rowPtr, const void* anyGlobal) {
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
  constexpr int kLd = D + 8;
  for (int i = threadIdx.x; i < kBc * kChunks; i += kFaThreads) {
    const int r = i / kChunks, c = i - r * kChunks;
    const Half* src = rowPtr(r);
    cpAsync16(dst + r * kLd + c * 8, src ? src + c * 8 : anyGlobal, src != nullptr);
  }
}


// The row stride (elements) of a source's tokens.
template <int D, int Src>
__device__ __forceinline__ int64_t rowStride(const FaParams& p) {
  return Src == kDense ? D : p.rowStride;
}

// The block's set b and head hd of operand Which (0 Q, 1 K, 2 V; see FaParams): the element its
// token rows start from (the set's and head's first element; with gather, the head's element of
// grid cell 0). With gather the window's top-left cell (oy, ox) places its tokens on the grid.
template <int Which>
__device__ __forceinline__ const void* operandBase(const FaParams& p) {
  return Which == 0 ? p.Q : Which == 1 ? p.K : p.V;
}
template <int Which>
__device__ __forceinline__ const void* operandFill(const FaParams& p) {
  return Which == 0 ? p.fillQ : Which == 1 ? p.fillK : p.fillV;
}
// Gathered windows: set b is window b % n² of image b / n² (n = the windows per grid side), each
// image a gridE×gridE grid of rows.
__device__ __forceinline__ int windowsPerSide(const FaParams& p) { return (p.gridE + p.w - 1) / p.w; }

template <class Half, int D, int Which, int Src>
__device__ __forceinline__ const Half* operandSet(const FaParams& p, int64_t bh) {
  const Half* x = static_cast<const Half*>(operandBase<Which>(p));
  if constexpr (Src == kDense) return x + bh * p.T * D;  // (set b, head hd: b·heads + hd = bh)
  const int64_t b = bh / p.heads, hd = bh - b * p.heads;
  if constexpr (Src == kQkvGather) {
    const int64_t n = windowsPerSide(p), image = b / (n * n);
    return x + hd * p.headStride + image * p.gridE * p.gridE * p.rowStride;
  }
  return x + hd * p.headStride + b * p.setStride;
}

// Rows of a dense [·, D] half matrix (kDense): tile row r is source row rowOf(r), or zeros where < 0.
template <class Half, int D, class RowOf>
__device__ __forceinline__ void loadRowsIdx(Half* dst, const Half* src, RowOf rowOf) {
  constexpr int kChunks = D / 8;
  constexpr int kLd = D + 8;
  for (int i = threadIdx.x; i < kBc * kChunks; i += kFaThreads) {
    const int r = i / kChunks, c = i - r * kChunks;
    const int gr = rowOf(r);
    const bool ok = gr >= 0;
    cpAsync16(dst + r * kLd + c * 8, src + static_cast<int64_t>(ok ? gr : 0) * D + c * 8, ok);
  }
}

// Where the token at (ty, tx) of the set (t = ty·w + tx < T) lies in the operand, or null for
// zeros. (The fill row's head offset is the set's within a row.)
template <class Half, int D, int Which, int Src>
__device__ __forceinline__ const Half* tokenRow(const FaParams& p, const Half* set, int oy, int ox, int ty,
                                                int tx) {
  if constexpr (Src != kQkvGather) return set + static_cast<int64_t>(ty * p.w + tx) * rowStride<D, Src>(p);
  const int gy = oy + ty, gx = ox + tx;
  if (gy < p.gridE && gx < p.gridE) return set + (static_cast<int64_t>(gy) * p.gridE + gx) * p.rowStride;
  // (set - base = image·gridE²·rowStride + hd·headStride, and hd·headStride < rowStride)
  const Half* fill = static_cast<const Half*>(operandFill<Which>(p));
  return fill ? fill + (set - static_cast<const Half*>(operandBase<Which>(p))) % p.rowStride : nullptr;
}

// Tokens row0 .. row0 + 63 of an operand in token order (rows past T zero-filled).
template <class Half, int D, int Which, int Src>
__device__ __forceinline__ void loadTile(Half* dst, const FaParams& p, const Half* set, int oy, int ox,
                                         int row0) {
  if constexpr (Src == kDense) {
    const int T = p.T;
    return loadRowsIdx<Half, D>(dst, set, [=](int r) { return row0 + r < T ? row0 + r : -1; });
  }
  loadRows<Half, D>(
      dst,
      [&](int r) -> const Half* {
        const int t = row0 + r;
        if (t >= p.T) return nullptr;
        if constexpr (Src != kQkvGather) {
          return set + static_cast<int64_t>(t) * rowStride<D, Src>(p);
        } else {
          const int ty = t / p.w;
          return tokenRow<Half, D, Which, Src>(p, set, oy, ox, ty, t - ty * p.w);
        }
      },
      p.Q);
}

// Keys laid out by key row (kBiasRows): each key row of w ≤ kWp keys takes kWp slots of a tile, so
// a tile holds kRowsPerTile key rows; the slots past w and the key rows past h are zero-filled and
// masked through their bias (-inf).
constexpr int kWp = 16;
constexpr int kRowsPerTile = kBc / kWp;

// Key tile `tile` of K or V into a [64][D + 8] shared tile: keys tile·64 .. +63 in token order, or
// with Rows key rows tile·kRowsPerTile .. +kRowsPerTile-1 in kWp slots each.
template <class Half, int D, bool Rows, int Which, int Src>
__device__ __forceinline__ void loadKeys(Half* dst, const FaParams& p, const Half* set, int oy, int ox,
                                         int tile) {
  if constexpr (!Rows) {
    loadTile<Half, D, Which, Src>(dst, p, set, oy, ox, tile * kBc);
  } else if constexpr (Src == kDense) {
    const int h = p.h, w = p.w;
    loadRowsIdx<Half, D>(dst, set, [=](int r) {
      const int kh = tile * kRowsPerTile + r / kWp, kw = r % kWp;
      return kh < h && kw < w ? kh * w + kw : -1;
    });
  } else {
    loadRows<Half, D>(
        dst,
        [&](int r) {
          const int kh = tile * kRowsPerTile + r / kWp, kw = r % kWp;
          return kh < p.h && kw < p.w ? tokenRow<Half, D, Which, Src>(p, set, oy, ox, kh, kw) : nullptr;
        },
        p.Q);
  }
}

// (kh, kw) offsets of the keys of tile `tile` into the staged bias tables, both from sTh
// (kh·Ld, (h + kw)·Ld: sTw follows sTh's h rows), written by the first kBc threads.
template <int Ld>
__device__ __forceinline__ void keyTable(int2* tbl, int tile, int T, int h, int w) {
  if (threadIdx.x < kBc) {
    const int k = tile * kBc + threadIdx.x;
    int kh = 0, kw = 0;
    if (k < T) {
      kh = k / w;
      kw = k - kh * w;
    }
    tbl[threadIdx.x] = make_int2(kh * Ld, (h + kw) * Ld);
  }
}

// acc[i][n] = q·kᵀ of m-tile i (fragments qf) and key n-tile 2·np0 + n (n < 2·NP) of the
// [64][D + 8] shared tile `keys` (each K fragment from ldmatrix feeds the M m-tiles' MMAs).
template <class Half, int D, int M, int NP>
__device__ __forceinline__ void scoreTile(float (&acc)[M][2 * NP][4], const uint32_t (&qf)[M][D / 16][4],
                                          const Half* keys, int np0, int kRow, int kCol) {
  constexpr int kLd = D + 8;
#pragma unroll
  for (int i = 0; i < M; ++i)
#pragma unroll
    for (int n = 0; n < 2 * NP; ++n) acc[i][n][0] = acc[i][n][1] = acc[i][n][2] = acc[i][n][3] = 0.f;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
    for (int np = 0; np < NP; ++np) {
      uint32_t b[4];
      ldmatrixX4(b, keys + ((np0 + np) * 16 + kRow) * kLd + kk * 16 + kCol);
#pragma unroll
      for (int i = 0; i < M; ++i) {
        mma<Half>(acc[i][2 * np], qf[i][kk], b[0], b[1]);
        mma<Half>(acc[i][2 * np + 1], qf[i][kk], b[2], b[3]);
      }
    }
  }
}

// relIn: the rel-pos terms of the block's rows from its q (the fragments qf) and relH / relW,
// into the staged tables: P = q·Rᵀ over 64-row chunks of R (loaded into sR, K's first stage), each
// element P[r][i] landing · log2e in sTh[kh][r] (i = qh - kh + h - 1, 0 ≤ kh < h) or sTw[kw][r]
// (i = qw - kw + w - 1) — the same terms as th / tw (q·relPosHᵀ, q·relPosWᵀ from the half q and
// relPos, fp32 accumulate). Every (kh < h, row) entry is written once; rows past T are taken at
// qh = qw = 0 (their q is zero).
template <class Half, int D, int M, int Ld>
__device__ __forceinline__ void relPosTerms(const FaParams& p, const uint32_t (&qf)[M][D / 16][4],
                                            Half* sR, float* sTh, float* sTw, int q0, int row0,
                                            int kRow, int kCol) {
  const int lane = threadIdx.x & 31, g = lane >> 2, tig = lane & 3;
  const int h = p.h, w = p.w, nh = 2 * h - 1, nw = 2 * w - 1;
  const int chH = (nh + kBc - 1) / kBc, chW = (nw + kBc - 1) / kBc;
  for (int chunk = 0; chunk < chH + chW; ++chunk) {
    const bool isH = chunk < chH;
    const int i0 = (isH ? chunk : chunk - chH) * kBc, n = isH ? nh : nw;
    const Half* R = static_cast<const Half*>(isH ? p.relH : p.relW);
    loadRows<Half, D>(
        sR, [&](int r) { return i0 + r < n ? R + static_cast<int64_t>(i0 + r) * D : nullptr; }, R);
    cpAsyncCommit();
    cpAsyncWait<0>();
    __syncthreads();
    // (in two halves of 32 columns, to keep the registers of the accumulators low)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float acc[M][4][4];
      scoreTile<Half, D, M, 2>(acc, qf, sR, 2 * half, kRow, kCol);
#pragma unroll
      for (int i = 0; i < M; ++i)
#pragma unroll
        for (int rh = 0; rh < 2; ++rh) {
          const int r = 64 * i + row0 + g + 8 * rh, t = q0 + r;
          const int qh = t < p.T ? t / w : 0, qw = t < p.T ? t - qh * w : 0;
          // column col = i0 + 32·half + 8·n4 + 2·tig + c lands on key row / column qh|qw - col + h|w - 1
          const int k0 = (isH ? qh + h : qw + w) - 1 - i0 - 32 * half - 2 * tig;
          float* table = isH ? sTh : sTw;
          const int lim = isH ? h : w;
#pragma unroll
          for (int n4 = 0; n4 < 4; ++n4)
#pragma unroll
            for (int c = 0; c < 2; ++c) {
              const int k = k0 - 8 * n4 - c;
              if (k >= 0 && k < lim) table[k * Ld + r] = acc[i][n4][2 * rh + c] * kLog2e;
            }
        }
    }
    __syncthreads();  // sR is refilled by the next chunk (or K's first tile)
  }
}

}  // namespace omniseg::ops::cuda::flash
