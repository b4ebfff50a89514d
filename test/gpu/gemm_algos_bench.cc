// `cuda_ops_test --gemm-algos`: does cuBLASLt's first heuristic pick the fastest algorithm for the
// SAM ViT-B encoder's half-precision linear layers? ops/cuda/gemm.cu takes the first answer of
// cublasLtMatmulAlgoGetHeuristic (cached per shape). Here every candidate it returns (up to 32)
// runs the same GEMM (row-major y [M, N] = x [M, K]·W [N, K]ᵀ + b, bf16 operands, fp32
// accumulation, the output type and beta of the encoder's call) and is timed; one line per shape:
// the first heuristic's time, the best candidate's time and rank, and what the best would save
// per encode at its count of calls. A measurement for deciding whether to autotune; nothing here
// changes what the library runs.
#include <cublasLt.h>

#include "test/gpu/op_test.h"

namespace optest {

namespace {

struct Shape {
  const char* what;
  int64_t M, K, N;
  cudaDataType_t dType;
  float beta;
  int perEncode;
};

void probe(Env& e, const Shape& s) {
  const cudaDataType_t type = CUDA_R_16BF;
  const size_t dBytes = s.dType == CUDA_R_32F ? 4 : 2;
  void* W = e.devArena.bytes(static_cast<size_t>(s.N * s.K) * 2);
  void* x = e.devArena.bytes(static_cast<size_t>(s.M * s.K) * 2);
  void* y = e.devArena.bytes(static_cast<size_t>(s.M * s.N) * dBytes);
  void* bias = e.devArena.bytes(static_cast<size_t>(s.N) * dBytes);
  OMNISEG_CUDA_CHECK(cudaMemsetAsync(W, 0, static_cast<size_t>(s.N * s.K) * 2, e.stream.get()));
  OMNISEG_CUDA_CHECK(cudaMemsetAsync(x, 0, static_cast<size_t>(s.M * s.K) * 2, e.stream.get()));
  OMNISEG_CUDA_CHECK(cudaMemsetAsync(y, 0, static_cast<size_t>(s.M * s.N) * dBytes, e.stream.get()));
  OMNISEG_CUDA_CHECK(cudaMemsetAsync(bias, 0, static_cast<size_t>(s.N) * dBytes, e.stream.get()));

  // Column-major D [N, M] = op(W) [N, K] · x [K, M]: W stored [K, N] (ld K), transposed.
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  OMNISEG_CUDA_CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t t = CUBLAS_OP_T;
  const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
  OMNISEG_CUDA_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t)));
  OMNISEG_CUDA_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  OMNISEG_CUDA_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  OMNISEG_CUDA_CHECK(cublasLtMatrixLayoutCreate(&la, type, s.K, s.N, s.K));
  OMNISEG_CUDA_CHECK(cublasLtMatrixLayoutCreate(&lb, type, s.K, s.M, s.K));
  OMNISEG_CUDA_CHECK(cublasLtMatrixLayoutCreate(&ld, s.dType, s.N, s.M, s.N));
  OMNISEG_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = e.stream.workspaceBytes();
  OMNISEG_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                          &ws, sizeof(ws)));
  constexpr int kMax = 32;
  cublasLtMatmulHeuristicResult_t res[kMax];
  int found = 0;
  OMNISEG_CUDA_CHECK(cublasLtMatmulAlgoGetHeuristic(e.stream.lt(), op, la, lb, ld, ld, pref, kMax, res, &found));
  const float alpha = 1.f;
  float first = 0, best = 1e30f;
  int bestRank = -1, ran = 0;
  for (int i = 0; i < found; ++i) {
    if (res[i].state != CUBLAS_STATUS_SUCCESS) continue;
    auto run = [&] {
      OMNISEG_CUDA_CHECK(cublasLtMatmul(e.stream.lt(), op, &alpha, W, la, x, lb, &s.beta, y, ld, y, ld,
                                        &res[i].algo, e.stream.workspace(), ws, e.stream.get()));
    };
    const float ms = gpuMs(e, run, 3, 20);
    if (ran++ == 0) first = ms;
    if (ms < best) best = ms, bestRank = i;
  }
  const double tflop = 2.0 * s.M * s.K * s.N / 1e12;
  std::printf("gemm-algos %-34s %2d candidates: first %.4f ms (%.0f TFLOP/s), best %.4f ms (%.0f TFLOP/s, "
              "rank %d); x%d per encode: %.3f ms saved\n",
              s.what, found, first, tflop / first * 1e3, best, tflop / best * 1e3, bestRank, s.perEncode,
              (first - best) * s.perEncode);
  std::fflush(stdout);
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(ld);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatmulDescDestroy(op);
  e.reset();
}

}  // namespace

void gemmAlgoBenchmarks(Env& e) {
  // The encoder's calls per image (ViT-B: 12 layers), batch 1 and batch 4.
  for (int64_t B : {1, 4}) {
    const int64_t M = 4096 * B;
    const std::string b = " B" + std::to_string(B);
    const Shape shapes[] = {
        {"qkv 768->2304 bf16 out", M, 768, 2304, CUDA_R_16BF, 0.f, 12},
        {"mlp1 768->3072 bf16 out", M, 768, 3072, CUDA_R_16BF, 0.f, 12},
        {"mlp2 3072->768 f32 out +=", M, 3072, 768, CUDA_R_32F, 1.f, 12},
        {"proj 768->768 f32 out +=", M, 768, 768, CUDA_R_32F, 1.f, 12},
    };
    for (Shape s : shapes) {
      const std::string what = s.what + b;
      s.what = what.c_str();
      probe(e, s);
    }
  }
}

}  // namespace optest
