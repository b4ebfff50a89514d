#include "addon/sam_model.h"

#include <optional>

#include "addon/common.h"
#include "addon/embedding.h"
#include "addon/promise_worker.h"

namespace omniseg::addon {

namespace {

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, std::string dir, int threads, Device device, Precision precision, CpuMatmul matmul)
      : PromiseWorker(env), dir_(std::move(dir)), threads_(threads), device_(device), precision_(precision),
        matmul_(matmul) {}
  void run() override {
    model_ = std::shared_ptr<sam::SamModel>(sam::SamModel::load(dir_, threads_, device_, precision_, matmul_));
  }
  Napi::Value result() override {
    auto model = model_;
    return data(Env()).samModel.New({Napi::External<std::shared_ptr<sam::SamModel>>::New(Env(), &model)});
  }

 private:
  std::string dir_;
  int threads_;
  Device device_;
  Precision precision_;
  CpuMatmul matmul_;
  std::shared_ptr<sam::SamModel> model_;
};

// Encodes one image (resolves to an embedding) or a batch (resolves to an array of them).
class EncodeWorker : public PromiseWorker {
 public:
  EncodeWorker(Napi::Env env, std::shared_ptr<sam::SamModel> model, bool batch)
      : PromiseWorker(env), model_(std::move(model)), batch_(batch) {}
  // The input is read in place, for pixels only the library holds (lib/image.ts makes them): the
  // reference keeps the typed array from being collected, not its memory from being detached
  // (transferred or resized), which N-API cannot prevent.
  void add(Napi::Uint8Array pixels, int64_t w, int64_t h) {
    keep_.push_back(Napi::Persistent(pixels.As<Napi::Object>()));
    images_.push_back({pixels.Data(), h, w});
  }
  void run() override { embeddings_ = model_->encodeBatch(images_); }
  Napi::Value result() override {
    Napi::Env env = Env();
    if (!batch_) return EmbeddingWrap::create(env, model_, embeddings_.front());
    auto arr = Napi::Array::New(env, embeddings_.size());
    for (uint32_t i = 0; i < embeddings_.size(); ++i) arr.Set(i, EmbeddingWrap::create(env, model_, embeddings_[i]));
    return arr;
  }

 private:
  std::shared_ptr<sam::SamModel> model_;
  bool batch_;
  std::vector<Napi::ObjectReference> keep_;
  std::vector<sam::SamModel::RgbImage> images_;
  std::vector<std::shared_ptr<sam::Embedding>> embeddings_;
};

class DecodeWorker : public PromiseWorker {
 public:
  DecodeWorker(Napi::Env env, std::shared_ptr<sam::SamModel> model, std::shared_ptr<sam::Embedding> e)
      : PromiseWorker(env), model_(std::move(model)), embedding_(std::move(e)) {}
  std::vector<float> points, boxes, maskInput;
  std::vector<int32_t> labels;
  sam::DecodeRequest req;

  void run() override {
    req.points = points.empty() ? nullptr : points.data();
    req.labels = labels.empty() ? nullptr : labels.data();
    req.boxes = boxes.empty() ? nullptr : boxes.data();
    req.maskInput = maskInput.empty() ? nullptr : maskInput.data();
    result_ = model_->decode(*embedding_, req);
  }
  Napi::Value result() override {
    Napi::Env env = Env();
    auto obj = Napi::Object::New(env);
    obj.Set("masksPerPrompt", Napi::Number::New(env, static_cast<double>(result_.masksPerPrompt)));
    obj.Set("iou", toTypedArray(env, std::move(result_.iou)));
    obj.Set("lowRes", toTypedArray(env, std::move(result_.lowRes)));
    obj.Set("masks", toTypedArray(env, std::move(result_.masks)));
    if (req.rle) {
      obj.Set("runs", toTypedArray(env, std::move(result_.runs)));
      obj.Set("runsPerMask", toTypedArray(env, std::move(result_.runsPerMask)));
    }
    if (!result_.bounds.empty()) obj.Set("bounds", toTypedArray(env, std::move(result_.bounds)));
    obj.Set("decodeMs", Napi::Number::New(env, result_.decodeMs));
    return obj;
  }

