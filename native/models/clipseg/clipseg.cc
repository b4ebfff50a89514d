#include "models/clipseg/clipseg.h"

#include <chrono>
#include <cmath>

#include "core/arena.h"
#include "core/error.h"
#include "core/profile.h"
#include "core/safetensors.h"

namespace omniseg::clipseg {

ClipSegModel::ClipSegModel(const ClipSegConfig& cfg, std::unique_ptr<WeightStore> weights,
                           int threads, Device device, CpuMatmul matmul)
    : cfg_(cfg), weights_(std::move(weights)), rt_(threads, device, matmul) {
  WeightStore& w = *weights_;
  text_ = std::make_unique<TextEncoder>(cfg_.text, w, "clip.text_model.");
  vision_ = std::make_unique<VisionEncoder>(cfg_.vision, w, "clip.vision_model.");
  decoder_ = std::make_unique<Decoder>(cfg_, w);
  textProjection_ = w.get("clip.text_projection.weight", {cfg_.projectionDim, cfg_.text.hiddenSize});
  visualProjection_ = w.get("clip.visual_projection.weight", {cfg_.projectionDim, cfg_.vision.hiddenSize});
  logitScale_ = std::exp(*w.get("clip.logit_scale", {}));  // ref: CLIPSegModel.forward
  w.checkAllUsed();
  rt_.mirror(w, {}, Precision::Fp32);
}

ClipSegModel::~ClipSegModel() = default;

std::unique_ptr<ClipSegModel> ClipSegModel::load(const std::string& dir, int threads, Device device,
                                                 CpuMatmul matmul) {
  if (threads < 1) throw Error("threads must be at least 1", ErrorKind::Range);
  const ClipSegConfig cfg = loadConfig(dir);
  auto weights = std::make_unique<WeightStore>(SafeTensors::open(dir + "/model.safetensors"));
  return std::unique_ptr<ClipSegModel>(new ClipSegModel(cfg, std::move(weights), threads, device, matmul));
}

// ref: CLIPSegModel.get_text_features
float* ClipSegModel::textOnDevice(Ctx& ctx, const int32_t* ids, int64_t T) {
  ProfileScope ps("text tower");
  float* pooled = ctx.arena.floats(cfg_.text.hiddenSize);
  text_->forward(ctx, ids, T, pooled);
  float* e = ctx.arena.floats(cfg_.projectionDim);
  ops::linear(ctx, pooled, 1, cfg_.text.hiddenSize, textProjection_, nullptr, cfg_.projectionDim, e);
  return e;
}

// ref: CLIPSegModel.get_image_features
float* ClipSegModel::imageOnDevice(Ctx& ctx, const float* pixels, int64_t H, int64_t W) {
  const int64_t C = cfg_.vision.hiddenSize;
  const float* px = ops::stage(ctx, pixels, 3 * H * W);
  float* pooled = ctx.arena.floats(C);
  {
    Runtime::EncoderMatmul matmul(rt_, ctx);
    vision_->forward(ctx, px, H, W, {}, nullptr, pooled);
  }
  float* e = ctx.arena.floats(cfg_.projectionDim);
  ops::linear(ctx, pooled, 1, C, visualProjection_, nullptr, cfg_.projectionDim, e);
  return e;
}

std::vector<float> ClipSegModel::textEmbedding(const int32_t* ids, int64_t T) {
  Runtime::Lease lease(rt_);
  Ctx& ctx = lease.ctx();
  std::vector<float> out(cfg_.projectionDim);
  ops::download(ctx, textOnDevice(ctx, ids, T), out.size() * sizeof(float), out.data());
  return out;
}

std::vector<float> ClipSegModel::imageEmbedding(const float* pixels, int64_t H, int64_t W) {
  Runtime::Lease lease(rt_);
  Ctx& ctx = lease.ctx();
  std::vector<float> out(cfg_.projectionDim);
  ops::download(ctx, imageOnDevice(ctx, pixels, H, W), out.size() * sizeof(float), out.data());
  return out;
}

// ref: CLIPSegForImageSegmentation.get_conditional_embeddings (+ the weighted mix)
float* ClipSegModel::conditional(Ctx& ctx, const Conditioning& c) {
  const int64_t P = cfg_.projectionDim;
  const bool text = c.ids != nullptr, visual = c.promptPixels != nullptr;
  if (c.embedding) {
    OMNISEG_CHECK(!text && !visual, "segment: a conditional embedding excludes text and visual prompts");
    OMNISEG_CHECK(c.embeddingCount >= 1, "segment: embeddingCount must be at least 1");
    float* e = ctx.arena.floats(c.embeddingCount * P);
    ops::upload(ctx, c.embedding, c.embeddingCount * P * sizeof(float), e);
    return e;
  }
  OMNISEG_CHECK(text || visual, "segment: give input ids, a visual prompt or a conditional embedding");
  if (!visual) return textOnDevice(ctx, c.ids, c.idsLength);
  float* v = imageOnDevice(ctx, c.promptPixels, c.promptHeight, c.promptWidth);
  if (!text) return v;
  if (!(c.textWeight >= 0.f && c.textWeight <= 1.f))
    throw Error("textWeight must be in [0, 1]", ErrorKind::Range);
  // textWeight·text + (1 − textWeight)·visual, on the host (P values)
  float* t = textOnDevice(ctx, c.ids, c.idsLength);
  std::vector<float> th(P), vh(P);
  ops::download(ctx, t, P * sizeof(float), th.data());
  ops::download(ctx, v, P * sizeof(float), vh.data());
  const float wt = c.textWeight, wv = 1.f - c.textWeight;
  for (int64_t i = 0; i < P; ++i) th[i] = wt * th[i] + wv * vh[i];
  ops::upload(ctx, th.data(), P * sizeof(float), t);
  return t;
}

// CLIPSegDecoder reshapes the patch tokens to a square grid: the grid side of an H × W image.
int64_t ClipSegModel::gridOf(int64_t H, int64_t W) const {
  if (H != W)
    throw Error("segment: the image must be square (got " + std::to_string(W) + "x" +
                    std::to_string(H) + "); CLIPSeg's decoder reshapes the patches to a square grid",
                ErrorKind::Range);
  return H / cfg_.vision.patchSize;
}

// step 1: the query image through the vision tower, keeping the extract_layers activations
std::vector<float*> ClipSegModel::visionActs(Ctx& ctx, const float* pixels, int64_t H, int64_t W) {
  const int64_t g = gridOf(H, W), T = g * g + 1, C = cfg_.vision.hiddenSize;
  const float* px = ops::stage(ctx, pixels, 3 * H * W);
  std::vector<float*> acts(cfg_.extractLayers.size());
  for (auto& a : acts) a = ctx.arena.floats(T * C);
  Runtime::EncoderMatmul matmul(rt_, ctx);
  vision_->forward(ctx, px, H, W, cfg_.extractLayers, acts.data(), nullptr);
  return acts;
}

// step 3: the decoder, once per conditional embedding [N, P] → logits [N, S, S]
SegmentResult ClipSegModel::decode(Ctx& ctx, const float* const* acts, int64_t g,
                                   const float* cond, int64_t N) {
  const int64_t P = cfg_.projectionDim;
  SegmentResult r;
  r.size = decoder_->outputSize(g);
  const int64_t S2 = r.size * r.size;
  float* logits = ctx.arena.floats(N * S2);
  for (int64_t n = 0; n < N; ++n) {
    ArenaScope scratch(ctx.arena);  // each decode's activations are freed before the next
    decoder_->forward(ctx, acts, g, cond + n * P, logits + n * S2);
  }
  r.logits.resize(N * S2);
  r.conditional.resize(N * P);
  ops::download(ctx, logits, r.logits.size() * sizeof(float), r.logits.data());
  ops::download(ctx, cond, N * P * sizeof(float), r.conditional.data());
  return r;
}

SegmentResult ClipSegModel::segment(const float* pixels, int64_t H, int64_t W, const Conditioning& c) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t g = gridOf(H, W);
  Runtime::Lease lease(rt_);
  Ctx& ctx = lease.ctx();
  const float* cond = conditional(ctx, c);
  const std::vector<float*> acts = visionActs(ctx, pixels, H, W);
  SegmentResult r = decode(ctx, acts.data(), g, cond, c.embedding ? c.embeddingCount : 1);
  r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  Profile::report("clipseg segment");
  return r;
}

