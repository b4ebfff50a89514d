// The last step of a visual prompt (lib/referring/visual-prompt.ts visualPrompt): the region's
// pixels kept, every other pixel its blurred background, bilinearly resampled from the size the
// blur ran at, and darkened. Plain host code, run in a worker thread (native/addon/rasters.cc).
#pragma once
#include <cstdint>
#include <vector>

namespace omniseg::images {

// An 8-bit RGB image, row-major HWC.
struct RgbView {
  const uint8_t* data;
  int64_t width, height;
};

// out [height, width, 3] for crop [height, width, 3] and mask [height, width] (non-zero inside):
//   out = crop                                   where mask ≠ 0
//   out = floor(darken · B(x, y) + 0.5)          elsewhere (Math.round of a value ≥ 0)
// B: `blurred` (any size ≥ 1 × 1) sampled at pixel (x, y)'s centre, bilinear with half-pixel
// centres, clamped at the edges: sx = clamp((x + 0.5) · blurred.width / width − 0.5, 0, bw − 1),
// B = (1 − wy)((1 − wx) a + wx b) + wy((1 − wx) c + wx d) in doubles (the order
// test/visual-prompt.test.ts reproduces in JS). At the crop's own size B is `blurred` itself.
std::vector<uint8_t> composeVisualPrompt(RgbView crop, const uint8_t* mask, RgbView blurred, double darken);

}  // namespace omniseg::images
