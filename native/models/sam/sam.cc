#include "models/sam/sam.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "core/profile.h"
#include "core/safetensors.h"
#include "masks/run_lengths.h"
#ifdef OMNISEG_CUDA
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "gpu/check.h"
#include "gpu/device.h"
#include "gpu/graph.h"
#include "gpu/stream.h"
#endif

namespace omniseg::sam {

namespace {
// Largest host rle decode (masks and their boundaries) the worker's arena holds; larger ones are
// allocated for the call (see allocateIO). 1080p with 3 masks for 2 boxes fits.
constexpr size_t kArenaRleBytes = size_t{64} << 20;

double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// The COCO counts of `planes` masks of `pixels` pixels from their boundaries in the backend's
// memory (ops::maskBoundaries: ends [planes], boundaries): only the boundaries cross to the host.
// A mask's counts are the differences of 0, its boundaries and `pixels`; its bounds (out.bounds,
// sized) are read from them.
void collectRuns(Ctx& ctx, const uint32_t* ends, const uint32_t* boundaries, int64_t planes,
                 int64_t height, int64_t width, DecodeResult& out) {
  const int64_t pixels = height * width;
  out.runsPerMask.resize(static_cast<size_t>(planes));
  std::vector<uint32_t> end(static_cast<size_t>(planes));
  ops::collect(ctx, ends, end.size() * sizeof(uint32_t), end.data());
  const size_t total = planes ? end.back() : 0;
  HostVector<uint32_t> pos(total);
  ops::collect(ctx, boundaries, total * sizeof(uint32_t), pos.data());
  out.runs.resize(total + static_cast<size_t>(planes));
  uint32_t* run = out.runs.data();
  for (size_t p = 0, i = 0; p < end.size(); ++p) {
    uint32_t k = 0;
    for (; i < end[p]; ++i) {
      *run++ = pos[i] - k;
      k = pos[i];
    }
    *run++ = static_cast<uint32_t>(pixels) - k;
    out.runsPerMask[p] = end[p] - (p ? end[p - 1] : 0) + 1;
    masks::writeBounds(masks::runsBounds(run - out.runsPerMask[p], out.runsPerMask[p], height, width),
                       out.bounds.data() + p * 5);
  }
}
}  // namespace

#ifdef OMNISEG_CUDA
// A decode recorded as a CUDA graph for one shape of request. Its arena holds every buffer the
// graph reads and writes, so replays never collide with other work.
struct SamModel::DecodeGraph {
  std::unique_ptr<Arena> arena;
  std::unique_ptr<gpu::Graph> graph;
  DecodeIO io;
  float* image = nullptr;  // io.image's buffer
  float* side = nullptr;   // io.side's buffer (null without the image-side cache)
  uint64_t lastUse = 0;
};

// An encode of B images recorded as a CUDA graph: the pixels it reads and the embeddings it
// writes are its arena's, as is all its scratch, so replays never collide with other work.
struct SamModel::EncodeGraph {
  std::unique_ptr<Arena> arena;
  std::unique_ptr<gpu::Graph> graph;
  float* pixels = nullptr;   // [B, 3, S, S]
  std::vector<float*> out;   // B × [E*E, C]
  uint64_t lastUse = 0;
};

namespace {
constexpr size_t kGraphsPerWorker = 8;  // least recently used shapes are dropped beyond this
// Encoder graphs per worker: each holds an encode's whole scratch (~0.15 GB per image for
// sam-vit-base in half precision), so only the two batch sizes used last are kept, and none for
// batches past kMaxGraphBatch (their launches are a small part of their time).
constexpr size_t kEncodeGraphsPerWorker = 2;
constexpr int64_t kMaxGraphBatch = 8;

// OMNISEG_CUDA_GRAPHS=0 runs decodes op by op (for measuring and debugging).
bool graphsEnabled() {
  static const bool on = [] {
    const char* v = std::getenv("OMNISEG_CUDA_GRAPHS");
    return !(v && v[0] == '0');
  }();
  return on;
}

// OMNISEG_CUDA_ENCODER_GRAPHS=1 replays the image encoder as a CUDA graph per batch size (one
// launch instead of ~200 kernel launches and cuBLASLt calls); opt-in until it is timed on a GPU.
// Read on every encode (test/gpu/sam_gpu.cc's --graph-check switches it); the fused attention's
// switches (OMNISEG_FLASH_*) are read when a graph is recorded.
bool encodeGraphsEnabled() {
  const char* v = std::getenv("OMNISEG_CUDA_ENCODER_GRAPHS");
  return v && v[0] == '1';
}
}  // namespace
#endif

#ifdef OMNISEG_CUDA
struct SamModel::WorkerGraphs : Runtime::WorkerState {
  std::map<std::string, DecodeGraph> graphs;
  std::map<int64_t, EncodeGraph> encodes;  // by batch size
  std::set<int64_t> encodeFailed;  // batch sizes whose recording failed: encoded op by op
  uint64_t clock = 0;
  size_t bytes() const override {  // the recorded graphs' arenas (device memory)
    size_t total = 0;
    for (const auto& [key, g] : graphs) total += g.arena->capacity();
    for (const auto& [batch, g] : encodes) total += g.arena->capacity();
    return total;
  }
};

SamModel::WorkerGraphs& SamModel::graphsOf(Runtime::Worker& worker) {
  if (!worker.state) worker.state = std::make_unique<WorkerGraphs>();
  return static_cast<WorkerGraphs&>(*worker.state);
}

namespace {
// Drops the least recently used entry of a graph map once it holds `cap`.
template <class Map>
void makeRoom(Map& graphs, size_t cap) {
  if (graphs.size() < cap) return;
  auto oldest = graphs.begin();
  for (auto g = graphs.begin(); g != graphs.end(); ++g)
    if (g->second.lastUse < oldest->second.lastUse) oldest = g;
  graphs.erase(oldest);
}
}  // namespace
#endif

SamModel::SamModel(const SamConfig& cfg, std::unique_ptr<WeightStore> weights, int threads,
                   Device device, Precision precision, CpuMatmul matmul)
    : cfg_(cfg), precision_(precision), weights_(std::move(weights)), rt_(threads, device, matmul) {
  imageEncoder_ = std::make_unique<ImageEncoder>(cfg_.vision, *weights_);
  promptEncoder_ = std::make_unique<PromptEncoder>(cfg_, *weights_);
  maskDecoder_ = std::make_unique<MaskDecoder>(cfg_.decoder, *weights_);
  weights_->checkAllUsed();
  const int64_t E = cfg_.embeddingSize(), C = cfg_.prompt.hiddenSize;
  imagePe_ = FloatBuffer(E * E * C);
  promptEncoder_->imagePositional(imagePe_.data());
  rt_.mirror(*weights_, {{imagePe_.data(), imagePe_.size()}}, precision_);
}

SamModel::~SamModel() = default;

std::unique_ptr<SamModel> SamModel::load(const std::string& dir, int threads, Device device,
                                         Precision precision, CpuMatmul matmul) {
  if (threads < 1) throw Error("threads must be at least 1", ErrorKind::Range);
  if (device == Device::Cpu && precision != Precision::Fp32)
    throw Error("the CPU backend runs in fp32 only", ErrorKind::Range);
  const SamConfig cfg = loadConfig(dir);
  auto weights = std::make_unique<WeightStore>(SafeTensors::open(dir + "/model.safetensors"));
  return std::unique_ptr<SamModel>(new SamModel(cfg, std::move(weights), threads, device, precision, matmul));
}

std::shared_ptr<Embedding> SamModel::encode(const uint8_t* rgb, int64_t height, int64_t width) {
  return encodeBatch({{rgb, height, width}}).front();
}

std::vector<std::shared_ptr<Embedding>> SamModel::encodeBatch(const std::vector<RgbImage>& images) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t S = cfg_.vision.imageSize, E = cfg_.gridSize(), C = cfg_.vision.outputChannels;
  const int64_t B = static_cast<int64_t>(images.size());
  OMNISEG_CHECK(B >= 1, "encodeBatch: no images");
  Runtime::Lease lease(rt_, precision_);  // the image encoder runs in the model's precision
  Ctx& ctx = lease.ctx();
  std::vector<std::shared_ptr<Embedding>> out;
  std::vector<float*> dst;
#ifdef OMNISEG_CUDA
  const bool graphs = ctx.gpu && B <= kMaxGraphBatch && encodeGraphsEnabled();
  EncodeGraph* graph = graphs ? encodeGraph(lease.worker(), B) : nullptr;
  float* pixels = graph ? graph->pixels : ctx.arena.floats(B * 3 * S * S);  // [B, 3, S, S]
#else
  constexpr bool graph = false;
  float* pixels = ctx.arena.floats(B * 3 * S * S);  // [B, 3, S, S]
#endif
  for (int64_t b = 0; b < B; ++b) {
    const RgbImage& im = images[static_cast<size_t>(b)];
    auto emb = std::make_shared<Embedding>();
    emb->device = device();
    emb->data = FloatBuffer(E * E * C, ctx.arena.allocator());
    emb->original = {im.height, im.width};
    emb->resized = preprocess(ctx, cfg_.processor, im.rgb, im.height, im.width, pixels + b * 3 * S * S);
    dst.push_back(emb->data.data());
    out.push_back(std::move(emb));
  }
  const double preprocessMs = msSince(t0);
#ifdef OMNISEG_CUDA
  if (graph) {
    graph->graph->launch(ctx.gpu->get());
    for (int64_t b = 0; b < B; ++b) ops::copy(ctx, graph->out[static_cast<size_t>(b)], E * E * C, dst[b]);
    for (auto& emb : out) emb->replayed = true;
  }
#endif
  if (!graph) {
    Runtime::EncoderMatmul matmul(rt_, ctx);
    imageEncoder_->forward(ctx, pixels, B, dst.data());
  }
  ops::wait(ctx);
  const double ms = msSince(t0);
  for (auto& emb : out) {
    emb->preprocessMs = preprocessMs;
    emb->encodeMs = ms;
  }
#ifdef OMNISEG_CUDA
  if (graphs && !graph) recordEncodeGraph(lease.worker(), ctx, B);  // (for the next encode of B)
#endif
  return out;
}

