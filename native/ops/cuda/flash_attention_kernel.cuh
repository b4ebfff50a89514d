// The fused attention kernel of flash_attention.cu (FlashAttention-2 style) and its launch plan,
// written over the warp primitives of warp_mma.cuh — which the includer provides: the .cu
// includes warp_mma.cuh, test/native/flash_attention_emu_test.cc the CPU emulator
// (test/native/simt_emu.h) — so that the same kernel runs on the GPU and in the emulator.
//
// One block of 4 warps per (64·M query rows, window/head); each warp owns M m-tiles of 16 query
// rows (m-tile i of warp w: rows 64i + 16w .. +15 of the block), so that each K / V fragment
// from ldmatrix feeds M MMAs. Per tile of 64 keys: S = Q·Kᵀ with mma.sync m16n8k16 (fp16/bf16
// in, fp32 accumulate), then per score s·scale·log2e + (th + tw)·log2e with the rel-pos terms
// read from shared memory or registers, online softmax in fp32 (exp2), P rounded to the half
// type and O += P·V with mma.sync. K/V tiles are double-buffered with cp.async (zero-filled past
// T); scores of keys past T are masked to -inf, query rows past T are computed on zeros and not
// stored. Q's fragments stay in registers. Every row goes through the same operations in the
// same order for M = 1 and M = 2, so both give the same bits.
//
// Shared memory per block: K, V [2 stages][64][d + 8] halves (the +8 halves pad rows so that
// ldmatrix is bank-conflict free), and with bias thS [h][Ld], twS [w][Ld] fp32 (Ld = 64·M + 4;
// column-major: the bias of tile row r for key row kh is thS[kh][r]; Ld ≡ 4 mod 32 makes the
// quad-row access pattern of an mma fragment conflict free) plus a per-stage table of the keys'
// (kh, kw) offsets. Rows of th / tw hold 2h-1 / 2w-1 terms but a query only ever uses h / w of
// them (indices qh .. qh+h-1), so only those are staged.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "ops/cuda/flash_attention_tiles.cuh"

