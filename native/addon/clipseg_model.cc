#include "addon/clipseg_model.h"

#include <climits>
#include <cmath>
#include <string>
#include <vector>

#include "addon/clipseg_image.h"
#include "addon/common.h"
#include "addon/promise_worker.h"
#include "core/arena.h"
#include "core/thread_pool.h"
#include "ops/ops.h"

namespace omniseg::addon {

namespace {

using clipseg::ClipSegModel;

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, std::string dir, int threads, Device device, CpuMatmul matmul)
      : PromiseWorker(env), dir_(std::move(dir)), threads_(threads), device_(device), matmul_(matmul) {}
  void run() override {
    model_ = std::shared_ptr<ClipSegModel>(ClipSegModel::load(dir_, threads_, device_, matmul_));
  }
  Napi::Value result() override {
    auto model = model_;
    return data(Env()).clipSegModel.New({Napi::External<std::shared_ptr<ClipSegModel>>::New(Env(), &model)});
  }

 private:
  std::string dir_;
  int threads_;
  Device device_;
  CpuMatmul matmul_;
  std::shared_ptr<ClipSegModel> model_;
};

// A CPU op context for host work in an async worker (before or after the model's pass): the
// worker's own thread, an arena freed with it.
struct WorkerCtx {
  ThreadPool pool{1};
  Arena arena;
  Ctx ctx{pool, arena};
};

// The heat maps of N [size, size] logits maps at an image's size, N × [height, width]: sigmoid,
// then bilinear with half-pixel centres, as transformers users make them
// (F.interpolate(torch.sigmoid(logits)[:, None], size=(H, W), mode="bilinear")), in float32.
// One buffer each, so that JS gets each heat map as its own array: neither a copy of it on the
// JS thread (64 queries at 2000²: 2 s) nor a view that keeps the others' memory.
std::vector<std::vector<float>> heatmaps(const std::vector<float>& logits, int64_t size, int64_t width, int64_t height) {
  const int64_t plane = size * size, N = static_cast<int64_t>(logits.size()) / plane;
  std::vector<float> prob(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) prob[i] = 1.f / (1.f + std::exp(-logits[i]));
  WorkerCtx w;
  std::vector<std::vector<float>> out(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    out[n].resize(static_cast<size_t>(height * width));
    ops::cpu::resizeBilinear(w.ctx, prob.data() + n * plane, 1, size, size, size, plane, out[n].data(), height, width,
                             height, width);
  }
  return out;
}

// The image size to make heat maps at ({heatmapWidth, heatmapHeight} of a conditioning or
// options object; 0 × 0: none).
void heatmapSize(Napi::Env env, Napi::Object o, int64_t& width, int64_t& height) {
  Napi::Value w = o.Get("heatmapWidth"), h = o.Get("heatmapHeight");
  if (w.IsUndefined() && h.IsUndefined()) return;
  require(env, w.IsNumber() && h.IsNumber(), "heatmapWidth / heatmapHeight");
  width = w.As<Napi::Number>().Int64Value();
  height = h.As<Napi::Number>().Int64Value();
  // (any image's size: a side up to INT32_MAX, as the resize takes, and at most 2^31 values)
  require(env, width > 0 && height > 0 && width <= INT32_MAX && height <= INT32_MAX && width * height <= (int64_t{1} << 31),
          "heatmapWidth / heatmapHeight");
}

// { size, logits, conditional, ms [, heatmaps] } of a segmentation (heatmaps: an array of N).
Napi::Object segmentResult(Napi::Env env, clipseg::SegmentResult&& r, std::vector<std::vector<float>>&& heat) {
  auto obj = Napi::Object::New(env);
  obj.Set("size", Napi::Number::New(env, static_cast<double>(r.size)));
  obj.Set("logits", toTypedArray(env, std::move(r.logits)));
  obj.Set("conditional", toTypedArray(env, std::move(r.conditional)));
  if (!heat.empty()) {
    auto maps = Napi::Array::New(env, heat.size());
    for (size_t n = 0; n < heat.size(); ++n) maps.Set(static_cast<uint32_t>(n), toTypedArray(env, std::move(heat[n])));
    obj.Set("heatmaps", maps);
  }
  obj.Set("ms", Napi::Number::New(env, r.ms));
  return obj;
}

