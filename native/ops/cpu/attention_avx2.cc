// AVX2 + FMA attention micro-kernels (see attention_avx2.h). Register tiles, for 16 ymm registers:
//   scores:         6 query rows × 16 keys (12 accumulators; a packed 32-key block in two
//                   halves), one pass over d per tile; the rel-pos bias and each row's running
//                   max applied as the tile is stored
//   weightedValues: 4 query rows × 24 head columns (12 accumulators), one pass over a chunk of
//                   keys per tile; wider heads in 24-column strips, the last one narrower
//                   (2 rows × 32 columns before: 8 accumulators do not cover the FMA latency;
//                   one global layer of SAM on Zen 3, best of 4: 540 → 530 ms, best of 6:
//                   519 → 478 ms, on a noisy machine)
// expSum: the softmax exponentials, the polynomial of avx512::expSum with 2^n built from its bits.
#include "ops/cpu/attention_avx2.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "core/error.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define OMNISEG_AVX2 1
#define AVX2_FN __attribute__((target("avx2,fma")))
#endif

namespace omniseg::ops::cpu::avx2 {

namespace {
std::atomic<bool> enabled{true};
constexpr int64_t kKeys = 32;        // keys per packed block (avx512::packKeys)
constexpr int64_t kValueKeys = 128;  // keys per chunk of weightedValues (as the AVX-512 kernels)
}  // namespace

void setEnabled(bool on) { enabled = on; }

#ifdef OMNISEG_AVX2

bool supported() {
  static const bool cpu = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return cpu && enabled;
}

namespace {

// Lanes i < n of a vector (n clamped to [0, 8]) as an integer mask for maskload / maskstore.
AVX2_FN inline __m256i lanes(int64_t n) {
  const int k = static_cast<int>(std::clamp<int64_t>(n, 0, 8));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// exp(x) for x <= 0 as avx512's expNonPositive: n = round(x·log2 e), r = x − n·ln 2 (two
// parts), the degree-6 Cephes polynomial, times 2^n (n ≥ −126 after the clamp: a normal float).
AVX2_FN inline __m256 expNonPositive(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3365447504f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(_mm256_mul_ps(y, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
}

AVX2_FN inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

AVX2_FN inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}

// R query rows against the 16 keys from j0 (half: their columns of the packed 32-key block,
// row stride 32); bh, bw: the rows' bias terms for these keys' grid row and first column.
template <int R>
AVX2_FN void scoreTile(const float* q, int64_t ldq, const float* half, int64_t j0, int64_t S,
                       int64_t d, __m256 vscale, float* s, int64_t lds, __m256* vmax,
                       const float* bh, int64_t ldbh, const float* bw, int64_t ldbw) {
  __m256 acc[2 * R];
#pragma GCC unroll 12
  for (int a = 0; a < 2 * R; ++a) acc[a] = _mm256_setzero_ps();
  for (int64_t c = 0; c < d; ++c) {
    const __m256 k0 = _mm256_loadu_ps(half + c * kKeys);
    const __m256 k1 = _mm256_loadu_ps(half + c * kKeys + 8);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 qv = _mm256_broadcast_ss(q + r * ldq + c);
      acc[2 * r] = _mm256_fmadd_ps(qv, k0, acc[2 * r]);
      acc[2 * r + 1] = _mm256_fmadd_ps(qv, k1, acc[2 * r + 1]);
    }
  }
  const int64_t left = S - j0;  // the last, partial block stores only keys < S
  const bool whole = left >= 16;
  const __m256i m0 = lanes(left), m1 = lanes(left - 8);
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    __m256 s0 = _mm256_mul_ps(acc[2 * r], vscale), s1 = _mm256_mul_ps(acc[2 * r + 1], vscale);
    if (bh) {  // + (bh + bw): the rel-pos bias, as attention.cc's separate pass adds it
      const __m256 h = _mm256_broadcast_ss(bh + r * ldbh);
      s0 = _mm256_add_ps(s0, _mm256_add_ps(h, _mm256_loadu_ps(bw + r * ldbw)));
      s1 = _mm256_add_ps(s1, _mm256_add_ps(h, _mm256_loadu_ps(bw + r * ldbw + 8)));
    }
    float* sr = s + r * lds + j0;
    if (whole) {
      _mm256_storeu_ps(sr, s0);
      _mm256_storeu_ps(sr + 8, s1);
    } else {
      _mm256_maskstore_ps(sr, m0, s0);
      _mm256_maskstore_ps(sr + 8, m1, s1);
      s0 = _mm256_blendv_ps(ninf, s0, _mm256_castsi256_ps(m0));
      s1 = _mm256_blendv_ps(ninf, s1, _mm256_castsi256_ps(m1));
    }
    if (vmax) {  // running max per lane (keys past S as -inf)
      const __m256 m = _mm256_max_ps(s0, s1);
      vmax[r] = j0 == 0 ? m : _mm256_max_ps(vmax[r], m);
    }
  }
}

// R query rows of o[:, col0 : col0 + 8·NV) = p · v over keys [j0, j1) (the last vector masked to
// `tail` lanes). The sums run on in o between key chunks (first: from 0; last: divide by sums).
// A vector of 8 floats, or (Masked) its lanes in mask (the rest 0).
template <bool Masked>
AVX2_FN inline __m256 load(const float* p, __m256i mask) {
  return Masked ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p);
}
template <bool Masked>
AVX2_FN inline void store(float* p, __m256i mask, __m256 v) {
  if (Masked)
    _mm256_maskstore_ps(p, mask, v);
  else
    _mm256_storeu_ps(p, v);
}

template <int R, int NV, bool Masked>
AVX2_FN void valueTile(const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t j0,
                       int64_t j1, __m256i tail, bool first, bool lastChunk, const float* sums,
                       float* o, int64_t ldo) {
  __m256 acc[R * NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int i = 0; i < NV; ++i)
      acc[r * NV + i] = first            ? _mm256_setzero_ps()
                        : i + 1 < NV     ? _mm256_loadu_ps(o + r * ldo + 8 * i)
                                         : load<Masked>(o + r * ldo + 8 * i, tail);
  for (int64_t j = j0; j < j1; ++j) {
    const float* vr = v + j * ldv;
    __m256 vv[NV];
#pragma GCC unroll 4
    for (int i = 0; i < NV; ++i) vv[i] = i + 1 < NV ? _mm256_loadu_ps(vr + 8 * i) : load<Masked>(vr + 8 * i, tail);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m256 pr = _mm256_broadcast_ss(p + r * ldp + j);
#pragma GCC unroll 4
      for (int i = 0; i < NV; ++i) acc[r * NV + i] = _mm256_fmadd_ps(pr, vv[i], acc[r * NV + i]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    const __m256 inv = _mm256_set1_ps(lastChunk && sums ? 1.f / sums[r] : 1.f);
#pragma GCC unroll 4
    for (int i = 0; i < NV; ++i) {
      const __m256 y = _mm256_mul_ps(acc[r * NV + i], inv);
      if (i + 1 < NV)
        _mm256_storeu_ps(o + r * ldo + 8 * i, y);
      else
        store<Masked>(o + r * ldo + 8 * i, tail, y);
    }
  }
}

template <int NV, bool Masked>
AVX2_FN void valueStrip(const float* p, int64_t ldp, int64_t n, const float* v, int64_t ldv, int64_t j0,
                        int64_t j1, __m256i tail, bool first, bool last, const float* sums, float* o,
                        int64_t ldo) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    valueTile<4, NV, Masked>(p + i * ldp, ldp, v, ldv, j0, j1, tail, first, last, sums ? sums + i : nullptr,
                             o + i * ldo, ldo);
  for (; i + 2 <= n; i += 2)
    valueTile<2, NV, Masked>(p + i * ldp, ldp, v, ldv, j0, j1, tail, first, last, sums ? sums + i : nullptr,
                             o + i * ldo, ldo);
  for (; i < n; ++i)
    valueTile<1, NV, Masked>(p + i * ldp, ldp, v, ldv, j0, j1, tail, first, last, sums ? sums + i : nullptr,
                             o + i * ldo, ldo);
}

// valueStrip for nv = 1..3 vectors, the last one masked when the strip's width is not a multiple of 8.
AVX2_FN void valueStrip(int64_t nv, bool masked, const float* p, int64_t ldp, int64_t n, const float* v,
                        int64_t ldv, int64_t j0, int64_t j1, __m256i tail, bool first, bool last,
                        const float* sums, float* o, int64_t ldo) {
#define OMNISEG_STRIP(NV)                                                                        \
  return masked ? valueStrip<NV, true>(p, ldp, n, v, ldv, j0, j1, tail, first, last, sums, o, ldo) \
                : valueStrip<NV, false>(p, ldp, n, v, ldv, j0, j1, tail, first, last, sums, o, ldo)
  switch (nv) {
    case 1: OMNISEG_STRIP(1);
    case 2: OMNISEG_STRIP(2);
    default: OMNISEG_STRIP(3);
  }
#undef OMNISEG_STRIP
}

}  // namespace

