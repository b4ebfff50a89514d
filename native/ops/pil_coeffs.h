// Pillow's resampling coefficients for the 8-bit bilinear resize (ops::resizeU8Pil), computed on
// the host by both backends from this one definition (ops/cpu/resize.cc), so the CPU and CUDA
// implementations apply identical fixed-point tables.
// ref: Pillow src/libImaging/Resample.c (precompute_coeffs, normalize_coeffs_8bpc) with the
// bilinear filter (support 1).
#pragma once
#include <cstdint>
#include <vector>

namespace omniseg::ops::pil {

constexpr int kPrecisionBits = 32 - 8 - 2;

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // [out, 2]: first tap, tap count
  std::vector<int32_t> kk;  // [out, ksize] fixed point
};

// The taps of each of outSize output coordinates over inSize inputs.
Coeffs bilinearCoeffs(int inSize, int outSize);

}  // namespace omniseg::ops::pil
