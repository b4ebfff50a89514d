// A std::vector for result buffers: resize() leaves new elements uninitialised (default-init
// instead of value-init), for buffers written in full right after they are sized (a device
// download, a kernel's output), where zero-filling first would be a wasted pass over megabytes of
// mask data; and its memory comes from core/host_memory.h, pinned where a GPU backend runs, so a
// download lands in it by DMA.
#pragma once
#include <limits>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "core/host_memory.h"

namespace omniseg {

template <class T>
struct HostAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = HostAllocator<U>;
  };
  using std::allocator<T>::allocator;
  T* allocate(size_t n) {
    if (n > std::numeric_limits<size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(host_memory::allocate(n * sizeof(T)));
  }
  void deallocate(T* p, size_t n) noexcept { host_memory::deallocate(p, n * sizeof(T)); }
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible<U>::value) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

template <class T>
using HostVector = std::vector<T, HostAllocator<T>>;

}  // namespace omniseg
