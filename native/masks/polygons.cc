// Binary mask → polygons with holes, exactly on pixel boundaries.
//
// Pixel (x, y) is the unit square [x, x+1] × [y, y+1]; its corners are the vertices of a
// (width+1) × (height+1) lattice. Every side shared by a foreground and a background pixel (or the
// outside of the image) is a boundary edge, directed so that the foreground is on its right when
// walking it (y down): top sides run east, right sides south, bottom sides west, left sides north.
// Each lattice vertex then has as many boundary edges leaving as arriving, so the edges form
// closed rings; following them (border following on the pixel-corner lattice, as in marching
// squares) gives each ring once. Where two foreground pixels touch only at a corner (a saddle
// vertex with two edges leaving), the walk turns right, staying with the pixel it came from:
// foreground regions are 4-connected and the background 8-connected, so every ring is a simple
// polygon and two regions that meet at a corner are two polygons touching at a point.
//
// Rings are found by scanning the pixels in raster order for top sides not yet walked (every ring
// has one). The first ring met of a region starts at the region's first pixel, whose top side is
// on the outer boundary; later rings of that region are its holes. The regions are the
// 4-connected components of the foreground's row runs (union-find over the runs), so a ring's
// region is found from its first pixel's run.
#include "masks/polygons.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <string_view>

#include "core/error.h"

namespace omniseg::masks {

namespace {

// Directions, clockwise on screen: east, south, west, north. Right turn = +1, left turn = +3.
constexpr int kDx[4] = {1, 0, -1, 0};
constexpr int kDy[4] = {0, 1, 0, -1};
constexpr int kEast = 0;

// The foreground's horizontal runs, row by row, with union-find over 4-connected runs.
class Regions {
 public:
  Regions(const uint8_t* m, int64_t W, int64_t H) : rowStart_(static_cast<size_t>(H) + 1) {
    for (int64_t y = 0; y < H; ++y) {
      const uint8_t* row = m + y * W;
      const uint32_t first = count();
      rowStart_[y] = first;
      for (int64_t x = 0; x < W;) {
        if (row[x] == 0) {
          ++x;
          continue;
        }
        const int64_t x0 = x;
        while (x < W && row[x] != 0) ++x;
        if (x0_.size() >= std::numeric_limits<uint32_t>::max()) throw Error("mask has too many runs to trace");
        x0_.push_back(static_cast<int32_t>(x0));
        x1_.push_back(static_cast<int32_t>(x));
        parent_.push_back(count() - 1);
      }
      if (y > 0) joinRows(rowStart_[y - 1], first, count());
    }
    rowStart_[H] = count();
  }

  // The root run of the region of foreground pixel (x, y).
  uint32_t regionOf(int64_t x, int64_t y) {
    // the last run of row y starting at or before x (it contains x: the pixel is foreground)
    const auto begin = x0_.begin() + rowStart_[y], end = x0_.begin() + rowStart_[y + 1];
    const auto it = std::upper_bound(begin, end, static_cast<int32_t>(x)) - 1;
    return find(static_cast<uint32_t>(it - x0_.begin()));
  }

  uint32_t count() const { return static_cast<uint32_t>(x0_.size()); }

 private:
  uint32_t find(uint32_t r) {
    while (parent_[r] != r) {
      parent_[r] = parent_[parent_[r]];  // path halving
      r = parent_[r];
    }
    return r;
  }

  // Joins the runs [b, e) of a row with the runs [a, b) of the row above that they overlap.
  void joinRows(uint32_t a, uint32_t b, uint32_t e) {
    for (uint32_t i = a, j = b; i < b && j < e;) {
      if (x0_[i] < x1_[j] && x0_[j] < x1_[i]) {
        const uint32_t ri = find(i), rj = find(j);
        if (ri != rj) parent_[std::max(ri, rj)] = std::min(ri, rj);
      }
      if (x1_[i] < x1_[j]) ++i;
      else ++j;
    }
  }

