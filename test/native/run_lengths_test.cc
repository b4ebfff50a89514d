// masks/run_lengths on random masks, under ASan in `make asan`, against their definitions pixel
// by pixel (coco_counts.h's column walk for the counts): maskToCounts, countsToMask and every
// crop of it (edges, empty crops), maskBounds, runsBounds and thresholdBounds (+ unionBounds),
// and countsToString against the base-32 groups of each delta.
// lib/ tests check the same through the addon against the JS they replaced.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "coco_counts.h"
#include "core/error.h"
#include "masks/run_lengths.h"

namespace masks = omniseg::masks;

namespace {

std::string groups(const std::vector<uint32_t>& counts) {
  std::string out;
  for (size_t i = 0; i < counts.size(); ++i) {
    int64_t x = i > 2 ? int64_t{counts[i]} - int64_t{counts[i - 2]} : int64_t{counts[i]};
    for (bool more = true; more;) {
      int c = static_cast<int>(((x % 32) + 32) % 32);  // floor division by 32, spelled out
      x = (x - c) / 32;
      more = (c & 16) ? x != -1 : x != 0;
      if (more) c |= 32;
      out.push_back(static_cast<char>(c + 48));
    }
  }
  return out;
}

}  // namespace

int main() {
  std::mt19937 rng(20261124);
  int cases = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const int64_t H = 1 + static_cast<int64_t>(rng() % 17), W = 1 + static_cast<int64_t>(rng() % 17);
    const double density = (rng() % 1000) / 1000.0;
    std::vector<uint8_t> m(static_cast<size_t>(H * W));
    for (auto& v : m) v = (rng() % 1000) / 1000.0 < density ? static_cast<uint8_t>(1 + rng() % 255) : 0;

    const std::vector<double> counts = masks::maskToCounts(m.data(), H, W);
    std::vector<uint32_t> u;
    appendCocoCounts(m.data(), H, W, u);  // (the column walk: the definition)
    CHECK(counts == std::vector<double>(u.begin(), u.end()));

    const std::vector<uint8_t> back = masks::countsToMask(u.data(), u.size(), H, W);
    CHECK(back.size() == m.size());
    if (back.size() != m.size()) continue;
    for (size_t i = 0; i < m.size(); ++i) CHECK(back[i] == (m[i] != 0));
    // crops on a grid of corners with random extents, the empty ones and those at the edges included
    for (int64_t x0 = 0; x0 <= W; x0 += 3) {
      for (int64_t y0 = 0; y0 <= H; y0 += 2) {
        const int64_t x1 = std::min(W, x0 + static_cast<int64_t>(rng() % 9)), y1 = std::min(H, y0 + static_cast<int64_t>(rng() % 9));
        const std::vector<uint8_t> crop = masks::countsToMaskCrop(u.data(), u.size(), H, W, x0, y0, x1, y1);
        CHECK(static_cast<int64_t>(crop.size()) == (x1 - x0) * (y1 - y0));
        if (static_cast<int64_t>(crop.size()) != (x1 - x0) * (y1 - y0)) continue;
        for (int64_t y = y0; y < y1; ++y)
          for (int64_t x = x0; x < x1; ++x) CHECK(crop[static_cast<size_t>((y - y0) * (x1 - x0) + x - x0)] == back[static_cast<size_t>(y * W + x)]);
      }
    }

    masks::Bounds want{W, H, -1, -1, 0};
    for (int64_t y = 0; y < H; ++y) {
      for (int64_t x = 0; x < W; ++x) {
        if (m[static_cast<size_t>(y * W + x)] == 0) continue;
        want = {std::min(want.x0, x), std::min(want.y0, y), std::max(want.x1, x), std::max(want.y1, y), want.area + 1};
      }
    }
    if (want.area == 0) want = {0, 0, 0, 0, 0};
    // thresholdBounds on logits whose threshold at t is m (t itself and NaN give 0), in two blocks
    // of rows split at a random row (either may be empty), joined by unionBounds
    const float t = static_cast<float>(rng() % 5) - 2.f;
    std::vector<float> logits(m.size());
    for (size_t i = 0; i < m.size(); ++i) {
      const int kind = static_cast<int>(rng() % 3);
      logits[i] = m[i] ? t + 0.25f + static_cast<float>(rng() % 50)
                       : kind == 0 ? t : kind == 1 ? std::nanf("") : t - static_cast<float>(rng() % 50);
    }
    std::vector<uint8_t> thresholded(m.size(), 7);
    const int64_t split = static_cast<int64_t>(rng() % static_cast<uint32_t>(H + 1));
    const masks::Bounds top = masks::thresholdBounds(logits.data(), split, W, t, thresholded.data());
    const masks::Bounds bottom =
        masks::thresholdBounds(logits.data() + split * W, H - split, W, t, thresholded.data() + split * W);
    for (size_t i = 0; i < m.size(); ++i) CHECK(thresholded[i] == (m[i] != 0 ? 1 : 0));
    for (const masks::Bounds& b : {masks::maskBounds(m.data(), H, W), masks::runsBounds(u.data(), u.size(), H, W),
                                   masks::unionBounds(top, bottom, split)}) {
      CHECK(b.x0 == want.x0 && b.y0 == want.y0 && b.x1 == want.x1 && b.y1 == want.y1 && b.area == want.area);
    }
    CHECK(masks::countsToString(u.data(), u.size()) == groups(u));
    CHECK(masks::countsToString(counts.data(), counts.size()) == groups(u));
    ++cases;
  }
  // run lengths that do not cover the mask, and counts that are not integers, throw
  bool threw = false;
  try {
    const uint32_t bad[] = {3, 2};
    masks::countsToMask(bad, 2, 2, 2);
  } catch (const omniseg::Error&) {
    threw = true;
  }
  CHECK(threw);
  threw = false;
  try {
    const double bad[] = {1.5};
    masks::countsToString(bad, 1);
  } catch (const omniseg::Error&) {
    threw = true;
  }
  CHECK(threw);
  CHECK(masks::maskToCounts(nullptr, 0, 7) == std::vector<double>{0.0});
  std::printf("run_lengths_test: %d masks, %s\n", cases, nativetest::failures == 0 ? "ok" : "FAILED");
  return nativetest::failures == 0 ? 0 : 1;
}
