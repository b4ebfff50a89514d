#include "core/arena.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace omniseg {

namespace {
constexpr size_t kAlign = 64;
constexpr size_t kMinBlock = 16u << 20;  // 16 MiB

void* alignedAlloc(size_t n) {
  void* p = std::aligned_alloc(kAlign, (n + kAlign - 1) / kAlign * kAlign);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

const Allocator& hostAllocator() {
  static const Allocator a{alignedAlloc, std::free, false};
  return a;
}

Arena::~Arena() {
  for (auto& b : blocks_) alloc_->free(b.data);
}

void* Arena::bytes(size_t n) {
  n = (n + kAlign - 1) / kAlign * kAlign;
  while (current_ < blocks_.size()) {
    Block& b = blocks_[current_];
    if (b.size - b.used >= n) {
      void* p = b.data + b.used;
      b.used += n;
      inUse_ += n;
      if (inUse_ > highWater_) highWater_ = inUse_;
      return p;
    }
    ++current_;
  }
  const size_t size = n > kMinBlock ? n : kMinBlock;
  blocks_.push_back({static_cast<uint8_t*>(alloc_->alloc(size)), size, 0});
  current_ = blocks_.size() - 1;
  return bytes(n);
}

void Arena::reset() {
  for (auto& b : blocks_) b.used = 0;
  current_ = 0;
  inUse_ = 0;
}

Arena::Mark Arena::mark() const {
  return {current_, current_ < blocks_.size() ? blocks_[current_].used : 0, inUse_};
}

void Arena::rewind(const Mark& m) {
  for (size_t i = m.block + 1; i < blocks_.size(); ++i) blocks_[i].used = 0;
  if (m.block < blocks_.size()) blocks_[m.block].used = m.used;
  current_ = m.block;
  inUse_ = m.inUse;
}

size_t Arena::capacity() const {
  size_t c = 0;
  for (auto& b : blocks_) c += b.size;
  return c;
}

FloatBuffer::FloatBuffer(size_t n, const Allocator& allocator)
    : data_(static_cast<float*>(allocator.alloc(n * sizeof(float) + 1)), Free{&allocator}), size_(n) {}

}  // namespace omniseg