 private:
  std::shared_ptr<sam::SamModel> model_;
  std::shared_ptr<sam::Embedding> embedding_;
  sam::DecodeResult result_;
};

// A copy of a typed array of exactly `expected` elements of type `type` (null / undefined: empty).
template <class T>
std::vector<T> copyTyped(Napi::Env env, Napi::Value v, napi_typedarray_type type, size_t expected, const char* what) {
  if (v.IsNull() || v.IsUndefined()) return {};
  return copyTypedArray<T>(env, v, type, what, expected);
}

}  // namespace

Napi::Function SamModelWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeSamModel",
                     {InstanceAccessor<&SamModelWrap::config>("config"),
                      InstanceMethod<&SamModelWrap::encode>("encode"),
                      InstanceMethod<&SamModelWrap::encodeBatch>("encodeBatch"),
                      InstanceMethod<&SamModelWrap::embeddingFromCHW>("embeddingFromCHW"),
                      InstanceMethod<&SamModelWrap::embeddingFromCHWAsync>("embeddingFromCHWAsync"),
                      InstanceMethod<&SamModelWrap::decode>("decode"),
                      InstanceMethod<&SamModelWrap::dispose>("dispose"),
                      InstanceAccessor<&SamModelWrap::bytes>("bytes")});
}

SamModelWrap::SamModelWrap(const Napi::CallbackInfo& info) : TaggedWrap<SamModelWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(info.Env(), "NativeSamModel cannot be constructed directly; use loadSam()")
        .ThrowAsJavaScriptException();
    return;
  }
  model_ = *info[0].As<Napi::External<std::shared_ptr<sam::SamModel>>>().Data();
  memory_ = modelMemory(info.Env(), model_);
}

Napi::Value SamModelWrap::load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require(env, info.Length() >= 2 && info[0].IsString() && info[1].IsObject(), "loadSam(dir, options)");
  Napi::Value t = info[1].As<Napi::Object>().Get("threads");
  require(env, t.IsNumber(), "options.threads");
  const int threads = t.As<Napi::Number>().Int32Value();
  Napi::Value d = info[1].As<Napi::Object>().Get("device");
  require(env, d.IsUndefined() || d.IsString(), "options.device");
  const std::string device = d.IsString() ? d.As<Napi::String>().Utf8Value() : "cpu";
  require(env, device == "cpu" || device == "cuda", "options.device must be 'cpu' or 'cuda'");
  Napi::Value p = info[1].As<Napi::Object>().Get("precision");
  require(env, p.IsUndefined() || p.IsString(), "options.precision");
  const std::string precision = p.IsString() ? p.As<Napi::String>().Utf8Value() : "fp32";
  require(env, precision == "fp32" || precision == "fp16" || precision == "bf16",
          "options.precision must be 'fp32', 'fp16' or 'bf16'");
  const Precision pr = precision == "fp16"   ? Precision::Fp16
                       : precision == "bf16" ? Precision::Bf16
                                             : Precision::Fp32;
  const CpuMatmul matmul = cpuMatmulOption(env, info[1].As<Napi::Object>());
  return (new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), threads,
                         device == "cuda" ? Device::Cuda : Device::Cpu, pr, matmul))
      ->queue();
}

std::shared_ptr<sam::SamModel> SamModelWrap::get(Napi::Env env) const {
  if (!model_) throw Napi::Error::New(env, "The model has been disposed");
  return model_;
}

Napi::Value SamModelWrap::config(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto& c = get(env)->config();
  auto o = Napi::Object::New(env);
  o.Set("imageSize", c.vision.imageSize);
  o.Set("longestEdge", c.processor.longestEdge);
  o.Set("embeddingSize", c.embeddingSize());
  o.Set("embeddingDim", c.vision.outputChannels);
  o.Set("lowResSize", c.lowResSize());
  o.Set("numMultimaskOutputs", c.decoder.numMultimaskOutputs);
  o.Set("device", get(env)->device() == Device::Cuda ? "cuda" : "cpu");
  const Precision pr = get(env)->precision();
  o.Set("precision", pr == Precision::Fp16 ? "fp16" : pr == Precision::Bf16 ? "bf16" : "fp32");
  o.Set("cpuMatmul", cpuMatmulName(get(env)->cpuMatmul()));
  return o;
}

