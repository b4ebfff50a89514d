#include "models/sam/image_processor.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace omniseg::sam {

Size preprocessShape(int64_t height, int64_t width, int64_t longestEdge) {
  // ref: image_processing_pil_sam.py _get_preprocess_shape (float64 arithmetic, int(x + 0.5))
  const double scale = static_cast<double>(longestEdge) * 1.0 / static_cast<double>(std::max(height, width));
  const double h = static_cast<double>(height) * scale, w = static_cast<double>(width) * scale;
  return {static_cast<int64_t>(h + 0.5), static_cast<int64_t>(w + 0.5)};
}

Size preprocess(Ctx& ctx, const ProcessorConfig& cfg, const uint8_t* rgb, int64_t height,
                int64_t width, float* pixels) {
  const Size r = preprocessShape(height, width, cfg.longestEdge);
  const int64_t S = cfg.padHeight;
  OMNISEG_CHECK(r.height >= 1 && r.width >= 1 && r.height <= S && r.width <= S,
                "image of " + std::to_string(width) + "x" + std::to_string(height) +
                    " cannot be resized into the model input");
  // The original 8-bit image moves to the backend's memory once; Pillow's resize runs there,
  // then the result is rescaled (float64, then cast), normalised (float32) and zero-padded
  // through a LUT.
  float lut[3 * 256];
  for (int c = 0; c < 3; ++c) {
    const float mean = static_cast<float>(cfg.mean[c]), stdv = static_cast<float>(cfg.std[c]);
    for (int v = 0; v < 256; ++v) {
      const float x = static_cast<float>(static_cast<double>(v) * cfg.rescaleFactor);
      lut[c * 256 + v] = (x - mean) / stdv;
    }
  }
  ArenaScope scratch(ctx.arena);
  const uint8_t* original = ops::stage(ctx, rgb, static_cast<size_t>(height * width * 3));
  const float* lutStaged = ops::stage(ctx, lut, 3 * 256);
  uint8_t* resized = static_cast<uint8_t*>(ctx.arena.bytes(static_cast<size_t>(r.height * r.width * 3)));
  ops::resizeU8Pil(ctx, original, height, width, 3, resized, r.height, r.width);
  ops::normalizeRgb(ctx, resized, r.height, r.width, lutStaged, S, pixels);
  return r;
}

void postprocessMasks(Ctx& ctx, const float* lowRes, int64_t planes, int64_t L, int64_t S,
                      Size resized, Size original, float threshold, uint8_t* masks,
                      double* bounds) {
  ArenaScope scratch(ctx.arena);
  // Only the top-left resized.height × resized.width of the [S, S] upscale survives the crop;
  // the taps of those pixels do not depend on the rest, so only they are computed.
  const int64_t rh = resized.height, rw = resized.width, H = original.height, W = original.width;
  float* up = ctx.arena.floats(planes * rh * rw);
  ops::resizeBilinear(ctx, lowRes, planes, L, L, L, L * L, up, S, S, rh, rw);
  for (int64_t p = 0; p < planes; ++p)
    ops::resizeThreshold(ctx, up + p * rh * rw, rh, rw, H, W, threshold, masks + p * H * W,
                         bounds ? bounds + p * 5 : nullptr);
}

}  // namespace omniseg::sam
