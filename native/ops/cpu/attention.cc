// Attention. Each task handles one (grid or window, head, block of query rows): scores into a
// per-thread buffer, bias + softmax over each row, then the product with V written straight into
// the output's head columns. Nothing of size tokens² per head is kept. The two products run
// through the AVX-512 kernels (attention_avx512.h: keys packed once per head, blocks sized to
// stay in L2) where the CPU has them, else through OpenBLAS; in a bf16x3 image encoder on a CPU
// with AMX (amx::active), through the tiles (gemm_amx.h: keys and values packed once per head).
#include <cblas.h>

#include <algorithm>
#include <limits>

#include "ops/cpu/attention_avx2.h"
#include "ops/cpu/attention_avx512.h"
#include "ops/cpu/gemm_amx.h"
#include "ops/cpu/scratch.h"
#include "ops/cpu/simd.h"
#include "ops/ops.h"

namespace omniseg::ops::cpu {

namespace {

// Softmax over `rows` contiguous rows of n (short) scores: the exponentials in one vectorised
// pass over the block instead of a scalar tail per row (n < 8 never fills a vector).
OMNISEG_SIMD void softmaxShortRows(float* s, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = s + r * n;
    const float mx = simd::max(row, n);
    for (int64_t i = 0; i < n; ++i) row[i] -= mx;
  }
  for (int64_t i = 0; i < rows * n; ++i) s[i] = simd::expf(s[i]);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = s + r * n;
    const float inv = 1.f / simd::sum(row, n);
    for (int64_t i = 0; i < n; ++i) row[i] *= inv;
  }
}

// Keys below which softmaxShortRows is used (image-to-token attention: 4096 queries, ~7 keys).
constexpr int64_t kShortRow = 64;

// scores[kh*w + kw] += th[qh - kh + h - 1] + tw[qw - kw + w - 1] (decomposed rel-pos bias), and
// the row's max afterwards, in the same pass. twRev holds the w width terms for this query in key
// order, colMax [w] the running max of each key column.
OMNISEG_SIMD float addRelPosMax(float* scores, const float* th, const float* tw, int64_t h, int64_t w,
                                int64_t qh, int64_t qw, float* twRev, float* colMax) {
  for (int64_t kw = 0; kw < w; ++kw) {
    twRev[kw] = tw[qw - kw + w - 1];
    colMax[kw] = -std::numeric_limits<float>::infinity();
  }
  for (int64_t kh = 0; kh < h; ++kh) {
    const float bh = th[qh - kh + h - 1];
    float* s = scores + kh * w;
    for (int64_t kw = 0; kw < w; ++kw) {
      const float v = s[kw] + (bh + twRev[kw]);
      s[kw] = v;
      colMax[kw] = v > colMax[kw] ? v : colMax[kw];
    }
  }
  return simd::max(colMax, w);
}

// max over n values (simd::max, compiled for the widest vectors).
OMNISEG_SIMD float rowMax(const float* x, int64_t n) { return simd::max(x, n); }

// x[i] = exp(x[i] - mx) over n values; returns their sum (16 running partial sums).
OMNISEG_SIMD float expSum(float* x, int64_t n, float mx) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) {
      const float e = simd::expf(x[i + j] - mx);
      x[i + j] = e;
      acc[j] += e;
    }
  float s = 0.f;
  for (int j = 0; j < 16; ++j) s += acc[j];
  for (; i < n; ++i) {
    const float e = simd::expf(x[i] - mx);
    x[i] = e;
    s += e;
  }
  return s;
}

// o[i, 0:d] /= sums[i] for n rows of stride ld (softmax normalisation after P·V).
OMNISEG_SIMD void scaleRows(float* o, int64_t n, int64_t d, int64_t ld, const float* sums) {
  for (int64_t i = 0; i < n; ++i) {
    const float inv = 1.f / sums[i];
    for (int64_t j = 0; j < d; ++j) o[i * ld + j] *= inv;
  }
}

