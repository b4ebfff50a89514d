// One CLIP transformer layer: multi-head self-attention (separate q/k/v/out projections) and a
// two-layer MLP, with the layer norms before each block (CLIPSegEncoderLayer: the text and
// vision towers) or after each residual sum (CLIPSegDecoderLayer: the segmentation decoder).
// ref: transformers/models/clipseg/modeling_clipseg.py CLIPSegAttention, CLIPSegMLP,
//      CLIPSegEncoderLayer, CLIPSegDecoderLayer
#pragma once
#include <string>

#include "core/weights.h"
#include "ops/ops.h"

namespace omniseg::clipseg {

class EncoderLayer {
 public:
  // Binds <prefix>{layer_norm1,self_attn.{q,k,v,out}_proj,layer_norm2,mlp.fc1,mlp.fc2}.*:
  // width C, MLP width I, `heads` attention heads, layer-norm eps, MLP activation act.
  EncoderLayer(WeightStore& w, const std::string& prefix, int64_t C, int64_t I, int64_t heads,
               double eps, ops::Act act);

  // x [N, C] in place, norms first (CLIPSegEncoderLayer.forward). causal: the text tower's mask.
  void forwardPreNorm(Ctx& ctx, float* x, int64_t N, bool causal) const;
  // x [N, C] in place, norms after the residual sums (CLIPSegDecoderLayer.forward).
  void forwardPostNorm(Ctx& ctx, float* x, int64_t N) const;

 private:
  // x [N, C] += out_proj(attention(q_proj(in), k_proj(in), v_proj(in)))
  void attention(Ctx& ctx, const float* in, int64_t N, bool causal, float* x) const;
  // x [N, C] += fc2(act(fc1(in)))
  void mlp(Ctx& ctx, const float* in, int64_t N, float* x) const;

  int64_t C_, I_, heads_;
  float eps_;
  ops::Act act_;
  const float *ln1W_, *ln1B_;  // layer_norm1.{weight,bias} [C]
  // self_attn.{q,k,v}_proj stacked: [3C, C], [3C] (one GEMM for the three projections)
  const float *qkvW_, *qkvB_;
  const float *oW_, *oB_;      // self_attn.out_proj [C, C], [C]
  const float *ln2W_, *ln2B_;  // layer_norm2.{weight,bias} [C]
  const float *fc1W_, *fc1B_;  // mlp.fc1 [I, C], [I]
  const float *fc2W_, *fc2B_;  // mlp.fc2 [C, I], [C]
};

}  // namespace omniseg::clipseg
