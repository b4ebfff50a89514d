#include "addon/embedding.h"

#include "addon/common.h"
#include "addon/promise_worker.h"

namespace omniseg::addon {

Napi::Function EmbeddingWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeEmbedding",
                     {InstanceAccessor<&EmbeddingWrap::width>("width"),
                      InstanceAccessor<&EmbeddingWrap::height>("height"),
                      InstanceAccessor<&EmbeddingWrap::resizedWidth>("resizedWidth"),
                      InstanceAccessor<&EmbeddingWrap::resizedHeight>("resizedHeight"),
                      InstanceAccessor<&EmbeddingWrap::encodeMs>("encodeMs"),
                      InstanceAccessor<&EmbeddingWrap::bytes>("bytes"),
                      InstanceAccessor<&EmbeddingWrap::disposed>("disposed"),
                      InstanceMethod<&EmbeddingWrap::toCHW>("toCHW"),
                      InstanceMethod<&EmbeddingWrap::toCHWAsync>("toCHWAsync"),
                      InstanceMethod<&EmbeddingWrap::dispose>("dispose")});
}

namespace {
struct Init {
  std::shared_ptr<sam::SamModel> model;
  std::shared_ptr<sam::Embedding> embedding;
};
}  // namespace

Napi::Object EmbeddingWrap::create(Napi::Env env, std::shared_ptr<sam::SamModel> model,
                                   std::shared_ptr<sam::Embedding> embedding) {
  Init init{std::move(model), std::move(embedding)};
  return data(env).embedding.New({Napi::External<Init>::New(env, &init)});
}

EmbeddingWrap::EmbeddingWrap(const Napi::CallbackInfo& info) : TaggedWrap<EmbeddingWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(info.Env(), "NativeEmbedding cannot be constructed directly").ThrowAsJavaScriptException();
    return;
  }
  auto* init = info[0].As<Napi::External<Init>>().Data();
  model_ = init->model;
  embedding_ = init->embedding;
  original_ = embedding_->original;
  resized_ = embedding_->resized;
  encodeMs_ = embedding_->encodeMs;
  bytes_ = model_->embeddingBytes();
  external_.hold(info.Env(), bytes_);
}

std::shared_ptr<sam::Embedding> EmbeddingWrap::get(Napi::Env env) const {
  if (!embedding_) throw Napi::Error::New(env, "The embedding has been disposed");
  return embedding_;
}

Napi::Value EmbeddingWrap::width(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(original_.width));
}
Napi::Value EmbeddingWrap::height(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(original_.height));
}
Napi::Value EmbeddingWrap::resizedWidth(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(resized_.width));
}
Napi::Value EmbeddingWrap::resizedHeight(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(resized_.height));
}
Napi::Value EmbeddingWrap::encodeMs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), encodeMs_);
}
Napi::Value EmbeddingWrap::bytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(bytes_));
}
Napi::Value EmbeddingWrap::disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !embedding_);
}

namespace {

// The embedding as float32 [C, E, E] in a HostVector: pinned on CUDA, so the download lands in
// it (toCHW on the calling thread, ToChwWorker in a worker thread).
HostVector<float> chwOf(sam::SamModel& model, const sam::Embedding& e) {
  const auto& c = model.config();
  const int64_t E = c.gridSize(), C = c.vision.outputChannels;
  HostVector<float> chw(static_cast<size_t>(C * E * E));  // (uninitialised: the download fills it)
  model.embeddingToCHW(e, chw.data());
  return chw;
}

// toCHW in a worker thread; holds the model and the embedding, so that disposing either meanwhile
// frees nothing it reads.
class ToChwWorker : public PromiseWorker {
 public:
  ToChwWorker(Napi::Env env, std::shared_ptr<sam::SamModel> model, std::shared_ptr<sam::Embedding> e)
      : PromiseWorker(env), model_(std::move(model)), embedding_(std::move(e)) {}

 protected:
  void run() override { chw_ = chwOf(*model_, *embedding_); }
  Napi::Value result() override { return toTypedArray(Env(), std::move(chw_)); }

 private:
  std::shared_ptr<sam::SamModel> model_;
  std::shared_ptr<sam::Embedding> embedding_;
  HostVector<float> chw_;
};

}  // namespace

Napi::Value EmbeddingWrap::toCHW(const Napi::CallbackInfo& info) {
  auto e = get(info.Env());
  return toTypedArray(info.Env(), onJsThread(info.Env(), [&] { return chwOf(*model_, *e); }));
}

Napi::Value EmbeddingWrap::toCHWAsync(const Napi::CallbackInfo& info) {
  auto e = get(info.Env());
  return (new ToChwWorker(info.Env(), model_, std::move(e)))->queue();
}

void EmbeddingWrap::dispose(const Napi::CallbackInfo& info) {
  embedding_.reset();
  model_.reset();
  external_.release(info.Env());
}

}  // namespace omniseg::addon
