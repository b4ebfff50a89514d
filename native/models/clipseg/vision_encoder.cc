#include "models/clipseg/vision_encoder.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/profile.h"

namespace omniseg::clipseg {

namespace {

// torch's cubic convolution weights for a fractional offset t (A = -0.75).
// ref: aten/src/ATen/native/UpSample.h get_cubic_upsample_coefficients
void cubicWeights(double t, double w[4]) {
  const double A = -0.75;
  auto near = [&](double x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };    // |x| ≤ 1
  auto far = [&](double x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };  // 1 < |x| < 2
  w[0] = far(t + 1);
  w[1] = near(t);
  w[2] = near(1 - t);
  w[3] = far(2 - t);
}

// For each of `out` output positions along an axis of `in` inputs: 4 clamped source indices and
// their weights (align_corners=False: source = (i + 0.5)·in/out − 0.5, no clamping of the source).
void cubicTaps(int64_t in, int64_t out, std::vector<int64_t>& idx, std::vector<double>& wt) {
  idx.resize(out * 4);
  wt.resize(out * 4);
  const double scale = static_cast<double>(static_cast<float>(in) / static_cast<float>(out));
  for (int64_t o = 0; o < out; ++o) {
    const double src = scale * (static_cast<double>(o) + 0.5) - 0.5;
    const double f = std::floor(src);
    cubicWeights(src - f, &wt[o * 4]);
    for (int j = 0; j < 4; ++j)
      idx[o * 4 + j] = std::clamp<int64_t>(static_cast<int64_t>(f) - 1 + j, 0, in - 1);
  }
}

}  // namespace

VisionEncoder::VisionEncoder(const VisionConfig& config, WeightStore& w, const std::string& p)
    : cfg_(config) {
  const int64_t C = cfg_.hiddenSize, ps = cfg_.patchSize, g = cfg_.gridSize();
  classEmbedding_ = w.get(p + "embeddings.class_embedding", {C});
  patchWeight_ = w.get(p + "embeddings.patch_embedding.weight", {C, cfg_.numChannels, ps, ps});
  positionEmbedding_ = w.get(p + "embeddings.position_embedding.weight", {g * g + 1, C});
  w.markUsed(p + "embeddings.position_ids");  // a buffer older checkpoints carry
  preLnW_ = w.get(p + "pre_layrnorm.weight", {C});
  preLnB_ = w.get(p + "pre_layrnorm.bias", {C});
  for (int i = 0; i < cfg_.numHiddenLayers; ++i)
    layers_.push_back(std::make_unique<EncoderLayer>(w, p + "encoder.layers." + std::to_string(i) + ".",
                                                     C, cfg_.intermediateSize, cfg_.numAttentionHeads,
                                                     cfg_.layerNormEps, cfg_.act));
  postLnW_ = w.get(p + "post_layernorm.weight", {C});
  postLnB_ = w.get(p + "post_layernorm.bias", {C});
}

std::vector<float> VisionEncoder::interpolatedPositions(int64_t H, int64_t W) const {
  const int64_t C = cfg_.hiddenSize, g = cfg_.gridSize(), p = cfg_.patchSize;
  const int64_t gh = H / p, gw = W / p;
  // ref: interpolate_pos_encoding: the checkpoint's table when the patch count matches and H == W
  if (gh * gw == g * g && H == W) return {};
  std::vector<float> out((gh * gw + 1) * C);
  std::copy(positionEmbedding_, positionEmbedding_ + C, out.begin());  // class position
  // patch positions [g, g, C] → [gh, gw, C]: separable bicubic, rows then columns, in double
  std::vector<int64_t> iy, ix;
  std::vector<double> wy, wx;
  cubicTaps(g, gh, iy, wy);
  cubicTaps(g, gw, ix, wx);
  const float* src = positionEmbedding_ + C;
  std::vector<double> acc(C);
  for (int64_t oy = 0; oy < gh; ++oy)
    for (int64_t ox = 0; ox < gw; ++ox) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b) {
          const double wgt = wy[oy * 4 + a] * wx[ox * 4 + b];
          const float* s = src + (iy[oy * 4 + a] * g + ix[ox * 4 + b]) * C;
          for (int64_t c = 0; c < C; ++c) acc[c] += wgt * s[c];
        }
      float* o = out.data() + (1 + oy * gw + ox) * C;
      for (int64_t c = 0; c < C; ++c) o[c] = static_cast<float>(acc[c]);
    }
  return out;
}

void VisionEncoder::forward(Ctx& ctx, const float* pixels, int64_t H, int64_t W,
                            const std::vector<int>& layers, float* const* hidden,
                            float* pooled) const {
  const int64_t C = cfg_.hiddenSize, p = cfg_.patchSize, ch = cfg_.numChannels;
  if (H < p || W < p || H % p != 0 || W % p != 0)
    throw Error("image of " + std::to_string(W) + "x" + std::to_string(H) +
                    " pixels: width and height must be positive multiples of the patch size " +
                    std::to_string(p),
                ErrorKind::Range);
  const int64_t gh = H / p, gw = W / p, N = gh * gw, T = N + 1;
  ArenaScope scratch(ctx.arena);
  ProfileScope total("vision tower");
  // embeddings { x [T, C] = [class_embedding; patches · Wᵀ] + positions }
  // ref: CLIPSegVisionEmbeddings.forward
  float* x = ctx.arena.floats(T * C);
  {
    ArenaScope s(ctx.arena);
    float* cols = ctx.arena.floats(N * ch * p * p);  // [N, 3·p·p]
    ops::patchify(ctx, pixels, ch, H, W, p, cols);
    ops::linear(ctx, cols, N, ch * p * p, patchWeight_, nullptr, C, x + C);
  }
  ops::copy(ctx, classEmbedding_, C, x);
  const std::vector<float> interp = interpolatedPositions(H, W);
  if (interp.empty()) {
    ops::add(ctx, x, positionEmbedding_, T * C, x);
  } else {
    float* pos = ctx.arena.floats(T * C);
    ops::upload(ctx, interp.data(), interp.size() * sizeof(float), pos);
    ops::add(ctx, x, pos, T * C, x);
  }
  // }
  const float eps = static_cast<float>(cfg_.layerNormEps);
  ops::layerNorm(ctx, x, T, C, preLnW_, preLnB_, eps, x);
  int last = pooled ? cfg_.numHiddenLayers - 1 : -1;
  for (int l : layers) last = std::max(last, l);
  for (int i = 0; i <= last; ++i) {
    layers_[i]->forwardPreNorm(ctx, x, T, /*causal=*/false);
    for (size_t k = 0; k < layers.size(); ++k)
      if (layers[k] == i) ops::copy(ctx, x, T * C, hidden[k]);  // hidden_states[i + 1]
  }
  // pooled = post_layernorm(last_hidden_state[:, 0])
  if (pooled) ops::layerNorm(ctx, x, 1, C, postLnW_, postLnB_, eps, pooled);
}

}  // namespace omniseg::clipseg