std::shared_ptr<Embedding> SamModel::embeddingFromCHW(const float* chw, int64_t height,
                                                      int64_t width) {
  const int64_t E = cfg_.gridSize(), C = cfg_.vision.outputChannels;
  Runtime::Lease lease(rt_);
  Ctx& ctx = lease.ctx();
  auto emb = std::make_shared<Embedding>();
  emb->device = device();
  emb->data = FloatBuffer(E * E * C, ctx.arena.allocator());
  emb->original = {height, width};
  emb->resized = preprocessShape(height, width, cfg_.processor.longestEdge);
  ops::transpose(ctx, ops::stage(ctx, chw, E * E * C), C, E * E, emb->data.data());
  ops::wait(ctx);
  return emb;
}

int64_t SamModel::embeddingBytes() const {
  const int64_t N = static_cast<int64_t>(cfg_.gridSize()) * cfg_.gridSize();
  const int64_t I = cfg_.decoder.hiddenSize / cfg_.decoder.attentionDownsampleRate;  // t2i and i2t
  return N * (cfg_.vision.outputChannels + 3 * I) * static_cast<int64_t>(sizeof(float));
}

void SamModel::embeddingToCHW(const Embedding& e, float* chw) {
  const int64_t E = cfg_.gridSize(), C = cfg_.vision.outputChannels;
  OMNISEG_CHECK(e.device == device(), "the embedding was made by a model on another device");
  Runtime::Lease lease(rt_);
  Ctx& ctx = lease.ctx();
  float* t = ctx.arena.floats(E * E * C);
  ops::transpose(ctx, e.data.data(), E * E, C, t);
  ops::download(ctx, t, E * E * C * sizeof(float), chw);
}

