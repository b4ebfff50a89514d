// Fused attention for the encoder's half-precision mode (FlashAttention-2 style): one block of 4
// warps per (64 query rows, window/head); each warp owns 16 query rows. Per tile of 64 keys:
// S = Q·Kᵀ with mma.sync m16n8k16 (fp16/bf16 in, fp32 accumulate), then per score
// s·scale·log2e + (th + tw)·log2e with the rel-pos terms read from shared memory, online softmax
// in fp32 (exp2), P rounded to the half type and O += P·V with mma.sync. K/V tiles are
// double-buffered with cp.async (zero-filled past T); scores of keys past T are masked to -inf,
// query rows past T are computed on zeros and not stored. Q's fragments stay in registers.
//
// Shared memory per block: K, V [2 stages][64][d + 8] halves (the +8 halves pad rows so that
// ldmatrix is bank-conflict free), and with bias thS [h][68], twS [w][68] fp32 (column-major:
// the bias of tile row r for key row kh is thS[kh][r]; stride 68 ≡ 4 mod 32 makes the quad-row
// access pattern of an mma fragment conflict free) plus a per-stage table of the keys' (kh, kw)
// offsets. Rows of th / tw hold 2h-1 / 2w-1 terms but a query only ever uses h / w of them
// (indices qh .. qh+h-1), so only those are staged.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "ops/cuda/flash_attention.h"
#include "ops/cuda/launch.h"

namespace omniseg::ops::cuda {

namespace {

constexpr int kBr = 64;       // query rows per block
constexpr int kBc = 64;       // keys per tile
constexpr int kFaThreads = 128;  // 4 warps × 16 rows
constexpr int kBiasLd = kBr + 4;  // row stride (floats) of the staged bias tables
constexpr float kLog2e = 1.4426950408889634f;

struct FaParams {
  const void* Q;
  const void* K;
  const void* V;
  const float* th;  // may be null (zero bias) when the kernel is instantiated with Bias
  const float* tw;
  int ldth, ldtw;   // row strides of th and tw
  void* out;      // fp32, or Half when outHalf
  bool outHalf;
  int T, h, w, heads;
  int gridE;  // > 0: out is the E×E grid the h×w windows tile (see flashAttention)
  float scaleLog2;  // scale · log2(e)
};

__device__ __forceinline__ uint32_t smemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte async copy global → shared; zero-fills the destination when !valid.
__device__ __forceinline__ void cpAsync16(void* dst, const void* src, bool valid) {
  const int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smemAddr(dst)), "l"(src),
               "r"(n));
}
__device__ __forceinline__ void cpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrixX4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smemAddr(p)));
}
__device__ __forceinline__ void ldmatrixX4T(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smemAddr(p)));
}

// c += a·b, m16n8k16, fp32 accumulate.
template <class Half>
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                    uint32_t b1);
template <>
__device__ __forceinline__ void mma<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                            uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4],
                                                    uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

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

__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// 64 rows of a dense [·, D] half matrix into a [64][D + 8] shared tile: tile row r is source row
// rowOf(r), or zeros where rowOf(r) < 0.
template <class Half, int D, class RowOf>
__device__ __forceinline__ void loadRows(Half* dst, const Half* src, RowOf rowOf) {
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
  constexpr int kLd = D + 8;
  for (int i = threadIdx.x; i < kBc * kChunks; i += kFaThreads) {
    const int r = i / kChunks, c = i - r * kChunks;
    const int gr = rowOf(r);
    const bool ok = gr >= 0;
    cpAsync16(dst + r * kLd + c * 8, src + static_cast<int64_t>(ok ? gr : 0) * D + c * 8, ok);
  }
}

// Rows [row0, row0 + 64) of a dense [T, D] half matrix (rows past T zero-filled).
template <class Half, int D>
__device__ __forceinline__ void loadTile(Half* dst, const Half* src, int row0, int T) {
  loadRows<Half, D>(dst, src, [=](int r) { return row0 + r < T ? row0 + r : -1; });
}

