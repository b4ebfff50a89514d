// AVX-512 attention micro-kernels (see attention_avx512.h). Register tiles:
//   scores:         8 query rows × 32 keys (16 accumulators), one pass over d per tile; the
//                   rel-pos bias and each row's running max applied as the tile is stored
//   weightedValues: 4 query rows × d ≤ 80 (up to 20 accumulators), one pass over the keys
// Both are bound by the FMA units, not by loads: each step issues 16-20 FMAs for 6-10 loads.
// expSum: the softmax exponentials. fewKeys / fewQueries: whole heads in registers where one
// side has at most 16 tokens.
#include "ops/cpu/attention_avx512.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

#include "core/error.h"
#include "ops/cpu/exp_avx512.h"

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12's reduce/extract intrinsics start from an undefined vector and warn about it when inlined
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define OMNISEG_AVX512 1
#define AVX512_FN __attribute__((target("avx512f")))
#endif

namespace omniseg::ops::cpu::avx512 {

namespace {
constexpr int64_t kKeys = 32;  // keys per packed block (two vectors)
std::atomic<bool> enabled{true};
}  // namespace

void setEnabled(bool on) { enabled = on; }

size_t packedKeysSize(int64_t S, int64_t d) {
  return static_cast<size_t>((S + kKeys - 1) / kKeys * kKeys * d);
}

void packKeys(const float* k, int64_t ldk, int64_t S, int64_t d, float* kp) {
  // each block's rows copied dense first, then transposed out of L1 (a direct transpose writes
  // with a 128-byte stride from rows a page apart)
  float rows[kKeys * kMaxHeadDim];
  for (int64_t j0 = 0; j0 < S; j0 += kKeys) {
    const int64_t n = std::min(kKeys, S - j0);
    for (int64_t jj = 0; jj < n; ++jj) std::memcpy(rows + jj * d, k + (j0 + jj) * ldk, static_cast<size_t>(d) * sizeof(float));
    std::memset(rows + n * d, 0, static_cast<size_t>((kKeys - n) * d) * sizeof(float));
    float* blk = kp + j0 * d;  // [d, 32]
    for (int64_t c = 0; c < d; ++c)
      for (int64_t jj = 0; jj < kKeys; ++jj) blk[c * kKeys + jj] = rows[jj * d + c];
  }
}

void packValues(const float* v, int64_t ldv, int64_t S, int64_t d, float* vp) {
  for (int64_t j = 0; j < S; ++j) std::memcpy(vp + j * d, v + j * ldv, static_cast<size_t>(d) * sizeof(float));
}

#ifdef OMNISEG_AVX512

bool supported() {
  static const bool cpu = __builtin_cpu_supports("avx512f");
  return cpu && enabled;
}

namespace {

// f(std::integral_constant<int, NV>) for the NV = ceil(d / 16) vectors a head of size d takes.
template <class F>
void byVectors(int64_t d, F&& f) {
  switch ((d + 15) / 16) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    default: throw Error("attention: head size " + std::to_string(d) + " exceeds the AVX-512 kernels' " +
                         std::to_string(kMaxHeadDim));
  }
}

// R query rows against the 32 keys from j0 (blk: their packed block); bh, bw: the rows' bias
// terms for this block's grid row and first column (null: no bias).
template <int R>
AVX512_FN void scoreTile(const float* q, int64_t ldq, const float* blk, int64_t j0, int64_t S,
                         int64_t d, __m512 vscale, float* s, int64_t lds, __m512* vmax,
                         const float* bh, int64_t ldbh, const float* bw, int64_t ldbw) {
  __m512 acc[2 * R];
#pragma GCC unroll 16
  for (int a = 0; a < 2 * R; ++a) acc[a] = _mm512_setzero_ps();
  for (int64_t c = 0; c < d; ++c) {
    const __m512 k0 = _mm512_loadu_ps(blk + c * kKeys);
    const __m512 k1 = _mm512_loadu_ps(blk + c * kKeys + 16);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 qv = _mm512_set1_ps(q[r * ldq + c]);
      acc[2 * r] = _mm512_fmadd_ps(qv, k0, acc[2 * r]);
      acc[2 * r + 1] = _mm512_fmadd_ps(qv, k1, acc[2 * r + 1]);
    }
  }
  const int64_t left = S - j0;
  // the last, partial block stores only keys < S
  const __mmask16 m0 = left >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << left) - 1);
  const __mmask16 m1 = left >= 32 ? 0xFFFF : left > 16 ? static_cast<__mmask16>((1u << (left - 16)) - 1) : 0;
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    __m512 s0 = _mm512_mul_ps(acc[2 * r], vscale), s1 = _mm512_mul_ps(acc[2 * r + 1], vscale);
    if (bh) {  // + (bh + bw): the rel-pos bias, as attention.cc's separate pass adds it
      const __m512 h = _mm512_set1_ps(bh[r * ldbh]);
      s0 = _mm512_add_ps(s0, _mm512_add_ps(h, _mm512_loadu_ps(bw + r * ldbw)));
      s1 = _mm512_add_ps(s1, _mm512_add_ps(h, _mm512_loadu_ps(bw + r * ldbw + 16)));
    }
    _mm512_mask_storeu_ps(s + r * lds + j0, m0, s0);
    _mm512_mask_storeu_ps(s + r * lds + j0 + 16, m1, s1);
    if (vmax) {  // running max per lane (keys past S as -inf)
      const __m512 m = _mm512_max_ps(_mm512_mask_blend_ps(m0, ninf, s0), _mm512_mask_blend_ps(m1, ninf, s1));
      vmax[r] = j0 == 0 ? m : _mm512_max_ps(vmax[r], m);
    }
  }
}

