#include "models/sam/sam.h"

#include <chrono>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/profile.h"
#include "core/safetensors.h"

namespace omniseg::sam {

namespace {
double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

SamModel::SamModel(const SamConfig& cfg, std::unique_ptr<WeightStore> weights, int threads)
    : cfg_(cfg), weights_(std::move(weights)), pool_(threads) {
  imageEncoder_ = std::make_unique<ImageEncoder>(cfg_.vision, *weights_);
  promptEncoder_ = std::make_unique<PromptEncoder>(cfg_, *weights_);
  maskDecoder_ = std::make_unique<MaskDecoder>(cfg_.decoder, *weights_);
  weights_->checkAllUsed();
  const int64_t E = cfg_.embeddingSize(), C = cfg_.prompt.hiddenSize;
  imagePe_ = FloatBuffer(E * E * C);
  promptEncoder_->imagePositional(imagePe_.data());
}

std::unique_ptr<SamModel> SamModel::load(const std::string& dir, int threads) {
  if (threads < 1) throw Error("threads must be at least 1", ErrorKind::Range);
  const SamConfig cfg = loadConfig(dir);
  auto weights = std::make_unique<WeightStore>(SafeTensors::open(dir + "/model.safetensors"));
  return std::unique_ptr<SamModel>(new SamModel(cfg, std::move(weights), threads));
}

std::unique_ptr<Arena> SamModel::takeArena() {
  std::lock_guard<std::mutex> lock(arenasMu_);
  if (arenas_.empty()) return std::make_unique<Arena>();
  auto a = std::move(arenas_.back());
  arenas_.pop_back();
  return a;
}

void SamModel::giveArena(std::unique_ptr<Arena> a) {
  a->reset();
  std::lock_guard<std::mutex> lock(arenasMu_);
  arenas_.push_back(std::move(a));
}

std::shared_ptr<Embedding> SamModel::encode(const uint8_t* rgb, int64_t height, int64_t width) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t S = cfg_.vision.imageSize, E = cfg_.gridSize(), C = cfg_.vision.outputChannels;
  auto emb = std::make_shared<Embedding>();
  emb->data = FloatBuffer(E * E * C);
  emb->original = {height, width};
  auto arena = takeArena();
  try {
    Ctx ctx{pool_, *arena};
    float* pixels = ctx.arena.floats(3 * S * S);
    emb->resized = preprocess(ctx, cfg_.processor, rgb, height, width, pixels);
    imageEncoder_->forward(ctx, pixels, emb->data.data());
  } catch (...) {
    giveArena(std::move(arena));
    throw;
  }
  giveArena(std::move(arena));
  emb->encodeMs = msSince(t0);
  return emb;
}

std::shared_ptr<Embedding> SamModel::embeddingFromCHW(const float* chw, int64_t height,
                                                      int64_t width) const {
  const int64_t E = cfg_.gridSize(), C = cfg_.vision.outputChannels;
  auto emb = std::make_shared<Embedding>();
  emb->data = FloatBuffer(E * E * C);
  emb->original = {height, width};
  emb->resized = preprocessShape(height, width, cfg_.processor.longestEdge);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < E * E; ++i) emb->data.data()[i * C + c] = chw[c * E * E + i];
  return emb;
}

void SamModel::embeddingToCHW(const Embedding& e, float* chw) const {
  const int64_t E = cfg_.gridSize(), C = cfg_.vision.outputChannels;
  for (int64_t i = 0; i < E * E; ++i)
    for (int64_t c = 0; c < C; ++c) chw[c * E * E + i] = e.data.data()[i * C + c];
}

DecodeResult SamModel::decode(Embedding& e, const DecodeRequest& r) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t E = cfg_.embeddingSize(), C = cfg_.prompt.hiddenSize, N = E * E;
  const int64_t L = cfg_.lowResSize();
  const int64_t M = r.multimask ? cfg_.decoder.numMultimaskOutputs : 1;
  const int64_t H = e.original.height, W = e.original.width;
  OMNISEG_CHECK(r.promptCount >= 1, "decode: promptCount must be at least 1");

  DecodeResult out;
  out.promptCount = r.promptCount;
  out.masksPerPrompt = M;
  out.iou.resize(r.promptCount * M);
  out.lowRes.resize(r.promptCount * M * L * L);
  out.masks.resize(static_cast<size_t>(r.promptCount * M * H * W));

  auto arena = takeArena();
  try {
    Ctx ctx{pool_, *arena};
    // dense prompt [N, C]: the mask embedding, or no_mask_embed broadcast
    float* dense = ctx.arena.floats(N * C);
    const ImageSideCache* cache = nullptr;
    if (r.maskInput) {
      promptEncoder_->dense(ctx, r.maskInput, dense);
    } else {
      const float* nm = promptEncoder_->noMask();
      for (int64_t i = 0; i < N; ++i) std::memcpy(dense + i * C, nm, C * sizeof(float));
      // Image-side cache, valid while the dense prompt is no_mask_embed: computed once per image
      // from the same image + dense sum every prompt set starts from.
      std::call_once(e.cacheOnce, [&] {
        ProfileScope ps("image-side cache (once)");
        ArenaScope scratch(ctx.arena);
        float* keys0 = ctx.arena.floats(N * C);
        ops::add(ctx, e.data.data(), dense, N * C, keys0);
        maskDecoder_->transformer().precompute(ctx, keys0, imagePe_.data(), N, e.cache);
      });
      cache = &e.cache;
    }
    // The processor's coordinate mapping: original pixels → resized input pixels (float64).
    const double sx = static_cast<double>(e.resized.width) / static_cast<double>(W);
    const double sy = static_cast<double>(e.resized.height) / static_cast<double>(H);
    for (int64_t p = 0; p < r.promptCount; ++p) {
      ArenaScope scratch(ctx.arena);
      PromptSet ps;
      for (int64_t i = 0; i < r.pointsPerPrompt; ++i) {
        const int64_t k = p * r.pointsPerPrompt + i;
        ps.points.push_back(static_cast<double>(r.points[2 * k]) * sx);
        ps.points.push_back(static_cast<double>(r.points[2 * k + 1]) * sy);
        ps.labels.push_back(r.labels[k]);
      }
      if (r.boxes) {
        ps.hasBox = true;
        for (int k = 0; k < 4; ++k)
          ps.box[k] = static_cast<double>(r.boxes[4 * p + k]) * (k % 2 == 0 ? sx : sy);
      }
      const int64_t Ns = PromptEncoder::sparseCount(ps);
      float* sparse = ctx.arena.floats(std::max<int64_t>(Ns, 1) * C);
      promptEncoder_->sparse(ps, sparse);
      float* image = ctx.arena.floats(N * C);  // image embedding + dense prompt
      ops::add(ctx, e.data.data(), dense, N * C, image);
      // multimask → outputs 1..T-1, else output 0   ref: SamMaskDecoder.forward mask_slice
      maskDecoder_->forward(ctx, image, imagePe_.data(), E, sparse, Ns, cache, r.multimask ? 1 : 0, M,
                            &out.lowRes[p * M * L * L], &out.iou[p * M]);
    }
    ProfileScope ps("post-process");
    postprocessMasks(ctx, out.lowRes.data(), r.promptCount * M, L, cfg_.processor.padHeight,
                     e.resized, e.original, r.threshold, out.masks.data());
  } catch (...) {
    giveArena(std::move(arena));
    throw;
  }
  giveArena(std::move(arena));
  out.decodeMs = msSince(t0);
  Profile::report("decode");
  return out;
}

}  // namespace omniseg::sam