  std::vector<uint32_t> rowStart_;  // [H + 1] first run of each row
  std::vector<int32_t> x0_, x1_;    // run r covers pixels [x0_[r], x1_[r]) of its row
  std::vector<uint32_t> parent_;
};

class Tracer {
 public:
  Tracer(const uint8_t* m, int64_t W, int64_t H) : m_(m), W_(W), H_(H), walked_(static_cast<size_t>(W * H)) {}

  bool startsRing(int64_t x, int64_t y) const {
    const int64_t i = y * W_ + x;
    return m_[i] != 0 && walked_[i] == 0 && (y == 0 || m_[i - W_] == 0);
  }

  // Walks the ring that starts with the top side of pixel (x0, y0), heading east from its
  // top-left corner, until it is back on that side; appends its corners to xy and marks the top
  // sides it walks. Returns the number of vertices.
  size_t trace(int64_t x0, int64_t y0, std::vector<int32_t>& xy) {
    const size_t begin = xy.size();
    int64_t vx = x0, vy = y0;
    int d = kEast;
    for (;;) {
      if (d == kEast) walked_[vy * W_ + vx] = 1;
      vx += kDx[d];
      vy += kDy[d];
      // Right turn first (keeps pixels that touch at a corner apart), then straight on, then left.
      const int right = (d + 1) & 3, left = (d + 3) & 3;
      const int next = leaves(vx, vy, right) ? right : leaves(vx, vy, d) ? d : left;
      if (next != d) {
        xy.push_back(static_cast<int32_t>(vx));
        xy.push_back(static_cast<int32_t>(vy));
      }
      d = next;
      if (vx == x0 && vy == y0 && d == kEast) break;
    }
    // Start the ring at (x0, y0) when it is a corner (it was appended last, on arrival).
    const size_t n = xy.size();
    if (n > begin && xy[n - 2] == x0 && xy[n - 1] == y0) {
      std::rotate(xy.begin() + static_cast<std::ptrdiff_t>(begin), xy.end() - 2, xy.end());
    }
    return (xy.size() - begin) / 2;
  }

 private:
  bool fg(int64_t x, int64_t y) const { return x >= 0 && y >= 0 && x < W_ && y < H_ && m_[y * W_ + x] != 0; }

  // Whether a boundary edge leaves vertex (vx, vy) in direction d: foreground on its right,
  // background on its left.
  bool leaves(int64_t vx, int64_t vy, int d) const {
    switch (d) {
      case 0: return fg(vx, vy) && !fg(vx, vy - 1);              // east: below-right fg, above-right bg
      case 1: return fg(vx - 1, vy) && !fg(vx, vy);              // south: below-left fg, below-right bg
      case 2: return fg(vx - 1, vy - 1) && !fg(vx - 1, vy);      // west: above-left fg, below-left bg
      default: return fg(vx, vy - 1) && !fg(vx - 1, vy - 1);     // north: above-right fg, above-left bg
    }
  }

