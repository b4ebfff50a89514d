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
  cudaFree(workspace_);
  cublasLtDestroy(lt_);
  cudaStreamDestroy(stream_);
}

void Stream::synchronize() { OMNISEG_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace omniseg::gpu
