// JS object wrapping a loaded CLIPSeg model; every heavy call is an AsyncWorker (off the JS
// thread).
#pragma once
#include <napi.h>

#include <memory>

#include "addon/common.h"
#include "models/clipseg/clipseg.h"

namespace omniseg::addon {

class ClipSegModelWrap : public TaggedWrap<ClipSegModelWrap> {
 public:
  static constexpr napi_type_tag kTypeTag = {0x6f6d6e6973656704ULL, 0x58e23d91a6c40b44ULL};
  static Napi::Function define(Napi::Env env);
  explicit ClipSegModelWrap(const Napi::CallbackInfo& info);
  ~ClipSegModelWrap() override {
    if (memory_) memory_->close(Env());
  }

  // loadClipSeg(dir: string, { threads, device? }) → Promise<ClipSegModelWrap>
  static Napi::Value load(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<clipseg::ClipSegModel> get(Napi::Env env) const;
  Napi::Value config(const Napi::CallbackInfo& info);
  Napi::Value textEmbedding(const Napi::CallbackInfo& info);
  Napi::Value imageEmbedding(const Napi::CallbackInfo& info);
  Napi::Value forward(const Napi::CallbackInfo& info);
  // encodeImage(pixels, width, height) → Promise<NativeClipSegImage>: the vision tower alone
  Napi::Value encodeImage(const Napi::CallbackInfo& info);
  // decode(image, embedding [N · projectionDim]) → Promise<{size, logits, conditional, ms}>
  Napi::Value decode(const Napi::CallbackInfo& info);
  void dispose(const Napi::CallbackInfo& info);
  Napi::Value bytes(const Napi::CallbackInfo& info);

  std::shared_ptr<clipseg::ClipSegModel> model_;
  std::shared_ptr<ModelMemory> memory_;  // model_->heldBytes() while held
};

}  // namespace omniseg::addon
