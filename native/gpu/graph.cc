#include "gpu/graph.h"

#include "gpu/check.h"

namespace omniseg::gpu {

std::unique_ptr<Graph> Graph::capture(cudaStream_t stream, const std::function<void()>& record) {
  ensureUsable();
  // Relaxed: the arena may cudaMalloc a new block while the work is being recorded.
  OMNISEG_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
  cudaGraph_t graph = nullptr;
  try {
    record();
  } catch (...) {
    cudaStreamEndCapture(stream, &graph);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    throw;
  }
  OMNISEG_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  std::unique_ptr<Graph> g(new Graph());
  const cudaError_t err = cudaGraphInstantiate(&g->exec_, graph, 0);
  cudaGraphDestroy(graph);
  check(err, "cudaGraphInstantiate");
  return g;
}

Graph::~Graph() {
  if (exec_) cudaGraphExecDestroy(exec_);
}

void Graph::launch(cudaStream_t stream) { OMNISEG_CUDA_CHECK(cudaGraphLaunch(exec_, stream)); }

}  // namespace omniseg::gpu