AVX2_FN float expSum(float* x, int64_t n, float mx) {
  const __m256 vmx = _mm256_set1_ps(mx);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 e0 = expNonPositive(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmx));
    const __m256 e1 = expNonPositive(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vmx));
    _mm256_storeu_ps(x + i, e0);
    _mm256_storeu_ps(x + i + 8, e1);
    acc0 = _mm256_add_ps(acc0, e0);
    acc1 = _mm256_add_ps(acc1, e1);
  }
  for (; i < n; i += 8) {
    const __m256i m = lanes(n - i);
    const __m256 e = _mm256_and_ps(expNonPositive(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vmx)),
                                   _mm256_castsi256_ps(m));
    _mm256_maskstore_ps(x + i, m, e);
    acc0 = _mm256_add_ps(acc0, e);
  }
  return hsum(_mm256_add_ps(acc0, acc1));
}

AVX2_FN void scores(const float* q, int64_t ldq, int64_t n, const float* kp, int64_t S, int64_t d,
                    float scale, float* s, int64_t lds, float* rowMax, const avx512::GridBias* bias) {
  if (bias && bias->w % kKeys != 0) throw Error("attention: a grid bias needs a grid width that is a multiple of 32");
  const __m256 vscale = _mm256_set1_ps(scale);
  constexpr int64_t kRows = 48;  // rows per chunk: their running maxima in one 1.5 KiB array
  __m256 vmax[kRows];
  for (int64_t c0 = 0; c0 < n; c0 += kRows) {
    const int64_t cn = std::min(kRows, n - c0);
    const float* qc = q + c0 * ldq;
    float* sc = s + c0 * lds;
    // key blocks outer: each packed block (32 keys, 8 KiB at d = 64) stays in L1 for all rows
    for (int64_t b0 = 0; b0 < S; b0 += kKeys)
      for (int64_t j0 = b0; j0 < std::min(S, b0 + kKeys); j0 += 16) {
        const float* half = kp + b0 * d + (j0 - b0);
        __m256* vm = rowMax ? vmax : nullptr;
        // the keys' grid row kh and first column kw (all 32 keys of a block in one grid row)
        const float* bh = bias ? bias->bh + c0 * bias->ldbh + j0 / bias->w : nullptr;
        const float* bw = bias ? bias->bw + c0 * bias->ldbw + j0 % bias->w : nullptr;
        const int64_t lh = bias ? bias->ldbh : 0, lw = bias ? bias->ldbw : 0;
        // tiles of 6 rows, and of 4 for what is left (8 rows as 4 + 4, not 6 and a slow 2)
        int64_t n6 = cn / 6, n4 = cn % 6 == 4 ? 1 : 0;
        if (cn % 6 == 2 && n6 > 0) {
          --n6;
          n4 = 2;
        }
        int64_t i = 0;
        for (; i < 6 * n6; i += 6)
          scoreTile<6>(qc + i * ldq, ldq, half, j0, S, d, vscale, sc + i * lds, lds, vm ? vm + i : nullptr,
                       bh ? bh + i * lh : nullptr, lh, bw ? bw + i * lw : nullptr, lw);
        for (; i < 6 * n6 + 4 * n4; i += 4)
          scoreTile<4>(qc + i * ldq, ldq, half, j0, S, d, vscale, sc + i * lds, lds, vm ? vm + i : nullptr,
                       bh ? bh + i * lh : nullptr, lh, bw ? bw + i * lw : nullptr, lw);
        for (; i + 3 <= cn; i += 3)  // (a single row per tile runs at a third of the speed)
          scoreTile<3>(qc + i * ldq, ldq, half, j0, S, d, vscale, sc + i * lds, lds, vm ? vm + i : nullptr,
                       bh ? bh + i * lh : nullptr, lh, bw ? bw + i * lw : nullptr, lw);
        for (; i + 2 <= cn; i += 2)
          scoreTile<2>(qc + i * ldq, ldq, half, j0, S, d, vscale, sc + i * lds, lds, vm ? vm + i : nullptr,
                       bh ? bh + i * lh : nullptr, lh, bw ? bw + i * lw : nullptr, lw);
        for (; i < cn; ++i)
          scoreTile<1>(qc + i * ldq, ldq, half, j0, S, d, vscale, sc + i * lds, lds, vm ? vm + i : nullptr,
                       bh ? bh + i * lh : nullptr, lh, bw ? bw + i * lw : nullptr, lw);
      }
    if (rowMax)
      for (int64_t i = 0; i < cn; ++i) rowMax[c0 + i] = hmax(vmax[i]);
  }
}

