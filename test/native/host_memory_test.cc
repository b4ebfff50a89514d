// The result buffers' host memory (native/core/host_memory.{h,cc}): the pinned pool's size
// classes, reuse, limit, eviction and source failures with a fake page-locked source (malloc with
// counters), its thread safety, and HostVector on the process-wide pool before and after a
// source is installed. The CUDA source itself (cudaHostAlloc) runs in test/gpu/sam_gpu.cc.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "check.h"
#include "core/host_memory.h"
#include "core/host_vector.h"

using namespace omniseg;
using namespace omniseg::host_memory;

namespace {

constexpr size_t MiB = size_t{1} << 20, KiB = size_t{1} << 10;

std::atomic<int> allocs{0}, frees{0};
std::atomic<bool> failNext{false};
void* fakeAlloc(size_t bytes) {
  if (failNext.exchange(false)) return nullptr;
  ++allocs;
  return std::malloc(bytes);
}
void fakeFree(void* p) {
  ++frees;
  std::free(p);
}
const Source kFake{fakeAlloc, fakeFree};

void testSizeClass() {
  CHECK(sizeClass(kMinPinned) == kMinPinned);
  CHECK(sizeClass(256 * KiB + 1) == 288 * KiB);
  CHECK(sizeClass(3 * MiB) == 3 * MiB);
  CHECK(sizeClass(3 * MiB + 1) == 3 * MiB + 256 * KiB);
  CHECK(sizeClass(4 * MiB) == 4 * MiB);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 10000; ++i) {
    const size_t b = kMinPinned + rng() % (size_t{1} << 34);
    const size_t c = sizeClass(b);
    CHECK(c >= b && c - b <= b / 8);
    CHECK(sizeClass(c) == c);  // a class is its own class
  }
}

void testReuseAndLimit() {
  allocs = frees = 0;
  {
    PinnedPool pool(kFake, 4 * MiB);
    CHECK(pool.allocate(kMinPinned - 1) == nullptr);  // small: the heap's
    CHECK(allocs == 0);

    void* a = pool.allocate(MiB);
    CHECK(a && allocs == 1);
    CHECK(pool.release(a));
    CHECK(pool.stats().cachedBytes == MiB && pool.stats().heldBytes == MiB);
    void* b = pool.allocate(MiB - 10 * KiB);  // same class (1 MiB): the cached block
    CHECK(b == a && allocs == 1 && pool.stats().hits == 1 && pool.stats().cachedBytes == 0);

    int onStack = 0;
    CHECK(!pool.release(&onStack));  // not the pool's

    void* c = pool.allocate(2 * MiB);  // held 3 MiB
    CHECK(c && allocs == 2 && pool.stats().heldBytes == 3 * MiB);
    CHECK(pool.allocate(2 * MiB) == nullptr);  // 5 > 4 MiB, nothing cached to evict
    CHECK(pool.stats().fallbacks == 1 && allocs == 2);
    CHECK(pool.allocate(5 * MiB) == nullptr);  // over the limit by itself
    CHECK(pool.stats().fallbacks == 2);

    // Eviction: the cached 2 MiB block makes room for a 3 MiB one; the 1 MiB one stays in use.
    CHECK(pool.release(c));
    CHECK(frees == 0);  // release never returns memory to the source
    void* d = pool.allocate(3 * MiB);
    CHECK(d && frees == 1 && allocs == 3);
    CHECK(pool.stats().heldBytes == 4 * MiB && pool.stats().cachedBytes == 0);

    // A failing source: a fallback, and nothing stays reserved.
    CHECK(pool.release(d));
    failNext = true;
    CHECK(pool.allocate(512 * KiB) == nullptr);  // evicted d (3 MiB) first, then the source failed
    const Stats s = pool.stats();
    CHECK(s.heldBytes == MiB && s.cachedBytes == 0 && frees == 2);
    void* e = pool.allocate(512 * KiB);
    CHECK(e && pool.stats().heldBytes == MiB + 512 * KiB);

    std::memset(b, 1, MiB - 10 * KiB);  // blocks are usable memory (ASan checks the sizes)
    std::memset(e, 2, 512 * KiB);
    CHECK(pool.release(b) && pool.release(e));
  }
  CHECK(allocs == frees);  // the destructor returned every cached block

  // A request under the limit whose class is over it (4.6 MiB → 5 MiB > 4.75 MiB) is left to the
  // heap without evicting the cached blocks first.
  allocs = frees = 0;
  {
    PinnedPool pool(kFake, 4 * MiB + 768 * KiB);
    CHECK(pool.release(pool.allocate(MiB)));
    CHECK(pool.allocate(4 * MiB + 600 * KiB) == nullptr);
    CHECK(frees == 0 && pool.stats().cachedBytes == MiB && pool.stats().fallbacks == 1);
  }
  CHECK(allocs == frees);
}