// The part of a decode that runs on the model's device from inputs already there: dense prompt,
// mask decoder per prompt set, post-processing. On CUDA it is recorded once per shape as a graph.
void SamModel::decodeOnDevice(Ctx& ctx, const Embedding& e, const DecodeRequest& r, int64_t Ns,
                              const DecodeIO& io) const {
  const int64_t E = cfg_.embeddingSize(), C = cfg_.prompt.hiddenSize, N = E * E;
  const int64_t L = cfg_.lowResSize(), P = r.promptCount;
  const int64_t M = r.multimask ? cfg_.decoder.numMultimaskOutputs : 1;
  // dense prompt [N, C]: the mask embedding, or no_mask_embed broadcast
  float* dense = ctx.arena.floats(N * C);
  if (io.mask)
    promptEncoder_->dense(ctx, io.mask, dense);
  else
    ops::broadcastRows(ctx, promptEncoder_->noMask(), N, C, dense);
  for (int64_t p = 0; p < P; ++p) {
    ArenaScope scratch(ctx.arena);
    float* image = ctx.arena.floats(N * C);  // image embedding + dense prompt
    ops::add(ctx, io.image, dense, N * C, image);
    // multimask → outputs 1..T-1, else output 0   ref: SamMaskDecoder.forward mask_slice
    maskDecoder_->forward(ctx, image, imagePe_.data(), E, io.sparse + p * Ns * C, Ns,
                          io.side.kT2I ? &io.side : nullptr, r.multimask ? 1 : 0, M,
                          io.lowRes + p * M * L * L, io.iou + p * M);
  }
  ProfileScope ps("post-process");
  postprocessMasks(ctx, io.lowRes, P * M, L, cfg_.processor.padHeight, e.resized, e.original,
                   r.threshold, io.masks, io.bounds);
  if (r.rle)
    ops::maskBoundaries(ctx, io.masks, P * M, e.original.height, e.original.width, io.ends,
                        io.boundaries);
}