// An image input of the model: normalised planes [3, height, width] as JS made them, or 8-bit
// RGB that the worker turns into them, off the JS thread: Pillow's bilinear resize to height ×
// width (square), then each channel's bytes through lut [3, 256] (rescale + normalise, computed
// in lib/clip/image-processor.ts with the processor's float32 arithmetic).
struct Pixels {
  std::vector<float> planes;
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;  // [rgbHeight, rgbWidth, 3]: a copy, or empty
  // The caller's RGB read in place ({inPlace: true}), kept alive by the reference; released with
  // the worker, on the JS thread.
  const uint8_t* rgbInPlace = nullptr;
  Napi::ObjectReference keep;
  int64_t rgbWidth = 0, rgbHeight = 0;
  std::vector<float> lut;

  const uint8_t* rgbData() const { return rgbInPlace != nullptr ? rgbInPlace : rgb.data(); }
  bool hasRgb() const { return rgbInPlace != nullptr || !rgb.empty(); }
  bool empty() const { return planes.empty() && !hasRgb(); }
  // In the worker: the planes, made from rgb first where given.
  const float* ready() {
    if (hasRgb() && planes.empty()) {
      if (width != height)
        throw omniseg::Error("image of " + std::to_string(width) + "x" + std::to_string(height) +
                        ": CLIPSeg's input must be square",
                    ErrorKind::Range);
      WorkerCtx w;
      Ctx& ctx = w.ctx;
      std::vector<uint8_t> resized;
      const uint8_t* src = rgbData();
      if (rgbWidth != width || rgbHeight != height) {
        resized.resize(static_cast<size_t>(height * width * 3));
        ops::cpu::resizeU8Pil(ctx, rgbData(), rgbHeight, rgbWidth, 3, resized.data(), height, width);
        src = resized.data();
      }
      planes.resize(static_cast<size_t>(3 * height * width));
      ops::cpu::normalizeRgb(ctx, src, height, width, lut.data(), width, planes.data());
      rgb = {};
      rgbInPlace = nullptr;
    }
    return planes.data();
  }
};

// Inputs are copied on the JS thread (a few MB; an image's 8-bit RGB, 6 MB at 1080p and 36 MB at
// 12 MP, is the largest), so JS may reuse its arrays at once.
class EmbeddingWorker : public PromiseWorker {
 public:
  EmbeddingWorker(Napi::Env env, std::shared_ptr<ClipSegModel> model)
      : PromiseWorker(env), model_(std::move(model)) {}
  std::vector<int32_t> ids;  // text, or
  Pixels pixels;             // image
  void run() override {
    out_ = ids.empty() ? model_->imageEmbedding(pixels.ready(), pixels.height, pixels.width)
                       : model_->textEmbedding(ids.data(), static_cast<int64_t>(ids.size()));
  }
  Napi::Value result() override { return toTypedArray(Env(), std::move(out_)); }

 private:
  std::shared_ptr<ClipSegModel> model_;
  std::vector<float> out_;
};

class ForwardWorker : public PromiseWorker {
 public:
  ForwardWorker(Napi::Env env, std::shared_ptr<ClipSegModel> model)
      : PromiseWorker(env), model_(std::move(model)) {}
  Pixels pixels, promptPixels;
  std::vector<float> embedding;
  std::vector<int32_t> ids;
  float textWeight = 1.f;
  void run() override {
    clipseg::Conditioning c;
    if (!ids.empty()) {
      c.ids = ids.data();
      c.idsLength = static_cast<int64_t>(ids.size());
    }
    if (!promptPixels.empty()) {
      c.promptPixels = promptPixels.ready();
      c.promptWidth = promptPixels.width;
      c.promptHeight = promptPixels.height;
    }
    if (!embedding.empty()) {
      c.embedding = embedding.data();
      c.embeddingCount = static_cast<int64_t>(embedding.size()) / model_->config().projectionDim;
    }
    c.textWeight = textWeight;
    result_ = model_->segment(pixels.ready(), pixels.height, pixels.width, c);
    if (heatWidth > 0) heat_ = heatmaps(result_.logits, result_.size, heatWidth, heatHeight);
  }
  Napi::Value result() override { return segmentResult(Env(), std::move(result_), std::move(heat_)); }
  int64_t heatWidth = 0, heatHeight = 0;