namespace {
struct RgbArg {
  Napi::Uint8Array pixels;
  int64_t width = 0, height = 0;
};
// Checks one (pixels, width, height) triple of RGB bytes and returns it as checked (each value read
// once, so what is queued is what was checked); what: the argument's name.
RgbArg checkRgb(Napi::Env env, Napi::Value pixels, Napi::Value w, Napi::Value h, const std::string& what) {
  require(env, pixels.IsTypedArray() && pixels.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array,
          what + ".pixels must be a Uint8Array");
  require(env, w.IsNumber() && h.IsNumber(), what + " width and height must be numbers");
  const int64_t wv = w.As<Napi::Number>().Int64Value(), hv = h.As<Napi::Number>().Int64Value();
  const auto n = static_cast<int64_t>(pixels.As<Napi::Uint8Array>().ElementLength());
  require(env, wv > 0 && hv > 0 && wv <= n && hv <= n && n / wv / hv == 3 && n % (wv * hv) == 0,
          what + ".pixels must hold width*height*3 bytes of RGB");
  return {pixels.As<Napi::Uint8Array>(), wv, hv};
}
}  // namespace

Napi::Value SamModelWrap::encode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = get(env);
  require(env, info.Length() == 4 && info[3].IsNumber() && info[3].As<Napi::Number>().Int64Value() == 3,
          "encode(pixels, width, height, channels = 3)");
  const RgbArg image = checkRgb(env, info[0], info[1], info[2], "encode");
  auto* worker = new EncodeWorker(env, model, false);
  worker->track(memory_);
  worker->add(image.pixels, image.width, image.height);
  return worker->queue();
}

Napi::Value SamModelWrap::encodeBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = get(env);
  require(env, info.Length() == 1 && info[0].IsArray(), "encodeBatch(images)");
  auto images = info[0].As<Napi::Array>();
  require(env, images.Length() >= 1, "encodeBatch: images must not be empty");
  // Validate everything before queueing anything; queue exactly what was validated (a getter
  // could answer differently the second time).
  std::vector<RgbArg> checked;
  for (uint32_t i = 0; i < images.Length(); ++i) {
    const std::string what = "images[" + std::to_string(i) + "]";
    Napi::Value v = images.Get(i);
    require(env, v.IsObject(), what + " must be {pixels, width, height}");
    auto o = v.As<Napi::Object>();
    checked.push_back(checkRgb(env, o.Get("pixels"), o.Get("width"), o.Get("height"), what));
  }
  auto* worker = new EncodeWorker(env, model, true);
  worker->track(memory_);
  for (const RgbArg& image : checked) worker->add(image.pixels, image.width, image.height);
  return worker->queue();
}

namespace {

// embeddingFromCHW's arguments (data, width, height), checked.
struct ChwArgs {
  Napi::Float32Array data;
  int64_t width, height;
};

ChwArgs chwArgs(const Napi::CallbackInfo& info, const sam::SamModel& model) {
  Napi::Env env = info.Env();
  const auto& c = model.config();
  const size_t n = static_cast<size_t>(c.vision.outputChannels) * c.gridSize() * c.gridSize();
  require(env, info.Length() == 3 && info[0].IsTypedArray() && info[1].IsNumber() && info[2].IsNumber(),
          "embeddingFromCHW(data, width, height)");
  require(env, info[0].As<Napi::TypedArray>().TypedArrayType() == napi_float32_array &&
                   info[0].As<Napi::Float32Array>().ElementLength() == n,
          "data must be a Float32Array of embeddingDim*embeddingSize^2 values");
  const int64_t w = info[1].As<Napi::Number>().Int64Value(), h = info[2].As<Napi::Number>().Int64Value();
  require(env, w > 0 && h > 0, "width and height must be positive");
  return {info[0].As<Napi::Float32Array>(), w, h};
}

// embeddingFromCHW in a worker thread, from a copy of the data (the caller may reuse it at once).
class FromChwWorker : public PromiseWorker {
 public:
  FromChwWorker(Napi::Env env, std::shared_ptr<sam::SamModel> model, const ChwArgs& a)
      : PromiseWorker(env), model_(std::move(model)), chw_(a.data.Data(), a.data.Data() + a.data.ElementLength()),
        width_(a.width), height_(a.height) {}

