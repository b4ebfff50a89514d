// The CLIPSeg decoder: the extracted vision activations reduced to reduce_dim and summed from the
// deepest up, FiLM conditioning by the prompt embedding, post-norm transformer layers, then the
// class token dropped and the patch grid upsampled to logits by transposed convolutions.
// ref: transformers/models/clipseg/modeling_clipseg.py CLIPSegDecoder
#pragma once
#include <memory>
#include <vector>

#include "core/weights.h"
#include "models/clipseg/config.h"
#include "models/clipseg/encoder_layer.h"
#include "ops/ops.h"

namespace omniseg::clipseg {

class Decoder {
 public:
  // Binds every decoder.* tensor, checking shapes.
  Decoder(const ClipSegConfig& config, WeightStore& weights);

  // activations [k][T, Cv] (the vision tower's hidden states after extract_layers[0..k), in that
  // order; T = g·g + 1, class token first), conditional [projection_dim] → logits [S, S]
  // (S = g · patch_size). All in ctx's memory.
  void forward(Ctx& ctx, const float* const* activations, int64_t g, const float* conditional,
               float* logits) const;

  // Logits side for a g × g patch grid.
  int64_t outputSize(int64_t g) const { return g * cfg_.vision.patchSize; }

 private:
  ClipSegConfig cfg_;
  const float *filmMulW_, *filmMulB_;  // film_mul [R, P], [R]
  const float *filmAddW_, *filmAddB_;  // film_add [R, P], [R]
  std::vector<const float*> reduceW_, reduceB_;  // reduces.i [R, Cv], [R]
  std::vector<std::unique_ptr<EncoderLayer>> layers_;  // layers.i (post-norm, ReLU MLP)
  // use_complex_transposed_convolution: transposed_convolution.{0: Conv2d R→R 3×3 pad 1,
  // 2: ConvTranspose2d R→R/2 k = s = p/4, 4: ConvTranspose2d R/2→1 k = s = p/4}, ReLU between;
  // else transposed_convolution: ConvTranspose2d R→1 k = s = p.
  const float *conv0W_ = nullptr, *conv0B_ = nullptr;  // [R, R, 3, 3], [R]
  const float *convT1W_ = nullptr, *convT1B_ = nullptr;  // [R, R/2, k, k], [R/2] or [R, 1, p, p], [1]
  const float *convT2W_ = nullptr, *convT2B_ = nullptr;  // [R/2, 1, k, k], [1]
};

}  // namespace omniseg::clipseg
