// JS object holding a CLIPSeg query image's vision-tower activations (ImageFeatures) in native
// memory: made by NativeClipSegModel.encodeImage, read by its decode, freed by dispose().
#pragma once
#include <napi.h>

#include <memory>

#include "addon/common.h"
#include "models/clipseg/clipseg.h"

namespace omniseg::addon {

class ClipSegImageWrap : public TaggedWrap<ClipSegImageWrap> {
 public:
  static constexpr napi_type_tag kTypeTag = {0x6f6d6e6973656702ULL, 0x27a94c6e5d13b822ULL};
  static Napi::Function define(Napi::Env env);
  static Napi::Object create(Napi::Env env, std::shared_ptr<const clipseg::ImageFeatures> features);
  explicit ClipSegImageWrap(const Napi::CallbackInfo& info);
  ~ClipSegImageWrap() override { external_.release(Env()); }

  // The features, or a JS Error when disposed.
  std::shared_ptr<const clipseg::ImageFeatures> get(Napi::Env env) const;

 private:
  Napi::Value grid(const Napi::CallbackInfo& info);
  Napi::Value encodeMs(const Napi::CallbackInfo& info);
  Napi::Value bytes(const Napi::CallbackInfo& info);
  Napi::Value disposed(const Napi::CallbackInfo& info);
  void dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<const clipseg::ImageFeatures> features_;
  int64_t grid_ = 0;
  double encodeMs_ = 0;
  int64_t bytes_ = 0;
  ExternalMemory external_;  // bytes_ while the features are held
};

}  // namespace omniseg::addon
