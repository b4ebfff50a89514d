#include "models/sam/sam.h"

#include <chrono>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/profile.h"
#include "core/safetensors.h"
#include "gpu/device.h"  // plain C++: the WeightMirror type (its code is built with CUDA only)
#ifdef OMNISEG_CUDA
#include "gpu/stream.h"
#endif

namespace omniseg::sam {

namespace {
double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

struct SamModel::Worker {
  std::unique_ptr<Arena> arena;
#ifdef OMNISEG_CUDA
  std::unique_ptr<gpu::Stream> stream;  // null on CPU
#endif
};

// A worker held for one call and handed back (arena reset) however the call ends.
class SamModel::Lease {
 public:
  explicit Lease(SamModel& m) : model_(m), w_(m.takeWorker()), ctx_{m.pool_, *w_->arena, nullptr} {
#ifdef OMNISEG_CUDA
    ctx_.gpu = w_->stream.get();
#endif
  }
  ~Lease() { model_.giveWorker(std::move(w_)); }
  Ctx& ctx() { return ctx_; }

 private:
  SamModel& model_;
  std::unique_ptr<Worker> w_;
  Ctx ctx_;
};

SamModel::SamModel(const SamConfig& cfg, std::unique_ptr<WeightStore> weights, int threads,
                   Device device)
    : cfg_(cfg), device_(device), weights_(std::move(weights)), pool_(threads) {
  imageEncoder_ = std::make_unique<ImageEncoder>(cfg_.vision, *weights_);
  promptEncoder_ = std::make_unique<PromptEncoder>(cfg_, *weights_);
  maskDecoder_ = std::make_unique<MaskDecoder>(cfg_.decoder, *weights_);
  weights_->checkAllUsed();
  const int64_t E = cfg_.embeddingSize(), C = cfg_.prompt.hiddenSize;
  imagePe_ = FloatBuffer(E * E * C);
  promptEncoder_->imagePositional(imagePe_.data());
#ifdef OMNISEG_CUDA
  if (device_ == Device::Cuda) {
    mirror_ = std::make_unique<gpu::WeightMirror>();
    for (const auto& t : weights_->handedOut()) mirror_->add(t.data, t.count);
    mirror_->add(imagePe_.data(), imagePe_.size());
  }
#endif
}

SamModel::~SamModel() = default;

std::unique_ptr<SamModel> SamModel::load(const std::string& dir, int threads, Device device) {
  if (threads < 1) throw Error("threads must be at least 1", ErrorKind::Range);
#ifndef OMNISEG_CUDA
  if (device == Device::Cuda)
    throw Error("this build of omniseg has no CUDA backend (build it with `npm run build:cuda`)");
#endif
  const SamConfig cfg = loadConfig(dir);
  auto weights = std::make_unique<WeightStore>(SafeTensors::open(dir + "/model.safetensors"));
  return std::unique_ptr<SamModel>(new SamModel(cfg, std::move(weights), threads, device));
}

std::unique_ptr<SamModel::Worker> SamModel::takeWorker() {
  {
    std::lock_guard<std::mutex> lock(workersMu_);
    if (!workers_.empty()) {
      auto w = std::move(workers_.back());
      workers_.pop_back();
      return w;
    }
  }
  auto w = std::make_unique<Worker>();
#ifdef OMNISEG_CUDA
  if (device_ == Device::Cuda) {
    w->arena = std::make_unique<Arena>(gpu::deviceAllocator());
    w->stream = std::make_unique<gpu::Stream>(mirror_.get());
    return w;
  }
#endif
  w->arena = std::make_unique<Arena>();
  return w;
}

void SamModel::giveWorker(std::unique_ptr<Worker> w) {
  w->arena->reset();
  std::lock_guard<std::mutex> lock(workersMu_);
  workers_.push_back(std::move(w));
}

std::shared_ptr<Embedding> SamModel::encode(const uint8_t* rgb, int64_t height, int64_t width) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t S = cfg_.vision.imageSize, E = cfg_.gridSize(), C = cfg_.vision.outputChannels;
  Lease lease(*this);
  Ctx& ctx = lease.ctx();
  auto emb = std::make_shared<Embedding>();
  emb->device = device_;
  emb->data = FloatBuffer(E * E * C, ctx.arena.allocator());
  emb->original = {height, width};
  float* pixels = ctx.arena.floats(3 * S * S);
  emb->resized = preprocess(ctx, cfg_.processor, rgb, height, width, pixels);
  imageEncoder_->forward(ctx, pixels, emb->data.data());
  ops::wait(ctx);
  emb->encodeMs = msSince(t0);
  return emb;
}

std::shared_ptr<Embedding> SamModel::embeddingFromCHW(const float* chw, int64_t height,
                                                      int64_t width) {
  const int64_t E = cfg_.gridSize(), C = cfg_.vision.outputChannels;
  Lease lease(*this);
  Ctx& ctx = lease.ctx();
  auto emb = std::make_shared<Embedding>();
  emb->device = device_;
  emb->data = FloatBuffer(E * E * C, ctx.arena.allocator());
  emb->original = {height, width};
  emb->resized = preprocessShape(height, width, cfg_.processor.longestEdge);
  float* staged = ctx.arena.floats(E * E * C);
  ops::upload(ctx, chw, E * E * C * sizeof(float), staged);
  ops::transpose(ctx, staged, C, E * E, emb->data.data());
  ops::wait(ctx);
  return emb;
}

void SamModel::embeddingToCHW(const Embedding& e, float* chw) {
  const int64_t E = cfg_.gridSize(), C = cfg_.vision.outputChannels;
  OMNISEG_CHECK(e.device == device_, "the embedding was made by a model on another device");
  Lease lease(*this);
  Ctx& ctx = lease.ctx();
  float* t = ctx.arena.floats(E * E * C);
  ops::transpose(ctx, e.data.data(), E * E, C, t);
  ops::download(ctx, t, E * E * C * sizeof(float), chw);
}

DecodeResult SamModel::decode(Embedding& e, const DecodeRequest& r) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t E = cfg_.embeddingSize(), C = cfg_.prompt.hiddenSize, N = E * E;
  const int64_t L = cfg_.lowResSize();
  const int64_t P = r.promptCount, M = r.multimask ? cfg_.decoder.numMultimaskOutputs : 1;
  const int64_t H = e.original.height, W = e.original.width;
  OMNISEG_CHECK(P >= 1, "decode: promptCount must be at least 1");
  OMNISEG_CHECK(e.device == device_, "the embedding was made by a model on another device");