// Keys laid out by key row (kBiasRows): each key row of w ≤ kWp keys takes kWp slots of a tile, so
// a tile holds kRowsPerTile key rows; the slots past w and the key rows past h are zero-filled and
// masked through their bias (-inf).
constexpr int kWp = 16;
constexpr int kRowsPerTile = kBc / kWp;

// Key tile `tile` of K or V into a [64][D + 8] shared tile: keys tile·64 .. +63 in token order, or
// with Rows key rows tile·kRowsPerTile .. +kRowsPerTile-1 in kWp slots each.
template <class Half, int D, bool Rows>
__device__ __forceinline__ void loadKeys(Half* dst, const Half* src, int tile, int T, int h, int w) {
  if constexpr (!Rows) {
    loadTile<Half, D>(dst, src, tile * kBc, T);
  } else {
    loadRows<Half, D>(dst, src, [=](int r) {
      const int kh = tile * kRowsPerTile + r / kWp, kw = r % kWp;
      return kh < h && kw < w ? kh * w + kw : -1;
    });
  }
}

// (kh, kw) offsets of the keys of tile `tile` into the staged bias tables, both from sTh
// (kh·kBiasLd, (h + kw)·kBiasLd: sTw follows sTh's h rows), written by the first kBc threads.
__device__ __forceinline__ void keyTable(int2* tbl, int tile, int T, int h, int w) {
  if (threadIdx.x < kBc) {
    const int k = tile * kBc + threadIdx.x;
    int kh = 0, kw = 0;
    if (k < T) {
      kh = k / w;
      kw = k - kh * w;
    }
    tbl[threadIdx.x] = make_int2(kh * kBiasLd, (h + kw) * kBiasLd);
  }
}

// Bias modes: kNoBias; kBiasTable (any h, w: per score, both terms from the staged tables);
// kBiasRow (w == kBc, SAM's 64×64 global attention: a key tile is one key row kh = tile, so a
// thread's 32 tw terms are the same for every tile and live in registers, and the th term is
// constant over a row of the tile and is folded into the running max instead of each score);
// kBiasRows (w ≤ kWp, e.g. SAM's 14×14 windows: keys laid out by key row, see loadKeys, so a
// thread's key columns have the same kw in every tile: its 8 tw terms live in registers, -inf on
// the padding slots, and its th terms are one per key row of the tile, -inf past h).
enum BiasMode { kNoBias, kBiasTable, kBiasRow, kBiasRows };

// Blocks per SM the register allocation aims at (the shared memory of the SAM shapes allows them):
// 4 at d = 64 (the 128 registers the kernel needs without the row bias), 3 otherwise up to d = 80.
template <int D, int Mode>
constexpr int kMinBlocks = D <= 64 && Mode != kBiasRow ? 4 : D <= 80 ? 3 : 2;