// Buffers for the prompt inputs and the outputs of decodeOnDevice, from ctx's arena (image and
// side are the caller's to set); with `out` (sized), the outputs are written straight into it
// where the pass runs on the host.
SamModel::DecodeIO SamModel::allocateIO(Ctx& ctx, const DecodeRequest& r, int64_t Ns,
                                        const Embedding& e, DecodeResult* out) const {
  const int64_t C = cfg_.prompt.hiddenSize, L = cfg_.lowResSize(), P = r.promptCount;
  const int64_t M = r.multimask ? cfg_.decoder.numMultimaskOutputs : 1;
  DecodeIO io;
  io.sparse = ctx.arena.floats(std::max<int64_t>(P * Ns, 1) * C);
  io.mask = r.maskInput ? ctx.arena.floats(L * L) : nullptr;
  const size_t maskBytes = static_cast<size_t>(P * M * e.original.height * e.original.width);
  if (out) {
    io.lowRes = ops::outputBuffer(ctx, out->lowRes.data(), out->lowRes.size());
    io.iou = ops::outputBuffer(ctx, out->iou.data(), out->iou.size());
    if (!r.rle) io.masks = ops::outputBuffer(ctx, out->masks.data(), maskBytes);
    // (a CUDA decode of pixels leaves the bounds to the caller: a pass over the masks on the host
    // would cost more than the decode)
    if (!r.rle && !ctx.gpu) io.bounds = out->bounds.data();
  } else {
    io.lowRes = ctx.arena.floats(P * M * L * L);
    io.iou = ctx.arena.floats(P * M);
  }
  // Room for a boundary at every pixel with rle; only the boundaries the masks have are written.
  // A host decode's masks and boundaries past kArenaRleBytes (5 bytes a pixel) are the call's own:
  // one such decode of 64 boxes × 3 masks at 2000×1500 kept 600 MiB in the arena after it.
  if (r.rle) io.ends = static_cast<uint32_t*>(ctx.arena.bytes(P * M * sizeof(uint32_t)));
  if (r.rle && out && !ctx.gpu && maskBytes * (1 + sizeof(uint32_t)) > kArenaRleBytes) {
    io.ownMasks.reset(new uint8_t[maskBytes]);
    io.ownBoundaries.reset(new uint32_t[maskBytes]);
    io.masks = io.ownMasks.get();
    io.boundaries = io.ownBoundaries.get();
    return io;
  }
  if (!io.masks) io.masks = static_cast<uint8_t*>(ctx.arena.bytes(maskBytes));
  if (r.rle) io.boundaries = static_cast<uint32_t*>(ctx.arena.bytes(maskBytes * sizeof(uint32_t)));
  return io;
}

