#include "models/sam/two_way_transformer.h"

#include <cmath>

namespace omniseg::sam {

void DecoderAttention::bind(WeightStore& w, const std::string& p, int hiddenSize, int internalDim,
                            int numHeads) {
  hidden = hiddenSize;
  internal = internalDim;
  heads = numHeads;
  const int64_t C = hidden, I = internal;
  qW = w.get(p + "q_proj.weight", {I, C});
  qB = w.get(p + "q_proj.bias", {I});
  kW = w.get(p + "k_proj.weight", {I, C});
  kB = w.get(p + "k_proj.bias", {I});
  vW = w.get(p + "v_proj.weight", {I, C});
  vB = w.get(p + "v_proj.bias", {I});
  oW = w.get(p + "out_proj.weight", {C, I});
  oB = w.get(p + "out_proj.bias", {C});
}

void DecoderAttention::projectQ(Ctx& ctx, const float* x, int64_t rows, float* out) const {
  ops::linear(ctx, x, rows, hidden, qW, qB, internal, out);
}
void DecoderAttention::projectK(Ctx& ctx, const float* x, int64_t rows, float* out) const {
  ops::linear(ctx, x, rows, hidden, kW, kB, internal, out);
}
void DecoderAttention::projectV(Ctx& ctx, const float* x, int64_t rows, float* out) const {
  ops::linear(ctx, x, rows, hidden, vW, vB, internal, out);
}

void DecoderAttention::forward(Ctx& ctx, const float* q, int64_t Nq, const float* k, const float* v,
                               int64_t Nk, float* out, bool accumulate, const float* Q,
                               const float* K, const float* V) const {
  // ref: modeling_sam.py SamAttention.forward
  ArenaScope scratch(ctx.arena);
  const int64_t I = internal, d = internal / heads;
  if (!Q) {
    float* t = ctx.arena.floats(Nq * I);
    projectQ(ctx, q, Nq, t);
    Q = t;
  }
  if (!K) {
    float* t = ctx.arena.floats(Nk * I);
    projectK(ctx, k, Nk, t);
    K = t;
  }
  if (!V) {
    float* t = ctx.arena.floats(Nk * I);
    projectV(ctx, v, Nk, t);
    V = t;
  }
  float* a = ctx.arena.floats(Nq * I);
  ops::attention(ctx, Q, I, K, I, V, I, Nq, Nk, heads, d, 1.f / std::sqrt(static_cast<float>(d)), a);
  ops::linear(ctx, a, Nq, I, oW, oB, hidden, out, ops::Act::None, accumulate);
}

void DecoderAttention::tokensToImage(Ctx& ctx, const float* q, int64_t Nq, const float* k,
                                     const float* v, int64_t N, float* out, const float* K,
                                     const float* V) const {
  if (K && V) {  // the first layer's cached projections
    forward(ctx, q, Nq, nullptr, nullptr, N, out, /*accumulate=*/true, nullptr, K, V);
    return;
  }
  ArenaScope scratch(ctx.arena);
  const int64_t I = internal, d = internal / heads;
  float* Q = ctx.arena.floats(Nq * I);
  float* a = ctx.arena.floats(Nq * I);
  projectQ(ctx, q, Nq, Q);
  ops::tokensAttendImage(ctx, Q, Nq, k, v, N, hidden, kW, kB, vW, vB, heads, d,
                         1.f / std::sqrt(static_cast<float>(d)), a);
  ops::linear(ctx, a, Nq, I, oW, oB, hidden, out, ops::Act::None, /*accumulate=*/true);
}

void DecoderAttention::imageToTokens(Ctx& ctx, const float* q, int64_t N, const float* k,
                                     const float* v, int64_t Nt, float* x, const float* Q) const {
  ArenaScope scratch(ctx.arena);
  const int64_t I = internal, d = internal / heads;
  float* K = ctx.arena.floats(Nt * I);
  float* V = ctx.arena.floats(Nt * I);
  projectK(ctx, k, Nt, K);
  projectV(ctx, v, Nt, V);
  ops::imageAttendsTokens(ctx, q, Q, N, hidden, qW, qB, K, V, Nt, heads, d,
                          1.f / std::sqrt(static_cast<float>(d)), oW, oB, x);
}

TwoWayTransformer::TwoWayTransformer(const MaskDecoderConfig& c, WeightStore& w) : cfg_(c) {
  const int64_t C = c.hiddenSize;
  const int down = C / c.attentionDownsampleRate;
  for (int i = 0; i < c.numHiddenLayers; ++i) {
    const std::string p = "mask_decoder.transformer.layers." + std::to_string(i) + ".";
    Block b{};
    b.selfAttn.bind(w, p + "self_attn.", c.hiddenSize, c.hiddenSize, c.numAttentionHeads);
    b.tokenToImage.bind(w, p + "cross_attn_token_to_image.", c.hiddenSize, down, c.numAttentionHeads);
    b.imageToToken.bind(w, p + "cross_attn_image_to_token.", c.hiddenSize, down, c.numAttentionHeads);
    b.ln1W = w.get(p + "layer_norm1.weight", {C});
    b.ln1B = w.get(p + "layer_norm1.bias", {C});
    b.ln2W = w.get(p + "layer_norm2.weight", {C});
    b.ln2B = w.get(p + "layer_norm2.bias", {C});
    b.ln3W = w.get(p + "layer_norm3.weight", {C});
    b.ln3B = w.get(p + "layer_norm3.bias", {C});
    b.ln4W = w.get(p + "layer_norm4.weight", {C});
    b.ln4B = w.get(p + "layer_norm4.bias", {C});
    b.lin1W = w.get(p + "mlp.lin1.weight", {c.mlpDim, C});
    b.lin1B = w.get(p + "mlp.lin1.bias", {c.mlpDim});
    b.lin2W = w.get(p + "mlp.lin2.weight", {C, c.mlpDim});
    b.lin2B = w.get(p + "mlp.lin2.bias", {C});
    blocks_.push_back(b);
  }
  const std::string p = "mask_decoder.transformer.";
  finalAttn_.bind(w, p + "final_attn_token_to_image.", c.hiddenSize, down, c.numAttentionHeads);
  lnFinalW_ = w.get(p + "layer_norm_final_attn.weight", {C});
  lnFinalB_ = w.get(p + "layer_norm_final_attn.bias", {C});
}

void TwoWayTransformer::precompute(Ctx& ctx, const float* keys0, const float* pe, int64_t N,
                                   ImageSideCache& cache) const {
  const Block& b = blocks_.front();
  const int64_t C = cfg_.hiddenSize, I = b.tokenToImage.internal;
  ArenaScope scratch(ctx.arena);
  float* kpe = ctx.arena.floats(N * C);
  ops::add(ctx, keys0, pe, N * C, kpe);
  cache.n = N;
  cache.internalT2I = I;
  cache.internalI2T = b.imageToToken.internal;
  cache.data = FloatBuffer(N * (2 * I + cache.internalI2T), ctx.arena.allocator());  // the pass's device
  float* out = cache.data.data();  // the layout ImageSideCache::view() reads
  b.tokenToImage.projectK(ctx, kpe, N, out);
  b.tokenToImage.projectV(ctx, keys0, N, out + N * I);
  b.imageToToken.projectQ(ctx, kpe, N, out + 2 * N * I);
}

void TwoWayTransformer::forward(Ctx& ctx, const float* tokens, int64_t Nt, float* keys,
                                const float* pe, int64_t N, float* queries,
                                const ImageSide* cache) const {
  const int64_t C = cfg_.hiddenSize;
  const float eps = static_cast<float>(cfg_.layerNormEps);
  ArenaScope scratch(ctx.arena);
  float* qpe = ctx.arena.floats(Nt * C);  // queries + query_point_embedding
  float* kpe = ctx.arena.floats(N * C);   // keys + key_point_embedding
  float* mlp = ctx.arena.floats(Nt * cfg_.mlpDim);
  ops::copy(ctx, tokens, Nt * C, queries);

  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& b = blocks_[i];
    const bool cached = i == 0 && cache != nullptr;
    // self attention {   ref: SamTwoWayAttentionBlock.forward
    if (i == 0) {  // skip_first_layer_pe: no positional embedding, no residual
      float* q0 = ctx.arena.floats(Nt * C);
      ops::copy(ctx, queries, Nt * C, q0);
      b.selfAttn.forward(ctx, q0, Nt, q0, q0, Nt, queries, /*accumulate=*/false);
    } else {
      ops::add(ctx, queries, tokens, Nt * C, qpe);
      b.selfAttn.forward(ctx, qpe, Nt, qpe, queries, Nt, queries, /*accumulate=*/true);
    }
    ops::layerNorm(ctx, queries, Nt, C, b.ln1W, b.ln1B, eps, queries);
    // }
    // cross attention, tokens → image {
    ops::add(ctx, queries, tokens, Nt * C, qpe);
    if (!cached) ops::add(ctx, keys, pe, N * C, kpe);
    b.tokenToImage.tokensToImage(ctx, qpe, Nt, kpe, keys, N, queries, cached ? cache->kT2I : nullptr,
                                 cached ? cache->vT2I : nullptr);
    ops::layerNorm(ctx, queries, Nt, C, b.ln2W, b.ln2B, eps, queries);
    // }
    // mlp {
    ops::linear(ctx, queries, Nt, C, b.lin1W, b.lin1B, cfg_.mlpDim, mlp, ops::Act::Relu);
    ops::linear(ctx, mlp, Nt, cfg_.mlpDim, b.lin2W, b.lin2B, C, queries, ops::Act::None, true);
    ops::layerNorm(ctx, queries, Nt, C, b.ln3W, b.ln3B, eps, queries);
    // }
    // cross attention, image → tokens (keys attend to the updated queries) {
    ops::add(ctx, queries, tokens, Nt * C, qpe);
    b.imageToToken.imageToTokens(ctx, kpe, N, qpe, queries, Nt, keys, cached ? cache->qI2T : nullptr);
    ops::layerNorm(ctx, keys, N, C, b.ln4W, b.ln4B, eps, keys);
    // }
  }
  // final attention, tokens → image {   ref: SamTwoWayTransformer.forward
  ops::add(ctx, queries, tokens, Nt * C, qpe);
  ops::add(ctx, keys, pe, N * C, kpe);
  finalAttn_.tokensToImage(ctx, qpe, Nt, kpe, keys, N, queries);
  ops::layerNorm(ctx, queries, Nt, C, lnFinalW_, lnFinalB_, 1e-5f /* nn.LayerNorm default */, queries);
  // }
}

}  // namespace omniseg::sam
