// The softmax exponential of the AVX-512 kernels (attention_avx512.cc's expSum, the AMX path's
// expSplitRow in gemm_amx.cc), in one place so that both give the same floats.
#pragma once
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define OMNISEG_EXP512_FN __attribute__((target("avx512f")))

namespace omniseg::ops::cpu::avx512 {

// exp(x) for x <= 0: n = round(x·log2 e), r = x - n·ln 2 (in two parts), the degree-6 Cephes
// polynomial in r, scaled by 2^n. Inputs below -87.34 give exp(-87.34) (≈ 1e-38), as simd::expf.
OMNISEG_EXP512_FN inline __m512 expNonPositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.3365447504f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 y = _mm512_set1_ps(1.9875691500e-4f);
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
  y = _mm512_fmadd_ps(_mm512_mul_ps(y, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.f)));
  return _mm512_scalef_ps(y, n);
}

}  // namespace omniseg::ops::cpu::avx512
#endif