template <class Half, int D, int Mode>
__global__ void __launch_bounds__(kFaThreads, (kMinBlocks<D, Mode>))
    flashAttentionKernel(FaParams p) {
  constexpr bool Bias = Mode != kNoBias;
  constexpr int kLd = D + 8;
  constexpr int kKSteps = D / 16;  // k-steps of Q·Kᵀ
  constexpr int kDTiles = D / 8;   // n-tiles of O
  extern __shared__ __align__(16) unsigned char smem[];
  Half* sK = reinterpret_cast<Half*>(smem);  // [2][kBc][kLd]
  Half* sV = sK + 2 * kBc * kLd;             // [2][kBc][kLd]
  float* sTh = reinterpret_cast<float*>(sV + 2 * kBc * kLd);  // [h][kBiasLd]
  float* sTw = sTh + p.h * kBiasLd;  // [w][kBiasLd] (kBiasTable only)
  int2* sKey = reinterpret_cast<int2*>(sTw + p.w * kBiasLd);   // [2][kBc]

  const int T = p.T;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, tig = lane & 3;
  const int q0 = blockIdx.x * kBr;
  const int64_t bh = blockIdx.y;
  const Half* Qg = static_cast<const Half*>(p.Q) + bh * T * D;
  const Half* Kg = static_cast<const Half*>(p.K) + bh * T * D;
  const Half* Vg = static_cast<const Half*>(p.V) + bh * T * D;
  constexpr bool Rows = Mode == kBiasRows;
  const int nTiles = Rows ? (p.h + kRowsPerTile - 1) / kRowsPerTile : (T + kBc - 1) / kBc;

  // Prologue: Q (staged in V's second stage), K and V tile 0.
  loadTile<Half, D>(sV + kBc * kLd, Qg, q0, T);
  loadKeys<Half, D, Rows>(sK, Kg, 0, T, p.h, p.w);
  loadKeys<Half, D, Rows>(sV, Vg, 0, T, p.h, p.w);
  cpAsyncCommit();
  if constexpr (Bias) {
    // sTh[kh][r] = th[row q0 + r][qh + h - 1 - kh] · log2e (0 past T or without th; kBiasRows:
    // -inf for the padding key rows kh ≥ h of the last tile); same for tw.
    const int h = p.h, w = p.w;
    const int hs = Rows ? nTiles * kRowsPerTile : h;  // staged key rows
    for (int r = warp; r < kBr; r += kFaThreads / 32) {
      const int t = q0 + r;
      const bool ok = t < T;
      const int qh = ok ? t / w : 0, qw = ok ? t - qh * w : 0;
      const int64_t row = bh * T + t;
      const float* thr = ok && p.th ? p.th + row * p.ldth + qh + h - 1 : nullptr;
      const float* twr = ok && p.tw ? p.tw + row * p.ldtw + qw + w - 1 : nullptr;
      for (int kh = lane; kh < hs; kh += 32)
        sTh[kh * kBiasLd + r] = kh >= h ? -INFINITY : thr ? thr[-kh] * kLog2e : 0.f;
      if constexpr (Mode == kBiasTable)
        for (int kw = lane; kw < w; kw += 32)
          sTw[kw * kBiasLd + r] = twr ? twr[-kw] * kLog2e : 0.f;
    }
    if constexpr (Mode == kBiasTable) keyTable(sKey, 0, T, h, w);
  }
  cpAsyncWait<0>();
  __syncthreads();

  const int row0 = warp * 16;  // this warp's rows in the tile
  const bool active = q0 + row0 < T;
  uint32_t qf[kKSteps][4];
  {
    const Half* sQ = sV + kBc * kLd;
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk)
      ldmatrixX4(qf[kk], sQ + (row0 + (lane & 15)) * kLd + kk * 16 + (lane >> 4) * 8);
  }
  __syncthreads();  // the Q stage is overwritten by the first prefetch

  float o[kDTiles][4];
