// A CPU emulator of the CUDA execution model, enough to run the tensor-core kernels written over
// native/ops/cuda/warp_mma.cuh (flash_attention_kernel.cuh) without a GPU: each thread of a block
// is a fiber (ucontext) on one OS thread, switched only at barriers, so a block's threads run one
// after another between __syncthreads() and the warp collectives. It provides what the kernels
// use: threadIdx / blockIdx / blockDim, dynamic shared memory, __syncthreads, __shfl_xor_sync,
// cp.async (the copies happen at the wait that covers their group, as on the GPU no earlier is
// guaranteed), ldmatrix (.x4, .trans) and mma.sync m16n8k16 (fp16 / bf16 in, fp32 accumulate,
// the products summed in double and rounded once) with the fragment layouts of the PTX ISA, and
// ex2.approx as exp2f. A warp collective whose lanes disagree (a divergent ldmatrix / mma /
// shuffle) or a block that deadlocks stops the program with a message.
//
// Schedules (schedule()): by default the threads take turns and a cp.async copy lands at the wait
// that covers it, the latest point the GPU allows. A missing barrier shows only under some orders,
// so a kernel should also be run warp by warp (warpSerial: each warp runs until it waits at a
// block barrier, before the next starts) and with the copies landing as they are issued
// (eagerCopies: a refill overwrites a buffer other warps may still read): the same bits in each.
//
// What it checks: the kernels' index arithmetic, fragment layouts, masking, shared-memory and
// global bounds (under ASan), barriers against the cp.async groups. What it cannot: timing, bank
// conflicts, register limits, and the last bit of the GPU's exp2 and MMA rounding.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <ucontext.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <type_traits>
#include <vector>

#undef __global__
#define __global__
#undef __device__
#define __device__
#undef __host__
#define __host__
#undef __forceinline__
#define __forceinline__ inline
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif
#define OMNISEG_DYNAMIC_SHARED(name) unsigned char* name = ::simt::sharedMemory()

namespace simt {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "simt emulator: %s\n", what);
  std::abort();
}

struct Barrier {
  int arrived = 0;
  uint64_t gen = 0;
};

struct Copy {
  void* dst;
  const void* src;
  bool valid;
};

struct Fiber {
  ucontext_t ctx{};
  std::unique_ptr<char[]> stack;
  Dim3 tid;
  int linear = 0;
  bool done = false;
  std::vector<Copy> open;                 // cp.async not yet committed
  std::vector<std::vector<Copy>> groups;  // committed, oldest first
};

// One warp's exchange area: what each lane put in for the current collective.
struct WarpSlots {
  int kind[32];
  uint32_t word[32][10];
  const void* ptr[32];
  Barrier bar;
};

struct Block {
  Dim3 idx, dim, grid;
  unsigned char* smem = nullptr;
  Barrier bar;
  std::vector<WarpSlots> warps;
  std::vector<Fiber> fibers;
  ucontext_t sched{};
  Fiber* cur = nullptr;
  uint64_t progress = 0;  // barrier arrivals and finished fibers, for deadlock detection
};

struct Schedule {
  bool warpSerial = false;
  bool eagerCopies = false;
};
inline Schedule& schedule() {
  static Schedule s;
  return s;
}

inline Block*& current() {
  static Block* b = nullptr;
  return b;
}
inline Fiber& self() { return *current()->cur; }
inline unsigned char* sharedMemory() { return current()->smem; }

inline void yield() {
  Block& b = *current();
  swapcontext(&b.cur->ctx, &b.sched);
}

// Waits until n threads have arrived at bar (the last one to arrive does not yield).
inline void wait(Barrier& bar, int n) {
  ++current()->progress;
  const uint64_t gen = bar.gen;
  if (++bar.arrived == n) {
    bar.arrived = 0;
    ++bar.gen;
    return;
  }
  while (bar.gen == gen) yield();
}

inline int lane() { return self().linear & 31; }
inline WarpSlots& warpSlots() { return current()->warps[self().linear >> 5]; }
inline int warpSize() {
  const Block& b = *current();
  const int n = static_cast<int>(b.dim.x * b.dim.y * b.dim.z), w = self().linear >> 5;
  return n - 32 * w < 32 ? n - 32 * w : 32;
}