// Threads take and give back blocks of a few classes; a block is never handed to two users at
// once (each fills its block and checks it before giving it back), and the limit holds.
void testThreads() {
  allocs = frees = 0;
  {
    constexpr size_t kLimit = 24 * MiB;
    PinnedPool pool(kFake, kLimit);
    std::atomic<bool> overLimit{false}, clobbered{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t)
      threads.emplace_back([&, t] {
        std::mt19937 rng(100 + t);
        for (int i = 0; i < 400; ++i) {
          const size_t bytes = (1 + rng() % 4) * MiB;
          auto* p = static_cast<unsigned char*>(pool.allocate(bytes));
          if (pool.stats().heldBytes > kLimit) overLimit = true;
          if (!p) continue;
          std::memset(p, t + 1, bytes);
          std::this_thread::yield();
          for (size_t k = 0; k < bytes; k += 4099)
            if (p[k] != t + 1) clobbered = true;
          pool.release(p);
        }
      });
    for (auto& th : threads) th.join();
    CHECK(!overLimit);
    CHECK(!clobbered);
    const Stats s = pool.stats();
    CHECK(s.cachedBytes == s.heldBytes);  // everything was given back
    CHECK(s.hits + s.misses + s.fallbacks == 6 * 400);
  }
  CHECK(allocs == frees);
}

void testHostVector() {
  // Before a source is installed, HostVector memory is the heap's.
  { HostVector<uint8_t> v(2 * MiB); }
  CHECK(pinnedStats().misses == 0 && pinnedStats().heldBytes == 0);

  allocs = frees = 0;
  installPinned(kFake, 8 * MiB);
  installPinned(Source{nullptr, nullptr}, 0);  // later installs change nothing
  const uint8_t* first = nullptr;
  {
    HostVector<uint8_t> v(3 * MiB);
    first = v.data();
    v.back() = 1;
    CHECK(allocs == 1 && pinnedStats().misses == 1 && pinnedStats().heldBytes == 3 * MiB);
  }
  CHECK(pinnedStats().cachedBytes == 3 * MiB);
  {
    HostVector<float> w(3 * MiB / sizeof(float));  // the same class: the cached block again
    CHECK(reinterpret_cast<const uint8_t*>(w.data()) == first && pinnedStats().hits == 1);
    HostVector<float> small(16);                    // under kMinPinned: the heap's
    CHECK(pinnedStats().heldBytes == 3 * MiB && allocs == 1);
    HostVector<uint32_t> big(20 * MiB / sizeof(uint32_t));  // over the limit: the heap's
    big.back() = 7;
    CHECK(pinnedStats().fallbacks == 1 && allocs == 1);
    HostVector<uint32_t> moved(std::move(big));  // moving keeps the heap block; freed as heap
    CHECK(moved.back() == 7);
  }
  CHECK(pinnedStats().cachedBytes == 3 * MiB && frees == 0);
}

}  // namespace

int main() {
  testSizeClass();
  testReuseAndLimit();
  testThreads();
  testHostVector();
  if (nativetest::failures) {
    std::fprintf(stderr, "host_memory_test: %d failure(s)\n", nativetest::failures);
    return 1;
  }
  std::printf("host_memory_test: all passed\n");
  return 0;
}
