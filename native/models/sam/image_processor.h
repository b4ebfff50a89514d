// SamImageProcessor: longest-edge resize (Pillow bilinear), rescale, normalise, pad; and
// post_process_masks: upscale low-res logits to the padded input, crop the padding, resize to
// the original image, threshold.
// ref: transformers/models/sam/image_processing_pil_sam.py (_get_preprocess_shape, _preprocess,
//      post_process_masks), transformers/image_transforms.py (rescale, normalize)
#pragma once
#include <cstdint>

#include "models/sam/config.h"
#include "ops/ops.h"

namespace omniseg::sam {

struct Size {
  int64_t height, width;
};

// Size after the longest-edge resize: round(side * longest / max(h, w)).
Size preprocessShape(int64_t height, int64_t width, int64_t longestEdge);

// rgb [H, W, 3] uint8 (host) → pixels [3, S, S] float (S = pad size; the backend's memory),
// returns the resized size.
Size preprocess(Ctx& ctx, const ProcessorConfig& cfg, const uint8_t* rgb, int64_t height,
                int64_t width, float* pixels);

// lowRes [planes, L, L] → masks [planes, H, W] (0/1): bilinear to [S, S], crop to `resized`,
// bilinear to (H, W), value > threshold (ops::resizeThreshold). bounds (host memory, CPU backend
// only; may be null): [planes, 5] each mask's x0, y0, x1, y1 and area (masks::maskBounds), taken
// as it is thresholded.
void postprocessMasks(Ctx& ctx, const float* lowRes, int64_t planes, int64_t L, int64_t S,
                      Size resized, Size original, float threshold, uint8_t* masks,
                      double* bounds = nullptr);

}  // namespace omniseg::sam
