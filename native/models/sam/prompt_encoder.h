// SAM's prompt encoder: random-Fourier positional encoding of points and box corners (sparse
// prompts), the mask-embedding CNN for a low-res mask prompt (dense prompt), and the image-wide
// positional encoding the mask decoder adds to the image embedding.
// ref: transformers/models/sam/modeling_sam.py SamPromptEncoder, SamPositionalEmbedding,
//      SamMaskEmbedding, SamModel.get_image_wide_positional_embeddings
#pragma once
#include <cstdint>
#include <vector>

#include "core/weights.h"
#include "models/sam/config.h"
#include "ops/ops.h"

namespace omniseg::sam {

// One prompt set in the model's input frame (coordinates already scaled to the resized image,
// as SamProcessor does; the +0.5 pixel-centre shift is applied here).
struct PromptSet {
  std::vector<double> points;  // [N, 2] (x, y)
  std::vector<int> labels;     // [N]: 1, 0, -1 (not a point), -10 (padding)
  bool hasBox = false;
  double box[4] = {0, 0, 0, 0};
};

class PromptEncoder {
 public:
  PromptEncoder(const SamConfig& config, WeightStore& weights);

  int hidden() const { return C_; }

  // Number of sparse tokens for a set: points (+1 padding point when there is no box) + 2 box
  // corners.
  static int64_t sparseCount(const PromptSet& p) {
    const int64_t n = static_cast<int64_t>(p.labels.size());
    return (n > 0 ? n + (p.hasBox ? 0 : 1) : 0) + (p.hasBox ? 2 : 0);
  }
  // sparse [sparseCount, C]    ref: SamPromptEncoder._embed_points, _embed_boxes, forward
  void sparse(const PromptSet& p, float* out) const;

  // mask [L, L] low-res logits → dense [E*E, C] (NHWC)    ref: SamMaskEmbedding.forward
  void dense(Ctx& ctx, const float* mask, float* out) const;

  // no_mask_embed [C], the dense prompt (broadcast over the grid) when there is no mask.
  const float* noMask() const { return noMask_; }

  // Image-wide positional encoding [E*E, C] (NHWC).
  void imagePositional(float* out) const;

 private:
  // Random Fourier features of (x, y) already mapped to [-1, 1]: [sin(2π·c·G), cos(2π·c·G)].
  void fourier(float cx, float cy, float* out) const;

  int C_, E_, L_, inputSize_, maskCh_;
  float eps_;
  const float* gauss_;                   // shared_image_embedding.positional_embedding [2, C/2]
  const float* pointEmbed_[4];           // prompt_encoder.point_embed.{0..3}.weight [1, C]
  const float* notAPoint_;               // prompt_encoder.not_a_point_embed.weight [1, C]
  const float* noMask_;                  // prompt_encoder.no_mask_embed.weight [1, C]
  const float *conv1W_, *conv1B_;        // mask_embed.conv1 [m/4, 1, 2, 2]
  const float *ln1W_, *ln1B_;            // mask_embed.layer_norm1 [m/4]
  const float *conv2W_, *conv2B_;        // mask_embed.conv2 [m, m/4, 2, 2]
  const float *ln2W_, *ln2B_;            // mask_embed.layer_norm2 [m]
  const float *conv3W_, *conv3B_;        // mask_embed.conv3 [C, m, 1, 1]
};

}  // namespace omniseg::sam
