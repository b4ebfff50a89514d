#include "images/visual_prompt.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace omniseg::images {

namespace {

// One axis of the bilinear resampling: output index → the two source taps and the second's weight.
struct Taps {
  std::vector<int64_t> lo, hi;
  std::vector<double> w;
};

Taps taps(int64_t out, int64_t in) {
  Taps t{std::vector<int64_t>(out), std::vector<int64_t>(out), std::vector<double>(out)};
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  for (int64_t i = 0; i < out; ++i) {
    const double s = std::clamp((static_cast<double>(i) + 0.5) * scale - 0.5, 0.0, static_cast<double>(in - 1));
    const auto lo = static_cast<int64_t>(std::floor(s));
    t.lo[i] = lo;
    t.hi[i] = std::min(lo + 1, in - 1);
    t.w[i] = s - static_cast<double>(lo);
  }
  return t;
}

}  // namespace

std::vector<uint8_t> composeVisualPrompt(RgbView crop, const uint8_t* mask, RgbView blurred, double darken) {
  const int64_t W = crop.width, H = crop.height, bw = blurred.width;
  std::vector<uint8_t> out(static_cast<size_t>(W * H * 3));
  const Taps xs = taps(W, bw), ys = taps(H, blurred.height);
  // Source row r resampled along x: (1 − wx) a + wx b for each output column and channel. An
  // output row blends two of them; consecutive output rows mostly share theirs, so they are kept.
  std::vector<double> rowLo(static_cast<size_t>(W * 3)), rowHi(static_cast<size_t>(W * 3));
  int64_t haveLo = -1, haveHi = -1;
  auto resampleRow = [&](int64_t r, std::vector<double>& dst) {
    const uint8_t* src = blurred.data + r * bw * 3;
    for (int64_t x = 0; x < W; ++x) {
      const double wx = xs.w[x];
      const uint8_t* a = src + xs.lo[x] * 3;
      const uint8_t* b = src + xs.hi[x] * 3;
      for (int c = 0; c < 3; ++c) dst[x * 3 + c] = (1.0 - wx) * a[c] + wx * b[c];
    }
  };
  for (int64_t y = 0; y < H; ++y) {
    const int64_t lo = ys.lo[y], hi = ys.hi[y];
    if (lo != haveLo) {
      if (lo == haveHi) {
        std::swap(rowLo, rowHi);
        haveHi = -1;
      } else {
        resampleRow(lo, rowLo);
      }
      haveLo = lo;
    }
    if (hi != haveHi) {
      resampleRow(hi, rowHi);
      haveHi = hi;
    }
    const double wy = ys.w[y];
    const uint8_t* m = mask + y * W;
    const uint8_t* in = crop.data + y * W * 3;
    uint8_t* o = out.data() + y * W * 3;
    // Every pixel darkened (a loop the compiler vectorises; floor by truncation: the values are
    // ≥ 0.5), then the region's pixels put back.
    for (int64_t k = 0; k < W * 3; ++k) {
      o[k] = static_cast<uint8_t>(static_cast<int32_t>(darken * ((1.0 - wy) * rowLo[k] + wy * rowHi[k]) + 0.5));
    }
    for (int64_t x = 0; x < W; ++x) {
      if (m[x] != 0) std::memcpy(o + x * 3, in + x * 3, 3);
    }
  }
  return out;
}

}  // namespace omniseg::images