ImageFeatures ClipSegModel::imageFeatures(const float* pixels, int64_t H, int64_t W) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t g = gridOf(H, W), T = g * g + 1, C = cfg_.vision.hiddenSize;
  Runtime::Lease lease(rt_);
  Ctx& ctx = lease.ctx();
  const std::vector<float*> acts = visionActs(ctx, pixels, H, W);
  ImageFeatures f;
  f.grid = g;
  f.acts.resize(acts.size() * T * C);
  for (size_t i = 0; i < acts.size(); ++i)
    ops::download(ctx, acts[i], T * C * sizeof(float), f.acts.data() + i * T * C);
  f.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  Profile::report("clipseg image features");
  return f;
}

SegmentResult ClipSegModel::segment(const float* features, int64_t grid, const float* embeddings,
                                    int64_t count) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t T = grid * grid + 1, C = cfg_.vision.hiddenSize, P = cfg_.projectionDim;
  OMNISEG_CHECK(grid >= 1 && count >= 1, "segment: grid and embedding count must be at least 1");
  Runtime::Lease lease(rt_);
  Ctx& ctx = lease.ctx();
  // In place on the CPU, uploaded on CUDA.
  std::vector<const float*> acts(cfg_.extractLayers.size());
  for (size_t i = 0; i < acts.size(); ++i) acts[i] = ops::stage(ctx, features + i * T * C, T * C);
  const float* cond = ops::stage(ctx, embeddings, count * P);
  SegmentResult r = decode(ctx, acts.data(), grid, cond, count);
  r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  Profile::report("clipseg segment (features)");
  return r;
}

}  // namespace omniseg::clipseg