#pragma unroll
  for (int n = 0; n < kDTiles; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
  // Lane offsets of the ldmatrix addresses: K (non-transposed, two key n-tiles × two d halves),
  // V (transposed, two key halves × two d n-tiles).
  const int kRow = (lane & 7) + ((lane >> 4) << 3), kCol = ((lane >> 3) & 1) * 8;
  const int vRow = (lane & 7) + (((lane >> 3) & 1) << 3), vCol = (lane >> 4) * 8;
  const float* thBase = sTh + row0 + g;
  // kBiasRow: this thread's tw terms (rows g, g + 8; keys kw = 8n + 2·tig + c of every tile).
  // kBiasRows: rows g, g + 8; the key slots kw = 8·(n & 1) + 2·tig + c of every key row.
  float twReg[Mode == kBiasRow ? 8 : Rows ? 2 : 1][4];
  if constexpr (Mode == kBiasRow) {
    const int w = p.w;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int t = q0 + row0 + g + 8 * half;  // < T: T is a multiple of kBc = kBr here
      const int qw = t % w;
      const float* twr = p.tw ? p.tw + (bh * T + t) * p.ldtw + qw + w - 1 : nullptr;
#pragma unroll
      for (int n = 0; n < 8; ++n)
#pragma unroll
        for (int c = 0; c < 2; ++c)
          twReg[n][2 * half + c] = twr ? twr[-(n * 8 + 2 * tig + c)] * kLog2e : 0.f;
    }
  } else if constexpr (Rows) {
    const int w = p.w;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int t = q0 + row0 + g + 8 * half;
      const float* twr = t < T && p.tw ? p.tw + (bh * T + t) * p.ldtw + t % w + w - 1 : nullptr;
#pragma unroll
      for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int kw = n * 8 + 2 * tig + c;
          twReg[n][2 * half + c] = kw >= w ? -INFINITY : twr ? twr[-kw] * kLog2e : 0.f;
        }
    }
  }

  for (int j = 0; j < nTiles; ++j) {
    const int buf = j & 1;
    if (j + 1 < nTiles) {
      loadKeys<Half, D, Rows>(sK + (buf ^ 1) * kBc * kLd, Kg, j + 1, T, p.h, p.w);
      loadKeys<Half, D, Rows>(sV + (buf ^ 1) * kBc * kLd, Vg, j + 1, T, p.h, p.w);
      cpAsyncCommit();
      if constexpr (Mode == kBiasTable) keyTable(sKey + (buf ^ 1) * kBc, j + 1, T, p.h, p.w);
      cpAsyncWait<1>();
    } else {
      cpAsyncWait<0>();
    }
    __syncthreads();
    const Half* k_s = sK + buf * kBc * kLd;
    const Half* v_s = sV + buf * kBc * kLd;

    if (active) {  // (a warp whose 16 rows are all past T only helps load the tiles)
      // S = Q·Kᵀ: 8 n-tiles of 8 keys.
      float s[8][4];
#pragma unroll
      for (int n = 0; n < 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk) {
#pragma unroll
        for (int np = 0; np < 4; ++np) {
          uint32_t b[4];
          ldmatrixX4(b, k_s + (np * 16 + kRow) * kLd + kk * 16 + kCol);
          mma<Half>(s[2 * np], qf[kk], b[0], b[1]);
          mma<Half>(s[2 * np + 1], qf[kk], b[2], b[3]);
        }
      }

      // Scale, bias (log2 domain), mask. rb0 / rb1: a bias constant over the tile's row (added to
      // the running max rather than to each score).
      float rb0 = 0.f, rb1 = 0.f;
      if constexpr (Mode == kBiasRow) {
        rb0 = thBase[j * kBiasLd];
        rb1 = thBase[j * kBiasLd + 8];
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) s[n][e] = fmaf(s[n][e], p.scaleLog2, twReg[n][e]);
      } else if constexpr (Rows) {
        // n-tiles 2r, 2r + 1 are key row j·kRowsPerTile + r of the tile.
        const float* th = thBase + j * kRowsPerTile * kBiasLd;
#pragma unroll
        for (int n = 0; n < 8; ++n) {
          const float b0 = th[(n >> 1) * kBiasLd], b1 = th[(n >> 1) * kBiasLd + 8];
          s[n][0] = fmaf(s[n][0], p.scaleLog2, twReg[n & 1][0] + b0);
          s[n][1] = fmaf(s[n][1], p.scaleLog2, twReg[n & 1][1] + b0);
          s[n][2] = fmaf(s[n][2], p.scaleLog2, twReg[n & 1][2] + b1);
          s[n][3] = fmaf(s[n][3], p.scaleLog2, twReg[n & 1][3] + b1);
        }
      } else if constexpr (Mode == kBiasTable) {
        const int2* tbl = sKey + buf * kBc + 2 * tig;
#pragma unroll
        for (int n = 0; n < 8; ++n) {
          const int4 kk = *reinterpret_cast<const int4*>(tbl + n * 8);  // keys col, col + 1
          const float* th0 = thBase + kk.x;
          const float* tw0 = thBase + kk.y;
          const float* th1 = thBase + kk.z;
          const float* tw1 = thBase + kk.w;
          s[n][0] = fmaf(s[n][0], p.scaleLog2, th0[0] + tw0[0]);
          s[n][1] = fmaf(s[n][1], p.scaleLog2, th1[0] + tw1[0]);
          s[n][2] = fmaf(s[n][2], p.scaleLog2, th0[8] + tw0[8]);
          s[n][3] = fmaf(s[n][3], p.scaleLog2, th1[8] + tw1[8]);
        }
      } else {
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) s[n][e] *= p.scaleLog2;
      }
      const int kbase = j * kBc;
      if (!Rows && kbase + kBc > T) {  // (kBiasRows masks through the bias)
#pragma unroll
        for (int n = 0; n < 8; ++n) {
          const int col = kbase + n * 8 + 2 * tig;
          if (col >= T) s[n][0] = s[n][2] = -INFINITY;
          if (col + 1 >= T) s[n][1] = s[n][3] = -INFINITY;
        }
      }

      // Online softmax (rows g and g + 8 of the warp's 16; a row's 64 scores are spread over the
      // 4 lanes of a quad).
      float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
      for (int n = 0; n < 8; ++n) {
        mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1]));
        mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3]));
      }
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
      mx0 = fmaxf(m0, mx0 + rb0);
      mx1 = fmaxf(m1, mx1 + rb1);
      // Every tile holds at least one key < T (kBiasRows: key row j·kRowsPerTile < h, slot
      // kw = 0), so mx is finite; ex2(-inf) = 0 on the first tile.
      const float c0 = ex2(m0 - mx0), c1 = ex2(m1 - mx1);
      m0 = mx0;
      m1 = mx1;
      const float sub0 = mx0 - rb0, sub1 = mx1 - rb1;  // exp2(s + rb - mx)
      float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
      for (int n = 0; n < 8; ++n) {
        s[n][0] = ex2(s[n][0] - sub0);
        s[n][1] = ex2(s[n][1] - sub0);
        s[n][2] = ex2(s[n][2] - sub1);
        s[n][3] = ex2(s[n][3] - sub1);
        sum0 += s[n][0] + s[n][1];
        sum1 += s[n][2] + s[n][3];
      }
      l0 = l0 * c0 + sum0;
      l1 = l1 * c1 + sum1;
