// A CUDA graph recorded from the work a function queues on a stream, then replayed with one
// launch: the fixed-shape SAM decoder runs as one graph instead of ~100 kernel launches and
// cuBLASLt calls.
#pragma once
#include <cuda_runtime.h>

#include <functional>
#include <memory>

namespace omniseg::gpu {

class Graph {
 public:
  // Records what `record` queues on `stream` (no synchronisation or host transfers may happen
  // inside it) and instantiates it. If record throws, the capture is abandoned and the
  // exception propagates.
  static std::unique_ptr<Graph> capture(cudaStream_t stream, const std::function<void()>& record);
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  void launch(cudaStream_t stream);

 private:
  Graph() = default;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace omniseg::gpu
