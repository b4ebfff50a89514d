// `cuda_ops_test --gemm-algos`: does cuBLASLt's first heuristic pick the fastest algorithm for the
// SAM ViT-B encoder's half-precision linear layers? ops/cuda/gemm.cu takes the first answer of
// cublasLtMatmulAlgoGetHeuristic (cached per shape), asked with the operands' actual alignment
// (arena activations are only sure to be 64-byte aligned). Here every candidate it returns (up to
// 32) runs the same GEMM (row-major y [M, N] = x [M, K]·W [N, K]ᵀ + b, bf16 operands from randn,
// fp32 accumulation, the output type and beta of the encoder's call) and is timed, once with all
// operands 256-byte aligned and once with x, y and the bias only 64-byte aligned (the heuristic
// told so). One line per shape and alignment: the first heuristic's time, the best candidate's
// time and rank, and what the best would save per encode at its count of calls. A measurement
// for deciding whether to autotune, or to align the arena more; nothing here changes what the
// library runs.
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

// cuBLASLt descriptors, destroyed whatever happens.
struct LtDescs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtDescs() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (ld) cublasLtMatrixLayoutDestroy(ld);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

// bytes of device memory `offset` bytes past a 256-byte boundary (arena memory).
void* devAt(Env& e, size_t bytes, size_t offset) {
  auto* base = static_cast<char*>(e.devArena.bytes(bytes + 256));
  return base + (256 - reinterpret_cast<uintptr_t>(base) % 256) % 256 + offset;
}

// n bf16 values from randn·scale, `offset` bytes past a 256-byte boundary.
void* devHalf(Env& e, size_t n, float scale, size_t offset) {
  const auto h = toHalfBits(randn(n, scale), Precision::Bf16);
  void* p = devAt(e, n * 2, offset);
  ops::upload(e.gpu, h.data(), n * 2, p);
  return p;
}

void probe(Env& e, const Shape& s, uint32_t align) {
  const cudaDataType_t type = CUDA_R_16BF;
  const size_t dBytes = s.dType == CUDA_R_32F ? 4 : 2, off = align % 256;
  void* W = devHalf(e, static_cast<size_t>(s.N * s.K), 0.03f, 0);  // weights: their own allocation
  void* x = devHalf(e, static_cast<size_t>(s.M * s.K), 1.f, off);
  void* y = devAt(e, static_cast<size_t>(s.M * s.N) * dBytes, off);
  OMNISEG_CUDA_CHECK(cudaMemsetAsync(y, 0, static_cast<size_t>(s.M * s.N) * dBytes, e.stream.get()));
  void* bias = devAt(e, static_cast<size_t>(s.N) * dBytes, off);
  OMNISEG_CUDA_CHECK(cudaMemsetAsync(bias, 0, static_cast<size_t>(s.N) * dBytes, e.stream.get()));

  // Column-major D [N, M] = op(W) [N, K] · x [K, M]: W stored [K, N] (ld K), transposed.
  LtDescs d;
  OMNISEG_CUDA_CHECK(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t t = CUBLAS_OP_T;
  const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
  OMNISEG_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t)));
  OMNISEG_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  OMNISEG_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  OMNISEG_CUDA_CHECK(cublasLtMatrixLayoutCreate(&d.la, type, s.K, s.N, s.K));
  OMNISEG_CUDA_CHECK(cublasLtMatrixLayoutCreate(&d.lb, type, s.K, s.M, s.K));
  OMNISEG_CUDA_CHECK(cublasLtMatrixLayoutCreate(&d.ld, s.dType, s.N, s.M, s.N));
  OMNISEG_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&d.pref));
  const uint64_t ws = e.stream.workspaceBytes();
  const uint32_t alW = 256;
  OMNISEG_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                          &ws, sizeof(ws)));
  OMNISEG_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                          &alW, sizeof(alW)));
  for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
    OMNISEG_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(d.pref, attr, &align, sizeof(align)));
  constexpr int kMax = 32;
  cublasLtMatmulHeuristicResult_t res[kMax];
  int found = 0;
  OMNISEG_CUDA_CHECK(
      cublasLtMatmulAlgoGetHeuristic(e.stream.lt(), d.op, d.la, d.lb, d.ld, d.ld, d.pref, kMax, res, &found));
  const float alpha = 1.f;
  float first = 0, best = 1e30f;
  int bestRank = -1, ran = 0;
  for (int i = 0; i < found; ++i) {
    if (res[i].state != CUBLAS_STATUS_SUCCESS) continue;
    auto run = [&] {
      OMNISEG_CUDA_CHECK(cublasLtMatmul(e.stream.lt(), d.op, &alpha, W, d.la, x, d.lb, &s.beta, y, d.ld, y, d.ld,
                                        &res[i].algo, e.stream.workspace(), ws, e.stream.get()));
    };
    const float ms = gpuMs(e, run, 3, 20);
    if (ran++ == 0) first = ms;
    if (ms < best) best = ms, bestRank = i;
  }
  const double tflop = 2.0 * s.M * s.K * s.N / 1e12;
  std::printf("gemm-algos %-34s align %3u: %2d candidates: first %.4f ms (%.0f TFLOP/s), best %.4f ms "
              "(%.0f TFLOP/s, rank %d); x%d per encode: %.3f ms saved\n",
              s.what, align, found, first, tflop / first * 1e3, best, tflop / best * 1e3, bestRank, s.perEncode,
              (first - best) * s.perEncode);
  std::fflush(stdout);
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
      for (uint32_t align : {256u, 64u}) probe(e, s, align);
    }
  }
}

}  // namespace optest