#pragma unroll
      for (int n = 0; n < kDTiles; ++n) {
        o[n][0] *= c0;
        o[n][1] *= c0;
        o[n][2] *= c1;
        o[n][3] *= c1;
      }

      // O += P·V: P's accumulator fragments of key n-tiles 2kk, 2kk+1 are the A fragment of
      // k-step kk.
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        uint32_t a[4];
        a[0] = pack<Half>(s[2 * kk][0], s[2 * kk][1]);
        a[1] = pack<Half>(s[2 * kk][2], s[2 * kk][3]);
        a[2] = pack<Half>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        a[3] = pack<Half>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
        for (int dp = 0; dp < kDTiles / 2; ++dp) {
          uint32_t b[4];
          ldmatrixX4T(b, v_s + (kk * 16 + vRow) * kLd + dp * 16 + vCol);
          mma<Half>(o[2 * dp], a, b[0], b[1]);
          mma<Half>(o[2 * dp + 1], a, b[2], b[3]);
        }
      }
    }
    __syncthreads();  // this stage is refilled by the next iteration's prefetch
  }

  // Normalise and store (rows past T dropped).
  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  const float inv0 = 1.f / l0, inv1 = 1.f / l1;
  const int64_t b = bh / p.heads, hd = bh - b * p.heads;
  const int t0 = q0 + row0 + g, t1 = t0 + 8;
  const int64_t C = static_cast<int64_t>(p.heads) * D;
  // Output row of token t of set b: b·T + t, or with gridE its cell of the grid (-1: padding).
  auto outRow = [&](int t) -> int64_t {
    if (t >= T) return -1;
    if (p.gridE == 0) return b * T + t;
    const int nw = (p.gridE + p.w - 1) / p.w, wy = static_cast<int>(b) / nw, wx = static_cast<int>(b) - wy * nw;
    const int ty = t / p.w, gy = wy * p.w + ty, gx = wx * p.w + (t - ty * p.w);
    return gy < p.gridE && gx < p.gridE ? static_cast<int64_t>(gy) * p.gridE + gx : -1;
  };
  const int64_t r0 = outRow(t0), r1 = outRow(t1);
  const int64_t o0 = r0 * C + hd * D + 2 * tig, o1 = r1 * C + hd * D + 2 * tig;
  // fp32 pairs, or (outHalf) pairs rounded for the next GEMM, two halves per 4-byte store
  auto store = [&](int64_t i, float a, float b) {
    if (p.outHalf)
      *reinterpret_cast<uint32_t*>(static_cast<Half*>(p.out) + i) = pack<Half>(a, b);
    else
      *reinterpret_cast<float2*>(static_cast<float*>(p.out) + i) = make_float2(a, b);
  };
