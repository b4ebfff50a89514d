// A std::vector whose resize() leaves new elements uninitialised (default-init instead of
// value-init): for output buffers that are written in full right after they are sized (a
// device download, a kernel's output), where zero-filling first would be a wasted pass over
// megabytes of mask data.
#pragma once
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

namespace omniseg {

template <class T>
struct DefaultInitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  using std::allocator<T>::allocator;
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
using HostVector = std::vector<T, DefaultInitAllocator<T>>;

}  // namespace omniseg
