// omniseg native addon: registration only.
#include <napi.h>

#include <thread>

#include "addon/clipseg_image.h"
#include "addon/clipseg_model.h"
#include "addon/common.h"
#include "addon/embedding.h"
#include "addon/rasters.h"
#include "addon/sam_model.h"
#include "ops/cpu/gemm_amx.h"
#include "ops/ops.h"
#ifdef OMNISEG_CUDA
#include "gpu/check.h"
#include "gpu/device.h"
#endif

namespace omniseg::addon {

Napi::Value hardwareThreads(const Napi::CallbackInfo& info) {
  const unsigned n = std::thread::hardware_concurrency();
  return Napi::Number::New(info.Env(), n == 0 ? 1 : n);
}

// {amx}: whether this CPU runs the bf16x3 image encoders (AMX tiles usable by this process).
Napi::Value cpuInfo(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  o.Set("amx", ops::cpu::amx::supported());
  return o;
}

// {compiled, available, reason?, driverVersion?, runtimeVersion?, devices: [{index, name,
// computeCapability, totalMemory, freeMemory, multiprocessors}]}: what `omniseg info` reports.
Napi::Value cudaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  auto devices = Napi::Array::New(env);
#ifdef OMNISEG_CUDA
  const gpu::BackendInfo b = gpu::probe();
  const std::string failure = gpu::failure();
  o.Set("compiled", true);
  o.Set("available", b.available && failure.empty());
  if (!b.available) o.Set("reason", b.reason);
  if (!failure.empty()) o.Set("reason", failure);
  o.Set("driverVersion", b.driverVersion);
  o.Set("runtimeVersion", b.runtimeVersion);
  for (size_t i = 0; i < b.devices.size(); ++i) {
    const auto& d = b.devices[i];
    auto x = Napi::Object::New(env);
    x.Set("index", d.index);
    x.Set("name", d.name);
    x.Set("computeCapability", std::to_string(d.computeMajor) + "." + std::to_string(d.computeMinor));
    x.Set("totalMemory", static_cast<double>(d.totalMemory));
    x.Set("freeMemory", static_cast<double>(d.freeMemory));
    x.Set("multiprocessors", d.multiprocessors);
    devices.Set(static_cast<uint32_t>(i), x);
  }
#else
  o.Set("compiled", false);
  o.Set("available", false);
  o.Set("reason", "this build of omniseg has no CUDA backend (build it with `npm run build:cuda`)");
#endif
  o.Set("devices", devices);
  return o;
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  ops::initBlas();
  auto* d = new AddonData();
  d->samModel = Napi::Persistent(SamModelWrap::define(env));
  d->embedding = Napi::Persistent(EmbeddingWrap::define(env));
  d->clipSegModel = Napi::Persistent(ClipSegModelWrap::define(env));
  d->clipSegImage = Napi::Persistent(ClipSegImageWrap::define(env));
  env.SetInstanceData(d);
  exports.Set("loadSam", Napi::Function::New(env, SamModelWrap::load, "loadSam"));
  exports.Set("loadClipSeg", Napi::Function::New(env, ClipSegModelWrap::load, "loadClipSeg"));
  exports.Set("hardwareThreads", Napi::Function::New(env, hardwareThreads, "hardwareThreads"));
  exports.Set("cudaInfo", Napi::Function::New(env, cudaInfo, "cudaInfo"));
  exports.Set("cpuInfo", Napi::Function::New(env, cpuInfo, "cpuInfo"));
  exports.Set("tracePolygons", Napi::Function::New(env, tracePolygons, "tracePolygons"));
  exports.Set("tracePolygonsAsync", Napi::Function::New(env, tracePolygonsAsync, "tracePolygonsAsync"));
  exports.Set("tracePolygonsJsonAsync", Napi::Function::New(env, tracePolygonsJsonAsync, "tracePolygonsJsonAsync"));
  exports.Set("maskGreyAsync", Napi::Function::New(env, maskGreyAsync, "maskGreyAsync"));
  exports.Set("maskBytes", Napi::Function::New(env, maskBytes, "maskBytes"));
  exports.Set("maskToCounts", Napi::Function::New(env, maskToCounts, "maskToCounts"));
  exports.Set("maskBounds", Napi::Function::New(env, maskBounds, "maskBounds"));
  exports.Set("countsString", Napi::Function::New(env, countsString, "countsString"));
  exports.Set("runsBounds", Napi::Function::New(env, runsBounds, "runsBounds"));
  exports.Set("findInstances", Napi::Function::New(env, findInstances, "findInstances"));
  exports.Set("findInstancesAsync", Napi::Function::New(env, findInstancesAsync, "findInstancesAsync"));
  exports.Set("componentLabels", Napi::Function::New(env, componentLabels, "componentLabels"));
  exports.Set("maskCoverage", Napi::Function::New(env, maskCoverage, "maskCoverage"));
  exports.Set("maskCoverageAsync", Napi::Function::New(env, maskCoverageAsync, "maskCoverageAsync"));
  exports.Set("composeVisualPromptAsync",
              Napi::Function::New(env, composeVisualPromptAsync, "composeVisualPromptAsync"));
  exports.Set("quantizeUnitAsync", Napi::Function::New(env, quantizeUnitAsync, "quantizeUnitAsync"));
  exports.Set("spliceBase64Async", Napi::Function::New(env, spliceBase64Async, "spliceBase64Async"));
  return exports;
}

}  // namespace omniseg::addon

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return omniseg::addon::init(env, exports); }

NODE_API_MODULE(omniseg, Init)
