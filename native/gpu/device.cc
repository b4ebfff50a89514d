#include "gpu/device.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/host_memory.h"
#include "gpu/check.h"

namespace omniseg::gpu {

BackendInfo probe() {
  BackendInfo info;
  cudaDriverGetVersion(&info.driverVersion);
  cudaRuntimeGetVersion(&info.runtimeVersion);
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    info.reason = std::string("no usable CUDA driver or device: ") + cudaGetErrorName(err);
    return info;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    DeviceInfo d;
    d.index = i;
    d.name = p.name;
    d.computeMajor = p.major;
    d.computeMinor = p.minor;
    d.totalMemory = p.totalGlobalMem;
    d.multiprocessors = p.multiProcessorCount;
    int previous = 0;
    if (cudaGetDevice(&previous) == cudaSuccess && cudaSetDevice(i) == cudaSuccess) {
      size_t freeBytes = 0, total = 0;
      if (cudaMemGetInfo(&freeBytes, &total) == cudaSuccess) d.freeMemory = freeBytes;
      cudaSetDevice(previous);
    }
    info.devices.push_back(d);
  }
  cudaGetLastError();
  info.available = !info.devices.empty();
  if (!info.available) info.reason = "no CUDA device found";
  return info;
}

namespace {
void* deviceAlloc(size_t bytes) {
  ensureUsable();
  void* p = nullptr;
  check(cudaMalloc(&p, bytes), "cudaMalloc");
  return p;
}
void deviceFree(void* p) { cudaFree(p); }

void* pinnedAlloc(size_t bytes) {
  void* p = nullptr;
  // Portable: usable for copies on any device's streams.
  if (cudaHostAlloc(&p, bytes, cudaHostAllocPortable) != cudaSuccess) {
    cudaGetLastError();  // not sticky: the buffer comes from the heap instead
    return nullptr;
  }
  return p;
}
void pinnedFree(void* p) {
  if (cudaFreeHost(p) != cudaSuccess) cudaGetLastError();
}
}  // namespace

void installPinnedHostMemory() {
  static std::once_flag once;
  std::call_once(once, [] {
    size_t mb = 256;
    if (const char* v = std::getenv("OMNISEG_PINNED_MB"); v && *v) {
      char* end = nullptr;
      const unsigned long long n = std::strtoull(v, &end, 10);
      if (end && *end == '\0' && n <= (size_t{1} << 20)) mb = static_cast<size_t>(n);
    }
    if (mb > 0) host_memory::installPinned({pinnedAlloc, pinnedFree}, mb << 20);
  });
}

const Allocator& deviceAllocator() {
  static const Allocator a{deviceAlloc, deviceFree, true};
  return a;
}

void WeightMirror::add(const float* host, size_t count) {
  if (!host || count == 0) return;
  const uintptr_t b = reinterpret_cast<uintptr_t>(host), e = b + count * sizeof(float);
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), b,
                             [](uintptr_t v, const Range& r) { return v < r.begin; });
  if (it != ranges_.begin() && std::prev(it)->end >= e && std::prev(it)->begin <= b) return;  // already there
  FloatBuffer buf(count, deviceAllocator());
  OMNISEG_CUDA_CHECK(cudaMemcpy(buf.data(), host, count * sizeof(float), cudaMemcpyHostToDevice));
  ranges_.insert(it, Range{b, e, buf.data()});
  buffers_.push_back(std::move(buf));
  bytes_ += count * sizeof(float);
}

const float* WeightMirror::resolve(const float* p) const {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), a,
                             [](uintptr_t v, const Range& r) { return v < r.begin; });
  if (it == ranges_.begin()) return p;
  const Range& r = *std::prev(it);
  if (a >= r.end) return p;
  return r.device + (a - r.begin) / sizeof(float);
}

void WeightMirror::addHalfCopies(Precision p) {
  if (p == Precision::Fp32) return;
  std::vector<uint16_t> host;
  for (const Range& r : ranges_) {
    const size_t n = (r.end - r.begin) / sizeof(float);
    const float* src = reinterpret_cast<const float*>(r.begin);  // the host tensor
    host.resize(n);
    for (size_t i = 0; i < n; ++i) {
      if (p == Precision::Fp16) {
        const __half v = __float2half_rn(src[i]);
        std::memcpy(&host[i], &v, 2);
      } else {
        const __nv_bfloat16 v = __float2bfloat16_rn(src[i]);
        std::memcpy(&host[i], &v, 2);
      }
    }
    FloatBuffer buf((n + 1) / 2, deviceAllocator());
    OMNISEG_CUDA_CHECK(cudaMemcpy(buf.data(), host.data(), n * 2, cudaMemcpyHostToDevice));
    const uintptr_t db = reinterpret_cast<uintptr_t>(r.device);
    halves_.push_back({db, db + n * sizeof(float), reinterpret_cast<const uint16_t*>(buf.data())});
    buffers_.push_back(std::move(buf));
    bytes_ += n * 2;
  }
  std::sort(halves_.begin(), halves_.end(),
            [](const HalfRange& a, const HalfRange& b) { return a.begin < b.begin; });
}

const void* WeightMirror::half(const float* device) const {
  const uintptr_t a = reinterpret_cast<uintptr_t>(device);
  auto it = std::upper_bound(halves_.begin(), halves_.end(), a,
                             [](uintptr_t v, const HalfRange& r) { return v < r.begin; });
  if (it == halves_.begin()) return nullptr;
  const HalfRange& r = *std::prev(it);
  if (a >= r.end) return nullptr;
  return r.half + (a - r.begin) / sizeof(float);
}

}  // namespace omniseg::gpu