#ifdef OMNISEG_CUDA
SamModel::DecodeGraph& SamModel::decodeGraph(Runtime::Worker& worker, Ctx& ctx, const Embedding& e,
                                             const DecodeRequest& r, int64_t Ns) {
  WorkerGraphs& w = graphsOf(worker);
  std::ostringstream k;  // everything decodeOnDevice bakes into the graph
  k << r.promptCount << ',' << Ns << ',' << r.multimask << ',' << (r.maskInput != nullptr) << ','
    << e.original.height << 'x' << e.original.width << ',' << e.resized.height << 'x'
    << e.resized.width << ',' << std::hexfloat << r.threshold << ',' << r.rle;
  const std::string key = k.str();
  auto it = w.graphs.find(key);
  if (it == w.graphs.end()) {
    makeRoom(w.graphs, kGraphsPerWorker);
    DecodeGraph g;
    g.arena = std::make_unique<Arena>(gpu::deviceAllocator());
    Ctx gctx{ctx.pool, *g.arena, ctx.gpu};
    const int64_t N = static_cast<int64_t>(cfg_.embeddingSize()) * cfg_.embeddingSize();
    g.io = allocateIO(gctx, r, Ns, e);
    g.image = gctx.arena.floats(N * cfg_.prompt.hiddenSize);
    g.io.image = g.image;
    if (!r.maskInput) {
      g.side = gctx.arena.floats(e.cache.data.size());
      g.io.side = e.cache.view(g.side);
    }
    g.graph = gpu::Graph::capture(ctx.gpu->get(), [&] { decodeOnDevice(gctx, e, r, Ns, g.io); });
    it = w.graphs.emplace(key, std::move(g)).first;
  }
  it->second.lastUse = ++w.clock;
  return it->second;
}

SamModel::EncodeGraph* SamModel::encodeGraph(Runtime::Worker& worker, int64_t B) {
  WorkerGraphs& w = graphsOf(worker);
  auto it = w.encodes.find(B);
  if (it == w.encodes.end()) return nullptr;
  it->second.lastUse = ++w.clock;
  return &it->second;
}

// Records the encoder for B images into the worker's graphs. Called after an encode of B images
// has run op by op on this worker, so whatever an encode makes on first use (the weights' derived
// tables, cuBLASLt's choices) is made outside the recording. A recording that fails (out of
// memory included: the graphs' memory is what ran out) leaves this worker encoding B images op by
// op, with a warning; other batch sizes still record (the graph evicted to make room for this one
// is recorded again on its next use). Only an unusable backend throws.
void SamModel::recordEncodeGraph(Runtime::Worker& worker, Ctx& ctx, int64_t B) {
  WorkerGraphs& w = graphsOf(worker);
  if (w.encodeFailed.count(B) || w.encodes.count(B)) return;
  std::string failure;
  try {
    makeRoom(w.encodes, kEncodeGraphsPerWorker);  // (first: the evicted graph's memory is reused)
    const int64_t S = cfg_.vision.imageSize, E = cfg_.gridSize(), C = cfg_.vision.outputChannels;
    EncodeGraph g;
    g.arena = std::make_unique<Arena>(gpu::deviceAllocator());
    Ctx gctx{ctx.pool, *g.arena, ctx.gpu};
    g.pixels = gctx.arena.floats(B * 3 * S * S);
    for (int64_t b = 0; b < B; ++b) g.out.push_back(gctx.arena.floats(E * E * C));
    g.graph = gpu::Graph::capture(ctx.gpu->get(),
                                  [&] { imageEncoder_->forward(gctx, g.pixels, B, g.out.data()); });
    g.lastUse = ++w.clock;
    w.encodes.emplace(B, std::move(g));
    return;
  } catch (const std::exception& err) {
    failure = err.what();
  } catch (...) {
    failure = "unknown error";
  }
  gpu::ensureUsable();  // (throws where the backend is unusable: nothing runs any more)
  std::fprintf(stderr,
               "omniseg: recording the encoder for %lld images as a CUDA graph failed (%s); encoding "
               "them op by op\n",
               static_cast<long long>(B), failure.c_str());
  w.encodeFailed.insert(B);
}
#endif