// R query rows of o = p · v over keys [j0, j1) and NV vectors of the head (the last one
// masked to d). The sums run on in o between key chunks (first: start from 0; last: divide by
// sums), so each chunk of v is read from L1 by every row group.
template <int R, int NV>
AVX512_FN void valueTile(const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t j0,
                         int64_t j1, int64_t d, bool first, bool lastChunk, const float* sums,
                         float* o, int64_t ldo) {
  const __mmask16 tail = static_cast<__mmask16>((1u << (d - 16 * (NV - 1))) - 1);
  __m512 acc[R * NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i)
      acc[r * NV + i] = first ? _mm512_setzero_ps()
                              : _mm512_maskz_loadu_ps(i + 1 < NV ? 0xFFFF : tail, o + r * ldo + 16 * i);
  for (int64_t j = j0; j < j1; ++j) {
    const float* vr = v + j * ldv;
    __m512 vv[NV];
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) vv[i] = _mm512_maskz_loadu_ps(i + 1 < NV ? 0xFFFF : tail, vr + 16 * i);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 pr = _mm512_set1_ps(p[r * ldp + j]);
#pragma GCC unroll 8
      for (int i = 0; i < NV; ++i) acc[r * NV + i] = _mm512_fmadd_ps(pr, vv[i], acc[r * NV + i]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const __m512 inv = _mm512_set1_ps(lastChunk && sums ? 1.f / sums[r] : 1.f);
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i)
      _mm512_mask_storeu_ps(o + r * ldo + 16 * i, i + 1 < NV ? 0xFFFF : tail, _mm512_mul_ps(acc[r * NV + i], inv));
  }
}

// Keys per chunk of weightedValues: 128 × d ≤ 80 floats of v stay in L1.
constexpr int64_t kValueKeys = 128;

template <int NV>
void valueBlock(const float* p, int64_t ldp, int64_t n, const float* v, int64_t ldv, int64_t S,
                int64_t d, const float* sums, float* o, int64_t ldo) {
  for (int64_t j0 = 0; j0 < S; j0 += kValueKeys) {
    const int64_t j1 = std::min(S, j0 + kValueKeys);
    const bool first = j0 == 0, last = j1 == S;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
      valueTile<4, NV>(p + i * ldp, ldp, v, ldv, j0, j1, d, first, last, sums ? sums + i : nullptr, o + i * ldo, ldo);
    for (; i < n; ++i)
      valueTile<1, NV>(p + i * ldp, ldp, v, ldv, j0, j1, d, first, last, sums ? sums + i : nullptr, o + i * ldo, ldo);
  }
}

