// Per-thread scratch floats for the thread pool's tasks, which cannot take arena memory (the arena
// is the calling thread's). One buffer per thread, shared by every op, kept between calls and
// sized to the largest use: a task takes it at its start and is done with it before the thread
// runs another task.
#pragma once
#include <cstddef>
#include <vector>

namespace omniseg::ops::cpu {

inline float* threadScratch(size_t n) {
  thread_local std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

}  // namespace omniseg::ops::cpu
