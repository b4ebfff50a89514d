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
namespace ops::cpu::amx {
class WeightPacks;
}

class Runtime {
 public:
  // Per-worker state a model keeps between calls (e.g. SAM's recorded decode graphs).
  struct WorkerState {
    virtual ~WorkerState() = default;
    // Memory it keeps (host or device), for heldBytes(); read while the worker is idle.
    virtual size_t bytes() const { return 0; }
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

  // While it lives, the matrix products run on ctx take the model's CpuMatmul (a Lease's ctx runs
  // them in fp32). The image encoders (SAM's ViT, CLIP's vision tower) take it; the text tower
  // and the decoders, light next to them, stay in fp32, as on CUDA, where `precision` is the
  // image encoder's.
  class EncoderMatmul {
   public:
    EncoderMatmul(const Runtime& rt, Ctx& ctx) : ctx_(ctx), saved_(ctx.packs) { ctx.packs = rt.packs_.get(); }
    ~EncoderMatmul() { ctx_.packs = saved_; }
    EncoderMatmul(const EncoderMatmul&) = delete;
    EncoderMatmul& operator=(const EncoderMatmul&) = delete;

   private:
    Ctx& ctx_;
    ops::cpu::amx::WeightPacks* saved_;
  };

  // threads ≥ 1. device Cuda needs a build with the CUDA backend (throws otherwise). matmul: of
  // the image encoder's matrix products (linear layers, attention) on CPU (ignored on CUDA).
  Runtime(int threads, Device device, CpuMatmul matmul = CpuMatmul::Bf16x3);
  ~Runtime();

  Device device() const { return device_; }
  ThreadPool& pool() { return pool_; }

  // CUDA: copies every tensor the model read from `weights`, and the `extra` host buffers
  // (computed at load), to the device, with half copies for a half precision. CPU with
  // CpuMatmul::Bf16x3 on a CPU with AMX: registers them for packing into AMX tiles on first use.
  void mirror(const WeightStore& weights, const std::vector<std::pair<const float*, size_t>>& extra,
              Precision precision);
  // What the image encoder's matrix products (linear layers, attention) run on CPU: Bf16x3 only
  // where it was asked for and the CPU has AMX.
  CpuMatmul cpuMatmul() const;

  // Bytes this runtime keeps between calls: the arenas and states of its idle workers (host, or
  // device on CUDA: they keep what they grew to), the packed weights, the device copies of the
  // weights.
  // Thread-safe; a worker in a call is counted once it is handed back.
  size_t heldBytes() const;

 private:
  std::unique_ptr<Worker> take();
  void give(std::unique_ptr<Worker> w);

  Device device_;
  ThreadPool pool_;
  CpuMatmul matmul_;
  std::unique_ptr<gpu::WeightMirror> mirror_;
  std::unique_ptr<ops::cpu::amx::WeightPacks> packs_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Worker>> free_;
};

}  // namespace omniseg
