#include "models/runtime.h"

#include "core/error.h"
#include "gpu/device.h"  // plain C++: the WeightMirror type (its code is built with CUDA only)
#include "ops/cpu/gemm_amx.h"
#ifdef OMNISEG_CUDA
#include "gpu/stream.h"
#endif

namespace omniseg {

Runtime::Worker::~Worker() {
#ifdef OMNISEG_CUDA
  state.reset();  // may hold device work recorded on the stream
  delete stream;
#endif
}

Runtime::Lease::Lease(Runtime& rt, Precision precision)
    : rt_(rt), w_(rt.take()), ctx_{rt.pool_, *w_->arena, nullptr} {
#ifdef OMNISEG_CUDA
  ctx_.gpu = w_->stream;
  if (ctx_.gpu) ctx_.gpu->setPrecision(precision);
#endif
}

Runtime::Lease::~Lease() { rt_.give(std::move(w_)); }

Runtime::Runtime(int threads, Device device, CpuMatmul matmul)
    : device_(device), pool_(threads), matmul_(matmul) {
#ifdef OMNISEG_CUDA
  if (device == Device::Cuda) gpu::installPinnedHostMemory();
#else
  if (device == Device::Cuda)
    throw Error("this build of omniseg has no CUDA backend (build it with `npm run build:cuda`)");
#endif
}

Runtime::~Runtime() = default;

void Runtime::mirror(const WeightStore& weights,
                     const std::vector<std::pair<const float*, size_t>>& extra, Precision precision) {
  // every model tensor and extra buffer, into the packs (CPU) or the device mirror (CUDA)
  const auto addAll = [&](auto& target) {
    for (const auto& t : weights.handedOut()) target.add(t.data, t.count);
    for (const auto& [data, count] : extra) target.add(data, count);
  };
  if (device_ == Device::Cpu) {
    if (matmul_ != CpuMatmul::Bf16x3 || !ops::cpu::amx::supported()) return;
    // a packed weight's fp32 pages in the checkpoint's mapping are not read again (the store
    // outlives the Runtime: models declare it first)
    packs_ = std::make_unique<ops::cpu::amx::WeightPacks>(
        [&weights](const float* W, size_t count) { weights.releaseMapped(W, count); });
    addAll(*packs_);
    return;
  }
#ifdef OMNISEG_CUDA
  mirror_ = std::make_unique<gpu::WeightMirror>();
  addAll(*mirror_);
  mirror_->addHalfCopies(precision);
#endif
}

CpuMatmul Runtime::cpuMatmul() const { return packs_ ? CpuMatmul::Bf16x3 : CpuMatmul::Fp32; }

size_t Runtime::heldBytes() const {
  size_t bytes = packs_ ? packs_->bytes() : 0;
#ifdef OMNISEG_CUDA
  if (mirror_) bytes += mirror_->bytes();
#endif
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& w : free_) bytes += w->arena->capacity() + (w->state ? w->state->bytes() : 0);
  return bytes;
}

std::unique_ptr<Runtime::Worker> Runtime::take() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_.empty()) {
      auto w = std::move(free_.back());
      free_.pop_back();
      return w;
    }
  }
  auto w = std::make_unique<Worker>();
#ifdef OMNISEG_CUDA
  if (device_ == Device::Cuda) {
    w->arena = std::make_unique<Arena>(gpu::deviceAllocator());
    w->stream = new gpu::Stream(mirror_.get());
    return w;
  }
#endif
  w->arena = std::make_unique<Arena>();
  return w;
}

void Runtime::give(std::unique_ptr<Worker> w) {
  w->arena->reset();
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(std::move(w));
}

}  // namespace omniseg
