// omniseg native addon: registration only.
#include <napi.h>

#include <thread>

#include "addon/common.h"
#include "addon/embedding.h"
#include "addon/sam_model.h"
#include "ops/ops.h"

namespace omniseg::addon {

Napi::Value hardwareThreads(const Napi::CallbackInfo& info) {
  const unsigned n = std::thread::hardware_concurrency();
  return Napi::Number::New(info.Env(), n == 0 ? 1 : n);
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  ops::initBlas();
  auto* d = new AddonData();
  d->samModel = Napi::Persistent(SamModelWrap::define(env));
  d->embedding = Napi::Persistent(EmbeddingWrap::define(env));
  env.SetInstanceData(d);
  exports.Set("loadSam", Napi::Function::New(env, SamModelWrap::load, "loadSam"));
  exports.Set("hardwareThreads", Napi::Function::New(env, hardwareThreads, "hardwareThreads"));
  return exports;
}

}  // namespace omniseg::addon

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return omniseg::addon::init(env, exports); }

NODE_API_MODULE(omniseg, Init)
