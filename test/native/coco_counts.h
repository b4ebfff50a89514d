// Reference COCO run lengths for the native and GPU tests (pycocotools rleEncode): a row-major
// [H, W] mask (non-zero = 1) walked down each column, alternating runs of 0s and 1s from a run of
// 0s. The plain definition, kept apart from the encoders and decoders the tests check against it.
#pragma once
#include <cstdint>

// Appends the counts of mask m to `counts` (a vector of uint32_t, any allocator).
template <class Vec>
void appendCocoCounts(const uint8_t* m, int64_t H, int64_t W, Vec& counts) {
  uint8_t value = 0;
  uint32_t run = 0;
  for (int64_t x = 0; x < W; ++x) {
    for (int64_t y = 0; y < H; ++y) {
      const uint8_t v = m[y * W + x] != 0;
      if (v != value) {
        counts.push_back(run);
        run = 0;
        value = v;
      }
      ++run;
    }
  }
  counts.push_back(run);
}
