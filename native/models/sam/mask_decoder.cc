#include "models/sam/mask_decoder.h"

#include <string>

#include "core/profile.h"

namespace omniseg::sam {

void FeedForward::bind(WeightStore& w, const std::string& p, int in, int hidden, int out,
                       int numLayers) {
  dims = {in};
  for (int i = 0; i < numLayers - 1; ++i) dims.push_back(hidden);
  dims.push_back(out);
  for (int i = 0; i < numLayers; ++i) {
    const std::string name = i == 0 ? "proj_in" : i == numLayers - 1 ? "proj_out" : "layers." + std::to_string(i - 1);
    W.push_back(w.get(p + name + ".weight", {dims[i + 1], dims[i]}));
    B.push_back(w.get(p + name + ".bias", {dims[i + 1]}));
  }
}

void FeedForward::forward(Ctx& ctx, const float* x, float* y) const {
  ArenaScope scratch(ctx.arena);
  const float* in = x;
  for (size_t i = 0; i < W.size(); ++i) {
    const bool last = i + 1 == W.size();
    float* out = last ? y : ctx.arena.floats(dims[i + 1]);
    ops::linear(ctx, in, 1, dims[i], W[i], B[i], dims[i + 1], out, last ? ops::Act::None : ops::Act::Relu);
    in = out;
  }
}

MaskDecoder::MaskDecoder(const MaskDecoderConfig& c, WeightStore& w)
    : cfg_(c), transformer_(c, w) {
  const int64_t C = c.hiddenSize, T = numMaskTokens();
  const std::string p = "mask_decoder.";
  iouToken_ = w.get(p + "iou_token.weight", {1, C});
  maskTokens_ = w.get(p + "mask_tokens.weight", {T, C});
  up1W_ = w.get(p + "upscale_conv1.weight", {C, C / 4, 2, 2});
  up1B_ = w.get(p + "upscale_conv1.bias", {C / 4});
  upLnW_ = w.get(p + "upscale_layer_norm.weight", {C / 4});
  upLnB_ = w.get(p + "upscale_layer_norm.bias", {C / 4});
  up2W_ = w.get(p + "upscale_conv2.weight", {C / 4, C / 8, 2, 2});
  up2B_ = w.get(p + "upscale_conv2.bias", {C / 8});
  hyper_.resize(T);
  for (int64_t i = 0; i < T; ++i)
    hyper_[i].bind(w, p + "output_hypernetworks_mlps." + std::to_string(i) + ".", C, C, C / 8, 3);
  iouHead_.bind(w, p + "iou_prediction_head.", C, c.iouHeadHiddenDim, T, c.iouHeadDepth);
}

void MaskDecoder::forward(Ctx& ctx, float* image, const float* pe, int64_t E, const float* sparse,
                          int64_t Ns, const ImageSide* cache, int64_t first, int64_t count,
                          float* lowRes, float* iou) const {
  // ref: modeling_sam.py SamMaskDecoder.forward
  const int64_t C = cfg_.hiddenSize, T = numMaskTokens(), Nt = 1 + T + Ns, N = E * E;
  ArenaScope scratch(ctx.arena);
  // tokens [Nt, C] = [iou_token; mask_tokens; sparse prompt embeddings]
  float* tokens = ctx.arena.floats(Nt * C);
  ops::copy(ctx, iouToken_, C, tokens);
  ops::copy(ctx, maskTokens_, T * C, tokens + C);
  if (Ns > 0) ops::copy(ctx, sparse, Ns * C, tokens + (1 + T) * C);
  float* queries = ctx.arena.floats(Nt * C);
  { ProfileScope ps("two-way transformer"); transformer_.forward(ctx, tokens, Nt, image, pe, N, queries, cache); }
  ProfileScope ps("upscale + hypernetworks");

  // upscaling { convT 2×2 → LayerNorm2d → GELU → convT 2×2 → GELU }  image: [E, E, C] NHWC
  float* up1 = ctx.arena.floats(4 * N * (C / 4));  // [2E, 2E, C/4]
  ops::convTranspose(ctx, image, E, E, C, 2, up1W_, up1B_, C / 4, up1);
  ops::layerNorm(ctx, up1, 4 * N, C / 4, upLnW_, upLnB_, 1e-6f, up1);
  ops::gelu(ctx, up1, 4 * N * (C / 4));
  // } (the last convT + GELU, up2 [4E, 4E, C/8], is fused with the products below)
  // hypernetworks { hyper [count, C/8] (selected tokens); masks [count, (4E)²] = hyper · up2ᵀ }
  float* hyper = ctx.arena.floats(count * (C / 8));
  for (int64_t t = 0; t < count; ++t)
    hyper_[first + t].forward(ctx, queries + (1 + first + t) * C, hyper + t * (C / 8));
  ops::convTransposeProject(ctx, up1, 2 * E, 2 * E, C / 4, 2, up2W_, up2B_, C / 8, ops::Act::Gelu, hyper,
                            count, lowRes);
  // }
  float* iouAll = ctx.arena.floats(T);
  iouHead_.forward(ctx, queries, iouAll);
  ops::copy(ctx, iouAll + first, count, iou);
}

}  // namespace omniseg::sam
