// ops::cpu::resizeThreshold (the decoder's post-processing on the CPU: interpolated and
// thresholded a few rows at a time) against its definition: torch's bilinear resize
// (align_corners=False) written out per pixel, then value > t, bit for bit, and the mask's bounds
// against masks::maskBounds. Upscales, downscales, the same size (several blocks of rows
// included), single rows and columns, and widths whose blocks of rows are shorter than the 8-row
// buffer; logits equal to t, and NaN. Runs under ASan in `make asan`.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "masks/run_lengths.h"
#include "ops/ops.h"

using namespace omniseg;

namespace {

// Output coordinate o's source taps and weights.
// ref: aten/src/ATen/native/UpSample.h area_pixel_compute_source_index, guard_index_and_lambda
void tap(int64_t o, int64_t in, int64_t out, int64_t& i0, int64_t& i1, float& w0, float& w1) {
  float src = static_cast<float>(in) / static_cast<float>(out) * (static_cast<float>(o) + 0.5f) - 0.5f;
  if (src < 0.f) src = 0.f;
  i0 = std::min(static_cast<int64_t>(std::floor(src)), in - 1);
  i1 = i0 + (i0 < in - 1 ? 1 : 0);
  w1 = std::min(std::max(src - static_cast<float>(i0), 0.f), 1.f);
  w0 = 1.f - w1;
}

// The resize of x [ih, iw] to [H, W], pixel by pixel (each row interpolated, then the two rows
// blended: torch's order of operations); to the same size, x itself (the op skips the identity,
// which differs only where a NaN neighbour gets weight 0).
std::vector<float> resized(const std::vector<float>& x, int64_t ih, int64_t iw, int64_t H, int64_t W) {
  if (ih == H && iw == W) return x;
  std::vector<float> out(static_cast<size_t>(H * W));
  for (int64_t y = 0; y < H; ++y) {
    int64_t y0, y1;
    float wy0, wy1;
    tap(y, ih, H, y0, y1, wy0, wy1);
    for (int64_t c = 0; c < W; ++c) {
      int64_t x0, x1;
      float wx0, wx1;
      tap(c, iw, W, x0, x1, wx0, wx1);
      const float h0 = x[y0 * iw + x0] * wx0 + x[y0 * iw + x1] * wx1;
      const float h1 = x[y1 * iw + x0] * wx0 + x[y1 * iw + x1] * wx1;
      out[y * W + c] = h0 * wy0 + h1 * wy1;
    }
  }
  return out;
}

}  // namespace

int main() {
  ThreadPool pool(3);
  Arena arena;
  Ctx ctx{pool, arena};
  std::mt19937 rng(20261125);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const std::vector<std::vector<int64_t>> shapes = {  // ih, iw, H, W
      {64, 64, 256, 256}, {7, 5, 300, 200}, {40, 30, 17, 9}, {5, 5, 5, 5}, {1, 8, 1, 40},
      {8, 1, 40, 1},      {1, 1, 3, 3},     {3, 4, 30, 20000}, {2, 3, 9, 70000}, {16, 16, 1, 1},
      {3, 30000, 3, 30000}, {40, 2000, 40, 2000}, {20, 30, 100, 2000}, {40, 2000, 100, 2000}};
  int cases = 0;
  for (const auto& s : shapes) {
    const int64_t ih = s[0], iw = s[1], H = s[2], W = s[3];
    for (const float t : {0.f, 0.35f, -2.f, 2.f}) {
      std::vector<float> x(static_cast<size_t>(ih * iw));
      for (auto& v : x) {
        const int kind = static_cast<int>(rng() % 16);
        v = kind == 0 ? t : kind == 1 ? std::nanf("") : u(rng);
      }
      const std::vector<float> ref = resized(x, ih, iw, H, W);
      std::vector<uint8_t> want(ref.size());
      for (size_t i = 0; i < ref.size(); ++i) want[i] = ref[i] > t ? 1 : 0;
      std::vector<uint8_t> got(ref.size(), 7);
      double bounds[5] = {-1, -1, -1, -1, -1};
      ops::cpu::resizeThreshold(ctx, x.data(), ih, iw, H, W, t, got.data(), bounds);
      CHECK(got == want);
      if (got != want) std::printf("  %lld x %lld -> %lld x %lld, t %g\n", (long long)ih, (long long)iw, (long long)H, (long long)W, t);
      const masks::Bounds b = masks::maskBounds(want.data(), H, W);
      CHECK(bounds[0] == b.x0 && bounds[1] == b.y0 && bounds[2] == b.x1 && bounds[3] == b.y1 &&
            bounds[4] == b.area);
      std::vector<uint8_t> again(ref.size(), 7);
      ops::cpu::resizeThreshold(ctx, x.data(), ih, iw, H, W, t, again.data(), nullptr);  // no bounds
      CHECK(again == want);
      ++cases;
    }
  }
  std::printf("resize_threshold_test: %d cases, %s\n", cases, nativetest::failures == 0 ? "ok" : "FAILED");
  return nativetest::failures == 0 ? 0 : 1;
}
