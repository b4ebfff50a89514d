// What a model needs to run calls on its device, shared by every model: the host thread pool,
// the device copies of its weights (CUDA), and the per-call workers — an arena and, on CUDA, a
// stream — kept between calls and handed to one call at a time (concurrent calls each get
// their own).
#pragma once
#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "core/arena.h"
#include "core/backend.h"
#include "core/denormals.h"
#include "core/thread_pool.h"
#include "core/weights.h"
#include "ops/ops.h"

namespace omniseg {

namespace gpu {
class WeightMirror;
}

class Runtime {
 public:
  // Per-worker state a model keeps between calls (e.g. SAM's recorded decode graphs).
  struct WorkerState {
    virtual ~WorkerState() = default;
  };
  struct Worker {
    ~Worker();
    std::unique_ptr<Arena> arena;
    gpu::Stream* stream = nullptr;  // owned; null on CPU
    std::unique_ptr<WorkerState> state;
  };

  // A worker held for one call, handed back (arena reset) however the call ends. precision:
  // of the GEMMs and attention on CUDA (ignored on CPU).
  class Lease {
   public:
    explicit Lease(Runtime& rt, Precision precision = Precision::Fp32);
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Ctx& ctx() { return ctx_; }
    Worker& worker() { return *w_; }

   private:
    FlushDenormals ftz_;  // on the calling thread, which runs kernels too, for the call's length
    Runtime& rt_;
    std::unique_ptr<Worker> w_;
    Ctx ctx_;
  };

  // threads ≥ 1. device Cuda needs a build with the CUDA backend (throws otherwise).
  Runtime(int threads, Device device);
  ~Runtime();

  Device device() const { return device_; }
  ThreadPool& pool() { return pool_; }

  // CUDA: copies every tensor the model read from `weights`, and the `extra` host buffers
  // (computed at load), to the device, with half copies for a half precision. No-op on CPU.
  void mirror(const WeightStore& weights, const std::vector<std::pair<const float*, size_t>>& extra,
              Precision precision);

 private:
  std::unique_ptr<Worker> take();
  void give(std::unique_ptr<Worker> w);

  Device device_;
  ThreadPool pool_;
  std::unique_ptr<gpu::WeightMirror> mirror_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Worker>> free_;
};

}  // namespace omniseg
