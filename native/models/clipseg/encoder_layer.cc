#include "models/clipseg/encoder_layer.h"

#include <cmath>

namespace omniseg::clipseg {

EncoderLayer::EncoderLayer(WeightStore& w, const std::string& p, int64_t C, int64_t I,
                           int64_t heads, double eps, ops::Act act)
    : C_(C), I_(I), heads_(heads), eps_(static_cast<float>(eps)), act_(act) {
  ln1W_ = w.get(p + "layer_norm1.weight", {C});
  ln1B_ = w.get(p + "layer_norm1.bias", {C});
  const std::string a = p + "self_attn.";
  qkvW_ = w.getStacked({a + "q_proj.weight", a + "k_proj.weight", a + "v_proj.weight"}, {C, C});
  qkvB_ = w.getStacked({a + "q_proj.bias", a + "k_proj.bias", a + "v_proj.bias"}, {C});
  oW_ = w.get(p + "self_attn.out_proj.weight", {C, C});
  oB_ = w.get(p + "self_attn.out_proj.bias", {C});
  ln2W_ = w.get(p + "layer_norm2.weight", {C});
  ln2B_ = w.get(p + "layer_norm2.bias", {C});
  fc1W_ = w.get(p + "mlp.fc1.weight", {I, C});
  fc1B_ = w.get(p + "mlp.fc1.bias", {I});
  fc2W_ = w.get(p + "mlp.fc2.weight", {C, I});
  fc2B_ = w.get(p + "mlp.fc2.bias", {C});
}

// ref: modeling_clipseg.py CLIPSegAttention.forward, eager_attention_forward
void EncoderLayer::attention(Ctx& ctx, const float* in, int64_t N, bool causal, float* x) const {
  const int64_t C = C_, d = C / heads_;
  ArenaScope scratch(ctx.arena);
  // qkv [N, 3C]: q | k | v side by side, from the stacked projections
  float* qkv = ctx.arena.floats(N * 3 * C);
  ops::linear(ctx, in, N, C, qkvW_, qkvB_, 3 * C, qkv);
  float* att = ctx.arena.floats(N * C);  // [N, C]
  const float scale = static_cast<float>(std::pow(static_cast<double>(d), -0.5));  // head_dim**-0.5
  ops::attention(ctx, qkv, 3 * C, qkv + C, 3 * C, qkv + 2 * C, 3 * C, N, N, heads_, d, scale, att,
                 causal);
  ops::linear(ctx, att, N, C, oW_, oB_, C, x, ops::Act::None, /*accumulate=*/true);
}

// ref: modeling_clipseg.py CLIPSegMLP.forward
void EncoderLayer::mlp(Ctx& ctx, const float* in, int64_t N, float* x) const {
  ArenaScope scratch(ctx.arena);
  float* h = ctx.arena.floats(N * I_);  // [N, I]
  ops::linear(ctx, in, N, C_, fc1W_, fc1B_, I_, h, act_);
  ops::linear(ctx, h, N, I_, fc2W_, fc2B_, C_, x, ops::Act::None, /*accumulate=*/true);
}

// x = x + attn(ln1(x)); x = x + mlp(ln2(x))     ref: CLIPSegEncoderLayer.forward
void EncoderLayer::forwardPreNorm(Ctx& ctx, float* x, int64_t N, bool causal) const {
  ArenaScope scratch(ctx.arena);
  float* ln = ctx.arena.floats(N * C_);  // [N, C]
  ops::layerNorm(ctx, x, N, C_, ln1W_, ln1B_, eps_, ln);
  attention(ctx, ln, N, causal, x);
  ops::layerNorm(ctx, x, N, C_, ln2W_, ln2B_, eps_, ln);
  mlp(ctx, ln, N, x);
}

// x = ln1(x + attn(x)); x = ln2(x + mlp(x))     ref: CLIPSegDecoderLayer.forward
void EncoderLayer::forwardPostNorm(Ctx& ctx, float* x, int64_t N) const {
  attention(ctx, x, N, /*causal=*/false, x);
  ops::layerNorm(ctx, x, N, C_, ln1W_, ln1B_, eps_, x);
  mlp(ctx, x, N, x);
  ops::layerNorm(ctx, x, N, C_, ln2W_, ln2B_, eps_, x);
}

}  // namespace omniseg::clipseg