DecodeResult SamModel::decode(Embedding& e, const DecodeRequest& r) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t E = cfg_.embeddingSize(), C = cfg_.prompt.hiddenSize, N = E * E;
  const int64_t L = cfg_.lowResSize();
  const int64_t P = r.promptCount, M = r.multimask ? cfg_.decoder.numMultimaskOutputs : 1;
  const int64_t H = e.original.height, W = e.original.width;
  OMNISEG_CHECK(P >= 1, "decode: promptCount must be at least 1");
  OMNISEG_CHECK(!r.rle || P * M * H * W <= static_cast<int64_t>(UINT32_MAX),
                "decode: rle output takes fewer than 2^32 mask pixels per call (promptCount x "
                "masks per prompt x height x width)");
  OMNISEG_CHECK(e.device == device(), "the embedding was made by a model on another device");
  OMNISEG_CHECK(e.data.size() == static_cast<size_t>(N * C),
                "the embedding was made by a model of another size");

  // Sparse prompt tokens on the host, [P, Ns, C] (every set has the same points and box count).
  // The processor's coordinate mapping: original pixels → resized input pixels (float64).
  const double sx = static_cast<double>(e.resized.width) / static_cast<double>(W);
  const double sy = static_cast<double>(e.resized.height) / static_cast<double>(H);
  std::vector<float> sparse;
  int64_t Ns = 0;
  for (int64_t p = 0; p < P; ++p) {
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
    Ns = PromptEncoder::sparseCount(ps);
    if (p == 0) sparse.assign(std::max<int64_t>(P * Ns, 1) * C, 0.f);
    promptEncoder_->sparse(ps, sparse.data() + p * Ns * C);
  }

  Runtime::Lease lease(rt_);  // the decoder runs in fp32
  Ctx& ctx = lease.ctx();
  const bool useSide = r.maskInput == nullptr;
  if (useSide) {
    // Image-side cache, valid while the dense prompt is no_mask_embed: computed once per image
    // from the same image + dense sum every prompt set starts from.
    std::call_once(e.cacheOnce, [&] {
      ProfileScope ps("image-side cache (once)");
      ArenaScope scratch(ctx.arena);
      float* keys0 = ctx.arena.floats(N * C);
      ops::broadcastRows(ctx, promptEncoder_->noMask(), N, C, keys0);
      ops::add(ctx, e.data.data(), keys0, N * C, keys0);
      maskDecoder_->transformer().precompute(ctx, keys0, imagePe_.data(), N, e.cache);
    });
  }

  const DecodeIO* io = nullptr;
  DecodeIO local;
#ifdef OMNISEG_CUDA
  DecodeGraph* graph = ctx.gpu && graphsEnabled() ? &decodeGraph(lease.worker(), ctx, e, r, Ns) : nullptr;
  if (graph) {
    // Inputs into the graph's own buffers: the embedding (and its cache) by device copy.
    ops::copy(ctx, e.data.data(), N * C, graph->image);
    if (useSide)
      ops::copy(ctx, e.cache.data.data(), static_cast<int64_t>(e.cache.data.size()), graph->side);
    io = &graph->io;
  }
#endif
  DecodeResult out;
  out.promptCount = P;
  out.masksPerPrompt = M;
  out.iou.resize(P * M);
  out.lowRes.resize(P * M * L * L);
  if (!r.rle) out.masks.resize(static_cast<size_t>(P * M * H * W));
  if (r.rle || !ctx.gpu) out.bounds.resize(static_cast<size_t>(P * M * 5));
  if (!io) {
    local = allocateIO(ctx, r, Ns, e, &out);
    local.image = e.data.data();
    if (useSide) local.side = e.cache.view();
    io = &local;
  }
  ops::upload(ctx, sparse.data(), sparse.size() * sizeof(float), io->sparse);
  if (r.maskInput) ops::upload(ctx, r.maskInput, L * L * sizeof(float), io->mask);
#ifdef OMNISEG_CUDA
  if (graph)
    graph->graph->launch(ctx.gpu->get());
  else
#endif
    decodeOnDevice(ctx, e, r, Ns, *io);

  ops::collect(ctx, io->iou, out.iou.size() * sizeof(float), out.iou.data());
  ops::collect(ctx, io->lowRes, out.lowRes.size() * sizeof(float), out.lowRes.data());
  if (r.rle)
    collectRuns(ctx, io->ends, io->boundaries, P * M, H, W, out);
  else
    ops::collect(ctx, io->masks, out.masks.size(), out.masks.data());
  out.decodeMs = msSince(t0);
  Profile::report("decode");
  return out;
}

}  // namespace omniseg::sam