#pragma unroll
  for (int n = 0; n < kDTiles; ++n) {
    if (r0 >= 0) store(o0 + n * 8, o[n][0] * inv0, o[n][1] * inv0);
    if (r1 >= 0) store(o1 + n * 8, o[n][2] * inv1, o[n][3] * inv1);
  }
}

template <class Half, int D, int Mode>
void launch(const FaParams& p, dim3 grid, size_t smem, cudaStream_t st) {
  auto* kernel = flashAttentionKernel<Half, D, Mode>;
  // Opt in to more than 48 KiB of dynamic shared memory (the same value on every call).
  int dev = 0, optin = 0;
  OMNISEG_CUDA_CHECK(cudaGetDevice(&dev));
  OMNISEG_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  OMNISEG_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, optin));
  kernel<<<grid, kFaThreads, smem, st>>>(p);
  gpu::checkLaunch("flashAttentionKernel");
}

template <class Half, int D>
void launchD(const FaParams& p, int mode, dim3 grid, size_t smem, cudaStream_t st) {
  if (mode == kBiasRow)
    launch<Half, D, kBiasRow>(p, grid, smem, st);
  else if (mode == kBiasRows)
    launch<Half, D, kBiasRows>(p, grid, smem, st);
  else if (mode == kBiasTable)
    launch<Half, D, kBiasTable>(p, grid, smem, st);
  else
    launch<Half, D, kNoBias>(p, grid, smem, st);
}

bool aligned(const void* p, uintptr_t a) { return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0; }

// FlashKeys::Auto takes the key-row layout where it costs no extra tiles, unless
// OMNISEG_FLASH_KEYS=dense (token order). Measured on an H100 (session 17): SAM ViT-B's 14×14
// windows take 0.061 ms in rows against 0.073 ms in token order, and the batch-4 encode per image
// was faster with rows in 7 of 8 runs. Read on every call (one per attention layer), so that a
// test can switch it.
bool rowsByDefault() {
  const char* v = std::getenv("OMNISEG_FLASH_KEYS");
  return !(v && std::strcmp(v, "dense") == 0);
}

}  // namespace

