// The CLIP text tower: token + position embeddings, causal pre-norm transformer layers, final
// layer norm, pooled output at the end-of-text token.
// ref: transformers/models/clipseg/modeling_clipseg.py CLIPSegTextEmbeddings, CLIPSegTextModel
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/weights.h"
#include "models/clipseg/config.h"
#include "models/clipseg/encoder_layer.h"
#include "ops/ops.h"

namespace omniseg::clipseg {

class TextEncoder {
 public:
  // Binds every <prefix>* tensor (prefix "clip.text_model."), checking shapes.
  TextEncoder(const TextConfig& config, WeightStore& weights, const std::string& prefix);

  // ids [T] (host memory; 1 ≤ T ≤ max_position_embeddings, 0 ≤ id < vocab_size, checked)
  // → pooled [C] (the final-layer-normed hidden state of the pooled token; ctx's memory).
  void forward(Ctx& ctx, const int32_t* ids, int64_t T, float* pooled) const;

  // The token the pooled output is read at: the argmax of the ids when eos_token_id is 2 (the
  // configs before transformers PR #24773, CIDAS/clipseg-rd64-refined's among them), else the
  // first eos_token_id (index 0 when there is none, as torch's argmax of all zeros).
  int64_t pooledIndex(const int32_t* ids, int64_t T) const;

 private:
  TextConfig cfg_;
  const float* tokenEmbedding_;     // embeddings.token_embedding.weight [vocab, C]
  const float* positionEmbedding_;  // embeddings.position_embedding.weight [maxPos, C]
  std::vector<std::unique_ptr<EncoderLayer>> layers_;  // encoder.layers.i.
  const float *finalLnW_, *finalLnB_;  // final_layer_norm.{weight,bias} [C]
};

}  // namespace omniseg::clipseg
