// CLIPSeg (CLIPSegForImageSegmentation): loads a transformers checkpoint directory
// (CIDAS/clipseg-rd64-refined layout), embeds text and visual prompts with the CLIP towers, and
// turns an image plus a conditional embedding into segmentation logits.
// ref: transformers/models/clipseg/modeling_clipseg.py CLIPSegForImageSegmentation, CLIPSegModel
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/weights.h"
#include "models/clipseg/config.h"
#include "models/clipseg/decoder.h"
#include "models/clipseg/text_encoder.h"
#include "models/clipseg/vision_encoder.h"
#include "models/runtime.h"

namespace omniseg {
namespace clipseg {

// What a segmentation is conditioned on: a text (token ids from the CLIP tokenizer), a visual
// prompt image, both (mixed as textWeight·text + (1 − textWeight)·visual, the CLIPSeg paper's
// interpolation of the two embeddings), or a conditional embedding given directly.
struct Conditioning {
  const int32_t* ids = nullptr;  // [T] token ids, or null
  int64_t idsLength = 0;
  const float* promptPixels = nullptr;  // [3, h, w] normalised visual prompt, or null
  int64_t promptHeight = 0, promptWidth = 0;
  const float* embedding = nullptr;  // [embeddingCount, projection_dim]: used as is (exclusive
  int64_t embeddingCount = 1;        //   with the others); one logits map per embedding
  float textWeight = 1.f;            // with text and visual prompt both given, in [0, 1]
};

struct SegmentResult {
  std::vector<float> logits;       // [N, size, size]: N = embeddingCount with embeddings, else 1
  int64_t size = 0;                // (H / patch) · patch
  std::vector<float> conditional;  // [N, projection_dim]: the embeddings the decoder was given
  double ms = 0;
};

// The vision tower's activations of one query image, kept to decode many conditionings without
// running the tower again: the hidden states after each extract_layers entry.
struct ImageFeatures {
  std::vector<float> acts;  // [k, T, C]: k = extract_layers, T = grid² + 1 (class token first)
  int64_t grid = 0;         // patch grid side
  double ms = 0;
};

class ClipSegModel {
 public:
  // dir: config.json + model.safetensors. threads ≥ 1 (host threads; the whole pass on CPU).
  // matmul: of the image encoder's matrix products on CPU (core/backend.h).
  static std::unique_ptr<ClipSegModel> load(const std::string& dir, int threads,
                                            Device device = Device::Cpu,
                                            CpuMatmul matmul = CpuMatmul::Bf16x3);
  ~ClipSegModel();

  const ClipSegConfig& config() const { return cfg_; }
  // exp(clip.logit_scale): CLIP's contrastive temperature (label/rank scores; not segmentation)
  float logitScale() const { return logitScale_; }
  // Native bytes the model keeps while loaded: its checkpoint's mapping (less the pages released
  // once converted or packed), the weights converted at load, and what its runtime keeps between
  // calls (Runtime::heldBytes). Thread-safe.
  int64_t heldBytes() const {
    return static_cast<int64_t>(weights_->bytesMappedKept() + weights_->bytesConverted() + rt_.heldBytes());
  }
  Device device() const { return rt_.device(); }
  CpuMatmul cpuMatmul() const { return rt_.cpuMatmul(); }

  // ids [T] → text_projection(pooled text output) [projection_dim]   ref: get_text_features
  std::vector<float> textEmbedding(const int32_t* ids, int64_t T);
  // pixels [3, H, W] (normalised; H, W multiples of the patch size) →
  // visual_projection(pooled image output) [projection_dim]           ref: get_image_features
  std::vector<float> imageEmbedding(const float* pixels, int64_t H, int64_t W);
  // pixels [3, S, S] (square, S a multiple of the patch size) → logits   ref: forward
  // With N conditional embeddings the vision tower runs once and the decoder N times.
  SegmentResult segment(const float* pixels, int64_t H, int64_t W, const Conditioning& c);
  // The vision tower alone: pixels [3, S, S] → the activations the decoder reads.
  ImageFeatures imageFeatures(const float* pixels, int64_t H, int64_t W);
  // The decoder alone on imageFeatures' activations ([k, grid² + 1, C] host floats), once per
  // conditional embedding (embeddings [count, projection_dim]).
  SegmentResult segment(const float* features, int64_t grid, const float* embeddings, int64_t count);
  // Floats of imageFeatures' activations for a grid side.
  int64_t featureSize(int64_t grid) const {
    return static_cast<int64_t>(cfg_.extractLayers.size()) * (grid * grid + 1) * cfg_.vision.hiddenSize;
  }

 private:
  ClipSegModel(const ClipSegConfig& cfg, std::unique_ptr<WeightStore> weights, int threads,
               Device device, CpuMatmul matmul);


  int64_t gridOf(int64_t H, int64_t W) const;
  std::vector<float*> visionActs(Ctx& ctx, const float* pixels, int64_t H, int64_t W);
  // acts: the extract_layers activations [k][T, C] in ctx's memory
  SegmentResult decode(Ctx& ctx, const float* const* acts, int64_t g, const float* cond, int64_t N);
  // The conditional embedding(s) [N, projection_dim] in ctx's memory.
  float* conditional(Ctx& ctx, const Conditioning& c);
  float* textOnDevice(Ctx& ctx, const int32_t* ids, int64_t T);
  float* imageOnDevice(Ctx& ctx, const float* pixels, int64_t H, int64_t W);

  ClipSegConfig cfg_;
  std::unique_ptr<WeightStore> weights_;
  Runtime rt_;  // thread pool, device copies of the weights, per-call workers
  std::unique_ptr<TextEncoder> text_;
  std::unique_ptr<VisionEncoder> vision_;
  std::unique_ptr<Decoder> decoder_;
  const float* textProjection_;    // clip.text_projection.weight [P, Ct] (no bias)
  const float* visualProjection_;  // clip.visual_projection.weight [P, Cv] (no bias)
  float logitScale_ = 1.f;         // exp(clip.logit_scale [])
};

}  // namespace clipseg
}  // namespace omniseg