 private:
  std::shared_ptr<ClipSegModel> model_;
  clipseg::SegmentResult result_;
  std::vector<std::vector<float>> heat_;
};

class EncodeImageWorker : public PromiseWorker {
 public:
  EncodeImageWorker(Napi::Env env, std::shared_ptr<ClipSegModel> model)
      : PromiseWorker(env), model_(std::move(model)) {}
  Pixels pixels;
  void run() override {
    features_ = std::make_shared<const clipseg::ImageFeatures>(
        model_->imageFeatures(pixels.ready(), pixels.height, pixels.width));
  }
  Napi::Value result() override { return ClipSegImageWrap::create(Env(), std::move(features_)); }

 private:
  std::shared_ptr<ClipSegModel> model_;
  std::shared_ptr<const clipseg::ImageFeatures> features_;
};

// The decoder on encoded features; the features stay alive (shared) until the worker is done,
// even if JS disposes its handle meanwhile.
class DecodeWorker : public PromiseWorker {
 public:
  DecodeWorker(Napi::Env env, std::shared_ptr<ClipSegModel> model, std::shared_ptr<const clipseg::ImageFeatures> f)
      : PromiseWorker(env), model_(std::move(model)), features_(std::move(f)) {}
  std::vector<float> embedding;
  void run() override {
    const int64_t P = model_->config().projectionDim;
    result_ = model_->segment(features_->acts.data(), features_->grid, embedding.data(),
                              static_cast<int64_t>(embedding.size()) / P);
    if (heatWidth > 0) heat_ = heatmaps(result_.logits, result_.size, heatWidth, heatHeight);
  }
  Napi::Value result() override { return segmentResult(Env(), std::move(result_), std::move(heat_)); }
  int64_t heatWidth = 0, heatHeight = 0;

 private:
  std::shared_ptr<ClipSegModel> model_;
  std::shared_ptr<const clipseg::ImageFeatures> features_;
  clipseg::SegmentResult result_;
  std::vector<std::vector<float>> heat_;

 public:
  size_t featuresSize() const { return features_->acts.size(); }
  int64_t grid() const { return features_->grid; }
};

// An image input from (data, width, height): data a Float32Array [3, height, width], or
// {rgb: Uint8Array [rgbHeight, rgbWidth, 3], width: rgbWidth, height: rgbHeight, lut:
// Float32Array [3, 256], inPlace?: boolean} to be resized to width × height in the worker. The
// pixels are copied, or with inPlace read where they are until the call settles.
Pixels copyPixels(Napi::Env env, Napi::Value data, Napi::Value w, Napi::Value h, const char* what) {
  Pixels p;
  require(env, w.IsNumber() && h.IsNumber(), what);
  p.width = w.As<Napi::Number>().Int64Value();
  p.height = h.As<Napi::Number>().Int64Value();
  require(env, p.width > 0 && p.height > 0 && p.width <= 1 << 15 && p.height <= 1 << 15, what);
  if (data.IsObject() && !data.IsTypedArray()) {
    auto o = data.As<Napi::Object>();
    Napi::Value rw = o.Get("width"), rh = o.Get("height");
    require(env, rw.IsNumber() && rh.IsNumber(), what);
    p.rgbWidth = rw.As<Napi::Number>().Int64Value();
    p.rgbHeight = rh.As<Napi::Number>().Int64Value();
    // (any size the resize takes, up to INT32_MAX a side: a 40000×1 strip is a valid image)
    require(env, p.rgbWidth > 0 && p.rgbHeight > 0 && p.rgbWidth <= INT32_MAX && p.rgbHeight <= INT32_MAX, what);
    Napi::Value rgb = o.Get("rgb");
    size_t bytes = 0;
    if (o.Get("inPlace").ToBoolean()) {
      // Only for buffers the library made and never hands out (a visual prompt): a 12 MP crop's
      // copy here costs ~20 ms of the JS thread.
      require(env, rgb.IsTypedArray() && rgb.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array, what);
      auto a = rgb.As<Napi::Uint8Array>();
      p.rgbInPlace = a.Data();
      bytes = a.ElementLength();
      p.keep = Napi::Persistent(rgb.As<Napi::Object>());
    } else {
      p.rgb = copyTypedArray<uint8_t>(env, rgb, napi_uint8_array, what);
      bytes = p.rgb.size();
    }
    const auto pixels = static_cast<int64_t>(bytes / 3);  // (no product that could overflow)
    require(env, bytes > 0 && bytes % 3 == 0 && pixels % p.rgbWidth == 0 && pixels / p.rgbWidth == p.rgbHeight, what);
    p.lut = copyTypedArray<float>(env, o.Get("lut"), napi_float32_array, what);
    require(env, p.lut.size() == 3 * 256, what);
    return p;
  }
  p.planes = copyTypedArray<float>(env, data, napi_float32_array, what);
  require(env, static_cast<int64_t>(p.planes.size()) == 3 * p.width * p.height, what);
  return p;
}

}  // namespace

