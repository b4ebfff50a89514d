#include "models/sam/image_encoder.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "core/profile.h"

namespace omniseg::sam {

ImageEncoder::ImageEncoder(const VisionConfig& config, WeightStore& w)
    : cfg_(config), grid_(config.imageSize / config.patchSize) {
  const int64_t C = cfg_.hiddenSize, p = cfg_.patchSize, E = grid_, out = cfg_.outputChannels;
  const int64_t hd = C / cfg_.numAttentionHeads;
  const std::string pre = "vision_encoder.";
  patchW = w.get(pre + "patch_embed.projection.weight", {C, cfg_.numChannels, p, p});
  patchB = w.get(pre + "patch_embed.projection.bias", {C});
  if (cfg_.useAbsPos) posEmbed = w.get(pre + "pos_embed", {1, E, E, C});
  for (int i = 0; i < cfg_.numHiddenLayers; ++i) {
    const std::string l = pre + "layers." + std::to_string(i) + ".";
    const bool global = std::find(cfg_.globalAttnIndexes.begin(), cfg_.globalAttnIndexes.end(), i) !=
                        cfg_.globalAttnIndexes.end();
    Layer L{};
    L.window = global ? 0 : cfg_.windowSize;
    const int64_t n = L.window > 0 ? L.window : E;  // attention grid side
    L.ln1W = w.get(l + "layer_norm1.weight", {C});
    L.ln1B = w.get(l + "layer_norm1.bias", {C});
    L.qkvW = w.get(l + "attn.qkv.weight", {3 * C, C});
    L.qkvB = cfg_.qkvBias ? w.get(l + "attn.qkv.bias", {3 * C}) : nullptr;
    L.projW = w.get(l + "attn.proj.weight", {C, C});
    L.projB = w.get(l + "attn.proj.bias", {C});
    if (cfg_.useRelPos) {
      L.relH = w.get(l + "attn.rel_pos_h", {2 * n - 1, hd});
      L.relW = w.get(l + "attn.rel_pos_w", {2 * n - 1, hd});
    }
    L.ln2W = w.get(l + "layer_norm2.weight", {C});
    L.ln2B = w.get(l + "layer_norm2.bias", {C});
    L.lin1W = w.get(l + "mlp.lin1.weight", {cfg_.mlpDim, C});
    L.lin1B = w.get(l + "mlp.lin1.bias", {cfg_.mlpDim});
    L.lin2W = w.get(l + "mlp.lin2.weight", {C, cfg_.mlpDim});
    L.lin2B = w.get(l + "mlp.lin2.bias", {C});
    layers_.push_back(L);
  }
  neckConv1 = w.get(pre + "neck.conv1.weight", {out, C, 1, 1});
  neckLn1W = w.get(pre + "neck.layer_norm1.weight", {out});
  neckLn1B = w.get(pre + "neck.layer_norm1.bias", {out});
  neckConv2 = w.get(pre + "neck.conv2.weight", {out, out, 3, 3});
  neckLn2W = w.get(pre + "neck.layer_norm2.weight", {out});
  neckLn2B = w.get(pre + "neck.layer_norm2.bias", {out});
}

// x [B*E*E, C] += proj(attention(layer_norm1(x))), windowed or global. The qkv and proj GEMMs
// run on the real tokens of the whole batch; only the attention sees the window layout and its
// padding (preNormRelPosAttention: per image on the CPU and in CUDA's fp32 path, the windows of
// the whole batch at once in CUDA's half precision; global attention: B grids in one call).
// ref: modeling_sam.py SamVisionLayer.forward (first half), SamVisionAttention.forward
void ImageEncoder::attentionBlock(Ctx& ctx, const Layer& L, float* x, int64_t B) const {
  ops::preNormRelPosAttention(ctx, x, B, grid_, cfg_.hiddenSize, L.ln1W, L.ln1B,
                              static_cast<float>(cfg_.layerNormEps), L.qkvW, L.qkvB,
                              cfg_.numAttentionHeads, L.window, L.relH, L.relW, L.projW, L.projB);
}

// x += lin2(gelu(lin1(layer_norm2(x))))     ref: SamVisionLayer.forward (second half), SamMLPBlock
void ImageEncoder::mlpBlock(Ctx& ctx, const Layer& L, float* x, int64_t B) const {
  const int64_t C = cfg_.hiddenSize, N = static_cast<int64_t>(grid_) * grid_;
  ProfileScope ps("layer norm + mlp");
  ops::preNormMlp(ctx, x, B * N, C, L.ln2W, L.ln2B, static_cast<float>(cfg_.layerNormEps), L.lin1W, L.lin1B,
                  cfg_.mlpDim, ops::Act::Gelu, L.lin2W, L.lin2B);
}

void ImageEncoder::forward(Ctx& ctx, const float* pixels, int64_t B, float* const* embeddings) const {
  const int64_t C = cfg_.hiddenSize, E = grid_, N = E * E, p = cfg_.patchSize;
  const int64_t S = cfg_.imageSize, out = cfg_.outputChannels, Cp = cfg_.numChannels * p * p;
  OMNISEG_CHECK(B >= 1, "image encoder: empty batch");

  ProfileScope total("~ total (overlaps)");
  // patch embedding { conv p×p stride p as a GEMM over patches; + pos_embed }
  float* cols = ctx.arena.floats(B * N * Cp);  // [B*N, 3*p*p]
  for (int64_t b = 0; b < B; ++b)
    ops::patchify(ctx, pixels + b * cfg_.numChannels * S * S, cfg_.numChannels, S, S, p, cols + b * N * Cp);
  float* x = ctx.arena.floats(B * N * C);  // [B, E, E, C]
  ops::linear(ctx, cols, B * N, Cp, patchW, patchB, C, x);
  if (posEmbed)
    for (int64_t b = 0; b < B; ++b) ops::add(ctx, x + b * N * C, posEmbed, N * C, x + b * N * C);

  for (const Layer& L : layers_) {
    {
      ArenaScope scratch(ctx.arena);
      attentionBlock(ctx, L, x, B);
    }
    ArenaScope scratch(ctx.arena);
    mlpBlock(ctx, L, x, B);
  }

  // neck { conv1 1×1 → LayerNorm2d → conv2 3×3 pad 1 → LayerNorm2d }   ref: SamVisionNeck.forward
  const float eps = 1e-6f;  // SamLayerNorm default, not the config's
  float* y = ctx.arena.floats(B * N * out);
  ops::linear(ctx, x, B * N, C, neckConv1, nullptr, out, y);
  ops::layerNorm(ctx, y, B * N, out, neckLn1W, neckLn1B, eps, y);
  float* cols3 = ctx.arena.floats(N * out * 9);  // one image at a time: [N, out*9]
  for (int64_t b = 0; b < B; ++b) {
    ops::im2col3x3(ctx, y + b * N * out, E, E, out, cols3);
    ops::linear(ctx, cols3, N, out * 9, neckConv2, nullptr, out, embeddings[b]);
    ops::layerNorm(ctx, embeddings[b], N, out, neckLn2W, neckLn2B, eps, embeddings[b]);
  }
  Profile::report("image encoder");
}

}  // namespace omniseg::sam
