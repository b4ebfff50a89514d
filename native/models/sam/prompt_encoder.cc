#include "models/sam/prompt_encoder.h"

#include <cmath>
#include <cstring>
#include <string>

namespace omniseg::sam {

PromptEncoder::PromptEncoder(const SamConfig& c, WeightStore& w)
    : C_(c.prompt.hiddenSize),
      E_(c.embeddingSize()),
      L_(c.lowResSize()),
      inputSize_(c.prompt.imageSize),
      maskCh_(c.prompt.maskInputChannels),
      eps_(static_cast<float>(c.prompt.layerNormEps)) {
  const int64_t C = C_, m = maskCh_, q = maskCh_ / 4;
  // The Fourier matrix is tied between shared_image_embedding and the prompt encoder; checkpoints
  // carry one or both names.
  const std::string shared = "shared_image_embedding.positional_embedding";
  const std::string tied = "prompt_encoder.shared_embedding.positional_embedding";
  if (w.has(shared)) {
    gauss_ = w.get(shared, {2, C / 2});
    if (w.has(tied)) w.get(tied, {2, C / 2});
  } else {
    gauss_ = w.get(tied, {2, C / 2});
  }
  const std::string pre = "prompt_encoder.";
  for (int i = 0; i < 4; ++i) pointEmbed_[i] = w.get(pre + "point_embed." + std::to_string(i) + ".weight", {1, C});
  notAPoint_ = w.get(pre + "not_a_point_embed.weight", {1, C});
  noMask_ = w.get(pre + "no_mask_embed.weight", {1, C});
  conv1W_ = w.get(pre + "mask_embed.conv1.weight", {q, 1, 2, 2});
  conv1B_ = w.get(pre + "mask_embed.conv1.bias", {q});
  ln1W_ = w.get(pre + "mask_embed.layer_norm1.weight", {q});
  ln1B_ = w.get(pre + "mask_embed.layer_norm1.bias", {q});
  conv2W_ = w.get(pre + "mask_embed.conv2.weight", {m, q, 2, 2});
  conv2B_ = w.get(pre + "mask_embed.conv2.bias", {m});
  ln2W_ = w.get(pre + "mask_embed.layer_norm2.weight", {m});
  ln2B_ = w.get(pre + "mask_embed.layer_norm2.bias", {m});
  conv3W_ = w.get(pre + "mask_embed.conv3.weight", {C, m, 1, 1});
  conv3B_ = w.get(pre + "mask_embed.conv3.bias", {C});
}

void PromptEncoder::fourier(float cx, float cy, float* out) const {
  // ref: SamPositionalEmbedding.forward — coords @ G, * 2π, cat(sin, cos)
  const int F = C_ / 2;
  for (int f = 0; f < F; ++f) {
    float v = cx * gauss_[f] + cy * gauss_[F + f];
    v = static_cast<float>(2 * M_PI) * v;
    out[f] = std::sin(v);
    out[F + f] = std::cos(v);
  }
}

void PromptEncoder::sparse(const PromptSet& p, float* out) const {
  const int64_t n = static_cast<int64_t>(p.labels.size());
  const double size = inputSize_;
  // Coordinates are normalised in double, as the reference does on the processor's float64
  // arrays, and cast to float32 before the projection.
  auto norm = [&](double v) { return static_cast<float>(2.0 * ((v + 0.5) / size) - 1.0); };
  int64_t t = 0;
  if (n > 0) {
    // points { pe + label embedding }   ref: SamPromptEncoder._embed_points
    const int64_t total = n + (p.hasBox ? 0 : 1);
    for (int64_t i = 0; i < total; ++i, ++t) {
      float* o = out + t * C_;
      const bool pad = i == n;  // SAM's padding point: label -1 when there is no box
      const int label = pad ? -1 : p.labels[i];
      if (!pad) fourier(norm(p.points[2 * i]), norm(p.points[2 * i + 1]), o);
      if (label == -1) {
        std::memcpy(o, notAPoint_, C_ * sizeof(float));
      } else if (label == -10) {
        std::memset(o, 0, C_ * sizeof(float));
      } else if (label == 0 || label == 1) {
        const float* e = pointEmbed_[label];
        for (int c = 0; c < C_; ++c) o[c] += e[c];
      }
    }
  }
  if (p.hasBox) {
    // box corners { pe + corner embedding }   ref: SamPromptEncoder._embed_boxes
    for (int k = 0; k < 2; ++k, ++t) {
      float* o = out + t * C_;
      fourier(norm(p.box[2 * k]), norm(p.box[2 * k + 1]), o);
      const float* e = pointEmbed_[2 + k];
      for (int c = 0; c < C_; ++c) o[c] += e[c];
    }
  }
}

void PromptEncoder::dense(Ctx& ctx, const float* mask, float* out) const {
  // conv1 (2×2 s2) → LN → GELU → conv2 (2×2 s2) → LN → GELU → conv3 (1×1)
  const int64_t L = L_, L2 = L / 2, L4 = L / 4, m = maskCh_, q = maskCh_ / 4;
  ArenaScope scratch(ctx.arena);
  float* cols1 = ctx.arena.floats(L2 * L2 * 4);  // [L/2 * L/2, 1*2*2]
  ops::patchify(ctx, mask, 1, L, L, 2, cols1);
  float* h1 = ctx.arena.floats(L2 * L2 * q);  // NHWC [L/2, L/2, q]
  ops::linear(ctx, cols1, L2 * L2, 4, conv1W_, conv1B_, q, h1);
  ops::layerNorm(ctx, h1, L2 * L2, q, ln1W_, ln1B_, eps_, h1);
  ops::gelu(ctx, h1, L2 * L2 * q);
  float* chw = ctx.arena.floats(q * L2 * L2);  // NCHW for patchify
  ops::transpose(ctx, h1, L2 * L2, q, chw);
  float* cols2 = ctx.arena.floats(L4 * L4 * q * 4);
  ops::patchify(ctx, chw, q, L2, L2, 2, cols2);
  float* h2 = ctx.arena.floats(L4 * L4 * m);
  ops::linear(ctx, cols2, L4 * L4, q * 4, conv2W_, conv2B_, m, h2);
  ops::layerNorm(ctx, h2, L4 * L4, m, ln2W_, ln2B_, eps_, h2);
  ops::gelu(ctx, h2, L4 * L4 * m);
  ops::linear(ctx, h2, L4 * L4, m, conv3W_, conv3B_, C_, out);
}

void PromptEncoder::imagePositional(float* out) const {
  // ref: SamModel.get_image_wide_positional_embeddings — cell centres (i + 0.5) / E
  const float E = static_cast<float>(E_);
  for (int y = 0; y < E_; ++y)
    for (int x = 0; x < E_; ++x) {
      const float cx = (static_cast<float>(x) + 0.5f) / E, cy = (static_cast<float>(y) + 0.5f) / E;
      fourier(2.f * cx - 1.f, 2.f * cy - 1.f, out + (static_cast<int64_t>(y) * E_ + x) * C_);
    }
}

}  // namespace omniseg::sam