Napi::Function ClipSegModelWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeClipSegModel",
                     {InstanceAccessor<&ClipSegModelWrap::config>("config"),
                      InstanceMethod<&ClipSegModelWrap::textEmbedding>("textEmbedding"),
                      InstanceMethod<&ClipSegModelWrap::imageEmbedding>("imageEmbedding"),
                      InstanceMethod<&ClipSegModelWrap::forward>("forward"),
                      InstanceMethod<&ClipSegModelWrap::encodeImage>("encodeImage"),
                      InstanceMethod<&ClipSegModelWrap::decode>("decode"),
                      InstanceMethod<&ClipSegModelWrap::dispose>("dispose"),
                      InstanceAccessor<&ClipSegModelWrap::bytes>("bytes")});
}

ClipSegModelWrap::ClipSegModelWrap(const Napi::CallbackInfo& info) : TaggedWrap<ClipSegModelWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(info.Env(), "NativeClipSegModel cannot be constructed directly; use loadClipSeg()")
        .ThrowAsJavaScriptException();
    return;
  }
  model_ = *info[0].As<Napi::External<std::shared_ptr<ClipSegModel>>>().Data();
  memory_ = modelMemory(info.Env(), model_);
}

Napi::Value ClipSegModelWrap::load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require(env, info.Length() >= 2 && info[0].IsString() && info[1].IsObject(), "loadClipSeg(dir, options)");
  Napi::Value t = info[1].As<Napi::Object>().Get("threads");
  require(env, t.IsNumber(), "options.threads");
  Napi::Value d = info[1].As<Napi::Object>().Get("device");
  require(env, d.IsUndefined() || d.IsString(), "options.device");
  const std::string device = d.IsString() ? d.As<Napi::String>().Utf8Value() : "cpu";
  require(env, device == "cpu" || device == "cuda", "options.device must be 'cpu' or 'cuda'");
  const CpuMatmul matmul = cpuMatmulOption(env, info[1].As<Napi::Object>());
  auto* w = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), t.As<Napi::Number>().Int32Value(),
                           device == "cuda" ? Device::Cuda : Device::Cpu, matmul);
  return w->queue();
}

std::shared_ptr<ClipSegModel> ClipSegModelWrap::get(Napi::Env env) const {
  if (!model_) throw Napi::Error::New(env, "The model has been disposed");
  return model_;
}

Napi::Value ClipSegModelWrap::config(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = get(env);
  const auto& c = model->config();
  auto o = Napi::Object::New(env);
  o.Set("imageSize", c.vision.imageSize);
  o.Set("patchSize", c.vision.patchSize);
  o.Set("projectionDim", c.projectionDim);
  o.Set("vocabSize", c.text.vocabSize);
  o.Set("maxPositions", c.text.maxPositionEmbeddings);
  o.Set("logitScale", model->logitScale());
  o.Set("device", model->device() == Device::Cuda ? "cuda" : "cpu");
  o.Set("cpuMatmul", cpuMatmulName(model->cpuMatmul()));
  return o;
}

Napi::Value ClipSegModelWrap::textEmbedding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* w = new EmbeddingWorker(env, get(env));
  std::unique_ptr<EmbeddingWorker> guard(w);  // owned until queued
  require(env, info.Length() == 1, "textEmbedding(inputIds)");
  w->ids = copyTypedArray<int32_t>(env, info[0], napi_int32_array, "inputIds must be an Int32Array");
  require(env, !w->ids.empty(), "inputIds must not be empty");
  return guard.release()->track(memory_)->queue();
}

