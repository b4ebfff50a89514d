// The op library every model is written against: one interface (ops/op_list.inc), two
// backends. Model code calls omniseg::ops::*; each dispatcher (ops/ops.cc) runs the CPU
// implementation (ops/cpu/: OpenBLAS GEMM + vectorised kernels) or, when the Ctx carries a GPU
// stream, the CUDA one (ops/cuda/: cuBLASLt + own kernels). Model code never branches on the
// backend.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/arena.h"
#include "core/thread_pool.h"

namespace omniseg {

namespace gpu {
class Stream;
}
namespace ops::cpu::amx {
class WeightPacks;
}

// What an op needs besides its operands: threads and scratch memory of the running pass, and
// the GPU stream the pass runs on (null: CPU). The arena holds memory of the same backend.
// packs (CPU): the model's weights packed for AMX tiles (ops/cpu/gemm_amx.h); null: every
// GEMM in fp32 through OpenBLAS.
struct Ctx {
  ThreadPool& pool;
  Arena& arena;
  gpu::Stream* gpu = nullptr;
  ops::cpu::amx::WeightPacks* packs = nullptr;
};

namespace ops {

// QuickGelu: x·sigmoid(1.702·x) (transformers' quick_gelu, CLIP).
enum class Act { None, Gelu, Relu, QuickGelu };

// Sets the BLAS library to run single-threaded in the calling thread; omniseg parallelises
// around it with its own pool. Called once when the addon loads.
void initBlas();

#include "ops/op_list.inc"

// Returns once the work queued on ctx has finished (CPU ops finish as they return).
void wait(Ctx& ctx);

// Host data as an input operand in the backend's memory: the host pointer itself on CPU (no
// copy), an upload into ctx's arena on CUDA. For inputs that are only read; valid while the
// arena scope and the host buffer live.
const void* stage(Ctx& ctx, const void* host, size_t bytes);
template <class T>
const T* stage(Ctx& ctx, const T* host, size_t count) {
  return static_cast<const T*>(stage(ctx, static_cast<const void*>(host), count * sizeof(T)));
}

// Where an op writes a result the host wants: the host buffer itself on CPU, an arena buffer on
// CUDA; collect() then brings it to the host (a download on CUDA, nothing on CPU).
void* outputBuffer(Ctx& ctx, void* host, size_t bytes);
template <class T>
T* outputBuffer(Ctx& ctx, T* host, size_t count) {
  return static_cast<T*>(outputBuffer(ctx, static_cast<void*>(host), count * sizeof(T)));
}
void collect(Ctx& ctx, const void* buffer, size_t bytes, void* host);

namespace cpu {
#include "ops/op_list.inc"
}  // namespace cpu

#ifdef OMNISEG_CUDA
namespace cuda {
#include "ops/op_list.inc"
}  // namespace cuda
#endif

}  // namespace ops
}  // namespace omniseg
