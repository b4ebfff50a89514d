// masks::tracePolygons and masks::countsToMask on random masks, under ASan in `make asan`:
// every polygon's shoelace area (outer minus holes) is the pixel count of a 4-connected region,
// and the pixels its rings enclose are that region's; the regions come in raster order, every
// ring is closed, axis-aligned and keeps only corners,
// and run lengths decode to the mask they came from. lib/ tests check exact rings through the addon.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "check.h"
#include "coco_counts.h"
#include "core/error.h"
#include "masks/polygons.h"
#include "masks/run_lengths.h"

using omniseg::masks::countsToMask;
using omniseg::masks::tracePolygons;

namespace {

// The 4-connected regions in raster order of their first pixel (flood fill): their sizes, and
// each pixel's region (1-based; 0 for background) in `label`.
std::vector<int64_t> regionSizes(const std::vector<uint8_t>& m, int64_t W, int64_t H, std::vector<int32_t>& label) {
  std::vector<uint8_t> seen(m.size());
  std::vector<int64_t> sizes, stack;
  label.assign(m.size(), 0);
  for (int64_t i = 0; i < W * H; ++i) {
    if (m[i] == 0 || seen[i]) continue;
    int64_t n = 0;
    stack.assign(1, i);
    seen[i] = 1;
    while (!stack.empty()) {
      const int64_t p = stack.back();
      stack.pop_back();
      ++n;
      label[p] = static_cast<int32_t>(sizes.size() + 1);
      const int64_t x = p % W, y = p / W;
      const int64_t nb[4][2] = {{x - 1, y}, {x + 1, y}, {x, y - 1}, {x, y + 1}};
      for (const auto& q : nb) {
        if (q[0] < 0 || q[1] < 0 || q[0] >= W || q[1] >= H) continue;
        const int64_t j = q[1] * W + q[0];
        if (m[j] != 0 && !seen[j]) {
          seen[j] = 1;
          stack.push_back(j);
        }
      }
    }
    sizes.push_back(n);
  }
  return sizes;
}

// Column-major COCO run lengths of a row-major mask, from a run of zeros.
std::vector<uint32_t> countsOf(const std::vector<uint8_t>& m, int64_t W, int64_t H) {
  std::vector<uint32_t> counts;
  appendCocoCounts(m.data(), H, W, counts);
  return counts;
}

void checkMask(const std::vector<uint8_t>& m, int64_t W, int64_t H, int64_t& holes) {
  const auto p = tracePolygons(m.data(), W, H);
  std::vector<int32_t> label;
  const auto sizes = regionSizes(m, W, H, label);
  CHECK(p.ringsPerPolygon.size() == sizes.size());
  size_t ring = 0, v = 0;
  for (size_t poly = 0; poly < p.ringsPerPolygon.size() && poly < sizes.size(); ++poly) {
    // Where it lies: the pixels whose centres its rings enclose (even-odd) are its region's.
    const size_t firstRing = ring, firstVertex = v;
    std::vector<uint8_t> inside(m.size(), 0);
    for (size_t r = firstRing, at = firstVertex; r < firstRing + p.ringsPerPolygon[poly] && r < p.ringSizes.size();
         at += p.ringSizes[r], ++r) {
      const size_t n = p.ringSizes[r];
      for (size_t i = 0; i < n && 2 * (at + n) <= p.xy.size(); ++i) {
        const int32_t* a = &p.xy[2 * (at + i)];
        const int32_t* b = &p.xy[2 * (at + (i + 1) % n)];
        if (a[0] != b[0]) continue;  // (a ray to the right crosses vertical edges only)
        for (int64_t y = std::min(a[1], b[1]); y < std::max(a[1], b[1]); ++y)
          for (int64_t x = 0; x < a[0] && x < W; ++x) inside[static_cast<size_t>(y * W + x)] ^= 1;
      }
    }
    bool placed = true;
    for (size_t i = 0; i < m.size(); ++i) placed &= (inside[i] != 0) == (label[i] == static_cast<int32_t>(poly + 1));
    CHECK(placed);
    int64_t twiceArea = 0;
    for (uint32_t k = 0; k < p.ringsPerPolygon[poly]; ++k, ++ring) {
      const size_t n = p.ringSizes[ring];
      CHECK(n >= 4);
      int64_t twice = 0;
      for (size_t i = 0; i < n; ++i) {
        const int32_t* a = &p.xy[2 * (v + (i + n - 1) % n)];
        const int32_t* b = &p.xy[2 * (v + i)];
        const int32_t* c = &p.xy[2 * (v + (i + 1) % n)];
        CHECK(b[0] >= 0 && b[1] >= 0 && b[0] <= W && b[1] <= H);
        CHECK(a[0] == b[0] || a[1] == b[1]);  // axis-aligned
        const int64_t cross = int64_t(b[0] - a[0]) * (c[1] - b[1]) - int64_t(b[1] - a[1]) * (c[0] - b[0]);
        CHECK(cross != 0);  // a corner
        twice += int64_t(a[0]) * b[1] - int64_t(b[0]) * a[1];
      }
      CHECK(k == 0 ? twice > 0 : twice < 0);  // outer clockwise on screen, holes counter-clockwise
      twiceArea += twice;
      v += n;
    }
    CHECK(twiceArea == 2 * sizes[poly]);
    holes += p.ringsPerPolygon[poly] - 1;
  }
  CHECK(ring == p.ringSizes.size() && 2 * v == p.xy.size());
  const auto counts = countsOf(m, W, H);
  const auto decoded = countsToMask(counts.data(), counts.size(), H, W);
  bool same = decoded.size() == m.size();
  for (size_t i = 0; same && i < m.size(); ++i) same = decoded[i] == (m[i] != 0);
  CHECK(same);
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  int64_t holes = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const int64_t W = 1 + rng() % 40, H = 1 + rng() % 40;
    const double density = (rng() % 1000) / 1000.0;
    std::vector<uint8_t> m(static_cast<size_t>(W * H));
    for (auto& b : m) b = (rng() % 1000) / 1000.0 < density ? static_cast<uint8_t>(1 + rng() % 255) : 0;
    checkMask(m, W, H, holes);
  }
  CHECK(holes > 100);  // the random masks did have holes
  std::vector<uint8_t> full(64 * 3, 1), empty(5 * 7, 0);
  checkMask(full, 64, 3, holes);
  checkMask(empty, 5, 7, holes);
  CHECK(tracePolygons(empty.data(), 5, 7).ringsPerPolygon.empty());
  CHECK(tracePolygons(nullptr, 0, 9).xy.empty());
  // Run lengths that do not cover the mask: a RangeError, never a write past its end.
  const uint32_t shortCounts[] = {5, 2}, longCounts[] = {30, 7};
  for (const auto* c : {shortCounts, longCounts}) {
    bool threw = false;
    try {
      countsToMask(c, 2, 5, 7);
    } catch (const omniseg::Error& e) {
      threw = e.kind() == omniseg::ErrorKind::Range;
    }
    CHECK(threw);
  }
  if (nativetest::failures == 0) std::printf("polygons_test: ok\n");
  return nativetest::failures == 0 ? 0 : 1;
}