  Lease lease(*this);
  Ctx& ctx = lease.ctx();
  // dense prompt [N, C]: the mask embedding, or no_mask_embed broadcast
  float* dense = ctx.arena.floats(N * C);
  const ImageSideCache* cache = nullptr;
  if (r.maskInput) {
    ArenaScope scratch(ctx.arena);
    float* mask = ctx.arena.floats(L * L);
    ops::upload(ctx, r.maskInput, L * L * sizeof(float), mask);
    promptEncoder_->dense(ctx, mask, dense);
  } else {
    ops::broadcastRows(ctx, promptEncoder_->noMask(), N, C, dense);
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
  float* lowRes = ctx.arena.floats(P * M * L * L);  // [P, M, L, L]
  float* iou = ctx.arena.floats(P * M);             // [P, M]
  // The processor's coordinate mapping: original pixels → resized input pixels (float64).
  const double sx = static_cast<double>(e.resized.width) / static_cast<double>(W);
  const double sy = static_cast<double>(e.resized.height) / static_cast<double>(H);
  std::vector<float> sparseHost;
  for (int64_t p = 0; p < P; ++p) {
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
    sparseHost.assign(std::max<int64_t>(Ns, 1) * C, 0.f);
    promptEncoder_->sparse(ps, sparseHost.data());  // on the host: a few tokens
    float* sparse = ctx.arena.floats(sparseHost.size());
    ops::upload(ctx, sparseHost.data(), sparseHost.size() * sizeof(float), sparse);
    float* image = ctx.arena.floats(N * C);  // image embedding + dense prompt
    ops::add(ctx, e.data.data(), dense, N * C, image);
    // multimask → outputs 1..T-1, else output 0   ref: SamMaskDecoder.forward mask_slice
    maskDecoder_->forward(ctx, image, imagePe_.data(), E, sparse, Ns, cache, r.multimask ? 1 : 0, M,
                          lowRes + p * M * L * L, iou + p * M);
  }
  uint8_t* masks = static_cast<uint8_t*>(ctx.arena.bytes(static_cast<size_t>(P * M * H * W)));
  {
    ProfileScope ps("post-process");
    postprocessMasks(ctx, lowRes, P * M, L, cfg_.processor.padHeight, e.resized, e.original,
                     r.threshold, masks);
  }
  DecodeResult out;
  out.promptCount = P;
  out.masksPerPrompt = M;
  out.iou.resize(P * M);
  out.lowRes.resize(P * M * L * L);
  out.masks.resize(static_cast<size_t>(P * M * H * W));
  ops::download(ctx, iou, out.iou.size() * sizeof(float), out.iou.data());
  ops::download(ctx, lowRes, out.lowRes.size() * sizeof(float), out.lowRes.data());
  ops::download(ctx, masks, out.masks.size(), out.masks.data());
  out.decodeMs = msSince(t0);
  Profile::report("decode");
  return out;
}

}  // namespace omniseg::sam
