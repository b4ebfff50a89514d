#include "masks/run_lengths.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "ops/cpu/simd.h"

namespace omniseg::masks {

std::vector<uint8_t> countsToMask(const uint32_t* counts, size_t n, int64_t height, int64_t width) {
  return countsToMaskCrop(counts, n, height, width, 0, 0, width, height);
}

std::vector<uint8_t> countsToMaskCrop(const uint32_t* counts, size_t n, int64_t height, int64_t width, int64_t x0,
                                      int64_t y0, int64_t x1, int64_t y1) {
  const uint64_t pixels = static_cast<uint64_t>(height) * static_cast<uint64_t>(width);
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += counts[i];
  if (height < 0 || width < 0 || sum != pixels) {
    throw Error("run lengths must sum to width * height", ErrorKind::Range);
  }
  if (!(0 <= x0 && x0 <= x1 && x1 <= width && 0 <= y0 && y0 <= y1 && y1 <= height)) {
    throw Error("the crop must lie inside the mask", ErrorKind::Range);
  }
  const int64_t cw = x1 - x0, ch = y1 - y0;
  // Row-major without walking down columns (a cache line a pixel) or transposing: each run of
  // ones toggles its first row and the row past it in its column, and a running XOR down the rows
  // (row r ^= row r − 1, contiguous bytes) turns the toggles into the runs. Runs that touch
  // (a zero-length run of zeros between them) toggle the same row twice: one longer run.
  std::vector<uint8_t> mask(static_cast<size_t>(cw * ch), 0);
  const uint64_t end = static_cast<uint64_t>(x1) * static_cast<uint64_t>(height);  // past the crop's last column
  uint64_t k = 0;
  for (size_t i = 0; i < n && k < end; k += counts[i], ++i) {
    if (i % 2 == 0) continue;
    for (uint64_t at = k, left = counts[i]; left > 0 && at < end;) {
      const auto col = static_cast<int64_t>(at / static_cast<uint64_t>(height));
      const auto row = static_cast<int64_t>(at % static_cast<uint64_t>(height));
      const int64_t len = std::min<int64_t>(static_cast<int64_t>(left), height - row);  // within this column
      const int64_t r0 = std::max(row, y0), r1 = std::min(row + len, y1);
      if (col >= x0 && r0 < r1) {
        mask[static_cast<size_t>((r0 - y0) * cw + (col - x0))] ^= 1;
        if (r1 < y1) mask[static_cast<size_t>((r1 - y0) * cw + (col - x0))] ^= 1;
      }
      at += static_cast<uint64_t>(len);
      left -= static_cast<uint64_t>(len);
    }
  }
  for (int64_t y = 1; y < ch; ++y) {
    const uint8_t* above = mask.data() + (y - 1) * cw;
    uint8_t* row = mask.data() + y * cw;
    for (int64_t x = 0; x < cw; ++x) row[x] ^= above[x];
  }
  return mask;
}

OMNISEG_SIMD void countColumnBoundaries(const uint8_t* m, int64_t H, int64_t W, uint32_t* boundaries) {
  const uint8_t* last = m + (H - 1) * W;
  boundaries[0] = m[0] != 0;
  for (int64_t x = 1; x < W; ++x) boundaries[x] = (m[x] != 0) != (last[x - 1] != 0);
  for (int64_t y = 1; y < H; ++y) {
    const uint8_t* row = m + y * W;
    const uint8_t* up = row - W;
    for (int64_t x = 0; x < W; ++x) boundaries[x] += (row[x] != 0) != (up[x] != 0);
  }
}

template <class P>
void fillColumnBoundaries(const uint8_t* m, int64_t H, int64_t W, P* next, P* pos) {
  const uint8_t* last = m + (H - 1) * W;
  for (int64_t x = 0; x < W; ++x)
    if ((m[x] != 0) != (x > 0 && last[x - 1] != 0)) pos[next[x]++] = static_cast<P>(x * H);
  for (int64_t y = 1; y < H; ++y) {
    const uint8_t* row = m + y * W;
    const uint8_t* up = row - W;
    int64_t x = 0;
    // Most of a mask is the same as the row above: compared 8 bytes at a time first.
    for (; x + 8 <= W; x += 8) {
      uint64_t a, b;
      std::memcpy(&a, row + x, 8);
      std::memcpy(&b, up + x, 8);
      if (a == b) continue;
      for (int64_t j = x; j < x + 8; ++j)
        if ((row[j] != 0) != (up[j] != 0)) pos[next[j]++] = static_cast<P>(j * H + y);
    }
    for (; x < W; ++x)
      if ((row[x] != 0) != (up[x] != 0)) pos[next[x]++] = static_cast<P>(x * H + y);
  }
}

template void fillColumnBoundaries<uint32_t>(const uint8_t*, int64_t, int64_t, uint32_t*, uint32_t*);
template void fillColumnBoundaries<uint64_t>(const uint8_t*, int64_t, int64_t, uint64_t*, uint64_t*);

std::vector<double> maskToCounts(const uint8_t* m, int64_t height, int64_t width) {
  if (height < 0 || width < 0) throw Error("the mask's sides must not be negative", ErrorKind::Range);
  const uint64_t pixels = static_cast<uint64_t>(height) * static_cast<uint64_t>(width);
  if (pixels == 0) return {0.0};
  std::vector<uint32_t> boundaries(static_cast<size_t>(width));
  countColumnBoundaries(m, height, width, boundaries.data());
  std::vector<uint64_t> next(static_cast<size_t>(width));
  uint64_t total = 0;
  for (int64_t x = 0; x < width; ++x) {
    next[static_cast<size_t>(x)] = total;
    total += boundaries[static_cast<size_t>(x)];
  }
  std::vector<uint64_t> pos(static_cast<size_t>(total));
  fillColumnBoundaries<uint64_t>(m, height, width, next.data(), pos.data());
  // the runs: from 0 to the first boundary, between boundaries, from the last one to the end
  std::vector<double> counts(static_cast<size_t>(total + 1));
  uint64_t at = 0;
  for (uint64_t i = 0; i < total; ++i) {
    counts[static_cast<size_t>(i)] = static_cast<double>(pos[static_cast<size_t>(i)] - at);
    at = pos[static_cast<size_t>(i)];
  }
  counts[static_cast<size_t>(total)] = static_cast<double>(pixels - at);
  return counts;
}

namespace {

// The base-32 groups of one delta v (|v| < 2^62: int64's & 31 and >> 5 are floor division's).
inline char* putDelta(char* at, int64_t v) {
  for (bool more = true; more;) {
    int c = static_cast<int>(v & 0x1f);
    v >>= 5;
    more = (c & 0x10) ? v != -1 : v != 0;
    if (more) c |= 0x20;
    *at++ = static_cast<char>(c + 48);
  }
  return at;
}

// The same in doubles, for deltas beyond 2^62 (exact: floor division by 32 of integer-valued doubles).
void putDelta(std::string& out, double x) {
  for (bool more = true; more;) {
    const double high = std::floor(x / 32);
    auto c = static_cast<int>(x - high * 32);  // in [0, 32)
    x = high;
    more = (c & 0x10) ? x != -1 : x != 0;
    if (more) c |= 0x20;
    out.push_back(static_cast<char>(c + 48));
  }
}

}  // namespace

template <class T>
std::string countsToString(const T* counts, size_t n) {
  // The deltas in T's arithmetic, as lib/rle.ts took them in JS (doubles: rounded as JS rounds);
  // 13 characters hold a delta below 2^62 in magnitude, most deltas take one or two.
  std::string out(n * 2 + 16, '\0');
  char* at = out.data();
  for (size_t i = 0; i < n; ++i) {
    if (out.data() + out.size() - at < 13) {
      const size_t used = static_cast<size_t>(at - out.data());
      out.resize(out.size() * 2);
      at = out.data() + used;
    }
    if constexpr (std::is_same_v<T, uint32_t>) {
      at = putDelta(at, i > 2 ? int64_t{counts[i]} - int64_t{counts[i - 2]} : int64_t{counts[i]});
    } else {
      const double value = counts[i];
      if (!std::isfinite(value) || value != std::floor(value)) {
        throw Error("run lengths must be finite integers", ErrorKind::Range);
      }
      const double x = i > 2 ? value - counts[i - 2] : value;
      if (std::fabs(x) < 4611686018427387904.0) {  // 2^62
        at = putDelta(at, static_cast<int64_t>(x));
      } else {
        const size_t used = static_cast<size_t>(at - out.data());
        std::string tail;
        putDelta(tail, x);
        if (used + tail.size() + 13 > out.size()) out.resize((used + tail.size() + 13) * 2);
        std::memcpy(out.data() + used, tail.data(), tail.size());
        at = out.data() + used + tail.size();
      }
    }
  }
  out.resize(static_cast<size_t>(at - out.data()));
  return out;
}

template std::string countsToString<uint32_t>(const uint32_t*, size_t);
template std::string countsToString<double>(const double*, size_t);

Bounds runsBounds(const uint32_t* counts, size_t n, int64_t height, int64_t width) {
  if (height <= 0 || width <= 0) return {0, 0, 0, 0, 0};
  Bounds b{width, height, -1, -1, 0};
  int64_t k = 0;  // column-major position of the run
  for (size_t i = 0; i < n; k += counts[i], ++i) {
    const int64_t len = counts[i];
    if (i % 2 == 0 || len == 0) continue;
    b.area += len;
    const int64_t firstX = k / height, lastX = (k + len - 1) / height;
    b.x0 = std::min(b.x0, firstX);
    b.x1 = std::max(b.x1, lastX);
    if (firstX == lastX) {
      b.y0 = std::min(b.y0, k - firstX * height);
      b.y1 = std::max(b.y1, k + len - 1 - lastX * height);
    } else {  // it runs to the bottom of one column and from the top of the next
      b.y0 = 0;
      b.y1 = height - 1;
    }
  }
  if (b.area == 0) return {0, 0, 0, 0, 0};
  return b;
}

OMNISEG_SIMD Bounds maskBounds(const uint8_t* m, int64_t height, int64_t width) {
  Bounds b{width, height, -1, -1, 0};
  for (int64_t y = 0; y < height; ++y) {
    const uint8_t* row = m + y * width;
    int64_t count = 0;
    for (int64_t x = 0; x < width; ++x) count += row[x] != 0;  // (vectorised)
    if (count == 0) continue;
    b.area += count;
    int64_t first = 0, last = width - 1;
    while (row[first] == 0) ++first;
    while (row[last] == 0) --last;
    if (b.y1 < 0) b.y0 = y;
    b.y1 = y;
    b.x0 = std::min(b.x0, first);
    b.x1 = std::max(b.x1, last);
  }
  if (b.area == 0) return {0, 0, 0, 0, 0};
  return b;
}

OMNISEG_SIMD Bounds thresholdBounds(const float* logits, int64_t height, int64_t width, float t,
                                    uint8_t* mask) {
  Bounds b{width, height, -1, -1, 0};
  for (int64_t y = 0; y < height; ++y) {
    const float* in = logits + y * width;
    uint8_t* row = mask + y * width;
    int64_t count = 0;
    for (int64_t x0 = 0; x0 < width; x0 += int64_t{1} << 30) {
      uint32_t part = 0;  // (32-bit lanes vectorise better than 64-bit ones)
      for (int64_t x = x0; x < std::min(width, x0 + (int64_t{1} << 30)); ++x) {  // (vectorised)
        const uint8_t v = in[x] > t ? 1 : 0;
        row[x] = v;
        part += v;
      }
      count += part;
    }
    if (count == 0) continue;
    b.area += count;
    // Only the columns outside the box so far can widen it (the row is still in L1).
    for (int64_t x = 0; x < std::min(b.x0, width); ++x)
      if (row[x]) {
        b.x0 = x;
        break;
      }
    for (int64_t x = width - 1; x > b.x1; --x)
      if (row[x]) {
        b.x1 = x;
        break;
      }
    if (b.y1 < 0) b.y0 = y;
    b.y1 = y;
  }
  if (b.area == 0) return {0, 0, 0, 0, 0};
  return b;
}

void writeBounds(const Bounds& b, double* out) {
  out[0] = static_cast<double>(b.x0);
  out[1] = static_cast<double>(b.y0);
  out[2] = static_cast<double>(b.x1);
  out[3] = static_cast<double>(b.y1);
  out[4] = static_cast<double>(b.area);
}

Bounds unionBounds(const Bounds& a, Bounds b, int64_t rowOffset) {
  if (b.area == 0) return a;
  b.y0 += rowOffset;
  b.y1 += rowOffset;
  if (a.area == 0) return b;
  return {std::min(a.x0, b.x0), std::min(a.y0, b.y0), std::max(a.x1, b.x1), std::max(a.y1, b.y1),
          a.area + b.area};
}

}  // namespace omniseg::masks