namespace omniseg::ops::cuda::flash {

// Bias modes: kNoBias; kBiasTable (any h, w: per score, both terms from the staged tables);
// kBiasRow (w == kBc, SAM's 64×64 global attention: a key tile is one key row kh = tile, so a
// thread's tw terms are the same for every tile — in registers (32 per m-tile; with M = 2 they
// are read from the staged tw table instead) — and the th term is constant over a row of the
// tile and is folded into the running max instead of each score); kBiasRows (w ≤ kWp, e.g. SAM's
// 14×14 windows: keys laid out by key row, see loadKeys, so a thread's key columns have the same
// kw in every tile: its 8 tw terms per m-tile live in registers, -inf on the padding slots, and
// its th terms are one per key row of the tile, -inf past h).
enum BiasMode { kNoBias, kBiasTable, kBiasRow, kBiasRows };

// Whether the mode stages the tw table in shared memory.
__host__ __device__ constexpr bool twStaged(int mode, int M) {
  return mode == kBiasTable || (mode == kBiasRow && M > 1);
}

// Blocks per SM the register allocation aims at (the shared memory of the SAM shapes allows them):
// M = 1: 4 at d = 64 (the 128 registers the kernel needs without the row bias), 3 otherwise up to
// d = 80; M = 2 (d ≤ 64): 2.
template <int D, int Mode, int M>
constexpr int kMinBlocks = M > 1 ? 2 : D <= 64 && Mode != kBiasRow ? 4 : D <= 80 ? 3 : 2;

template <class Half, int D, int Mode, int M, int Src>
__global__ void __launch_bounds__(kFaThreads, (kMinBlocks<D, Mode, M>))
    flashAttentionKernel(FaParams p) {
  static_assert(M == 1 || M == 2, "one or two m-tiles per warp");
  static_assert(Src == kDense || Mode != kNoBias, "from qkv the terms are computed: a bias mode");
  constexpr bool Gather = Src == kQkvGather;
  constexpr bool relIn = Src != kDense;  // rel-pos terms computed here (relPosTerms)
  constexpr bool Bias = Mode != kNoBias;
  constexpr bool Rows = Mode == kBiasRows;
  constexpr bool TwStaged = twStaged(Mode, M);
  constexpr bool TwRegs = Rows || (Mode == kBiasRow && M == 1);
  constexpr int Br = kBr<M>, Ld = kBiasLd<M>;
  constexpr int kLd = D + 8;
  constexpr int kKSteps = D / 16;  // k-steps of Q·Kᵀ
  constexpr int kDTiles = D / 8;   // n-tiles of O
  const int T = p.T;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, tig = lane & 3;
  const int q0 = blockIdx.x * Br;
  const int64_t bh = blockIdx.y;  // set b, head hd: bh = b·heads + hd
  const Half *Qs = operandSet<Half, D, 0, Src>(p, bh), *Ks = operandSet<Half, D, 1, Src>(p, bh),
             *Vs = operandSet<Half, D, 2, Src>(p, bh);
  int oy = 0, ox = 0;  // (gather: the window's top-left grid cell)
  if constexpr (Gather) {
    const int nw = windowsPerSide(p), win = static_cast<int>(bh / p.heads) % (nw * nw), wy = win / nw;
    oy = wy * p.w;
    ox = (win - wy * nw) * p.w;
  }
  const int nTiles = Rows ? (p.h + kRowsPerTile - 1) / kRowsPerTile : (T + kBc - 1) / kBc;
  const int hs = Rows ? nTiles * kRowsPerTile : p.h;  // staged key rows of th

  OMNISEG_DYNAMIC_SHARED(smem);
  Half* sK = reinterpret_cast<Half*>(smem);  // [2][kBc][kLd]
  Half* sV = sK + 2 * kBc * kLd;             // [2][kBc][kLd]
  float* sTh = reinterpret_cast<float*>(sV + 2 * kBc * kLd);  // [hs][Ld]
  float* sTw = sTh + hs * Ld;  // [w][Ld] (TwStaged, or relIn)
  int2* sKey = reinterpret_cast<int2*>(sTw + p.w * Ld);   // [2][kBc] (kBiasTable)
  // Q's 64-row parts are staged in the second stages of V and K.
  auto qStage = [&](int i) { return (i == 0 ? sV : sK) + kBc * kLd; };

  // Prologue: Q, K and V tile 0 (relIn: after the terms, K's first stage holding relH / relW).
#pragma unroll
  for (int i = 0; i < M; ++i) loadTile<Half, D, 0, Src>(qStage(i), p, Qs, oy, ox, q0 + 64 * i);
  if constexpr (!relIn) {
    loadKeys<Half, D, Rows, 1, Src>(sK, p, Ks, oy, ox, 0);
    loadKeys<Half, D, Rows, 2, Src>(sV, p, Vs, oy, ox, 0);
  }
  cpAsyncCommit();
  if constexpr (Bias && !relIn) {
    // sTh[kh][r] = th[row q0 + r][qh + h - 1 - kh] · log2e (0 past T or without th; kBiasRows:
    // -inf for the padding key rows kh ≥ h of the last tile); same for tw. (relIn: below.)
    const int h = p.h, w = p.w;
    for (int r = warp; r < Br; r += kFaThreads / 32) {
      const int t = q0 + r;
      const bool ok = t < T;
      const int qh = ok ? t / w : 0, qw = ok ? t - qh * w : 0;
      const int64_t row = bh * T + t;
      const float* thr = ok && p.th ? p.th + row * p.ldth + qh + h - 1 : nullptr;
      const float* twr = ok && p.tw ? p.tw + row * p.ldtw + qw + w - 1 : nullptr;
      for (int kh = lane; kh < hs; kh += 32)
        sTh[kh * Ld + r] = kh >= h ? -INFINITY : thr ? thr[-kh] * kLog2e : 0.f;
      if constexpr (TwStaged)
        for (int kw = lane; kw < w; kw += 32) sTw[kw * Ld + r] = twr ? twr[-kw] * kLog2e : 0.f;
    }
  }
  if constexpr (Mode == kBiasTable) keyTable<Ld>(sKey, 0, T, p.h, p.w);
  cpAsyncWait<0>();
  __syncthreads();

  const int row0 = warp * 16;  // this warp's rows in m-tile 0 (m-tile i: 64i + row0)
  // (later m-tiles hold later rows, so a warp whose first m-tile is past T has nothing to store)
  const bool active = q0 + row0 < T;
  uint32_t qf[M][kKSteps][4];
#pragma unroll
  for (int i = 0; i < M; ++i) {
    const Half* sQ = qStage(i);
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk)
      ldmatrixX4(qf[i][kk], sQ + (row0 + (lane & 15)) * kLd + kk * 16 + (lane >> 4) * 8);
  }
  // Lane offsets of the ldmatrix addresses: K (non-transposed, two key n-tiles × two d halves),
  // V (transposed, two key halves × two d n-tiles).
  const int kRow = (lane & 7) + ((lane >> 4) << 3), kCol = ((lane >> 3) & 1) * 8;
  const int vRow = (lane & 7) + (((lane >> 3) & 1) << 3), vCol = (lane >> 4) * 8;
  if constexpr (Bias && relIn) {
    {
      relPosTerms<Half, D, M, Ld>(p, qf, sK, sTh, sTw, q0, row0, kRow, kCol);
      for (int i = tid; i < (hs - p.h) * Br; i += kFaThreads)  // (kBiasRows: padding key rows)
        sTh[(p.h + i / Br) * Ld + i % Br] = -INFINITY;
      loadKeys<Half, D, Rows, 1, Src>(sK, p, Ks, oy, ox, 0);
      loadKeys<Half, D, Rows, 2, Src>(sV, p, Vs, oy, ox, 0);
      cpAsyncCommit();
      cpAsyncWait<0>();
    }
  }
  __syncthreads();  // the Q stages are overwritten by the first prefetch (relIn: the tables are in)

