// SAM's mask decoder: output tokens + prompt tokens through the two-way transformer, then the
// upscaling path and per-mask hypernetwork MLPs give low-res mask logits; an MLP head gives
// the predicted IoU of each mask.
// ref: transformers/models/sam/modeling_sam.py SamMaskDecoder, SamFeedForward
#pragma once
#include <vector>

#include "core/weights.h"
#include "models/sam/config.h"
#include "models/sam/two_way_transformer.h"
#include "ops/ops.h"

namespace omniseg::sam {

// SamFeedForward: proj_in → ReLU → (layers → ReLU)* → proj_out.
struct FeedForward {
  std::vector<const float*> W, B;  // per linear layer
  std::vector<int> dims;           // in, hidden..., out
  void bind(WeightStore& w, const std::string& prefix, int in, int hidden, int out, int numLayers);
  void forward(Ctx& ctx, const float* x, float* y) const;  // one row
};

class MaskDecoder {
 public:
  MaskDecoder(const MaskDecoderConfig& config, WeightStore& weights);

  int numMaskTokens() const { return cfg_.numMultimaskOutputs + 1; }
  const TwoWayTransformer& transformer() const { return transformer_; }

  // image [N, C] = image embedding + dense prompt (consumed: updated in place); pe [N, C];
  // sparse [Ns, C]; → the outputs [first, first + count) of the mask tokens (multimask: 1..T-1,
  // single mask: 0): lowRes [count, (4E)²], iou [count].
  void forward(Ctx& ctx, float* image, const float* pe, int64_t E, const float* sparse, int64_t Ns,
               const ImageSide* cache, int64_t first, int64_t count, float* lowRes,
               float* iou) const;

 private:
  MaskDecoderConfig cfg_;
  TwoWayTransformer transformer_;
  const float *iouToken_, *maskTokens_;   // iou_token.weight [1, C], mask_tokens.weight [T, C]
  const float *up1W_, *up1B_;             // upscale_conv1 [C, C/4, 2, 2]
  const float *upLnW_, *upLnB_;           // upscale_layer_norm [C/4]
  const float *up2W_, *up2B_;             // upscale_conv2 [C/4, C/8, 2, 2]
  std::vector<FeedForward> hyper_;        // output_hypernetworks_mlps.i (C → C → C/8)
  FeedForward iouHead_;                   // iou_prediction_head (C → hid → T)
};

}  // namespace omniseg::sam
