// The CLIP vision tower: patch embedding (a p×p stride-p convolution as patchify + GEMM), class
// token, position embeddings (bicubic-interpolated when the image's patch grid differs from the
// configured one), pre-layernorm, pre-norm transformer layers; the hidden states after chosen
// layers (CLIPSeg's extract_layers) and the pooled output (post-layernormed class token).
// ref: transformers/models/clipseg/modeling_clipseg.py CLIPSegVisionEmbeddings,
//      CLIPSegVisionModel
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/weights.h"
#include "models/clipseg/config.h"
#include "models/clipseg/encoder_layer.h"
#include "ops/ops.h"

namespace omniseg::clipseg {

class VisionEncoder {
 public:
  // Binds every <prefix>* tensor (prefix "clip.vision_model."), checking shapes.
  VisionEncoder(const VisionConfig& config, WeightStore& weights, const std::string& prefix);

  // pixels [3, H, W] (normalised, ctx's memory; H and W multiples of patch_size) →
  //   hidden [k][T, C] (T = (H/p)·(W/p) + 1, class token first): the output of layer
  //   layers[i] for each of the k entries of `layers` (hidden[i] allocated by the caller), and
  //   pooled [C] = post_layernorm(last layer's class token) unless null.
  // Layers after the last one needed are skipped when pooled is null.
  void forward(Ctx& ctx, const float* pixels, int64_t H, int64_t W, const std::vector<int>& layers,
               float* const* hidden, float* pooled) const;

  // Position embeddings for a gh × gw patch grid, [gh*gw + 1, C] on the host: the checkpoint's
  // when no interpolation is needed (null), else the class position followed by the patch
  // positions resized with torch's bicubic interpolation (align_corners=False, A = -0.75).
  // ref: CLIPSegVisionEmbeddings.interpolate_pos_encoding
  std::vector<float> interpolatedPositions(int64_t H, int64_t W) const;

 private:
  VisionConfig cfg_;
  const float* classEmbedding_;     // embeddings.class_embedding [C]
  const float* patchWeight_;        // embeddings.patch_embedding.weight [C, 3, p, p] (no bias)
  const float* positionEmbedding_;  // embeddings.position_embedding.weight [g*g + 1, C]
  const float *preLnW_, *preLnB_;   // pre_layrnorm.{weight,bias} [C] (sic)
  std::vector<std::unique_ptr<EncoderLayer>> layers_;  // encoder.layers.i.
  const float *postLnW_, *postLnB_;  // post_layernorm.{weight,bias} [C]
};

}  // namespace omniseg::clipseg
