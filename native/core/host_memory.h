// Host memory for the large result buffers handed to JS (HostVector: masks, low-res logits,
// run lengths, embeddings): plain heap memory, or, once a GPU backend has installed a page-locked
// source, blocks from a bounded pool of pinned memory. A device → host copy into pinned memory is
// one DMA straight into the buffer JS receives; into pageable memory the driver copies through its
// own pinned staging buffer in chunks, at a fraction of the speed.
//
// The pool keeps freed blocks for reuse (pinning pages costs far more than the copy it speeds
// up), grouped by size class (at most 1/8 above the request). Everything it holds, in use and
// cached, stays under a limit; past it, buffers come from the heap. Freeing never calls the
// source: a buffer is often freed on the JS thread (an ArrayBuffer's finalizer) and releasing
// pinned memory may wait for the device, so cached blocks go back to the source only when a later
// allocation (a worker thread) needs their room.
#pragma once
#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>

namespace omniseg::host_memory {

struct Source {
  void* (*alloc)(size_t bytes);  // nullptr on failure; never throws
  void (*free)(void* p);
};

// Smaller buffers always come from the heap: pinning them gains less than the lookup costs.
constexpr size_t kMinPinned = size_t{256} << 10;

// The size class a request of `bytes` (≥ kMinPinned) takes from the pool: rounded up to 1/8 of
// its highest power of two.
size_t sizeClass(size_t bytes);

struct Stats {
  size_t heldBytes = 0;    // pinned, in use or cached
  size_t cachedBytes = 0;  // pinned and free, kept for reuse
  size_t hits = 0;         // allocations served from the cache
  size_t misses = 0;       // allocations that pinned new memory
  size_t fallbacks = 0;    // requests left to the heap: over the limit, or the source failed
};

class PinnedPool {
 public:
  PinnedPool(const Source& source, size_t limitBytes) : source_(source), limit_(limitBytes) {}
  PinnedPool(const PinnedPool&) = delete;
  PinnedPool& operator=(const PinnedPool&) = delete;
  // Returns the cached blocks to the source; blocks still in use stay with their users (tests: the
  // process-wide pool is never destroyed).
  ~PinnedPool();

  // A pinned block of at least `bytes`, or nullptr (the caller takes heap memory).
  void* allocate(size_t bytes);
  // Takes back a block this pool gave out; false for any other pointer.
  bool release(void* p) noexcept;
  Stats stats() const;

 private:
  Source source_;
  size_t limit_;
  mutable std::mutex mu_;
  std::unordered_map<void*, size_t> owned_;  // every block held: class size
  std::multimap<size_t, void*> free_;        // cached blocks by class size
  Stats stats_;
};

// Heap memory, or a pinned block once installPinned() has run; deallocate takes any pointer
// allocate returned, with the same size.
void* allocate(size_t bytes);  // throws std::bad_alloc
void deallocate(void* p, size_t bytes) noexcept;

// Makes allocate() take buffers of kMinPinned or more from a process-wide pinned pool holding at
// most limitBytes. The first call wins; later calls (more models, more devices) change nothing.
void installPinned(const Source& source, size_t limitBytes);
// The process-wide pool's figures (all zero before installPinned).
Stats pinnedStats();

}  // namespace omniseg::host_memory
