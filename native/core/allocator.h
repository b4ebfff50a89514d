// Where an Arena or FloatBuffer takes its memory from: the host (64-byte aligned), or a GPU
// backend's device memory (gpu/device.h). Plain function pointers so core/ needs no CUDA.
#pragma once
#include <cstddef>

namespace omniseg {

struct Allocator {
  void* (*alloc)(size_t bytes);  // throws on failure (std::bad_alloc or omniseg::Error)
  void (*free)(void* p);
  bool device;  // false: host memory the CPU may touch
};

const Allocator& hostAllocator();

}  // namespace omniseg
