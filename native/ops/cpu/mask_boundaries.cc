// COCO run-length boundaries of binary masks (ops/op_list.inc maskBoundaries), on the host.
// COCO counts run down each column (column-major), but the masks are row-major: walking a column
// would touch a new cache line per pixel. So both passes go row by row, each column keeping its
// own place: one counts every column's boundaries, the other writes them where the counts say.
// ref: pycocotools common/maskApi.c rleEncode (the same runs, from the column-major mask)
#include <cstring>
#include <vector>

#include "ops/cpu/simd.h"
#include "ops/ops.h"

namespace omniseg::ops::cpu {

namespace {

// count[x] = boundaries in column x of the [H, W] mask m. The pixel before (x, 0) is (x − 1, H − 1)
// (0 before the first).
OMNISEG_SIMD void countColumns(const uint8_t* m, int64_t H, int64_t W, uint32_t* count) {
  const uint8_t* last = m + (H - 1) * W;
  count[0] = m[0] != 0;
  for (int64_t x = 1; x < W; ++x) count[x] = m[x] != last[x - 1];
  for (int64_t y = 1; y < H; ++y) {
    const uint8_t* row = m + y * W;
    const uint8_t* up = row - W;
    for (int64_t x = 0; x < W; ++x) count[x] += row[x] != up[x];
  }
}

// Writes column x's boundaries (k = x·H + y, ascending y) at pos[next[x]++]. Most of a mask is
// the same as the row above, so rows are compared 8 bytes at a time first.
void fillColumns(const uint8_t* m, int64_t H, int64_t W, uint32_t* next, uint32_t* pos) {
  const uint8_t* last = m + (H - 1) * W;
  for (int64_t x = 0; x < W; ++x)
    if (m[x] != (x == 0 ? 0 : last[x - 1])) pos[next[x]++] = static_cast<uint32_t>(x * H);
  for (int64_t y = 1; y < H; ++y) {
    const uint8_t* row = m + y * W;
    const uint8_t* up = row - W;
    int64_t x = 0;
    for (; x + 8 <= W; x += 8) {
      uint64_t a, b;
      std::memcpy(&a, row + x, 8);
      std::memcpy(&b, up + x, 8);
      if (a == b) continue;
      for (int64_t j = x; j < x + 8; ++j)
        if (row[j] != up[j]) pos[next[j]++] = static_cast<uint32_t>(j * H + y);
    }
    for (; x < W; ++x)
      if (row[x] != up[x]) pos[next[x]++] = static_cast<uint32_t>(x * H + y);
  }
}

}  // namespace

void maskBoundaries(Ctx& ctx, const uint8_t* masks, int64_t planes, int64_t H, int64_t W,
                    uint32_t* ends, uint32_t* pos) {
  if (H == 0 || W == 0) {
    for (int64_t p = 0; p < planes; ++p) ends[p] = 0;
    return;
  }
  const int64_t HW = H * W;
  // columns[p·W + x]: the boundaries of column x of plane p, then (prefix sums) where they start
  std::vector<uint32_t> columns(static_cast<size_t>(planes * W));
  ctx.pool.parallelFor(planes, 1, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) countColumns(masks + p * HW, H, W, columns.data() + p * W);
  });
  uint32_t total = 0;  // < 2^32: checked by the dispatcher
  for (int64_t p = 0; p < planes; ++p) {
    for (int64_t x = 0; x < W; ++x) {
      const uint32_t c = columns[p * W + x];
      columns[p * W + x] = total;
      total += c;
    }
    ends[p] = total;
  }
  ctx.pool.parallelFor(planes, 1, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) fillColumns(masks + p * HW, H, W, columns.data() + p * W, pos);
  });
}

}  // namespace omniseg::ops::cpu
