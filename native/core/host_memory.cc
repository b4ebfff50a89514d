#include "core/host_memory.h"

#include <atomic>
#include <iterator>
#include <new>
#include <vector>

namespace omniseg::host_memory {

size_t sizeClass(size_t bytes) {
  const size_t top = size_t{1} << (63 - __builtin_clzll(static_cast<unsigned long long>(bytes)));
  const size_t step = top >= 8 ? top / 8 : 1;
  return (bytes + step - 1) / step * step;
}

PinnedPool::~PinnedPool() {
  // Blocks still in use stay with their users; only the cached ones go back.
  for (const auto& [size, p] : free_) source_.free(p);
}

void* PinnedPool::allocate(size_t bytes) {
  if (bytes < kMinPinned) return nullptr;
  std::vector<void*> evicted;
  size_t size = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Over the limit by itself (its class, which rounds up, included): left to the heap before
    // any cached block is evicted for it. (bytes ≤ limit_ first: no overflow in sizeClass.)
    if (bytes > limit_ || (size = sizeClass(bytes)) > limit_) {
      ++stats_.fallbacks;
      return nullptr;
    }
    if (auto it = free_.find(size); it != free_.end()) {
      void* p = it->second;
      free_.erase(it);
      stats_.cachedBytes -= size;
      ++stats_.hits;
      return p;
    }
    // Room for a new block: cached blocks of other classes go first, the largest first.
    while (stats_.heldBytes + size > limit_ && !free_.empty()) {
      const auto last = std::prev(free_.end());
      evicted.push_back(last->second);
      stats_.heldBytes -= last->first;
      stats_.cachedBytes -= last->first;
      owned_.erase(last->second);
      free_.erase(last);
    }
    if (stats_.heldBytes + size > limit_) {
      ++stats_.fallbacks;
      size = 0;
    } else {
      stats_.heldBytes += size;  // reserved while the source works, outside the lock
    }
  }
  for (void* p : evicted) source_.free(p);
  if (size == 0) return nullptr;
  void* p = source_.alloc(size);
  std::lock_guard<std::mutex> lock(mu_);
  if (p) {
    try {
      owned_.emplace(p, size);
      ++stats_.misses;
      return p;
    } catch (const std::bad_alloc&) {
      source_.free(p);  // no room to track it: the caller takes the heap instead
    }
  }
  stats_.heldBytes -= size;
  ++stats_.fallbacks;
  return nullptr;
}

bool PinnedPool::release(void* p) noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = owned_.find(p);
  if (it == owned_.end()) return false;
  try {
    free_.emplace(it->second, p);
    stats_.cachedBytes += it->second;
  } catch (const std::bad_alloc&) {
    // Not cached: the block stays held (and counted) until the process ends. Returning it to the
    // source here could wait for the device on the JS thread.
  }
  return true;
}

Stats PinnedPool::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

namespace {
// Never destroyed: buffers JS still holds may outlive every model, and static destructors run
// after the CUDA runtime may have gone.
std::atomic<PinnedPool*> g_pool{nullptr};
std::mutex g_install;
}  // namespace

void* allocate(size_t bytes) {
  if (bytes >= kMinPinned)
    if (PinnedPool* pool = g_pool.load(std::memory_order_acquire))
      if (void* p = pool->allocate(bytes)) return p;
  return ::operator new(bytes);
}

void deallocate(void* p, size_t bytes) noexcept {
  if (!p) return;
  if (bytes >= kMinPinned)
    if (PinnedPool* pool = g_pool.load(std::memory_order_acquire); pool && pool->release(p)) return;
  ::operator delete(p);
}

void installPinned(const Source& source, size_t limitBytes) {
  std::lock_guard<std::mutex> lock(g_install);
  if (g_pool.load(std::memory_order_relaxed)) return;
  g_pool.store(new PinnedPool(source, limitBytes), std::memory_order_release);
}

Stats pinnedStats() {
  PinnedPool* pool = g_pool.load(std::memory_order_acquire);
  return pool ? pool->stats() : Stats{};
}

}  // namespace omniseg::host_memory