// One attention call: B independent problems (windows) × heads, each softmax(scale·q·kᵀ + bias)·v.
struct Problem {
  int64_t B, heads, d, Nq, Nk;
  const float *q, *k, *v;
  int64_t ldq, ldk, ldv;
  int64_t strideQ, strideK, strideV;  // between the B problems
  float* out;
  int64_t ldo, strideO;
  float scale;
  bool causal = false;
  // decomposed rel-pos bias (relPosAttention): queries and keys are the same h×w grid
  const float* relPosH = nullptr;
  const float* relPosW = nullptr;
  int64_t h = 0, w = 0;
};

// Task t of an attention call split into `blocks` blocks of `rows` queries per (problem, head):
// its problem b, head hd, first query i0, query count n, and its head's slices of the operands.
struct Slice {
  int64_t b, hd, i0, n;
  const float* Q;  // [n, d]
  const float* K;  // [Nk, d]
  const float* V;  // [Nk, d]
  float* o;        // [n, d]
};
Slice slice(const Problem& P, int64_t t, int64_t blocks, int64_t rows) {
  Slice s;
  s.b = t / (P.heads * blocks);
  s.hd = (t / blocks) % P.heads;
  s.i0 = (t % blocks) * rows;
  s.n = std::min(rows, P.Nq - s.i0);
  s.Q = P.q + s.b * P.strideQ + s.i0 * P.ldq + s.hd * P.d;
  s.K = P.k + s.b * P.strideK + s.hd * P.d;
  s.V = P.v + s.b * P.strideV + s.hd * P.d;
  s.o = P.out + s.b * P.strideO + s.i0 * P.ldo + s.hd * P.d;
  return s;
}

// Score floats per block of query rows on the kernel path (1 MiB: half the L2 of the Xeons this
// was first tuned on, the rest holding the packed keys and the values). On AMD Zen 3 (512 KiB of
// L2) smaller blocks were slower: blocks of 8 rows of SAM's global attention took 477-490 ms a
// layer, 24 rows 438-458 ms, these (56 rows) 427-451 ms: the keys and values streamed once per
// block weigh more than the scores spilling from L2.
constexpr int64_t kBlockFloats = 1 << 18;

// The blocked kernels of the widest vectors the CPU runs (null: OpenBLAS and the portable loops).
struct BlockKernels {
  decltype(&avx512::scores) scores;
  decltype(&avx512::expSum) expSum;
  decltype(&avx512::weightedValues) weightedValues;
  // Keys from which each head's values are first copied into a dense buffer: their rows, a token
  // apart, would each cost a TLB miss per block of queries. The AVX2 kernels read a row in 24-column
  // strips, so three times per block (d = 64): they gain from 64 keys on (a layer of SAM's 14×14 windows on Zen 3:
  // 46 → 37 ms).
  int64_t packValuesKeys;
};
const BlockKernels* blockKernels(int64_t d) {
  static constexpr BlockKernels k512{avx512::scores, avx512::expSum, avx512::weightedValues, 256};
  static constexpr BlockKernels k2{avx2::scores, avx2::expSum, avx2::weightedValues, 64};
  if (d > avx512::kMaxHeadDim) return nullptr;
  return avx512::supported() ? &k512 : avx2::supported() ? &k2 : nullptr;
}