// Rows ahead that fewKeys and fewQueries prefetch: their rows lie a head apart in a wider
// matrix, which the hardware prefetchers do not run ahead of.
constexpr int64_t kAhead = 16;

// R rows of fewKeys (R independent FMA chains in flight); kT[c][j] = k[j, c], 0 for j >= S.
template <int R, int NV>
AVX512_FN void fewKeysTile(const float* q, int64_t ldq, const float (*kT)[16], const float* v,
                           int64_t ldv, int64_t S, int64_t d, __m512 vscale, float* o, int64_t ldo) {
  const __mmask16 valid = static_cast<__mmask16>((1u << S) - 1);
  const __mmask16 tail = static_cast<__mmask16>((1u << (d - 16 * (NV - 1))) - 1);
  __m512 sc[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) sc[r] = _mm512_setzero_ps();
  for (int64_t c = 0; c < d; ++c) {
    const __m512 kc = _mm512_load_ps(kT[c]);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) sc[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r * ldq + c]), kc, sc[r]);
  }
  alignas(64) float e[R][16];
  float inv[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const __m512 x = _mm512_mul_ps(sc[r], vscale);
    const float mx = _mm512_mask_reduce_max_ps(valid, x);
    const __m512 ex = _mm512_maskz_mov_ps(valid, expNonPositive(_mm512_sub_ps(x, _mm512_set1_ps(mx))));
    inv[r] = 1.f / _mm512_reduce_add_ps(ex);
    _mm512_store_ps(e[r], ex);
  }
  __m512 acc[R * NV];
#pragma GCC unroll 32
  for (int a = 0; a < R * NV; ++a) acc[a] = _mm512_setzero_ps();
  for (int64_t j = 0; j < S; ++j) {
    __m512 vv[NV];
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) vv[i] = _mm512_maskz_loadu_ps(i + 1 < NV ? 0xFFFF : tail, v + j * ldv + 16 * i);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 pj = _mm512_set1_ps(e[r][j]);
#pragma GCC unroll 8
      for (int i = 0; i < NV; ++i) acc[r * NV + i] = _mm512_fmadd_ps(pj, vv[i], acc[r * NV + i]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const __m512 vinv = _mm512_set1_ps(inv[r]);
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i)
      _mm512_mask_storeu_ps(o + r * ldo + 16 * i, i + 1 < NV ? 0xFFFF : tail, _mm512_mul_ps(acc[r * NV + i], vinv));
  }
}

template <int NV>
AVX512_FN void fewKeysRows(const float* q, int64_t ldq, int64_t n, const float* k, int64_t ldk,
                           const float* v, int64_t ldv, int64_t S, int64_t d, float scale, float* o,
                           int64_t ldo) {
  alignas(64) float kT[kMaxHeadDim][16];  // kT[c][j] = k[j, c]; 0 for j >= S
  for (int64_t c = 0; c < d; ++c)
    for (int64_t j = 0; j < 16; ++j) kT[c][j] = j < S ? k[j * ldk + c] : 0.f;
  const __m512 vscale = _mm512_set1_ps(scale);
  int64_t r = 0;
  for (; r + 4 <= n; r += 4) {
    for (int64_t i = 0; i < 4; ++i)  // (see kAhead)
      _mm_prefetch(reinterpret_cast<const char*>(q + (r + kAhead + i) * ldq), _MM_HINT_T0);
    fewKeysTile<4, NV>(q + r * ldq, ldq, kT, v, ldv, S, d, vscale, o + r * ldo, ldo);
  }
  for (; r < n; ++r) fewKeysTile<1, NV>(q + r * ldq, ldq, kT, v, ldv, S, d, vscale, o + r * ldo, ldo);
}

}  // namespace

