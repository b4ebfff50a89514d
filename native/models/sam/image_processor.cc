#include "models/sam/image_processor.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "masks/run_lengths.h"

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
  OMNISEG_CHECK(!bounds || !ctx.gpu, "postprocessMasks: bounds are taken on the CPU only");
  ArenaScope scratch(ctx.arena);
  // Only the top-left resized.height × resized.width of the [S, S] upscale survives the crop;
  // the taps of those pixels do not depend on the rest, so only they are computed.
  float* up = ctx.arena.floats(planes * resized.height * resized.width);
  ops::resizeBilinear(ctx, lowRes, planes, L, L, L, L * L, up, S, S, resized.height, resized.width);
  const int64_t H = original.height, W = original.width, rh = resized.height, rw = resized.width;
  // A bilinear resize to the same size is the identity (weights 1 and 0), so it is skipped.
  const bool same = rh == H && rw == W;
  float* full = same ? nullptr : ctx.arena.floats(H * W);
  for (int64_t p = 0; p < planes; ++p) {
    const float* src = up + p * rh * rw;
    if (!same) {
      ops::resizeBilinear(ctx, src, 1, rh, rw, rw, 0, full, H, W, H, W);
      src = full;
    }
    uint8_t* mask = masks + p * H * W;
    if (!bounds) {
      ops::threshold(ctx, src, H * W, threshold, mask);
      continue;
    }
    // The threshold and the mask's bounds in one pass, by blocks of rows (~64 K pixels each).
    masks::Bounds b{0, 0, 0, 0, 0};
    std::mutex merge;
    ctx.pool.parallelFor(H, std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(W, 1)),
                         [&](int64_t y0, int64_t y1) {
                           const masks::Bounds part = masks::thresholdBounds(
                               src + y0 * W, y1 - y0, W, threshold, mask + y0 * W);
                           std::lock_guard<std::mutex> lock(merge);
                           b = masks::unionBounds(b, part, y0);
                         });
    const double out[5] = {static_cast<double>(b.x0), static_cast<double>(b.y0),
                           static_cast<double>(b.x1), static_cast<double>(b.y1),
                           static_cast<double>(b.area)};
    std::copy(out, out + 5, bounds + p * 5);
  }
}

}  // namespace omniseg::sam
