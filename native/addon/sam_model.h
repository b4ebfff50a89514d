// JS object wrapping a loaded SAM model; every heavy call is an AsyncWorker (off the JS thread).
#pragma once
#include <napi.h>

#include <memory>

#include "addon/common.h"
#include "models/sam/sam.h"

namespace omniseg::addon {

class SamModelWrap : public TaggedWrap<SamModelWrap> {
 public:
  static constexpr napi_type_tag kTypeTag = {0x6f6d6e6973656703ULL, 0xc4518e0b7f2a6933ULL};
  static Napi::Function define(Napi::Env env);
  explicit SamModelWrap(const Napi::CallbackInfo& info);
  ~SamModelWrap() override {
    if (memory_) memory_->close(Env());
  }

  // loadSam(dir: string, { threads }) → Promise<SamModelWrap>
  static Napi::Value load(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<sam::SamModel> get(Napi::Env env) const;
  Napi::Value config(const Napi::CallbackInfo& info);
  Napi::Value encode(const Napi::CallbackInfo& info);
  Napi::Value encodeBatch(const Napi::CallbackInfo& info);
  Napi::Value embeddingFromCHW(const Napi::CallbackInfo& info);
  // embeddingFromCHW in a worker thread (from a copy of the data).
  Napi::Value embeddingFromCHWAsync(const Napi::CallbackInfo& info);
  Napi::Value decode(const Napi::CallbackInfo& info);
  void dispose(const Napi::CallbackInfo& info);
  Napi::Value bytes(const Napi::CallbackInfo& info);

  std::shared_ptr<sam::SamModel> model_;
  std::shared_ptr<ModelMemory> memory_;  // model_->heldBytes() while held
};

}  // namespace omniseg::addon