template <class Half>
bool flashAttention(Ctx& ctx, const Half* Q, const Half* K, const Half* V, int64_t B, int64_t heads,
                    int64_t h, int64_t w, int64_t d, float scale, const float* th, const float* tw,
                    void* out, int64_t ldth, int64_t ldtw, int64_t gridE, FlashKeys keys,
                    bool outHalf) {
  OMNISEG_CHECK(B > 0 && heads > 0 && h > 0 && w > 0 && d > 0, "flashAttention: bad shape");
  OMNISEG_CHECK(gridE == 0 || (h == w && B == ((gridE + w - 1) / w) * ((gridE + w - 1) / w)),
                "flashAttention: B is not the window count of the grid");
  OMNISEG_CHECK(Q && K && V && out, "flashAttention: null operand");
  const cudaStream_t st = stream(ctx);
  const int64_t T = h * w, BH = B * heads;
  if (!flashHeadSize(d)) return false;
  if (T > (int64_t{1} << 24) || BH > 65535 || gridE > (1 << 15)) return false;
  if (!aligned(Q, 16) || !aligned(K, 16) || !aligned(V, 16) || !aligned(out, outHalf ? 4 : 8))
    return false;
  const int64_t rowTiles = (h + kRowsPerTile - 1) / kRowsPerTile;
  const bool rows = w <= kWp && (keys == FlashKeys::Rows ||
                                 (keys == FlashKeys::Auto && rowsByDefault() &&
                                  rowTiles <= (T + kBc - 1) / kBc));
  const int mode = !(th || tw) ? kNoBias : w == kBc ? kBiasRow : rows ? kBiasRows : kBiasTable;
  size_t smem = static_cast<size_t>(4 * kBc * (d + 8)) * sizeof(Half);
  if (mode == kBiasRow) smem += static_cast<size_t>(h * kBiasLd) * sizeof(float);
  if (mode == kBiasRows)
    smem += static_cast<size_t>(rowTiles * kRowsPerTile * kBiasLd) * sizeof(float);
  if (mode == kBiasTable)
    smem += static_cast<size_t>((h + w) * kBiasLd) * sizeof(float) + 2 * kBc * sizeof(int2);
  int dev = 0, optin = 0;
  OMNISEG_CUDA_CHECK(cudaGetDevice(&dev));
  OMNISEG_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  if (smem > static_cast<size_t>(optin)) return false;

  FaParams p;
  p.Q = Q;
  p.K = K;
  p.V = V;
  p.th = th;
  p.tw = tw;
  p.ldth = static_cast<int>(ldth > 0 ? ldth : 2 * h - 1);
  p.ldtw = static_cast<int>(ldtw > 0 ? ldtw : 2 * w - 1);
  p.out = out;
  p.outHalf = outHalf;
  p.T = static_cast<int>(T);
  p.h = static_cast<int>(h);
  p.w = static_cast<int>(w);
  p.heads = static_cast<int>(heads);
  p.gridE = static_cast<int>(gridE);
  p.scaleLog2 = scale * kLog2e;
  const dim3 grid(static_cast<unsigned>((T + kBr - 1) / kBr), static_cast<unsigned>(BH));
  switch (d) {
    case 32: launchD<Half, 32>(p, mode, grid, smem, st); break;
    case 64: launchD<Half, 64>(p, mode, grid, smem, st); break;
    case 80: launchD<Half, 80>(p, mode, grid, smem, st); break;
    case 96: launchD<Half, 96>(p, mode, grid, smem, st); break;
    default: launchD<Half, 128>(p, mode, grid, smem, st); break;
  }
  return true;
}

template bool flashAttention<__half>(Ctx&, const __half*, const __half*, const __half*, int64_t,
                                     int64_t, int64_t, int64_t, int64_t, float, const float*,
                                     const float*, void*, int64_t, int64_t, int64_t, FlashKeys,
                                     bool);
template bool flashAttention<__nv_bfloat16>(Ctx&, const __nv_bfloat16*, const __nv_bfloat16*,
                                            const __nv_bfloat16*, int64_t, int64_t, int64_t,
                                            int64_t, int64_t, float, const float*, const float*,
                                            void*, int64_t, int64_t, int64_t, FlashKeys, bool);

}  // namespace omniseg::ops::cuda