void fewKeys(const float* q, int64_t ldq, int64_t n, const float* k, int64_t ldk, const float* v,
             int64_t ldv, int64_t S, int64_t d, float scale, float* o, int64_t ldo) {
  byVectors(d, [&](auto nv) { fewKeysRows<decltype(nv)::value>(q, ldq, n, k, ldk, v, ldv, S, d, scale, o, ldo); });
}

namespace {

// fewQueries for heads of exactly 16 (k and v rows one vector each, fully unrolled over c).
AVX512_FN void fewQueries16(const float* q, int64_t ldq, int64_t n, const float* k, int64_t ldk,
                            const float* v, int64_t ldv, int64_t S, float scale, float* scores,
                            float* o, int64_t ldo) {
  alignas(64) float qT[16][16];  // qT[c][r] = q[r, c]; 0 for r >= n
  for (int64_t c = 0; c < 16; ++c)
    for (int64_t r = 0; r < 16; ++r) qT[c][r] = r < n ? q[r * ldq + c] : 0.f;
  __m512 qv[16];
#pragma GCC unroll 16
  for (int c = 0; c < 16; ++c) qv[c] = _mm512_load_ps(qT[c]);
  const __m512 vscale = _mm512_set1_ps(scale);
  // scores, lanes = queries: scores[j] = scale · Σ_c q[:, c] · k[j, c]; and their max
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  for (int64_t j = 0; j < S; ++j) {
    const float* kj = k + j * ldk;
    _mm_prefetch(reinterpret_cast<const char*>(kj + kAhead * ldk), _MM_HINT_T0);
    __m512 sa = _mm512_setzero_ps(), sb = _mm512_setzero_ps();  // two chains: c even / odd
#pragma GCC unroll 16
    for (int c = 0; c < 16; c += 2) {
      sa = _mm512_fmadd_ps(qv[c], _mm512_set1_ps(kj[c]), sa);
      sb = _mm512_fmadd_ps(qv[c + 1], _mm512_set1_ps(kj[c + 1]), sb);
    }
    const __m512 x = _mm512_mul_ps(_mm512_add_ps(sa, sb), vscale);
    _mm512_storeu_ps(scores + 16 * j, x);
    vmax = _mm512_max_ps(vmax, x);
  }
  // exp, their sums, and Σ_j p_j · v[j, c] per query
  __m512 acc[16], vsum = _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int c = 0; c < 16; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t j = 0; j < S; ++j) {
    const __m512 p = expNonPositive(_mm512_sub_ps(_mm512_loadu_ps(scores + 16 * j), vmax));
    vsum = _mm512_add_ps(vsum, p);
    const float* vj = v + j * ldv;
    _mm_prefetch(reinterpret_cast<const char*>(vj + kAhead * ldv), _MM_HINT_T0);
#pragma GCC unroll 16
    for (int c = 0; c < 16; ++c) acc[c] = _mm512_fmadd_ps(p, _mm512_set1_ps(vj[c]), acc[c]);
  }
  alignas(64) float out[16][16], inv[16];
  _mm512_store_ps(inv, _mm512_div_ps(_mm512_set1_ps(1.f), vsum));
#pragma GCC unroll 16
  for (int c = 0; c < 16; ++c) _mm512_store_ps(out[c], acc[c]);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < 16; ++c) o[r * ldo + c] = out[c][r] * inv[r];
}

}  // namespace