void run(Ctx& ctx, const Problem& P) {
  const BlockKernels* kern = blockKernels(P.d);
  const bool kernels = kern != nullptr;
  const bool relPos = P.relPosH != nullptr;
  if (kernels && avx512::supported() && !relPos && !P.causal &&
      (P.Nk <= avx512::kFewKeys || (P.Nq <= avx512::kFewQueries && P.d <= 16))) {
    // one side short (SAM's two-way transformer): each head's attention in registers, in blocks
    // of 256 queries against few keys, or all of the few queries at once
    const bool fewKeys = P.Nk <= avx512::kFewKeys;
    const int64_t rows = fewKeys ? 256 : P.Nq, blocks = (P.Nq + rows - 1) / rows;
    ctx.pool.parallelFor(P.B * P.heads * blocks, 1, [&](int64_t t0, int64_t t1) {
      float* s = fewKeys ? nullptr : threadScratch(static_cast<size_t>(48 * P.Nk));
      for (int64_t t = t0; t < t1; ++t) {
        const Slice x = slice(P, t, blocks, rows);
        if (fewKeys)
          avx512::fewKeys(x.Q, P.ldq, x.n, x.K, P.ldk, x.V, P.ldv, P.Nk, P.d, P.scale, x.o, P.ldo);
        else
          avx512::fewQueries(x.Q, P.ldq, x.n, x.K, P.ldk, x.V, P.ldv, P.Nk, P.d, P.scale, s, x.o, P.ldo);
      }
    });
    return;
  }
  const bool shortRows = !P.causal && !relPos && P.Nk < kShortRow;
  // Score row stride: short rows dense (softmaxShortRows takes them as one block); else off
  // multiples of 1024 floats, whose rows would share L1 sets when read together.
  const int64_t lds = shortRows || P.Nk % 1024 != 0 ? P.Nk : P.Nk + 16;
  int64_t qb;
  if (kernels) {
    qb = std::clamp<int64_t>(kBlockFloats / lds / 8 * 8, 8, P.Nq);
    // at least 4 tasks per thread where the rows allow it
    const int64_t want = 4 * ctx.pool.size(), perProblem = (want + P.B * P.heads - 1) / (P.B * P.heads);
    if (perProblem > 1) qb = std::min(qb, std::max<int64_t>(8, (P.Nq + perProblem - 1) / perProblem));
  } else {
    // OpenBLAS packs K and V on every call: the whole grid for windows, 512 query rows for global
    // attention, 256 for plain attention
    qb = relPos ? (P.Nq <= 512 ? P.Nq : 512) : std::min<int64_t>(P.Nq, 256);
  }
  // the tiles take queries in blocks of 32
  const bool tiles = kernels && !shortRows && !P.causal && amx::active(ctx);
  if (tiles && qb < P.Nq) qb = std::max<int64_t>(32, qb / 32 * 32);
  const int64_t blocks = (P.Nq + qb - 1) / qb, d = P.d;
  ArenaScope scope(ctx.arena);
  // kernel path: each (problem, head)'s keys packed once; from packValuesKeys keys on its values
  // made contiguous too (see BlockKernels)
  // AMX path (bf16x3): keys as the "weight" of scale·q·kᵀ, values as that of p·v, each head's
  // packed once (uint16 tiles in float-sized arena slots)
  const bool packV = kernels && !tiles && P.Nk >= kern->packValuesKeys;
  const size_t kpSize = tiles     ? amx::packedElems(P.Nk, d) / 2
                        : kernels ? avx512::packedKeysSize(P.Nk, d)
                                  : 0;
  const size_t vpSize = tiles ? amx::packedElems(d, P.Nk) / 2 : packV ? static_cast<size_t>(P.Nk * d) : 0;
  float* kp = kernels ? ctx.arena.floats(static_cast<size_t>(P.B * P.heads) * kpSize) : nullptr;
  float* vp = vpSize ? ctx.arena.floats(static_cast<size_t>(P.B * P.heads) * vpSize) : nullptr;
  const auto keyTiles = [&](int64_t t) {
    return amx::Packed{reinterpret_cast<const uint16_t*>(kp + t * kpSize), P.Nk, d};
  };
  const auto valueTiles = [&](int64_t t) {
    return amx::Packed{reinterpret_cast<const uint16_t*>(vp + t * vpSize), d, P.Nk};
  };
  if (kernels) {
    ctx.pool.parallelFor(P.B * P.heads, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / P.heads, hd = t % P.heads;
        const float* K = P.k + b * P.strideK + hd * d;
        const float* V = P.v + b * P.strideV + hd * d;
        if (tiles) {
          amx::packRows(K, P.ldk, P.Nk, d, reinterpret_cast<uint16_t*>(kp + t * kpSize));
          amx::packColumns(V, P.ldv, P.Nk, d, reinterpret_cast<uint16_t*>(vp + t * vpSize));
          continue;
        }
        avx512::packKeys(K, P.ldk, P.Nk, d, kp + t * kpSize);
        if (packV) avx512::packValues(V, P.ldv, P.Nk, d, vp + t * vpSize);
      }
    });
  }
  const int64_t nh = relPos ? 2 * P.h - 1 : 0, nw = relPos ? 2 * P.w - 1 : 0;
  // AMX path: the rel-pos tables [2h-1, d] and [2w-1, d] packed as the weights of q·relPosᵀ
  uint16_t* relTiles = nullptr;
  const size_t relHElems = tiles && relPos ? amx::packedElems(nh, d) : 0;
  if (relHElems) {
    relTiles = reinterpret_cast<uint16_t*>(ctx.arena.floats((relHElems + amx::packedElems(nw, d)) / 2));
    amx::packRows(P.relPosH, d, nh, d, relTiles);
    amx::packRows(P.relPosW, d, nw, d, relTiles + relHElems);
  }
  // The kernels add the rel-pos bias as they store the scores (and find each row's max) where
  // each 32-key block lies in one grid row; elsewhere a pass over each row does.
  const bool gridBias = kernels && !tiles && relPos && P.w % 32 == 0;
  // elsewhere, the AVX-512 pass where the CPU has it (the portable loop keeps each key column's
  // max in memory, and runs scalar for grids narrower than a vector: SAM's 14×14 windows)
  const bool bias512 = relPos && !gridBias && avx512::supported();
  // AMX path: the exponentials written straight into p·v's split operand (amx::expSplitRow, the
  // AVX-512 exponential); with the AVX2 kernels (a test hook on AMX CPUs) expSum, then product()
  const bool fusedExp = tiles && avx512::supported();
  ctx.pool.parallelFor(P.B * P.heads * blocks, 1, [&](int64_t t0, int64_t t1) {
    // scores [qb, lds] | sums [qb] | rowMaxes [qb] | th [qb, 2h-1] | tw [qb, 2w-1] |
    // bh [qb, h] | bw [qb, w] | twRev [w] | colMax [w]
    // AMX path: | the probabilities, split for the tiles (64-byte aligned)
    const size_t split = fusedExp ? amx::splitElems(qb, P.Nk) / 2 + 16 : 0;
    float* s = threadScratch(static_cast<size_t>(qb * (lds + 2 + nh + nw + P.h + P.w) + 2 * P.w) + split);
    float* sums = s + qb * lds;
    float* rowMaxes = sums + qb;
    float* th = rowMaxes + qb;
    float* tw = th + qb * nh;
    float* bh = tw + qb * nw;
    float* bw = bh + qb * P.h;
    float* twRev = bw + qb * P.w;
    float* colMax = twRev + P.w;
    float* pEnd = colMax + P.w;
    auto* pt = reinterpret_cast<uint16_t*>(pEnd + (16 - reinterpret_cast<uintptr_t>(pEnd) / sizeof(float) % 16) % 16);
    for (int64_t t = t0; t < t1; ++t) {
      const auto [b, hd, i0, n, Q, K, V, o] = slice(P, t, blocks, qb);
      if (relPos) {
        // th = q·relPosHᵀ ; tw = q·relPosWᵀ (the bias uses the unscaled q)
        if (tiles) {
          amx::product(Q, n, P.ldq, 1.f, {relTiles, nh, d}, th, nh);
          amx::product(Q, n, P.ldq, 1.f, {relTiles + relHElems, nw, d}, tw, nw);
        } else {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nh, d, 1.f, Q, P.ldq, P.relPosH, d, 0.f, th, nh);
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nw, d, 1.f, Q, P.ldq, P.relPosW, d, 0.f, tw, nw);
        }
      }
      avx512::GridBias bias{bh, P.h, bw, P.w, P.w};
      if (gridBias) {  // bh[i, kh] = th[i, qh - kh + h - 1], bw[i, kw] = tw[i, qw - kw + w - 1]
        for (int64_t i = 0; i < n; ++i) {
          const int64_t qh = (i0 + i) / P.w, qw = (i0 + i) % P.w;
          for (int64_t kh = 0; kh < P.h; ++kh) bh[i * P.h + kh] = th[i * nh + qh - kh + P.h - 1];
          for (int64_t kw = 0; kw < P.w; ++kw) bw[i * P.w + kw] = tw[i * nw + qw - kw + P.w - 1];
        }
      }
      // s = (q·scale)·kᵀ (+ bias); the kernels also find each row's max where no pass follows
      const bool kernelMax = kernels && !tiles && !P.causal && (!relPos || gridBias);
      if (tiles)
        amx::product(Q, n, P.ldq, P.scale, keyTiles(b * P.heads + hd), s, lds);
      else if (kernels)
        kern->scores(Q, P.ldq, n, kp + (b * P.heads + hd) * kpSize, P.Nk, d, P.scale, s, lds,
                     kernelMax ? rowMaxes : nullptr, gridBias ? &bias : nullptr);
      else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, P.Nk, d, P.scale, Q, P.ldq, K, P.ldk, 0.f, s, lds);
      // softmax: exp + sum over each row (after the bias + max where not done above); the 1/sum
      // scales the d outputs of the row after P·V instead of its Nk probabilities. On the AMX
      // path the exponentials go straight into the split operand pt of p·v (fusedExp).
      const auto expRow = [&](float* row, int64_t i, int64_t valid, float mx) {
        return fusedExp  ? amx::expSplitRow(row, valid, mx, i, pt)
               : kernels ? kern->expSum(row, valid, mx)
                         : expSum(row, valid, mx);
      };
      const float* rowSums = sums;
      if (shortRows) {
        softmaxShortRows(s, n, P.Nk);
        rowSums = nullptr;
      } else if (relPos) {
        for (int64_t i = 0; i < n; ++i) {
          const int64_t qi = i0 + i;
          const float mx = gridBias ? rowMaxes[i]
                           : bias512  ? avx512::relPosBiasMax(s + i * lds, th + i * nh, tw + i * nw, P.h, P.w,
                                                              qi / P.w, qi % P.w, twRev)
                                      : addRelPosMax(s + i * lds, th + i * nh, tw + i * nw, P.h, P.w, qi / P.w,
                                                     qi % P.w, twRev, colMax);
          sums[i] = expRow(s + i * lds, i, P.Nk, mx);
        }
      } else {
        for (int64_t i = 0; i < n; ++i) {
          // causal: keys after the query get probability 0 (the reference adds -inf)
          const int64_t valid = P.causal ? std::min(P.Nk, i0 + i + 1) : P.Nk;
          float* row = s + i * lds;
          const float mx = kernelMax ? rowMaxes[i] : rowMax(row, valid);
          sums[i] = expRow(row, i, valid, mx);  // (the AMX path is never causal: valid = Nk)
          std::fill(row + valid, row + P.Nk, 0.f);
        }
      }
      // o = p·v (/ sums)
      if (tiles) {
        if (fusedExp) {
          amx::zeroSplitRows(n, P.Nk, pt);
          amx::productSplit(pt, n, valueTiles(b * P.heads + hd), o, P.ldo);
        } else {
          amx::product(s, n, lds, 1.f, valueTiles(b * P.heads + hd), o, P.ldo);
        }
        scaleRows(o, n, d, P.ldo, rowSums);
      } else if (kernels) {
        if (packV)
          kern->weightedValues(s, lds, n, vp + (b * P.heads + hd) * vpSize, d, P.Nk, d, rowSums, o, P.ldo);
        else
          kern->weightedValues(s, lds, n, V, P.ldv, P.Nk, d, rowSums, o, P.ldo);
      } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, P.Nk, 1.f, s, lds, V, P.ldv, 0.f, o, P.ldo);
        if (rowSums) scaleRows(o, n, d, P.ldo, rowSums);
      }
    }
  });
}

}  // namespace

void attention(Ctx& ctx, const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v,
               int64_t ldv, int64_t Nq, int64_t Nk, int64_t heads, int64_t d, float scale,
               float* out, bool causal) {
  Problem p{1, heads, d, Nq, Nk, q, k, v, ldq, ldk, ldv, 0, 0, 0, out, heads * d, 0, scale};
  p.causal = causal;
  run(ctx, p);
}

void relPosAttention(Ctx& ctx, const float* qkv, int64_t B, int64_t h, int64_t w, int64_t heads,
                     int64_t d, const float* relPosH, const float* relPosW, float* out) {
  const int64_t S = h * w, C = heads * d, ld = 3 * C;
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  Problem p{B, heads, d, S, S, qkv, qkv + C, qkv + 2 * C, ld, ld, ld, S * ld, S * ld, S * ld, out, C, S * C, scale};
  p.relPosH = relPosH;
  p.relPosW = relPosW;
  p.h = h;
  p.w = w;
  run(ctx, p);
}

}  // namespace omniseg::ops::cpu
