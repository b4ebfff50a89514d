#include "addon/clipseg_image.h"

#include "addon/common.h"

namespace omniseg::addon {

Napi::Function ClipSegImageWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeClipSegImage",
                     {InstanceAccessor<&ClipSegImageWrap::grid>("grid"),
                      InstanceAccessor<&ClipSegImageWrap::encodeMs>("encodeMs"),
                      InstanceAccessor<&ClipSegImageWrap::bytes>("bytes"),
                      InstanceAccessor<&ClipSegImageWrap::disposed>("disposed"),
                      InstanceMethod<&ClipSegImageWrap::dispose>("dispose")});
}

namespace {
struct Init {
  std::shared_ptr<const clipseg::ImageFeatures> features;
};
}  // namespace

Napi::Object ClipSegImageWrap::create(Napi::Env env, std::shared_ptr<const clipseg::ImageFeatures> features) {
  Init init{std::move(features)};
  return data(env).clipSegImage.New({Napi::External<Init>::New(env, &init)});
}

ClipSegImageWrap::ClipSegImageWrap(const Napi::CallbackInfo& info) : TaggedWrap<ClipSegImageWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(info.Env(), "NativeClipSegImage cannot be constructed directly").ThrowAsJavaScriptException();
    return;
  }
  features_ = info[0].As<Napi::External<Init>>().Data()->features;
  grid_ = features_->grid;
  encodeMs_ = features_->ms;
  bytes_ = static_cast<int64_t>(features_->acts.size() * sizeof(float));
  external_.hold(info.Env(), bytes_);
}

std::shared_ptr<const clipseg::ImageFeatures> ClipSegImageWrap::get(Napi::Env env) const {
  if (!features_) throw Napi::Error::New(env, "The encoded image has been disposed");
  return features_;
}

Napi::Value ClipSegImageWrap::grid(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(grid_));
}
Napi::Value ClipSegImageWrap::encodeMs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), encodeMs_);
}
Napi::Value ClipSegImageWrap::bytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(bytes_));
}
Napi::Value ClipSegImageWrap::disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !features_);
}
void ClipSegImageWrap::dispose(const Napi::CallbackInfo& info) {
  features_.reset();
  external_.release(info.Env());
}

}  // namespace omniseg::addon
