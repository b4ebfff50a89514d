// A binary mask at image size → the fraction of each of SAM's low-res mask-prompt cells it covers
// (lib/mask-prompt.ts maskToLogits turns them into the dense prompt's logits). Plain host code,
// run on the JS thread for the synchronous API and in a worker thread for the asynchronous one
// (native/addon/rasters.cc).
#pragma once
#include <cstdint>
#include <vector>

namespace omniseg::masks {

// Where the image lies in the model input: resized to resizedWidth × resizedHeight, zero-padded
// at the right and bottom to imageSize², seen at lowResSize² (lib/mask-prompt.ts MaskFrame).
struct MaskFrame {
  int64_t resizedWidth, resizedHeight, imageSize, lowResSize;
};

// [lowResSize, lowResSize] row-major: the fraction of each low-res cell covered by the mask
// (row-major [height, width], non-zero inside), min(1, ·). The mask is stretched onto the frame
// and averaged over each cell by exact box filtering: original pixel (i, j) covers [j, j + 1) ×
// [i, i + 1), stretched by resizedWidth / width and resizedHeight / height; cell (r, c) covers
// [c, c + 1) × [r, r + 1) · imageSize / lowResSize of the frame; the padding is outside.
// The arithmetic is lib/mask-prompt.ts's, in the same order, so the result is the same to the
// bit: per original row, each low-res column's covered length (a float64 sum over its pixels,
// left to right), then each low-res row's float32 cell += (row weight · length) / cell area.
std::vector<float> maskCoverage(const uint8_t* mask, int64_t width, int64_t height, const MaskFrame& frame);

// Covered fractions f → clamp(ln(f / (1 − f)), −limit, limit) in place, in float64 and rounded
// once (lib/mask-prompt.ts coverageLogits, to the bit): SAM mask-prompt logits.
void coverageToLogits(std::vector<float>& coverage, double limit);

}  // namespace omniseg::masks
