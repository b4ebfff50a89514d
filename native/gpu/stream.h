// One in-flight GPU pass: its CUDA stream, its cuBLASLt handle and workspace, and the weight
// mirror of the model it runs. A Ctx whose gpu member points at a Stream runs every op on it.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <tuple>

#include "gpu/device.h"

namespace omniseg::gpu {

class Stream {
 public:
  // mirror: the model's weights (may be null for op tests that pass device pointers only).
  explicit Stream(const WeightMirror* mirror = nullptr);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cudaStream_t get() const { return stream_; }
  cublasLtHandle_t lt() const { return lt_; }
  void* workspace() const { return workspace_; }
  size_t workspaceBytes() const { return workspaceBytes_; }
  const float* resolve(const float* p) const { return mirror_ ? mirror_->resolve(p) : p; }
  // The half-precision copy of a mirrored weight (device pointer from resolve()), or null for
  // activations and when the mirror holds no half copies.
  const void* half(const float* device) const { return mirror_ ? mirror_->half(device) : nullptr; }
  // A device buffer of `bytes` derived from two mirrored weights a and b (na and nb: how much of
  // each it takes), made by `make` (work queued on this stream) the first time the key (a, b, na,
  // nb, bytes) is asked for and kept for the stream's life: relPosAttention's padded
  // [relPosH; relPosW] pair, once per layer instead of per call. Only for weights (half()
  // non-null): an activation's address is reused with other contents. Null while the stream is
  // being captured into a graph (make's work would only be recorded): the caller makes its own.
  const void* derived(const void* a, const void* b, int64_t na, int64_t nb, size_t bytes,
                      const std::function<void(void*)>& make);
  Precision precision() const { return precision_; }
  void setPrecision(Precision p) { precision_ = p; }
  // Waits for the work queued on the stream; throws its error, if any.
  void synchronize();

 private:
  const WeightMirror* mirror_;
  Precision precision_ = Precision::Fp32;
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspaceBytes_ = 32u << 20;
  struct FreeDevice {
    void operator()(void* p) const { deviceAllocator().free(p); }
  };
  using DerivedKey = std::tuple<const void*, const void*, int64_t, int64_t, size_t>;
  std::map<DerivedKey, std::unique_ptr<void, FreeDevice>> derived_;
};

}  // namespace omniseg::gpu