// A collective over the lanes of a warp: each lane's inputs are in the slots (put there by
// `put`), then `get` reads what it needs from every lane's, then all lanes move on.
template <class Put, class Get>
inline void collective(int kind, Put put, Get get) {
  WarpSlots& s = warpSlots();
  const int l = lane(), n = warpSize();
  if (n != 32) fail("warp collective in a partial warp");
  s.kind[l] = kind;
  put(s, l);
  wait(s.bar, n);
  for (int i = 0; i < n; ++i)
    if (s.kind[i] != kind) fail("divergent warp collective");
  get(s, l);
  wait(s.bar, n);
}

inline uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float floatOf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Sets f up to run entry on its own stack, returning to sched (getcontext in a function of its
// own: the context is only ever entered through makecontext's entry, never resumed here).
[[gnu::noinline]] inline void makeFiber(Fiber& f, ucontext_t& sched, void (*entry)()) {
  constexpr size_t kStack = 256 * 1024;
  f.stack.reset(new char[kStack]);
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = f.stack.get();
  f.ctx.uc_stack.ss_size = kStack;
  f.ctx.uc_link = &sched;
  makecontext(&f.ctx, entry, 0);
}

// Runs kernel() as every thread of every block of grid × block, with smemBytes of dynamic shared
// memory per block (fresh, filled with a NaN pattern so that reads of unwritten memory show).
inline void launch(Dim3 grid, Dim3 block, size_t smemBytes, const std::function<void()>& kernel) {
  static const std::function<void()>* body = nullptr;
  body = &kernel;
  struct Entry {
    static void run() {
      (*body)();
      current()->cur->done = true;
      ++current()->progress;
    }
  };
  const int n = static_cast<int>(block.x * block.y * block.z);
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        Block b;
        b.idx = {bx, by, bz};
        b.dim = block;
        b.grid = grid;
        std::vector<float> smem((smemBytes + 3) / 4, std::nanf(""));  // (ASan: exact bounds)
        b.smem = reinterpret_cast<unsigned char*>(smem.data());
        b.warps.resize((n + 31) / 32);
        b.fibers.resize(n);
        current() = &b;
        for (int t = 0; t < n; ++t) {
          Fiber& f = b.fibers[t];
          f.linear = t;
          f.tid = {static_cast<unsigned>(t) % block.x, (static_cast<unsigned>(t) / block.x) % block.y,
                   static_cast<unsigned>(t) / (block.x * block.y)};
          makeFiber(f, b.sched, &Entry::run);
        }
        auto resume = [&](int first, int last) {  // one turn for each live thread of [first, last)
          for (int t = first; t < last; ++t) {
            Fiber& f = b.fibers[t];
            if (f.done) continue;
            b.cur = &f;
            swapcontext(&b.sched, &f.ctx);
          }
        };
        for (int left = n; left > 0;) {
          const uint64_t before = b.progress;
          if (schedule().warpSerial) {
            for (int w0 = 0; w0 < n; w0 += 32)
              for (uint64_t seen = ~uint64_t{0}; seen != b.progress;) {  // until the warp is stuck
                seen = b.progress;
                resume(w0, w0 + 32 < n ? w0 + 32 : n);
              }
          } else {
            resume(0, n);
          }
          left = 0;
          for (const Fiber& f : b.fibers) left += !f.done;
          if (left > 0 && b.progress == before) fail("deadlock: no thread of the block can go on");
        }
        for (Fiber& f : b.fibers)
          if (!f.open.empty() || !f.groups.empty()) fail("cp.async left in flight at the end");
        current() = nullptr;
      }
}

}  // namespace simt

// The CUDA built-ins the kernels read, as fields of the running thread and block.
#define threadIdx (::simt::self().tid)
#define blockIdx (::simt::current()->idx)
#define blockDim (::simt::current()->dim)
#define gridDim (::simt::current()->grid)

inline void __syncthreads() {
  simt::Block& b = *simt::current();
  simt::wait(b.bar, static_cast<int>(b.fibers.size()));
}

inline float __shfl_xor_sync(unsigned mask, float v, int laneMask) {
  if (mask != 0xffffffffu) simt::fail("__shfl_xor_sync: only full-warp masks are emulated");
  float r = 0.f;
  simt::collective(
      1, [&](simt::WarpSlots& s, int l) { s.word[l][0] = simt::bitsOf(v); },
      [&](simt::WarpSlots& s, int l) { r = simt::floatOf(s.word[l ^ laneMask][0]); });
  return r;
}

