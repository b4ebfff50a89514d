#include "masks/coverage.h"

#include <algorithm>
#include <cmath>

namespace omniseg::masks {

namespace {

// One low-res cell along an axis: the original pixels [from, to) it overlaps and the length of
// each overlap, in original pixels. ref: lib/mask-prompt.ts overlaps().
struct Overlap {
  int64_t index, from, to;
  std::vector<double> weights;
};

std::vector<Overlap> overlaps(int64_t pixels, double span, int64_t cells) {
  std::vector<Overlap> out;
  for (int64_t c = 0; c < cells; ++c) {
    const double a = static_cast<double>(c) * span;
    const double b = std::min(static_cast<double>(c + 1) * span, static_cast<double>(pixels));
    if (a >= static_cast<double>(pixels)) break;  // this cell and the next ones lie in the padding
    const auto from = static_cast<int64_t>(std::floor(a));
    const int64_t to = std::min(pixels, static_cast<int64_t>(std::ceil(b)));
    Overlap o{c, from, to, std::vector<double>(static_cast<size_t>(to - from))};
    for (int64_t x = from; x < to; ++x) {
      const double xd = static_cast<double>(x);
      o.weights[static_cast<size_t>(x - from)] = std::max(0.0, std::min(b, xd + 1) - std::max(a, xd));
    }
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace

std::vector<float> maskCoverage(const uint8_t* mask, int64_t width, int64_t height, const MaskFrame& frame) {
  const int64_t L = frame.lowResSize;
  const double cell = static_cast<double>(frame.imageSize) / static_cast<double>(L);  // frame pixels per cell
  const double spanX = (cell * static_cast<double>(width)) / static_cast<double>(frame.resizedWidth);
  const double spanY = (cell * static_cast<double>(height)) / static_cast<double>(frame.resizedHeight);
  const std::vector<Overlap> xs = overlaps(width, spanX, L), ys = overlaps(height, spanY, L);
  const double cellArea = spanX * spanY;
  // Each original row's low-res rows and their weights: ys in row order, so a row's entries
  // form a contiguous range that only moves forward.
  std::vector<float> out(static_cast<size_t>(L * L), 0.0f);
  std::vector<double> rowSums(static_cast<size_t>(L), 0.0);
  size_t firstY = 0;
  for (int64_t y = 0; y < height; ++y) {
    const uint8_t* row = mask + y * width;
    bool any = false;
    for (const Overlap& o : xs) {
      double s = 0;
      const double* w = o.weights.data() - o.from;
      // (+ 0.0 where the pixel is outside: the same sum as skipping it, since s ≥ +0)
      for (int64_t x = o.from; x < o.to; ++x) s += row[x] != 0 ? w[x] : 0.0;
      rowSums[static_cast<size_t>(o.index)] = s;
      any = any || s > 0;
    }
    if (!any) continue;
    while (firstY < ys.size() && ys[firstY].to <= y) ++firstY;
    for (size_t k = firstY; k < ys.size() && ys[k].from <= y; ++k) {
      const Overlap& o = ys[k];
      const double wy = o.weights[static_cast<size_t>(y - o.from)];
      float* cells = out.data() + o.index * L;
      for (int64_t c = 0; c < L; ++c) {
        cells[c] = static_cast<float>(static_cast<double>(cells[c]) + (wy * rowSums[static_cast<size_t>(c)]) / cellArea);
      }
    }
  }
  for (float& v : out) v = std::min(1.0f, v);
  return out;
}

void coverageToLogits(std::vector<float>& coverage, double limit) {
  for (float& v : coverage) {
    const double f = v;
    v = static_cast<float>(f <= 0 ? -limit : f >= 1 ? limit : std::min(limit, std::max(-limit, std::log(f / (1 - f)))));
  }
}

}  // namespace omniseg::masks