  float o[M][kDTiles][4];
#pragma unroll
  for (int i = 0; i < M; ++i)
#pragma unroll
    for (int n = 0; n < kDTiles; ++n) o[i][n][0] = o[i][n][1] = o[i][n][2] = o[i][n][3] = 0.f;
  // Running max and sum of rows g and g + 8 of each m-tile.
  float mr[M][2], lr[M][2];
#pragma unroll
  for (int i = 0; i < M; ++i) mr[i][0] = mr[i][1] = -INFINITY, lr[i][0] = lr[i][1] = 0.f;
  // Row g of m-tile i in the staged tables: thBase + 64i (row g + 8: + 8).
  const float* thBase = sTh + row0 + g;
  // TwRegs: this thread's tw terms. kBiasRow (M = 1): rows g, g + 8; keys kw = 8n + 2·tig + c of
  // every tile. kBiasRows: rows g, g + 8 of each m-tile; the key slots kw = 8·(n & 1) + 2·tig + c
  // of every key row.
  float twReg[M][Mode == kBiasRow ? 8 : 2][4];
  if constexpr (TwRegs) {
    const int w = p.w;
#pragma unroll
    for (int i = 0; i < M; ++i)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int r = 64 * i + row0 + g + 8 * half, t = q0 + r;
        // (kBiasRow with M = 1: t < T, T being a multiple of kBc = kBr)
        const float* twr = t < T && p.tw ? p.tw + (bh * T + t) * p.ldtw + t % w + w - 1 : nullptr;
        // the term of key column kw (relIn: staged in sTw, already · log2e)
        auto term = [&](int kw) {
          if constexpr (relIn) return sTw[kw * Ld + r];
          return twr ? twr[-kw] * kLog2e : 0.f;
        };
        if constexpr (Mode == kBiasRow) {
#pragma unroll
          for (int n = 0; n < 8; ++n)
#pragma unroll
            for (int c = 0; c < 2; ++c) twReg[i][n][2 * half + c] = term(n * 8 + 2 * tig + c);
        } else {
#pragma unroll
          for (int n = 0; n < 2; ++n)
#pragma unroll
            for (int c = 0; c < 2; ++c) {
              const int kw = n * 8 + 2 * tig + c;
              twReg[i][n][2 * half + c] = kw >= w ? -INFINITY : term(kw);
            }
        }
      }
  }

  for (int j = 0; j < nTiles; ++j) {
    const int buf = j & 1;
    if (j + 1 < nTiles) {
      loadKeys<Half, D, Rows, 1, Src>(sK + (buf ^ 1) * kBc * kLd, p, Ks, oy, ox, j + 1);
      loadKeys<Half, D, Rows, 2, Src>(sV + (buf ^ 1) * kBc * kLd, p, Vs, oy, ox, j + 1);
      cpAsyncCommit();
      if constexpr (Mode == kBiasTable) keyTable<Ld>(sKey + (buf ^ 1) * kBc, j + 1, T, p.h, p.w);
      cpAsyncWait<1>();
    } else {
      cpAsyncWait<0>();
    }
    __syncthreads();
    const Half* k_s = sK + buf * kBc * kLd;
    const Half* v_s = sV + buf * kBc * kLd;

    if (active) {  // (a warp whose rows are all past T only helps load the tiles)
      // S = Q·Kᵀ: 8 n-tiles of 8 keys per m-tile.
      float s[M][8][4];
      scoreTile<Half, D, M, 4>(s, qf, k_s, 0, kRow, kCol);

      const int kbase = j * kBc;
#pragma unroll
      for (int i = 0; i < M; ++i) {
        float (&si)[8][4] = s[i];
        const float* thRow = thBase + 64 * i;
        // Scale, bias (log2 domain), mask. rb0 / rb1: a bias constant over the tile's row (added
        // to the running max rather than to each score).
        float rb0 = 0.f, rb1 = 0.f;
        if constexpr (Mode == kBiasRow) {
          rb0 = thRow[j * Ld];
          rb1 = thRow[j * Ld + 8];
          if constexpr (M == 1) {
#pragma unroll
            for (int n = 0; n < 8; ++n)
#pragma unroll
              for (int e = 0; e < 4; ++e) si[n][e] = fmaf(si[n][e], p.scaleLog2, twReg[i][n][e]);
          } else {
            // the tw of key kw = 8n + 2·tig + c: sTw[kw][row] (rows g, g + 8 of the m-tile)
            const float* tw = sTw + 2 * tig * Ld + 64 * i + row0 + g;
#pragma unroll
            for (int n = 0; n < 8; ++n) {
              const float* twn = tw + 8 * n * Ld;
              si[n][0] = fmaf(si[n][0], p.scaleLog2, twn[0]);
              si[n][1] = fmaf(si[n][1], p.scaleLog2, twn[Ld]);
              si[n][2] = fmaf(si[n][2], p.scaleLog2, twn[8]);
              si[n][3] = fmaf(si[n][3], p.scaleLog2, twn[Ld + 8]);
            }
          }
        } else if constexpr (Rows) {
          // n-tiles 2r, 2r + 1 are key row j·kRowsPerTile + r of the tile.
          const float* th = thRow + j * kRowsPerTile * Ld;
#pragma unroll
          for (int n = 0; n < 8; ++n) {
            const float b0 = th[(n >> 1) * Ld], b1 = th[(n >> 1) * Ld + 8];
            si[n][0] = fmaf(si[n][0], p.scaleLog2, twReg[i][n & 1][0] + b0);
            si[n][1] = fmaf(si[n][1], p.scaleLog2, twReg[i][n & 1][1] + b0);
            si[n][2] = fmaf(si[n][2], p.scaleLog2, twReg[i][n & 1][2] + b1);
            si[n][3] = fmaf(si[n][3], p.scaleLog2, twReg[i][n & 1][3] + b1);
          }
        } else if constexpr (Mode == kBiasTable) {
          const int2* tbl = sKey + buf * kBc + 2 * tig;
#pragma unroll
          for (int n = 0; n < 8; ++n) {
            const int4 kk = *reinterpret_cast<const int4*>(tbl + n * 8);  // keys col, col + 1
            const float* th0 = thRow + kk.x;
            const float* tw0 = thRow + kk.y;
            const float* th1 = thRow + kk.z;
            const float* tw1 = thRow + kk.w;
            si[n][0] = fmaf(si[n][0], p.scaleLog2, th0[0] + tw0[0]);
            si[n][1] = fmaf(si[n][1], p.scaleLog2, th1[0] + tw1[0]);
            si[n][2] = fmaf(si[n][2], p.scaleLog2, th0[8] + tw0[8]);
            si[n][3] = fmaf(si[n][3], p.scaleLog2, th1[8] + tw1[8]);
          }
        } else {
#pragma unroll
          for (int n = 0; n < 8; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) si[n][e] *= p.scaleLog2;
        }
        if (!Rows && kbase + kBc > T) {  // (kBiasRows masks through the bias)
#pragma unroll
          for (int n = 0; n < 8; ++n) {
            const int col = kbase + n * 8 + 2 * tig;
            if (col >= T) si[n][0] = si[n][2] = -INFINITY;
            if (col + 1 >= T) si[n][1] = si[n][3] = -INFINITY;
          }
        }

        // Online softmax (rows g and g + 8 of the m-tile; a row's 64 scores are spread over the
        // 4 lanes of a quad).
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int n = 0; n < 8; ++n) {
          mx0 = fmaxf(mx0, fmaxf(si[n][0], si[n][1]));
          mx1 = fmaxf(mx1, fmaxf(si[n][2], si[n][3]));
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        mx0 = fmaxf(mr[i][0], mx0 + rb0);
        mx1 = fmaxf(mr[i][1], mx1 + rb1);
        // Every tile holds at least one key < T (kBiasRows: key row j·kRowsPerTile < h, slot
        // kw = 0), so mx is finite; ex2(-inf) = 0 on the first tile.
        const float c0 = ex2(mr[i][0] - mx0), c1 = ex2(mr[i][1] - mx1);
        mr[i][0] = mx0;
        mr[i][1] = mx1;
        const float sub0 = mx0 - rb0, sub1 = mx1 - rb1;  // exp2(s + rb - mx)
        float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
        for (int n = 0; n < 8; ++n) {
          si[n][0] = ex2(si[n][0] - sub0);
          si[n][1] = ex2(si[n][1] - sub0);
          si[n][2] = ex2(si[n][2] - sub1);
          si[n][3] = ex2(si[n][3] - sub1);
          sum0 += si[n][0] + si[n][1];
          sum1 += si[n][2] + si[n][3];
        }
        lr[i][0] = lr[i][0] * c0 + sum0;
        lr[i][1] = lr[i][1] * c1 + sum1;
#pragma unroll
        for (int n = 0; n < kDTiles; ++n) {
          o[i][n][0] *= c0;
          o[i][n][1] *= c0;
          o[i][n][2] *= c1;
          o[i][n][3] *= c1;
        }
      }

      // O += P·V: P's accumulator fragments of key n-tiles 2kk, 2kk+1 are the A fragment of
      // k-step kk.
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        uint32_t a[M][4];
#pragma unroll
        for (int i = 0; i < M; ++i) {
          a[i][0] = pack<Half>(s[i][2 * kk][0], s[i][2 * kk][1]);
          a[i][1] = pack<Half>(s[i][2 * kk][2], s[i][2 * kk][3]);
          a[i][2] = pack<Half>(s[i][2 * kk + 1][0], s[i][2 * kk + 1][1]);
          a[i][3] = pack<Half>(s[i][2 * kk + 1][2], s[i][2 * kk + 1][3]);
        }
#pragma unroll
        for (int dp = 0; dp < kDTiles / 2; ++dp) {
          uint32_t b[4];
          ldmatrixX4T(b, v_s + (kk * 16 + vRow) * kLd + dp * 16 + vCol);
#pragma unroll
          for (int i = 0; i < M; ++i) {
            mma<Half>(o[i][2 * dp], a[i], b[0], b[1]);
            mma<Half>(o[i][2 * dp + 1], a[i], b[2], b[3]);
          }
        }
      }
    }
    __syncthreads();  // this stage is refilled by the next iteration's prefetch
  }

  // Normalise and store (rows past T dropped).
  // (32-bit: bh < 2^16, the launch's gridY)
  const int b = static_cast<int>(bh) / p.heads, hd = static_cast<int>(bh) - b * p.heads;
  const int64_t C = static_cast<int64_t>(p.heads) * D;
  // With gridE, set b is window b % n² of image b / n² (n² windows per image): its top-left cell.
  int image = 0, wy0 = 0, wx0 = 0;
  if (p.gridE > 0) {
    const int nw = windowsPerSide(p), n2 = nw * nw, win = b % n2, wy = win / nw;
    image = b / n2;
    wy0 = wy * p.w;
    wx0 = (win - wy * nw) * p.w;
  }
  // Output row of token t of set b: b·T + t, or with gridE its cell of the grid (-1: padding).
  auto outRow = [&](int t) -> int64_t {
    if (t >= T) return -1;
    if (p.gridE == 0) return static_cast<int64_t>(b) * T + t;
    const int ty = t / p.w, gy = wy0 + ty, gx = wx0 + (t - ty * p.w);
    return gy < p.gridE && gx < p.gridE ? (static_cast<int64_t>(image) * p.gridE + gy) * p.gridE + gx : -1;
  };
  // fp32 pairs, or (outHalf) pairs rounded for the next GEMM, two halves per 4-byte store
  auto store = [&](int64_t i, float a, float b) {
    if (p.outHalf)
      *reinterpret_cast<uint32_t*>(static_cast<Half*>(p.out) + i) = pack<Half>(a, b);
    else
      *reinterpret_cast<float2*>(static_cast<float*>(p.out) + i) = make_float2(a, b);
  };