AVX2_FN void weightedValues(const float* p, int64_t ldp, int64_t n, const float* v, int64_t ldv,
                            int64_t S, int64_t d, const float* sums, float* o, int64_t ldo) {
  if (d > avx512::kMaxHeadDim) throw Error("attention: head size exceeds the AVX2 kernels' limit");
  for (int64_t j0 = 0; j0 < S; j0 += kValueKeys) {
    const int64_t j1 = std::min(S, j0 + kValueKeys);
    const bool first = j0 == 0, last = j1 == S;
    // strips of 24 head columns (3 vectors), the last one narrower
    for (int64_t col = 0; col < d; col += 24) {
      const int64_t cols = std::min<int64_t>(24, d - col), nv = (cols + 7) / 8;
      valueStrip(nv, cols % 8 != 0, p, ldp, n, v + col, ldv, j0, j1, lanes(cols - 8 * (nv - 1)), first, last,
                 sums, o + col, ldo);
    }
  }
}

#else  // not x86-64 GCC/Clang: attention.cc never calls the kernels

bool supported() { return false; }

namespace {
[[noreturn]] void notBuilt() { throw Error("attention: AVX2 kernels are not built for this CPU"); }
}  // namespace

void scores(const float*, int64_t, int64_t, const float*, int64_t, int64_t, float, float*, int64_t, float*,
            const avx512::GridBias*) {
  notBuilt();
}
float expSum(float*, int64_t, float) { notBuilt(); }
void weightedValues(const float*, int64_t, int64_t, const float*, int64_t, int64_t, int64_t, const float*,
                    float*, int64_t) {
  notBuilt();
}

#endif

}  // namespace omniseg::ops::cpu::avx2