 protected:
  void run() override {
    embedding_ = model_->embeddingFromCHW(chw_.data(), height_, width_);
    chw_ = {};
  }
  Napi::Value result() override { return EmbeddingWrap::create(Env(), model_, embedding_); }

 private:
  std::shared_ptr<sam::SamModel> model_;
  std::vector<float> chw_;
  int64_t width_, height_;
  std::shared_ptr<sam::Embedding> embedding_;
};

}  // namespace

Napi::Value SamModelWrap::embeddingFromCHW(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = get(env);
  const ChwArgs a = chwArgs(info, *model);
  auto e = onJsThread(env, [&] { return model->embeddingFromCHW(a.data.Data(), a.height, a.width); });
  memory_->update(env);
  return EmbeddingWrap::create(env, model, e);
}

Napi::Value SamModelWrap::embeddingFromCHWAsync(const Napi::CallbackInfo& info) {
  auto model = get(info.Env());
  const ChwArgs a = chwArgs(info, *model);
  return (new FromChwWorker(info.Env(), model, a))->track(memory_)->queue();
}

Napi::Value SamModelWrap::decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = get(env);
  require(env, info.Length() == 2 && info[0].IsObject() && info[1].IsObject(), "decode(embedding, prompt)");
  auto embedding = EmbeddingWrap::from(env, info[0], "embedding must be a NativeEmbedding")->get(env);
  auto p = info[1].As<Napi::Object>();
  auto num = [&](const char* key) {
    Napi::Value v = p.Get(key);
    require(env, v.IsNumber(), key);
    return v.As<Napi::Number>().Int64Value();
  };
  const auto& c = model->config();
  auto* w = new DecodeWorker(env, model, embedding);
  w->track(memory_);
  std::unique_ptr<DecodeWorker> guard(w);  // owned until queued
  auto& r = w->req;
  r.promptCount = num("promptCount");
  r.pointsPerPrompt = num("pointsPerPrompt");
  require(env, r.promptCount >= 1 && r.promptCount <= 4096 && r.pointsPerPrompt >= 0 && r.pointsPerPrompt <= 4096,
          "promptCount / pointsPerPrompt out of range");
  const size_t P = static_cast<size_t>(r.promptCount), N = static_cast<size_t>(r.pointsPerPrompt);
  const size_t L = static_cast<size_t>(c.lowResSize());
  w->points = copyTyped<float>(env, p.Get("points"), napi_float32_array, P * N * 2, "points");
  w->labels = copyTyped<int32_t>(env, p.Get("labels"), napi_int32_array, P * N, "labels");
  w->boxes = copyTyped<float>(env, p.Get("boxes"), napi_float32_array, P * 4, "boxes");
  w->maskInput =
      copyTyped<float>(env, p.Get("maskInput"), napi_float32_array, L * L, "maskInput");
  require(env, (N == 0) == w->points.empty() && w->points.empty() == w->labels.empty(), "points and labels");
  require(env, N > 0 || !w->boxes.empty() || !w->maskInput.empty(), "at least one prompt");
  Napi::Value mm = p.Get("multimask"), th = p.Get("threshold");
  require(env, mm.IsBoolean() && th.IsNumber(), "multimask / threshold");
  r.multimask = mm.As<Napi::Boolean>().Value();
  r.threshold = th.As<Napi::Number>().FloatValue();
  Napi::Value rle = p.Get("rle");
  require(env, rle.IsUndefined() || rle.IsBoolean(), "rle");
  r.rle = rle.IsBoolean() && rle.As<Napi::Boolean>().Value();
  guard.release();
  return w->queue();
}

void SamModelWrap::dispose(const Napi::CallbackInfo& info) {
  model_.reset();
  if (memory_) memory_->close(info.Env());
}

Napi::Value SamModelWrap::bytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(get(info.Env())->heldBytes()));
}

}  // namespace omniseg::addon