Napi::Value ClipSegModelWrap::imageEmbedding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* w = new EmbeddingWorker(env, get(env));
  std::unique_ptr<EmbeddingWorker> guard(w);
  require(env, info.Length() == 3, "imageEmbedding(pixels, width, height)");
  w->pixels = copyPixels(env, info[0], info[1], info[2], "pixels must be a Float32Array [3, height, width] or {rgb, width, height, lut}");
  return guard.release()->track(memory_)->queue();
}

Napi::Value ClipSegModelWrap::forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* w = new ForwardWorker(env, get(env));
  std::unique_ptr<ForwardWorker> guard(w);
  require(env, info.Length() == 4 && info[3].IsObject(), "forward(pixels, width, height, conditioning)");
  w->pixels = copyPixels(env, info[0], info[1], info[2], "pixels must be a Float32Array [3, height, width] or {rgb, width, height, lut}");
  auto c = info[3].As<Napi::Object>();
  auto present = [&](const char* key) {
    Napi::Value v = c.Get(key);
    return !(v.IsUndefined() || v.IsNull());
  };
  if (present("inputIds")) {
    w->ids = copyTypedArray<int32_t>(env, c.Get("inputIds"), napi_int32_array, "inputIds");
    require(env, !w->ids.empty(), "inputIds must not be empty");
  }
  if (present("promptPixels"))
    w->promptPixels = copyPixels(env, c.Get("promptPixels"), c.Get("promptWidth"), c.Get("promptHeight"),
                                 "promptPixels / promptWidth / promptHeight");
  if (present("embedding")) {
    w->embedding = copyTypedArray<float>(env, c.Get("embedding"), napi_float32_array, "embedding");
    const size_t dim = static_cast<size_t>(get(env)->config().projectionDim);
    require(env, !w->embedding.empty() && w->embedding.size() % dim == 0,
            "embedding must hold N · projectionDim values (N ≥ 1)");
    require(env, !present("inputIds") && !present("promptPixels"), "embedding excludes inputIds and promptPixels");
  }
  heatmapSize(env, c, w->heatWidth, w->heatHeight);
  if (present("textWeight")) {
    Napi::Value tw = c.Get("textWeight");
    require(env, tw.IsNumber(), "textWeight");
    w->textWeight = tw.As<Napi::Number>().FloatValue();
  }
  return guard.release()->track(memory_)->queue();
}

Napi::Value ClipSegModelWrap::encodeImage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* w = new EncodeImageWorker(env, get(env));
  std::unique_ptr<EncodeImageWorker> guard(w);
  require(env, info.Length() == 3, "encodeImage(pixels, width, height)");
  w->pixels = copyPixels(env, info[0], info[1], info[2], "pixels must be a Float32Array [3, height, width] or {rgb, width, height, lut}");
  return guard.release()->track(memory_)->queue();
}

Napi::Value ClipSegModelWrap::decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require(env, (info.Length() == 2 || (info.Length() == 3 && info[2].IsObject())) && info[0].IsObject(),
          "decode(image, embedding[, {heatmapWidth, heatmapHeight}])");
  auto features = ClipSegImageWrap::from(env, info[0], "image must be a NativeClipSegImage")->get(env);
  auto model = get(env);
  auto* w = new DecodeWorker(env, model, std::move(features));
  std::unique_ptr<DecodeWorker> guard(w);
  w->embedding = copyTypedArray<float>(env, info[1], napi_float32_array, "embedding");
  const size_t dim = static_cast<size_t>(model->config().projectionDim);
  require(env, !w->embedding.empty() && w->embedding.size() % dim == 0,
          "embedding must hold N · projectionDim values (N ≥ 1)");
  require(env, static_cast<int64_t>(guard->featuresSize()) == model->featureSize(guard->grid()),
          "image was encoded by another model");
  if (info.Length() == 3) heatmapSize(env, info[2].As<Napi::Object>(), w->heatWidth, w->heatHeight);
  return guard.release()->track(memory_)->queue();
}

void ClipSegModelWrap::dispose(const Napi::CallbackInfo& info) {
  model_.reset();
  if (memory_) memory_->close(info.Env());
}

Napi::Value ClipSegModelWrap::bytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(get(info.Env())->heldBytes()));
}

}  // namespace omniseg::addon
