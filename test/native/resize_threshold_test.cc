// ops::cpu::resizeThreshold (the decoder's post-processing on the CPU: interpolated and
// thresholded a few rows at a time) against its definition: resizeBilinear into a float plane,
// then value > t, bit for bit, and the mask's bounds against masks::maskBounds. Upscales,
// downscales, the same size, single rows and columns, and widths whose blocks of rows are shorter
// than the 8-row buffer; logits near t, exactly t, and NaN. Runs under ASan in `make asan`.
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "masks/run_lengths.h"
#include "ops/ops.h"

using namespace omniseg;

int main() {
  ThreadPool pool(3);
  Arena arena;
  Ctx ctx{pool, arena};
  std::mt19937 rng(20261125);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const std::vector<std::vector<int64_t>> shapes = {  // ih, iw, H, W
      {64, 64, 256, 256}, {7, 5, 300, 200}, {40, 30, 17, 9}, {5, 5, 5, 5}, {1, 8, 1, 40},
      {8, 1, 40, 1},      {1, 1, 3, 3},     {3, 4, 30, 20000}, {2, 3, 9, 70000}, {16, 16, 1, 1}};
  int cases = 0;
  for (const auto& s : shapes) {
    const int64_t ih = s[0], iw = s[1], H = s[2], W = s[3];
    for (const float t : {0.f, 0.35f, -2.f, 2.f}) {
      std::vector<float> x(static_cast<size_t>(ih * iw));
      for (auto& v : x) {
        const int kind = static_cast<int>(rng() % 16);
        v = kind == 0 ? t : kind == 1 ? std::nanf("") : u(rng);
      }
      std::vector<float> up(static_cast<size_t>(H * W));
      ops::cpu::resizeBilinear(ctx, x.data(), 1, ih, iw, iw, 0, up.data(), H, W, H, W);
      // (to the same size the resize is skipped, as the identity it is but for NaN neighbours,
      // whose weight 0 still makes a NaN)
      const std::vector<float>& ref = ih == H && iw == W ? x : up;
      std::vector<uint8_t> want(up.size());
      for (size_t i = 0; i < up.size(); ++i) want[i] = ref[i] > t ? 1 : 0;
      std::vector<uint8_t> got(up.size(), 7);
      double bounds[5] = {-1, -1, -1, -1, -1};
      ops::cpu::resizeThreshold(ctx, x.data(), ih, iw, H, W, t, got.data(), bounds);
      CHECK(got == want);
      if (got != want) std::printf("  %lld x %lld -> %lld x %lld, t %g\n", (long long)ih, (long long)iw, (long long)H, (long long)W, t);
      const masks::Bounds b = masks::maskBounds(want.data(), H, W);
      CHECK(bounds[0] == b.x0 && bounds[1] == b.y0 && bounds[2] == b.x1 && bounds[3] == b.y1 &&
            bounds[4] == b.area);
      std::vector<uint8_t> again(up.size(), 7);
      ops::cpu::resizeThreshold(ctx, x.data(), ih, iw, H, W, t, again.data(), nullptr);  // no bounds
      CHECK(again == want);
      ++cases;
    }
  }
  std::printf("resize_threshold_test: %d cases, %s\n", cases, nativetest::failures == 0 ? "ok" : "FAILED");
  return nativetest::failures == 0 ? 0 : 1;
}
