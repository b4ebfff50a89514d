#include "gpu/stream.h"

#include "gpu/check.h"

namespace omniseg::gpu {

Stream::Stream(const WeightMirror* mirror) : mirror_(mirror) {
  ensureUsable();
  OMNISEG_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  try {
    OMNISEG_CUDA_CHECK(cublasLtCreate(&lt_));
    OMNISEG_CUDA_CHECK(cudaMalloc(&workspace_, workspaceBytes_));
  } catch (...) {
    if (lt_) cublasLtDestroy(lt_);
    cudaStreamDestroy(stream_);
    throw;
  }
}

Stream::~Stream() {
  cudaStreamSynchronize(stream_);
  derived_.clear();
  cudaFree(workspace_);
  cublasLtDestroy(lt_);
  cudaStreamDestroy(stream_);
}

const void* Stream::derived(const void* a, const void* b, int64_t na, int64_t nb, size_t bytes,
                            const std::function<void(void*)>& make) {
  const DerivedKey key{a, b, na, nb, bytes};
  auto it = derived_.find(key);
  if (it != derived_.end()) return it->second.get();
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  OMNISEG_CUDA_CHECK(cudaStreamIsCapturing(stream_, &capturing));
  if (capturing != cudaStreamCaptureStatusNone) return nullptr;
  std::unique_ptr<void, FreeDevice> buf(deviceAllocator().alloc(bytes));
  make(buf.get());
  return derived_.emplace(key, std::move(buf)).first->second.get();
}

void Stream::synchronize() { OMNISEG_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace omniseg::gpu
