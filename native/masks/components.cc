#include "masks/components.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace omniseg::masks {

Runs componentRuns(const float* values, int64_t width, int64_t height, double threshold, int connectivity) {
  Runs out;
  std::vector<int64_t>& start = out.start;
  std::vector<int64_t>& end = out.end;
  std::vector<int64_t> parent;
  auto find = [&](int64_t r) {
    while (parent[r] != r) {
      parent[r] = parent[parent[r]];  // path halving
      r = parent[r];
    }
    return r;
  };
  const int64_t reach = connectivity == 8 ? 1 : 0;  // 8-connectivity: runs a pixel apart diagonally touch
  size_t above = 0;                                  // first run of the row above
  for (int64_t y = 0, row = 0; y < height; ++y, row += width) {
    const size_t first = start.size();
    size_t p = above;
    const float* v = values + row;
    for (int64_t x = 0; x < width;) {
      if (!(v[x] > threshold)) {
        ++x;
        continue;
      }
      const int64_t x0 = x;
      while (x < width && v[x] > threshold) ++x;
      const auto r = static_cast<int64_t>(start.size());
      start.push_back(row + x0);
      end.push_back(row + x);
      parent.push_back(r);
      // the runs above that touch [x0 - reach, x + reach): skip those ending before it
      const int64_t lo = row - width + x0 - reach, hi = row - width + x + reach;
      while (p < first && end[p] <= lo) ++p;
      for (size_t q = p; q < first && start[q] < hi; ++q) {
        const int64_t a = find(r), b = find(static_cast<int64_t>(q));
        if (a != b) parent[std::max(a, b)] = std::min(a, b);  // the older root stays the root
      }
    }
    above = first;
  }
  // Labels in run order, which is the order of each component's first pixel.
  out.label.resize(start.size());
  for (size_t r = 0; r < start.size(); ++r) {
    const int64_t root = find(static_cast<int64_t>(r));
    out.label[r] = root == static_cast<int64_t>(r) ? ++out.components : out.label[static_cast<size_t>(root)];
  }
  return out;
}

std::vector<Instance> findInstances(const float* heat, int64_t width, int64_t height, double threshold,
                                    int connectivity, int64_t minPixels, int64_t maxInstances) {
  const Runs runs = componentRuns(heat, width, height, threshold, connectivity);
  // Each component's statistics, in label order; its pixels visited in row-major order, as in a
  // pass over the label image: the same sums, the same peaks.
  std::vector<Instance> all(static_cast<size_t>(runs.components));
  for (Instance& s : all) {
    s.peak = -1;
    s.x0 = width;
    s.y0 = height;
    s.x1 = s.y1 = -1;
    s.area = 0;
    s.max = -std::numeric_limits<double>::infinity();
    s.sum = 0;
  }
  for (size_t r = 0; r < runs.start.size(); ++r) {
    Instance& s = all[static_cast<size_t>(runs.label[r] - 1)];
    const int64_t a = runs.start[r], b = runs.end[r];
    s.runs.push_back(a);
    s.runs.push_back(b);
    s.area += b - a;
    for (int64_t i = a; i < b; ++i) {
      const double v = heat[i];
      s.sum += v;
      if (v > s.max) {
        s.max = v;
        s.peak = i;
      }
    }
    const int64_t y = a / width;
    s.x0 = std::min(s.x0, a - y * width);
    s.x1 = std::max(s.x1, b - 1 - y * width);
    s.y0 = std::min(s.y0, y);
    s.y1 = std::max(s.y1, y);
  }
  std::vector<Instance> kept;
  for (Instance& s : all) {
    if (s.area >= minPixels) kept.push_back(std::move(s));
  }
  // (the order of lib/referring/instances.ts's comparator, which is total: peaks differ)
  std::sort(kept.begin(), kept.end(), [](const Instance& a, const Instance& b) {
    if (a.max != b.max) return a.max > b.max;
    if (a.area != b.area) return a.area > b.area;
    return a.peak < b.peak;
  });
  if (static_cast<int64_t>(kept.size()) > maxInstances) kept.resize(static_cast<size_t>(maxInstances));
  return kept;
}

std::vector<uint8_t> runsToMask(const int32_t* runs, size_t n, int64_t pixels) {
  if (n % 2 != 0) throw Error("runs must be [start, end) pairs", ErrorKind::Range);
  for (size_t i = 0; i < n; i += 2) {
    if (!(0 <= runs[i] && runs[i] <= runs[i + 1] && runs[i + 1] <= pixels)) {
      throw Error("every run [start, end) must lie within width * height pixels", ErrorKind::Range);
    }
  }
  std::vector<uint8_t> mask(static_cast<size_t>(pixels), 0);
  for (size_t i = 0; i < n; i += 2) std::fill(mask.begin() + runs[i], mask.begin() + runs[i + 1], uint8_t{1});
  return mask;
}

}  // namespace omniseg::masks
