// COCO run-length boundaries of binary masks (ops/op_list.inc maskBoundaries), on the host, plane
// by plane: COCO counts run down each column (column-major), but the masks are row-major, so both
// passes (masks/run_lengths.h) go row by row, each column keeping its own place: one counts every
// column's boundaries, the other writes them where the counts say.
// ref: pycocotools common/maskApi.c rleEncode (the same runs, from the column-major mask)
#include <vector>

#include "masks/run_lengths.h"
#include "ops/ops.h"

namespace omniseg::ops::cpu {

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
    for (int64_t p = b; p < e; ++p) masks::countColumnBoundaries(masks + p * HW, H, W, columns.data() + p * W);
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
    for (int64_t p = b; p < e; ++p) masks::fillColumnBoundaries<uint32_t>(masks + p * HW, H, W, columns.data() + p * W, pos);
  });
}

}  // namespace omniseg::ops::cpu
