// The CUDA backend's process-wide pieces: device discovery, device memory, and the mirror that
// maps model weights (host pointers into the checkpoint) to their copies in device memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/arena.h"
#include "core/backend.h"

namespace omniseg::gpu {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int computeMajor = 0, computeMinor = 0;
  size_t totalMemory = 0, freeMemory = 0;
  int multiprocessors = 0;
};

struct BackendInfo {
  bool available = false;   // a usable device and driver were found
  std::string reason;       // why not, when unavailable
  int driverVersion = 0, runtimeVersion = 0;
  std::vector<DeviceInfo> devices;
};

// Probes the driver and devices; never throws (a missing driver is a reason, not an error).
BackendInfo probe();

// Result buffers (HostVector) from page-locked memory from now on (core/host_memory.h), up to
// OMNISEG_PINNED_MB MiB held (default 256; 0 keeps them pageable). Idempotent.
void installPinnedHostMemory();

// cudaMalloc / cudaFree; allocation failure throws omniseg::Error ("CUDA out of memory ...").
const Allocator& deviceAllocator();

// Host → device copies of the tensors a model reads; resolve() maps any pointer inside a mirrored
// host range to the same offset in its device copy, and returns other pointers unchanged
// (activations are device memory already).
class WeightMirror {
 public:
  void add(const float* host, size_t count);
  const float* resolve(const float* p) const;
  // Adds an fp16 or bf16 copy of every tensor added so far (the half-precision mode's GEMM
  // operands); half() maps a device pointer from resolve() to the same element of that copy.
  void addHalfCopies(Precision p);
  const void* half(const float* device) const;
  size_t bytes() const { return bytes_; }

 private:
  struct Range {
    uintptr_t begin, end;
    const float* device;
  };
  struct HalfRange {
    uintptr_t begin, end;  // of the fp32 device copy
    const uint16_t* half;
  };
  std::vector<Range> ranges_;      // sorted by begin, disjoint
  std::vector<HalfRange> halves_;  // sorted by begin, disjoint
  std::vector<FloatBuffer> buffers_;
  size_t bytes_ = 0;
};

}  // namespace omniseg::gpu