  const uint8_t* m_;
  int64_t W_, H_;
  std::vector<uint8_t> walked_;  // [H, W] top sides already walked
};

}  // namespace

Polygons tracePolygons(const uint8_t* mask, int64_t width, int64_t height) {
  Polygons out;
  if (width <= 0 || height <= 0) return out;
  if (width >= std::numeric_limits<int32_t>::max() || height >= std::numeric_limits<int32_t>::max()) {
    throw Error("mask is too large to trace", ErrorKind::Range);
  }
  Regions regions(mask, width, height);
  Tracer tracer(mask, width, height);
  // Rings in the order they are found, each with its polygon.
  std::vector<int32_t> xy;
  std::vector<uint32_t> ringSize, ringPolygon;
  std::vector<uint32_t> polygonOf(regions.count(), std::numeric_limits<uint32_t>::max());  // by root run
  uint32_t polygons = 0;
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) {
      if (!tracer.startsRing(x, y)) continue;
      const size_t n = tracer.trace(x, y, xy);
      if (n > std::numeric_limits<uint32_t>::max()) throw Error("mask has a ring too long to trace", ErrorKind::Range);
      ringSize.push_back(static_cast<uint32_t>(n));
      uint32_t& p = polygonOf[regions.regionOf(x, y)];
      if (p == std::numeric_limits<uint32_t>::max()) p = polygons++;  // its first ring: the outer one
      ringPolygon.push_back(p);
    }
  }
  // Group the rings by polygon (a stable counting sort keeps the outer ring first, then the holes
  // in the order they were found).
  out.ringsPerPolygon.assign(polygons, 0);
  for (uint32_t p : ringPolygon) ++out.ringsPerPolygon[p];
  std::vector<size_t> next(polygons + 1, 0);  // first output ring of each polygon
  for (uint32_t p = 0; p < polygons; ++p) next[p + 1] = next[p] + out.ringsPerPolygon[p];
  const size_t rings = ringSize.size();
  std::vector<size_t> slot(rings), offset(rings);
  for (size_t r = 0, at = 0; r < rings; at += 2 * ringSize[r], ++r) {
    slot[r] = next[ringPolygon[r]]++;
    offset[r] = at;
  }
  std::vector<size_t> order(rings);
  for (size_t r = 0; r < rings; ++r) order[slot[r]] = r;
  out.xy.reserve(xy.size());
  out.ringSizes.reserve(rings);
  for (size_t r : order) {
    out.xy.insert(out.xy.end(), xy.begin() + static_cast<std::ptrdiff_t>(offset[r]),
                  xy.begin() + static_cast<std::ptrdiff_t>(offset[r] + 2 * ringSize[r]));
    out.ringSizes.push_back(ringSize[r]);
  }
  return out;
}

namespace {

// Characters of v in decimal, its sign included.
size_t decimalLength(int32_t v) {
  size_t n = v < 0 ? 2 : 1;
  for (int64_t m = v < 0 ? -int64_t{v} : v; m >= 10; m /= 10) ++n;
  return n;
}

}  // namespace

std::vector<uint8_t> polygonsJson(const Polygons& polygons) {
  // The text's length first (so that the buffer is made once, at its size), then the text.
  constexpr std::string_view kOuter = "{\"outer\":", kHoles = ",\"holes\":[", kEnd = "]}";
  size_t length = 2;  // [ ]
  for (const int32_t v : polygons.xy) length += decimalLength(v) + 2;  // "[x," / "y],": 2 a coordinate
  for (const uint32_t n : polygons.ringSizes) length += n == 0 ? 2 : 1;  // "[" "]" less the last vertex's ","
  for (const uint32_t r : polygons.ringsPerPolygon) length += kOuter.size() + kHoles.size() + kEnd.size() + (r > 2 ? r - 2 : 0);  // "," between holes
  length += polygons.ringsPerPolygon.empty() ? 0 : polygons.ringsPerPolygon.size() - 1;  // "," between polygons
  std::vector<uint8_t> out(length);
  char* at = reinterpret_cast<char*>(out.data());
  auto put = [&](std::string_view text) {
    std::memcpy(at, text.data(), text.size());
    at += text.size();
  };
  const int32_t* xy = polygons.xy.data();
  size_t ring = 0;
  auto putRing = [&] {
    *at++ = '[';
    for (uint32_t i = 0, n = polygons.ringSizes[ring++]; i < n; ++i, xy += 2) {
      if (i > 0) *at++ = ',';
      *at++ = '[';
      at = std::to_chars(at, at + 11, xy[0]).ptr;
      *at++ = ',';
      at = std::to_chars(at, at + 11, xy[1]).ptr;
      *at++ = ']';
    }
    *at++ = ']';
  };
  *at++ = '[';
  for (size_t p = 0; p < polygons.ringsPerPolygon.size(); ++p) {
    if (p > 0) *at++ = ',';
    put(kOuter);
    putRing();
    put(kHoles);
    for (uint32_t h = 1; h < polygons.ringsPerPolygon[p]; ++h) {
      if (h > 1) *at++ = ',';
      putRing();
    }
    put(kEnd);
  }
  *at++ = ']';
  OMNISEG_CHECK(at == reinterpret_cast<char*>(out.data()) + out.size(), "polygonsJson: length mismatch");
  return out;
}

}  // namespace omniseg::masks