namespace omniseg::ops::cuda {

inline void cpAsync16(void* dst, const void* src, bool valid) {
  if ((reinterpret_cast<uintptr_t>(dst) | reinterpret_cast<uintptr_t>(src)) & 15u)
    simt::fail("cp.async: address not 16-byte aligned");
  if (simt::schedule().eagerCopies) {  // (lands now; the waits have nothing left to do)
    if (valid)
      std::memcpy(dst, src, 16);
    else
      std::memset(dst, 0, 16);
    return;
  }
  simt::self().open.push_back({dst, src, valid});
}
inline void cpAsyncCommit() {
  simt::Fiber& f = simt::self();
  f.groups.push_back(std::move(f.open));
  f.open.clear();
}
template <int N>
inline void cpAsyncWait() {
  simt::Fiber& f = simt::self();
  while (f.groups.size() > static_cast<size_t>(N)) {
    for (const simt::Copy& c : f.groups.front()) {
      if (c.valid)
        std::memcpy(c.dst, c.src, 16);
      else
        std::memset(c.dst, 0, 16);
    }
    f.groups.erase(f.groups.begin());
  }
}

// ldmatrix .m8n8.x4 .b16: matrix i's rows come from the addresses of lanes 8i .. 8i+7.
inline void ldmatrixEmu(uint32_t (&r)[4], const void* p, bool trans) {
  if (reinterpret_cast<uintptr_t>(p) & 15u) simt::fail("ldmatrix: row address not 16-byte aligned");
  simt::collective(
      trans ? 3 : 2, [&](simt::WarpSlots& s, int l) { s.ptr[l] = p; },
      [&](simt::WarpSlots& s, int l) {
        for (int i = 0; i < 4; ++i) {
          auto at = [&](int row, int col) {
            uint16_t v;
            std::memcpy(&v, static_cast<const char*>(s.ptr[8 * i + row]) + 2 * col, 2);
            return static_cast<uint32_t>(v);
          };
          const int a = l >> 2, b = 2 * (l & 3);
          r[i] = trans ? at(b, a) | at(b + 1, a) << 16 : at(a, b) | at(a, b + 1) << 16;
        }
      });
}
inline void ldmatrixX4(uint32_t (&r)[4], const void* p) { ldmatrixEmu(r, p, false); }
inline void ldmatrixX4T(uint32_t (&r)[4], const void* p) { ldmatrixEmu(r, p, true); }

template <class Half>
inline float halfBits(uint32_t reg, int hi) {
  const uint16_t u = static_cast<uint16_t>(hi ? reg >> 16 : reg & 0xffffu);
  if constexpr (sizeof(Half) == 2 && std::is_same_v<Half, __half>) {
    __half_raw raw;
    raw.x = u;
    return __half2float(__half(raw));
  } else {
    __nv_bfloat16_raw raw;
    raw.x = u;
    return __bfloat162float(__nv_bfloat16(raw));
  }
}

// mma.sync m16n8k16 .row.col: lane l (g = l/4, t = l%4) holds A rows g, g+8 × k 2t, 2t+1 (a[0],
// a[1]) and k 2t+8, 2t+9 (a[2], a[3]); B k 2t, 2t+1 (b0) and 2t+8, 2t+9 (b1) × column g; C / D rows
// g (c[0], c[1]) and g+8 (c[2], c[3]) × columns 2t, 2t+1.
template <class Half>
inline void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  simt::collective(
      4,
      [&](simt::WarpSlots& s, int l) {
        for (int i = 0; i < 4; ++i) s.word[l][i] = a[i];
        s.word[l][4] = b0;
        s.word[l][5] = b1;
      },
      [&](simt::WarpSlots& s, int l) {
        auto A = [&](int row, int k) {
          const int ln = 4 * (row & 7) + ((k & 7) >> 1);
          return halfBits<Half>(s.word[ln][(row >> 3) + 2 * (k >> 3)], k & 1);
        };
        auto B = [&](int k, int col) {
          const int ln = 4 * col + ((k & 7) >> 1);
          return halfBits<Half>(s.word[ln][4 + (k >> 3)], k & 1);
        };
        const int g = l >> 2, t = l & 3;
        for (int e = 0; e < 4; ++e) {
          const int row = g + 8 * (e >> 1), col = 2 * t + (e & 1);
          double acc = c[e];
          for (int k = 0; k < 16; ++k) acc += static_cast<double>(A(row, k)) * B(k, col);
          c[e] = static_cast<float>(acc);
        }
      });
}

inline float ex2(float x) { return std::exp2f(x); }

}  // namespace omniseg::ops::cuda
