// COCO run-length boundaries of binary masks on the device (ops/op_list.inc maskBoundaries): the
// same positions as ops/cpu/mask_boundaries.cc, so only they, not the masks, cross to the host.
// Each thread walks kSegRows rows of one column of one plane; the threads of a warp take
// adjacent columns, so every row they read is one coalesced load. Two walks: the first counts
// each segment's boundaries, an exclusive scan of the counts (CUB) gives each segment its place in
// pos, and the second writes them there. Segments are numbered column-major within a plane
// ((p·W + x)·S + s), which is the order of the positions. No host synchronisation: the whole op
// can be captured in a CUDA graph (the decoder's).
#include <cub/device/device_scan.cuh>

#include "ops/cuda/launch.h"

namespace omniseg::ops::cuda {

namespace {

constexpr int64_t kSegRows = 32;

struct Walk {
  const uint8_t* m;  // the plane [H, W]
  int64_t x, y0, y1;
  uint32_t* slot;    // the segment's entry in counts / offsets
};

__device__ __forceinline__ Walk segmentOf(int64_t i, const uint8_t* masks, int64_t H, int64_t W,
                                          int64_t S, uint32_t* perSegment) {
  const int64_t x = i % W, r = i / W, s = r % S, p = r / S;
  const int64_t y0 = s * kSegRows;
  return {masks + p * H * W, x, y0, min(H, y0 + kSegRows), perSegment + (p * W + x) * S + s};
}

// The pixel before (x, y) in column-major order: the one above, or the bottom of the column to
// the left (0 before the plane's first pixel).
__device__ __forceinline__ uint8_t before(const uint8_t* m, int64_t H, int64_t W, int64_t x,
                                          int64_t y) {
  return y > 0 ? m[(y - 1) * W + x] : x > 0 ? m[(H - 1) * W + x - 1] : 0;
}

__global__ void countKernel(const uint8_t* masks, int64_t planes, int64_t H, int64_t W,
                            int64_t S, uint32_t* counts) {
  const int64_t n = planes * S * W;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const Walk w = segmentOf(i, masks, H, W, S, counts);
    uint8_t prev = before(w.m, H, W, w.x, w.y0);
    uint32_t c = 0;
    for (int64_t y = w.y0; y < w.y1; ++y) {
      const uint8_t v = w.m[y * W + w.x];
      c += v != prev;
      prev = v;
    }
    *w.slot = c;
  }
}

// offsets: the exclusive scan of counts, planes·S·W + 1 entries (the last is the total).
__global__ void fillKernel(const uint8_t* masks, int64_t planes, int64_t H, int64_t W, int64_t S,
                           uint32_t* offsets, uint32_t* ends, uint32_t* pos) {
  const int64_t n = planes * S * W;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const Walk w = segmentOf(i, masks, H, W, S, offsets);
    uint32_t o = *w.slot;
    uint8_t prev = before(w.m, H, W, w.x, w.y0);
    for (int64_t y = w.y0; y < w.y1; ++y) {
      const uint8_t v = w.m[y * W + w.x];
      if (v != prev) pos[o++] = static_cast<uint32_t>(w.x * H + y);
      prev = v;
    }
    if (w.x == 0 && w.y0 == 0) {
      const int64_t p = i / (S * W);
      ends[p] = offsets[(p + 1) * W * S];  // where the next plane starts
    }
  }
}

}  // namespace

void maskBoundaries(Ctx& ctx, const uint8_t* masks, int64_t planes, int64_t H, int64_t W,
                    uint32_t* ends, uint32_t* pos) {
  if (planes == 0) return;
  OMNISEG_CHECK(masks && ends && pos, "maskBoundaries: null operand");
  cudaStream_t s = stream(ctx);
  if (H == 0 || W == 0) {
    OMNISEG_CUDA_CHECK(cudaMemsetAsync(ends, 0, planes * sizeof(uint32_t), s));
    return;
  }
  const int64_t S = (H + kSegRows - 1) / kSegRows, n = planes * S * W;
  ArenaScope scope(ctx.arena);  // counts, offsets and the scan's storage are this op's own
  auto* counts = static_cast<uint32_t*>(ctx.arena.bytes((n + 1) * sizeof(uint32_t)));
  auto* offsets = static_cast<uint32_t*>(ctx.arena.bytes((n + 1) * sizeof(uint32_t)));
  size_t tempBytes = 0;  // int64 item count: n reaches 2^32 for one-row masks
  OMNISEG_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, tempBytes, counts, offsets,
                                                   n + 1, s));
  void* temp = ctx.arena.bytes(std::max<size_t>(tempBytes, 1));

  countKernel<<<gridFor(n), kThreads, 0, s>>>(masks, planes, H, W, S, counts);
  gpu::checkLaunch("maskBoundaries countKernel");
  OMNISEG_CUDA_CHECK(cudaMemsetAsync(counts + n, 0, sizeof(uint32_t), s));
  OMNISEG_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(temp, tempBytes, counts, offsets,
                                                   n + 1, s));
  fillKernel<<<gridFor(n), kThreads, 0, s>>>(masks, planes, H, W, S, offsets, ends, pos);
  gpu::checkLaunch("maskBoundaries fillKernel");
}

}  // namespace omniseg::ops::cuda