#pragma unroll
  for (int i = 0; i < M; ++i) {
    float l0 = lr[i][0], l1 = lr[i][1];
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float inv0 = 1.f / l0, inv1 = 1.f / l1;
    const int t0 = q0 + 64 * i + row0 + g, t1 = t0 + 8;
    const int64_t r0 = outRow(t0), r1 = outRow(t1);
    const int64_t o0 = r0 * C + hd * D + 2 * tig, o1 = r1 * C + hd * D + 2 * tig;
#pragma unroll
    for (int n = 0; n < kDTiles; ++n) {
      if (r0 >= 0) store(o0 + n * 8, o[i][n][0] * inv0, o[i][n][1] * inv0);
      if (r1 >= 0) store(o1 + n * 8, o[i][n][2] * inv1, o[i][n][3] * inv1);
    }
  }
}

// A launch of the kernel: its template arguments (mode, M), parameters, grid and shared memory.
struct FaPlan {
  int mode = kNoBias;
  int m = 1;
  FaParams p;
  unsigned gridX = 0, gridY = 0;
  size_t smem = 0;  // bytes of dynamic shared memory
};


// Dense Q, K, V [B·heads, T, d] and the terms th / tw from memory (flashAttention).
inline FaSource denseSource(const void* Q, const void* K, const void* V, int64_t heads, int64_t T,
                            int64_t d, const float* th, const float* tw, int64_t ldth, int64_t ldtw) {
  FaSource s;
  s.Q = Q;
  s.K = K;
  s.V = V;
  s.setStride = heads * T * d;
  s.headStride = T * d;
  s.rowStride = static_cast<int>(d);
  s.th = th;
  s.tw = tw;
  s.ldth = static_cast<int>(ldth);
  s.ldtw = static_cast<int>(ldtw);
  return s;
}

