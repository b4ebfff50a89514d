// JS object wrapping an encoded image (sam::Embedding): sizes, timings, bytes, toCHW(),
// toCHWAsync() (the same in a worker thread), dispose().
#pragma once
#include <napi.h>

#include <memory>

#include "addon/common.h"
#include "models/sam/sam.h"

namespace omniseg::addon {

class EmbeddingWrap : public TaggedWrap<EmbeddingWrap> {
 public:
  static constexpr napi_type_tag kTypeTag = {0x6f6d6e6973656701ULL, 0x9d3c5b2a41e07f11ULL};
  static Napi::Function define(Napi::Env env);
  static Napi::Object create(Napi::Env env, std::shared_ptr<sam::SamModel> model,
                             std::shared_ptr<sam::Embedding> embedding);
  explicit EmbeddingWrap(const Napi::CallbackInfo& info);
  ~EmbeddingWrap() override { external_.release(Env()); }

  // The live embedding; throws a JS Error if disposed.
  std::shared_ptr<sam::Embedding> get(Napi::Env env) const;

 private:
  Napi::Value width(const Napi::CallbackInfo& info);
  Napi::Value height(const Napi::CallbackInfo& info);
  Napi::Value resizedWidth(const Napi::CallbackInfo& info);
  Napi::Value resizedHeight(const Napi::CallbackInfo& info);
  Napi::Value encodeMs(const Napi::CallbackInfo& info);
  Napi::Value bytes(const Napi::CallbackInfo& info);
  Napi::Value disposed(const Napi::CallbackInfo& info);
  Napi::Value toCHW(const Napi::CallbackInfo& info);
  Napi::Value toCHWAsync(const Napi::CallbackInfo& info);
  void dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<sam::SamModel> model_;
  std::shared_ptr<sam::Embedding> embedding_;
  sam::Size original_{0, 0}, resized_{0, 0};
  double encodeMs_ = 0;
  int64_t bytes_ = 0;  // SamModel::embeddingBytes(), kept past dispose()
  ExternalMemory external_;  // bytes_ while the embedding is held
};

}  // namespace omniseg::addon
