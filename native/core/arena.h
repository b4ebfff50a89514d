// Bump allocator for the activations of one forward pass: allocations are 64-byte aligned and
// freed all at once by reset(). Memory is kept between passes (no page faults on the next image).
// Its blocks come from an Allocator: host memory, or device memory for a GPU pass.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/allocator.h"

namespace omniseg {

class Arena {
 public:
  explicit Arena(const Allocator& allocator = hostAllocator()) : alloc_(&allocator) {}
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // n floats, uninitialised.
  float* floats(size_t n) { return static_cast<float*>(bytes(n * sizeof(float))); }
  void* bytes(size_t n);
  void reset();
  size_t capacity() const;

  // A position to rewind to: everything allocated after mark() is released by rewind().
  struct Mark {
    size_t block, used, inUse;
  };
  Mark mark() const;
  void rewind(const Mark& m);
  size_t highWater() const { return highWater_; }
  const Allocator& allocator() const { return *alloc_; }

 private:
  struct Block {
    uint8_t* data;
    size_t size, used;
  };
  const Allocator* alloc_;
  std::vector<Block> blocks_;
  size_t current_ = 0;
  size_t inUse_ = 0, highWater_ = 0;
};

// Releases what was allocated in its lifetime (per-layer scratch inside a forward pass).
class ArenaScope {
 public:
  explicit ArenaScope(Arena& a) : arena_(a), mark_(a.mark()) {}
  ~ArenaScope() { arena_.rewind(mark_); }
  ArenaScope(const ArenaScope&) = delete;
  ArenaScope& operator=(const ArenaScope&) = delete;

 private:
  Arena& arena_;
  Arena::Mark mark_;
};

// Owning, 64-byte aligned float buffer (host memory unless another Allocator is given).
class FloatBuffer {
 public:
  FloatBuffer() = default;
  explicit FloatBuffer(size_t n, const Allocator& allocator = hostAllocator());
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    Free() noexcept : allocator(nullptr) {}
    explicit Free(const Allocator* a) noexcept : allocator(a) {}
    void operator()(float* p) const { allocator->free(p); }
    const Allocator* allocator;
  };
  std::unique_ptr<float, Free> data_;
  size_t size_ = 0;
};

}  // namespace omniseg
