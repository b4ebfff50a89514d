// SAM's two-way transformer: prompt tokens and image tokens attend to each other in
// SamTwoWayAttentionBlock layers, then a final token→image attention.
// ref: transformers/models/sam/modeling_sam.py SamAttention, SamTwoWayAttentionBlock,
//      SamTwoWayTransformer
#pragma once
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/weights.h"
#include "models/sam/config.h"
#include "ops/ops.h"

namespace omniseg::sam {

// SamAttention: q/k/v projections to an internal width (hidden / downsample), multi-head
// attention, output projection back to hidden.
struct DecoderAttention {
  int hidden = 0, internal = 0, heads = 0;
  const float *qW, *qB, *kW, *kB, *vW, *vB, *oW, *oB;  // {q,k,v,out}_proj.{weight,bias}

  void bind(WeightStore& w, const std::string& prefix, int hiddenSize, int internalDim, int numHeads);
  // Projections, each [rows, internal] (used to precompute the image side once per image).
  void projectQ(Ctx& ctx, const float* x, int64_t rows, float* out) const;
  void projectK(Ctx& ctx, const float* x, int64_t rows, float* out) const;
  void projectV(Ctx& ctx, const float* x, int64_t rows, float* out) const;
  // out [Nq, hidden] (+)= out_proj(attention(q_proj(q), k_proj(k), v_proj(v))).
  // Q/K/V, when given, are the already projected inputs and q/k/v are then not read.
  void forward(Ctx& ctx, const float* q, int64_t Nq, const float* k, const float* v, int64_t Nk,
               float* out, bool accumulate, const float* Q = nullptr, const float* K = nullptr,
               const float* V = nullptr) const;
  // The same with image rows on one side, through the fused cross-attention ops:
  // tokens → image: out [Nq, hidden] += out_proj(attention(q_proj(q), k_proj(k), v_proj(v))),
  // k, v [N, hidden] image rows (K, V, when given, their projections);
  void tokensToImage(Ctx& ctx, const float* q, int64_t Nq, const float* k, const float* v, int64_t N,
                     float* out, const float* K = nullptr, const float* V = nullptr) const;
  // image → tokens: x [N, hidden] += out_proj(attention(q_proj(q), k_proj(k), v_proj(v))),
  // q [N, hidden] image rows (Q, when given, their projection), k, v [Nt, hidden] tokens.
  void imageToTokens(Ctx& ctx, const float* q, int64_t N, const float* k, const float* v, int64_t Nt,
                     float* x, const float* Q = nullptr) const;
};

// The image-side projections of the first layer, which depend only on the image embedding
// (with the no-mask dense prompt), so they are computed once per image and reused by every
// prompt: token→image K and V, image→token Q. Each [E*E, internal].
struct ImageSide {
  const float *kT2I, *vT2I, *qI2T;
};
// Their storage: one buffer [kT2I | vT2I | qI2T] in the memory of the model's device.
struct ImageSideCache {
  FloatBuffer data;
  int64_t n = 0, internalT2I = 0, internalI2T = 0;  // rows, widths
  ImageSide view(const float* base) const {
    return {base, base + n * internalT2I, base + 2 * n * internalT2I};
  }
  ImageSide view() const { return view(data.data()); }
};

class TwoWayTransformer {
 public:
  TwoWayTransformer(const MaskDecoderConfig& config, WeightStore& weights);

  // cache ← first-layer projections of keys0 = image + no-mask dense prompt; pe [N, C].
  void precompute(Ctx& ctx, const float* keys0, const float* pe, int64_t N, ImageSideCache& cache) const;

  // tokens [Nt, C] (the prompt tokens, also the query positional embedding); keys [N, C] image
  // tokens (+ dense prompt), updated in place; pe [N, C]; queries [Nt, C] out.
  // cache, when non-null, replaces the first layer's image-side projections.
  void forward(Ctx& ctx, const float* tokens, int64_t Nt, float* keys, const float* pe, int64_t N,
               float* queries, const ImageSide* cache) const;

 private:
  struct Block {
    DecoderAttention selfAttn, tokenToImage, imageToToken;
    const float *ln1W, *ln1B, *ln2W, *ln2B, *ln3W, *ln3B, *ln4W, *ln4B;
    const float *lin1W, *lin1B, *lin2W, *lin2B;  // mlp.lin1 [mlp, C], mlp.lin2 [C, mlp]
  };
  MaskDecoderConfig cfg_;
  std::vector<Block> blocks_;
  DecoderAttention finalAttn_;
  const float *lnFinalW_, *lnFinalB_;
};

}  // namespace omniseg::sam
