#include "models/clipseg/text_encoder.h"

#include "core/error.h"

namespace omniseg::clipseg {

TextEncoder::TextEncoder(const TextConfig& config, WeightStore& w, const std::string& p)
    : cfg_(config) {
  const int64_t C = cfg_.hiddenSize;
  tokenEmbedding_ = w.get(p + "embeddings.token_embedding.weight", {cfg_.vocabSize, C});
  positionEmbedding_ = w.get(p + "embeddings.position_embedding.weight", {cfg_.maxPositionEmbeddings, C});
  w.markUsed(p + "embeddings.position_ids");  // a buffer older checkpoints carry
  for (int i = 0; i < cfg_.numHiddenLayers; ++i)
    layers_.push_back(std::make_unique<EncoderLayer>(w, p + "encoder.layers." + std::to_string(i) + ".",
                                                     C, cfg_.intermediateSize, cfg_.numAttentionHeads,
                                                     cfg_.layerNormEps, cfg_.act));
  finalLnW_ = w.get(p + "final_layer_norm.weight", {C});
  finalLnB_ = w.get(p + "final_layer_norm.bias", {C});
}

// ref: CLIPSegTextModel.forward (pooled_output)
int64_t TextEncoder::pooledIndex(const int32_t* ids, int64_t T) const {
  int64_t best = 0;
  if (cfg_.eosTokenId == 2) {
    for (int64_t t = 1; t < T; ++t)
      if (ids[t] > ids[best]) best = t;  // first maximum, as torch.argmax
    return best;
  }
  for (int64_t t = 0; t < T; ++t)
    if (ids[t] == cfg_.eosTokenId) return t;
  return 0;
}

void TextEncoder::forward(Ctx& ctx, const int32_t* ids, int64_t T, float* pooled) const {
  const int64_t C = cfg_.hiddenSize;
  if (T < 1 || T > cfg_.maxPositionEmbeddings)
    throw Error("input ids: " + std::to_string(T) + " tokens, expected 1 to " +
                    std::to_string(cfg_.maxPositionEmbeddings) + " (max_position_embeddings)",
                ErrorKind::Range);
  for (int64_t t = 0; t < T; ++t)
    if (ids[t] < 0 || ids[t] >= cfg_.vocabSize)
      throw Error("input ids: token " + std::to_string(ids[t]) + " at index " + std::to_string(t) +
                      " is outside the vocabulary [0, " + std::to_string(cfg_.vocabSize) + ")",
                  ErrorKind::Range);
  ArenaScope scratch(ctx.arena);
  // embeddings { x [T, C] = token_embedding[ids] + position_embedding[0..T) }
  // ref: CLIPSegTextEmbeddings.forward
  float* x = ctx.arena.floats(T * C);
  for (int64_t t = 0; t < T; ++t) ops::copy(ctx, tokenEmbedding_ + ids[t] * C, C, x + t * C);
  ops::add(ctx, x, positionEmbedding_, T * C, x);
  // }
  for (const auto& layer : layers_) layer->forwardPreNorm(ctx, x, T, /*causal=*/true);
  // final_layer_norm is row-wise: only the pooled row is needed
  ops::layerNorm(ctx, x + pooledIndex(ids, T) * C, 1, C, finalLnW_, finalLnB_,
                 static_cast<float>(cfg_.layerNormEps), pooled);
}

}  // namespace omniseg::clipseg
