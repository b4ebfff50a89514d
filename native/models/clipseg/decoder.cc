#include "models/clipseg/decoder.h"

#include <string>

#include "core/profile.h"

namespace omniseg::clipseg {

Decoder::Decoder(const ClipSegConfig& c, WeightStore& w) : cfg_(c) {
  const int64_t R = c.reduceDim, P = c.projectionDim, Cv = c.vision.hiddenSize;
  const int64_t p = c.vision.patchSize, k = p / 4;
  const std::string pre = "decoder.";
  filmMulW_ = w.get(pre + "film_mul.weight", {R, P});
  filmMulB_ = w.get(pre + "film_mul.bias", {R});
  filmAddW_ = w.get(pre + "film_add.weight", {R, P});
  filmAddB_ = w.get(pre + "film_add.bias", {R});
  for (size_t i = 0; i < c.extractLayers.size(); ++i) {
    const std::string n = std::to_string(i);
    reduceW_.push_back(w.get(pre + "reduces." + n + ".weight", {R, Cv}));
    reduceB_.push_back(w.get(pre + "reduces." + n + ".bias", {R}));
    // the decoder layers: vision_config with hidden_size = reduce_dim, ReLU
    layers_.push_back(std::make_unique<EncoderLayer>(w, pre + "layers." + n + ".", R,
                                                     c.decoderIntermediateSize,
                                                     c.decoderNumAttentionHeads,
                                                     c.vision.layerNormEps, ops::Act::Relu));
  }
  const std::string t = pre + "transposed_convolution.";
  if (c.useComplexTransposedConvolution) {
    conv0W_ = w.get(t + "0.weight", {R, R, 3, 3});
    conv0B_ = w.get(t + "0.bias", {R});
    convT1W_ = w.get(t + "2.weight", {R, R / 2, k, k});
    convT1B_ = w.get(t + "2.bias", {R / 2});
    convT2W_ = w.get(t + "4.weight", {R / 2, 1, k, k});
    convT2B_ = w.get(t + "4.bias", {1});
  } else {
    convT1W_ = w.get(t + "weight", {R, 1, p, p});
    convT1B_ = w.get(t + "bias", {1});
  }
}

void Decoder::forward(Ctx& ctx, const float* const* activations, int64_t g,
                      const float* conditional, float* logits) const {
  const int64_t R = cfg_.reduceDim, P = cfg_.projectionDim, Cv = cfg_.vision.hiddenSize;
  const int64_t N = g * g, T = N + 1, depth = static_cast<int64_t>(layers_.size());
  ArenaScope scratch(ctx.arena);
  ProfileScope total("decoder");
  // FiLM parameters [R] from the conditional embedding
  float* mul = ctx.arena.floats(R);
  float* add = ctx.arena.floats(R);
  ops::linear(ctx, conditional, 1, P, filmMulW_, filmMulB_, R, mul);
  ops::linear(ctx, conditional, 1, P, filmAddW_, filmAddB_, R, add);
  // ref: CLIPSegDecoder.forward: the activations deepest first
  float* x = ctx.arena.floats(T * R);  // [T, R]
  for (int64_t i = 0; i < depth; ++i) {
    const float* a = activations[depth - 1 - i];
    // x = reduce(activation) (+ x)
    ops::linear(ctx, a, T, Cv, reduceW_[i], reduceB_[i], R, x, ops::Act::None, /*accumulate=*/i > 0);
    // x = film_mul(cond) * x + film_add(cond)
    if (i == cfg_.conditionalLayer) ops::scaleShiftRows(ctx, x, T, R, mul, add, x);
    layers_[i]->forwardPostNorm(ctx, x, T);
  }
  // drop the class token: the patch grid [g, g, R] (NHWC), then upsample to [S, S]
  const float* grid = x + R;
  if (cfg_.useComplexTransposedConvolution) {
    // { conv 3×3 → ReLU → convT k → ReLU → convT k }
    const int64_t k = cfg_.vision.patchSize / 4;
    float* cols = ctx.arena.floats(N * R * 9);  // [N, 9R]
    ops::im2col3x3(ctx, grid, g, g, R, cols);
    float* h0 = ctx.arena.floats(N * R);  // [g, g, R]
    ops::linear(ctx, cols, N, R * 9, conv0W_, conv0B_, R, h0, ops::Act::Relu);
    float* h1 = ctx.arena.floats(N * k * k * (R / 2));  // [g·k, g·k, R/2]
    ops::convTranspose(ctx, h0, g, g, R, k, convT1W_, convT1B_, R / 2, h1, ops::Act::Relu);
    ops::convTranspose(ctx, h1, g * k, g * k, R / 2, k, convT2W_, convT2B_, 1, logits);
  } else {
    ops::convTranspose(ctx, grid, g, g, R, cfg_.vision.patchSize, convT1W_, convT1B_, 1, logits);
  }
}

}  // namespace omniseg::clipseg