// The qkv GEMM's output [rows, 3, heads, d] (flashAttentionQkv): rows b·T + t, or with gather one
// image's grid (padding cells from fill [3, heads, d], zeros where null); the terms computed in the
// kernel from relH / relW.
inline FaSource qkvSource(const void* qkv, const void* fill, int64_t heads, int64_t T, int64_t d,
                          bool gather, const void* relH, const void* relW, size_t halfBytes) {
  const int64_t C = heads * d;
  auto at = [&](const void* x, int64_t i) {
    return x ? static_cast<const void*>(static_cast<const char*>(x) + i * C * halfBytes) : nullptr;
  };
  FaSource s;
  s.Q = qkv;
  s.K = at(qkv, 1);
  s.V = at(qkv, 2);
  s.setStride = T * 3 * C;
  s.headStride = d;
  s.rowStride = static_cast<int>(3 * C);
  s.kind = gather ? kQkvGather : kQkv;
  s.fillQ = fill;
  s.fillK = at(fill, 1);
  s.fillV = at(fill, 2);
  s.relH = relH;
  s.relW = relW;
  return s;
}

// The plan of a call of the kernel (flash_attention.h): rows picks the key-row layout where
// w ≤ kWp (the caller resolves FlashKeys), m the m-tiles per warp (2 only at d = 64; the caller
// resolves FlashTile). Shapes and operands are checked by the caller.
inline FaPlan planFlash(const FaSource& src, int64_t B, int64_t heads, int64_t h, int64_t w, int64_t d,
                        float scale, void* out, int64_t gridE, bool rows, int m, bool outHalf,
                        size_t halfBytes) {
  FaPlan pl;
  const int64_t T = h * w;
  const bool relIn = src.kind != kDense;
  pl.m = m;
  pl.mode = !(src.th || src.tw || relIn) ? kNoBias : w == kBc ? kBiasRow : rows ? kBiasRows : kBiasTable;
  const int64_t ld = 64 * m + 4;  // kBiasLd<m>
  size_t smem = static_cast<size_t>(4 * kBc * (d + 8)) * halfBytes;
  if (pl.mode == kBiasRow || pl.mode == kBiasTable) smem += static_cast<size_t>(h * ld) * sizeof(float);
  if (pl.mode == kBiasRows)
    smem += static_cast<size_t>((h + kRowsPerTile - 1) / kRowsPerTile * kRowsPerTile * ld) * sizeof(float);
  if (pl.mode != kNoBias && (twStaged(pl.mode, m) || relIn))
    smem += static_cast<size_t>(w * ld) * sizeof(float);
  if (pl.mode == kBiasTable) smem += 2 * kBc * sizeof(int2);
  pl.smem = smem;
  FaParams& p = pl.p;
  static_cast<FaSource&>(p) = src;
  if (p.ldth <= 0) p.ldth = static_cast<int>(2 * h - 1);
  if (p.ldtw <= 0) p.ldtw = static_cast<int>(2 * w - 1);
  p.out = out;
  p.outHalf = outHalf;
  p.T = static_cast<int>(T);
  p.h = static_cast<int>(h);
  p.w = static_cast<int>(w);
  p.heads = static_cast<int>(heads);
  p.gridE = static_cast<int>(gridE);
  p.scaleLog2 = scale * kLog2e;
  pl.gridX = static_cast<unsigned>((T + 64 * m - 1) / (64 * m));
  pl.gridY = static_cast<unsigned>(B * heads);
  return pl;
}

}  // namespace omniseg::ops::cuda::flash