void fewQueries(const float* q, int64_t ldq, int64_t n, const float* k, int64_t ldk, const float* v,
                int64_t ldv, int64_t S, int64_t d, float scale, float* scratch, float* o, int64_t ldo) {
  if (n > kFewQueries || d > 16) throw Error("attention: fewQueries takes at most 16 queries of head size 16");
  if (d == 16) return fewQueries16(q, ldq, n, k, ldk, v, ldv, S, scale, scratch, o, ldo);
  // narrower heads: q, k and v zero-padded to 16 (zeros add nothing to the dot products)
  float* kp = scratch + 16 * S;
  float* vp = kp + 16 * S;
  float qp[16 * 16] = {};
  alignas(64) float op[16 * 16];
  for (int64_t r = 0; r < n; ++r) std::memcpy(qp + 16 * r, q + r * ldq, static_cast<size_t>(d) * sizeof(float));
  for (int64_t j = 0; j < S; ++j) {
    for (int64_t c = 0; c < 16; ++c) {
      kp[16 * j + c] = c < d ? k[j * ldk + c] : 0.f;
      vp[16 * j + c] = c < d ? v[j * ldv + c] : 0.f;
    }
  }
  fewQueries16(qp, 16, n, kp, 16, vp, 16, S, scale, scratch, op, 16);
  for (int64_t r = 0; r < n; ++r) std::memcpy(o + r * ldo, op + 16 * r, static_cast<size_t>(d) * sizeof(float));
}

AVX512_FN float expSum(float* x, int64_t n, float mx) {
  const __m512 vmx = _mm512_set1_ps(mx);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 e0 = expNonPositive(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmx));
    const __m512 e1 = expNonPositive(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vmx));
    _mm512_storeu_ps(x + i, e0);
    _mm512_storeu_ps(x + i + 16, e1);
    acc0 = _mm512_add_ps(acc0, e0);
    acc1 = _mm512_add_ps(acc1, e1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 e = expNonPositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmx));
    _mm512_mask_storeu_ps(x + i, m, e);
    acc0 = _mm512_mask_add_ps(acc0, m, acc0, e);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

AVX512_FN float relPosBiasMax(float* s, const float* th, const float* tw, int64_t h, int64_t w, int64_t qh,
                              int64_t qw, float* twRev) {
  for (int64_t kw = 0; kw < w; ++kw) twRev[kw] = tw[qw - kw + w - 1];
  const int64_t full = w / 16 * 16;
  const auto tail = static_cast<__mmask16>((1u << (w - full)) - 1);
  // two running maxima (the max is exact: any order gives the same row max)
  __m512 m0 = _mm512_set1_ps(-std::numeric_limits<float>::infinity()), m1 = m0;
  for (int64_t kh = 0; kh < h; ++kh) {
    const __m512 bh = _mm512_set1_ps(th[qh - kh + h - 1]);
    float* row = s + kh * w;
    int64_t kw = 0;
    for (; kw + 32 <= full; kw += 32) {
      const __m512 v0 = _mm512_add_ps(_mm512_loadu_ps(row + kw), _mm512_add_ps(bh, _mm512_loadu_ps(twRev + kw)));
      const __m512 v1 =
          _mm512_add_ps(_mm512_loadu_ps(row + kw + 16), _mm512_add_ps(bh, _mm512_loadu_ps(twRev + kw + 16)));
      _mm512_storeu_ps(row + kw, v0);
      _mm512_storeu_ps(row + kw + 16, v1);
      m0 = _mm512_max_ps(v0, m0);  // (a NaN score leaves the max as it was, as `v > m ? v : m` does)
      m1 = _mm512_max_ps(v1, m1);
    }
    for (; kw < full; kw += 16) {
      const __m512 v = _mm512_add_ps(_mm512_loadu_ps(row + kw), _mm512_add_ps(bh, _mm512_loadu_ps(twRev + kw)));
      _mm512_storeu_ps(row + kw, v);
      m0 = _mm512_max_ps(v, m0);
    }
    if (tail) {
      const __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(tail, row + kw),
                                     _mm512_add_ps(bh, _mm512_maskz_loadu_ps(tail, twRev + kw)));
      _mm512_mask_storeu_ps(row + kw, tail, v);
      m1 = _mm512_mask_max_ps(m1, tail, v, m1);
    }
  }
  return _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
}

