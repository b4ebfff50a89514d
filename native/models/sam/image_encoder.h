// SAM's ViT image encoder: patch embedding, absolute position embedding, transformer layers
// with windowed or global attention (decomposed relative-position bias), and the conv neck.
// ref: transformers/models/sam/modeling_sam.py SamVisionEncoder, SamVisionLayer, SamVisionNeck
#pragma once
#include <vector>

#include "core/weights.h"
#include "models/sam/config.h"
#include "ops/ops.h"

namespace omniseg::sam {

class ImageEncoder {
 public:
  // Binds every vision_encoder.* tensor, checking its shape against the configuration.
  ImageEncoder(const VisionConfig& config, WeightStore& weights);

  // pixels [B, 3, S, S] (normalised, padded) → embeddings[b] [E*E, outputChannels] (NHWC,
  // E = S/patch) for each of the B images. The batch shares every GEMM, layer norm and MLP (B·E²
  // rows); attention keeps the images apart (see attentionBlock).
  void forward(Ctx& ctx, const float* pixels, int64_t B, float* const* embeddings) const;

 private:
  struct Layer {
    const float *ln1W, *ln1B;    // layers.i.layer_norm1.{weight,bias} [C]
    const float *qkvW, *qkvB;    // layers.i.attn.qkv.{weight [3C, C], bias [3C] (or null)}
    const float *projW, *projB;  // layers.i.attn.proj.{weight [C, C], bias [C]}
    const float *relH, *relW;    // layers.i.attn.rel_pos_{h,w} [2n-1, C/heads] (or null)
    const float *ln2W, *ln2B;    // layers.i.layer_norm2
    const float *lin1W, *lin1B;  // layers.i.mlp.lin1 [mlp, C], [mlp]
    const float *lin2W, *lin2B;  // layers.i.mlp.lin2 [C, mlp], [C]
    int window;                  // window size, 0 = global attention
  };

  // x [B*E*E, C]
  void attentionBlock(Ctx& ctx, const Layer& L, float* x, int64_t B) const;
  void mlpBlock(Ctx& ctx, const Layer& L, float* x, int64_t B) const;

  VisionConfig cfg_;
  int grid_;                        // E = image_size / patch_size
  const float *patchW, *patchB;     // patch_embed.projection [C, 3, p, p], [C]
  const float* posEmbed = nullptr;  // pos_embed [1, E, E, C]
  std::vector<Layer> layers_;
  const float *neckConv1;               // neck.conv1.weight [out, C, 1, 1]
  const float *neckLn1W, *neckLn1B;     // neck.layer_norm1 [out]
  const float *neckConv2;               // neck.conv2.weight [out, out, 3, 3]
  const float *neckLn2W, *neckLn2B;     // neck.layer_norm2 [out]
};

}  // namespace omniseg::sam