AVX512_FN void scores(const float* q, int64_t ldq, int64_t n, const float* kp, int64_t S, int64_t d,
                      float scale, float* s, int64_t lds, float* rowMax, const GridBias* bias) {
  if (bias && bias->w % kKeys != 0) throw Error("attention: a grid bias needs a grid width that is a multiple of 32");
  const __m512 vscale = _mm512_set1_ps(scale);
  constexpr int64_t kRows = 64;  // rows per chunk: their running maxima in one 4 KiB array
  __m512 vmax[kRows];
  for (int64_t c0 = 0; c0 < n; c0 += kRows) {
    const int64_t cn = std::min(kRows, n - c0);
    const float* qc = q + c0 * ldq;
    float* sc = s + c0 * lds;
    // key blocks outer: each packed block (32 keys, 8 KiB at d = 64) stays in L1 for all rows
    for (int64_t j0 = 0; j0 < S; j0 += kKeys) {
      const float* blk = kp + j0 * d;
      __m512* vm = rowMax ? vmax : nullptr;
      // the block's grid row kh and first column kw (all 32 keys in one grid row)
      const float* bh = bias ? bias->bh + c0 * bias->ldbh + j0 / bias->w : nullptr;
      const float* bw = bias ? bias->bw + c0 * bias->ldbw + j0 % bias->w : nullptr;
      const int64_t lh = bias ? bias->ldbh : 0, lw = bias ? bias->ldbw : 0;
      int64_t i = 0;
      for (; i + 8 <= cn; i += 8)
        scoreTile<8>(qc + i * ldq, ldq, blk, j0, S, d, vscale, sc + i * lds, lds, vm ? vm + i : nullptr,
                     bh ? bh + i * lh : nullptr, lh, bw ? bw + i * lw : nullptr, lw);
      for (; i + 4 <= cn; i += 4)
        scoreTile<4>(qc + i * ldq, ldq, blk, j0, S, d, vscale, sc + i * lds, lds, vm ? vm + i : nullptr,
                     bh ? bh + i * lh : nullptr, lh, bw ? bw + i * lw : nullptr, lw);
      for (; i < cn; ++i)
        scoreTile<1>(qc + i * ldq, ldq, blk, j0, S, d, vscale, sc + i * lds, lds, vm ? vm + i : nullptr,
                     bh ? bh + i * lh : nullptr, lh, bw ? bw + i * lw : nullptr, lw);
    }
    if (rowMax)
      for (int64_t i = 0; i < cn; ++i) rowMax[c0 + i] = _mm512_reduce_max_ps(vmax[i]);
  }
}

void weightedValues(const float* p, int64_t ldp, int64_t n, const float* v, int64_t ldv,
                    int64_t S, int64_t d, const float* sums, float* o, int64_t ldo) {
  byVectors(d, [&](auto nv) { valueBlock<decltype(nv)::value>(p, ldp, n, v, ldv, S, d, sums, o, ldo); });
}

#else  // not x86-64 GCC/Clang: attention.cc never calls the kernels

bool supported() { return false; }

namespace {
[[noreturn]] void notBuilt() { throw Error("attention: AVX-512 kernels are not built for this CPU"); }
}  // namespace

void scores(const float*, int64_t, int64_t, const float*, int64_t, int64_t, float, float*, int64_t, float*,
            const GridBias*) {
  notBuilt();
}
void weightedValues(const float*, int64_t, int64_t, const float*, int64_t, int64_t, int64_t,
                    const float*, float*, int64_t) {
  notBuilt();
}
float expSum(float*, int64_t, float) { notBuilt(); }
float relPosBiasMax(float*, const float*, const float*, int64_t, int64_t, int64_t, int64_t, float*) { notBuilt(); }
void fewKeys(const float*, int64_t, int64_t, const float*, int64_t, const float*, int64_t, int64_t, int64_t,
             float, float*, int64_t) {
  notBuilt();
}
void fewQueries(const float*, int64_t, int64_t, const float*, int64_t, const float*, int64_t, int64_t, int64_t,
                float, float*, float*, int64_t) {
  notBuilt();
}

#endif

}  // namespace omniseg::ops::cpu::avx512
