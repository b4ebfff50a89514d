// GEMM-based ops through cuBLASLt (CUBLAS_COMPUTE_32F: no TF32): linear, matmul,
// convTranspose, and the ltGemm every other GEMM-based op uses. In fp32 precision (the parity
// path) everything is fp32; in fp16 / bf16 precision, linear multiplies the weight's half copy
// (made at load) by its input rounded to half, accumulating and writing fp32.
//
// Row-major y[M,N] = x[M,K]·W[N,K]ᵀ is column-major D[N,M] = op(A)·B with A = W viewed as
// col-major [K,N] (ld K) transposed and B = x as col-major [K,M] (ld ldx); D has ld ldy.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "core/arena.h"
#include "ops/cuda/launch.h"

namespace omniseg::ops::cuda {

namespace {

// Largest power of two (≤ 256) dividing the address and, for batches, every batch's offset.
uint32_t alignmentOf(const void* p, int64_t strideElems, size_t elemBytes) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (strideElems) a |= static_cast<uintptr_t>(strideElems) * elemBytes;
  uint32_t al = 256;
  while (al > 4 && (a & (al - 1))) al >>= 1;
  return al;
}

// Everything the heuristic's answer depends on.
struct Key {
  int32_t device, transA, transB, epilogue, hasBeta, type, dType;
  int64_t m, n, k, lda, ldb, ldd, strideA, strideB, strideD, batch;
  uint32_t alA, alB, alD;
  uint64_t workspace;
  bool operator==(const Key& o) const { return std::memcmp(this, &o, sizeof(Key)) == 0; }
};
struct KeyHash {
  size_t operator()(const Key& k) const {
    const auto* b = reinterpret_cast<const unsigned char*>(&k);
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (size_t i = 0; i < sizeof(Key); ++i) h = (h ^ b[i]) * 1099511628211ull;
    return static_cast<size_t>(h);
  }
};

std::mutex cacheMu;
std::unordered_map<Key, cublasLtMatmulAlgo_t, KeyHash>& algoCache() {
  static std::unordered_map<Key, cublasLtMatmulAlgo_t, KeyHash> cache;
  return cache;
}

// RAII holders so a throwing check never leaks descriptors.
struct OpDesc {
  cublasLtMatmulDesc_t d = nullptr;
  ~OpDesc() {
    if (d) cublasLtMatmulDescDestroy(d);
  }
};
struct LayoutDesc {
  cublasLtMatrixLayout_t d = nullptr;
  ~LayoutDesc() {
    if (d) cublasLtMatrixLayoutDestroy(d);
  }
};
struct PrefDesc {
  cublasLtMatmulPreference_t d = nullptr;
  ~PrefDesc() {
    if (d) cublasLtMatmulPreferenceDestroy(d);
  }
};

void makeLayout(LayoutDesc& l, cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld,
                int64_t batch, int64_t stride) {
  OMNISEG_CUDA_CHECK(cublasLtMatrixLayoutCreate(&l.d, type, static_cast<uint64_t>(rows),
                                                static_cast<uint64_t>(cols), ld));
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    OMNISEG_CUDA_CHECK(cublasLtMatrixLayoutSetAttribute(l.d, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                        &count, sizeof(count)));
    OMNISEG_CUDA_CHECK(cublasLtMatrixLayoutSetAttribute(
        l.d, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  }
}

// One block per row of y.
__global__ void biasActKernel(float* y, int64_t cols, int64_t ldy, const float* b, Act act) {
  float* row = y + blockIdx.x * ldy;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = row[c];
    if (b) v = dev::add(v, b[c]);
    row[c] = dev::act(v, act);
  }
}

// tmp [H*W, Cout*k*k] (column (co*k + dy)*k + dx) → y [(kH)*(kW), Cout] with bias and act.
__global__ void convTScatter(const float* tmp, int64_t H, int64_t W, int64_t k, int64_t Cout,
                             const float* b, Act act, float* y) {
  const int64_t kk = k * k, n = kk * H * W * Cout, OW = k * W;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t co = i % Cout, pix = i / Cout;
    const int64_t oy = pix / OW, ox = pix % OW;
    const int64_t iy = oy / k, dy = oy % k, ix = ox / k, dx = ox % k;
    float v = tmp[(iy * W + ix) * Cout * kk + co * kk + dy * k + dx];
    if (b) v = dev::add(v, b[co]);
    y[i] = dev::act(v, act);
  }
}

// y[m, n] = act(y[m, n]·beta + Σ_k x[m, k]·W[n, k] + b[n]) for M ≤ kSmallM rows, in fp32 whatever
// the precision: one thread per output column n, the rows of x in shared memory. cuBLAS's
// choices for these shapes (the decoder's few prompt tokens) are launch- or latency-bound.
constexpr int64_t kSmallM = 16;
__global__ void smallMLinearKernel(const float* x, int64_t M, int64_t K, int64_t ldx, const float* W,
                                   const float* b, int64_t N, float* y, int64_t ldy, Act act,
                                   bool accumulate) {
  extern __shared__ float xs[];  // [M, K]
  for (int64_t i = threadIdx.x; i < M * K; i += blockDim.x) xs[i] = x[(i / K) * ldx + i % K];
  __syncthreads();
  const int64_t n = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (n >= N) return;
  float acc[kSmallM];
  for (int m = 0; m < kSmallM; ++m) acc[m] = 0.f;
  const float* w = W + n * K;
  for (int64_t k = 0; k < K; ++k) {
    const float wk = w[k];
#pragma unroll
    for (int m = 0; m < kSmallM; ++m)
      if (m < M) acc[m] = dev::add(acc[m], dev::mul(xs[m * K + k], wk));
  }
#pragma unroll
  for (int m = 0; m < kSmallM; ++m) {
    if (m >= M) break;
    float v = acc[m];
    if (accumulate) v = dev::add(y[m * ldy + n], v);
    if (b) v = dev::add(v, b[n]);
    y[m * ldy + n] = dev::act(v, act);
  }
}

// The same for long rows (K ≥ kWarpK): one block per output column n, its threads splitting K
// (coalesced reads of W's row and of x, which stays in cache), a shuffle reduction per warp and
// one across the block's warps. N blocks of up to 256 threads keep the GPU busy even for the
// decoder's 256-wide layers, where a warp per column left most SMs idle.
constexpr int64_t kWarpK = 64;
constexpr int kSplitThreads = 256;
__global__ void __launch_bounds__(kSplitThreads) smallMLinearSplitKernel(
    const float* x, int64_t M, int64_t K, int64_t ldx, const float* W, const float* b, int64_t N,
    float* y, int64_t ldy, Act act, bool accumulate) {
  __shared__ float red[kSplitThreads / 32][kSmallM];
  const int64_t n = blockIdx.x;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  float acc[kSmallM];
  for (int m = 0; m < kSmallM; ++m) acc[m] = 0.f;
  const float* w = W + n * K;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
    const float wk = w[k];
#pragma unroll
    for (int m = 0; m < kSmallM; ++m)
      if (m < M) acc[m] = dev::add(acc[m], dev::mul(x[m * ldx + k], wk));
  }
#pragma unroll
  for (int m = 0; m < kSmallM; ++m) {
    if (m >= M) break;
    const float v = dev::warpSum(acc[m]);
    if (lane == 0) red[warp][m] = v;
  }
  __syncthreads();
  const int m = threadIdx.x;
  if (m >= M) return;
  float v = red[0][m];
  for (int i = 1; i < warps; ++i) v = dev::add(v, red[i][m]);
  if (accumulate) v = dev::add(y[m * ldy + n], v);
  if (b) v = dev::add(v, b[n]);
  y[m * ldy + n] = dev::act(v, act);
}


// linearGemm with half operands: xh [M, K] dense in ctx's precision, W's half copy (or, for a
// W that is not a weight, its rounding in the arena).
Gemm halfLinearGemm(Ctx& ctx, const void* xh, int64_t M, int64_t K, const float* W, int64_t N, void* y,
                    int64_t ldy) {
  return linearGemm(halfOf(ctx, W, N, K), xh, K, M, K, N, y, ldy, gemmType(ctx.gpu->precision()));
}

// Runs g (a linearGemm into fp32 y) as act(x·Wᵀ + b) (+ y). Bias and ReLU go into the epilogue
// where cuBLASLt can; exact GELU (cuBLASLt's is the tanh form) and unaligned biases into biasAct.
void runLinear(Ctx& ctx, Gemm& g, int64_t M, int64_t N, const float* b, float* y, int64_t ldy, Act act,
               bool accumulate) {
  g.beta = accumulate ? 1.f : 0.f;
  const bool epiBias = b && (act == Act::None || act == Act::Relu) && biasAligned(b);
  if (epiBias) g.bias = b;
  const bool epiRelu = act == Act::Relu && (epiBias || !b);
  g.relu = epiRelu;
  ltGemm(ctx, g);
  if (!epiBias && (b || act != Act::None) && !epiRelu) biasAct(ctx, y, M, N, ldy, b, act);
}

}  // namespace

Gemm linearGemm(const void* W, const void* x, int64_t ldx, int64_t M, int64_t K, int64_t N, void* y,
                int64_t ldy, cudaDataType_t type) {
  Gemm g;
  g.type = type;
  g.transA = true;
  g.m = N;
  g.n = M;
  g.k = K;
  g.A = W;
  g.lda = K;
  g.B = x;
  g.ldb = ldx;
  g.D = y;
  g.ldd = ldy;
  return g;
}

void ltGemm(Ctx& ctx, const Gemm& g) {
  OMNISEG_CHECK(ctx.gpu != nullptr, "ltGemm: no GPU stream");
  OMNISEG_CHECK(g.m > 0 && g.n > 0 && g.k > 0 && g.batch > 0, "ltGemm: empty GEMM");
  OMNISEG_CHECK(g.A && g.B && g.D, "ltGemm: null operand");
  OMNISEG_CHECK(g.batch <= INT32_MAX, "ltGemm: batch too large");
  const gpu::Stream& s = *ctx.gpu;

  cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
  if (g.bias) {
    OMNISEG_CHECK(biasAligned(g.bias), "ltGemm: bias not 16-byte aligned");
    epi = g.relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
  } else if (g.relu) {
    epi = CUBLASLT_EPILOGUE_RELU;
  }

  OpDesc op;
  OMNISEG_CHECK(g.dType == CUDA_R_32F || g.dType == g.type, "ltGemm: D is fp32 or the operands' type");
  OMNISEG_CUDA_CHECK(cublasLtMatmulDescCreate(&op.d, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = g.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t tb = g.transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  OMNISEG_CUDA_CHECK(
      cublasLtMatmulDescSetAttribute(op.d, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  OMNISEG_CUDA_CHECK(
      cublasLtMatmulDescSetAttribute(op.d, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  OMNISEG_CUDA_CHECK(
      cublasLtMatmulDescSetAttribute(op.d, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  if (g.bias) {
    OMNISEG_CUDA_CHECK(cublasLtMatmulDescSetAttribute(op.d, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                      &g.bias, sizeof(g.bias)));
  }

  // Stored shapes: A is [m, k] after op, so stored [k, m] when transposed; likewise B.
  LayoutDesc la, lb, ld;
  makeLayout(la, g.type, g.transA ? g.k : g.m, g.transA ? g.m : g.k, g.lda, g.batch, g.strideA);
  makeLayout(lb, g.type, g.transB ? g.n : g.k, g.transB ? g.k : g.n, g.ldb, g.batch, g.strideB);
  makeLayout(ld, g.dType, g.m, g.n, g.ldd, g.batch, g.strideD);

  Key key;
  std::memset(&key, 0, sizeof(key));  // padding bytes take part in the hash
  OMNISEG_CUDA_CHECK(cudaGetDevice(&key.device));
  key.transA = g.transA;
  key.transB = g.transB;
  key.epilogue = static_cast<int32_t>(epi);
  key.hasBeta = g.beta != 0.f;
  key.type = static_cast<int32_t>(g.type);
  key.dType = static_cast<int32_t>(g.dType);
  key.m = g.m;
  key.n = g.n;
  key.k = g.k;
  key.lda = g.lda;
  key.ldb = g.ldb;
  key.ldd = g.ldd;
  key.batch = g.batch;
  key.strideA = g.batch > 1 ? g.strideA : 0;
  key.strideB = g.batch > 1 ? g.strideB : 0;
  key.strideD = g.batch > 1 ? g.strideD : 0;
  const size_t ab = g.type == CUDA_R_32F ? 4 : 2;
  key.alA = alignmentOf(g.A, key.strideA, ab);
  key.alB = alignmentOf(g.B, key.strideB, ab);
  key.alD = alignmentOf(g.D, key.strideD, g.dType == CUDA_R_32F ? 4 : 2);
  key.workspace = s.workspaceBytes();

  cublasLtMatmulAlgo_t algo;
  bool cached = false;
  {
    std::lock_guard<std::mutex> lock(cacheMu);
    auto it = algoCache().find(key);
    if (it != algoCache().end()) {
      algo = it->second;
      cached = true;
    }
  }
  if (!cached) {
    PrefDesc pref;
    OMNISEG_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref.d));
    const uint64_t ws = key.workspace;
    OMNISEG_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref.d, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
    OMNISEG_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref.d, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &key.alA, sizeof(key.alA)));
    OMNISEG_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref.d, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &key.alB, sizeof(key.alB)));
    OMNISEG_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref.d, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &key.alD, sizeof(key.alD)));
    OMNISEG_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref.d, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &key.alD, sizeof(key.alD)));
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    OMNISEG_CUDA_CHECK(cublasLtMatmulAlgoGetHeuristic(s.lt(), op.d, la.d, lb.d, ld.d, ld.d, pref.d,
                                                      1, &result, &found));
    OMNISEG_CHECK(found > 0, "cuBLASLt: no algorithm for this GEMM");
    algo = result.algo;
    std::lock_guard<std::mutex> lock(cacheMu);
    algoCache().emplace(key, algo);
  }

  OMNISEG_CUDA_CHECK(cublasLtMatmul(s.lt(), op.d, &g.alpha, g.A, la.d, g.B, lb.d, &g.beta, g.D,
                                    ld.d, g.D, ld.d, &algo, s.workspace(), s.workspaceBytes(),
                                    s.get()));
}

void biasAct(Ctx& ctx, float* y, int64_t rows, int64_t cols, int64_t ldy, const float* b,
             Act act) {
  if (rows <= 0 || cols <= 0 || (!b && act == Act::None)) return;
  OMNISEG_CHECK(rows <= INT32_MAX, "biasAct: too many rows");
  biasActKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream(ctx)>>>(y, cols, ldy, b, act);
  gpu::checkLaunch("biasActKernel");
}

void linear(Ctx& ctx, const float* x, int64_t M, int64_t K, const float* W, const float* b,
            int64_t N, float* y, Act act, bool accumulate, int64_t ldx, int64_t ldy) {
  if (ldx == 0) ldx = K;
  if (ldy == 0) ldy = N;
  OMNISEG_CHECK(M >= 0 && K > 0 && N > 0, "linear: bad shape");
  OMNISEG_CHECK(ldx >= K && ldy >= N, "linear: row stride smaller than the row");
  OMNISEG_CHECK(x && W && y, "linear: null operand");
  if (M == 0) return;
  const Precision p = ctx.gpu->precision();
  if (M <= kSmallM && N <= INT32_MAX && (K >= kWarpK || M * K * sizeof(float) <= 32 * 1024)) {
    const size_t shared = M * K * sizeof(float);
    if (K >= kWarpK) {
      // A warp per 32 values of K, at most kSplitThreads threads.
      const int threads = static_cast<int>(std::min<int64_t>(kSplitThreads, (K + 31) / 32 * 32));
      smallMLinearSplitKernel<<<static_cast<unsigned>(N), threads, 0, stream(ctx)>>>(
          x, M, K, ldx, W, b, N, y, ldy, act, accumulate);
    } else {
      const unsigned blocks = static_cast<unsigned>((N + kThreads - 1) / kThreads);
      smallMLinearKernel<<<blocks, kThreads, shared, stream(ctx)>>>(x, M, K, ldx, W, b, N, y, ldy,
                                                                    act, accumulate);
    }
    gpu::checkLaunch("smallMLinear");
    return;
  }
  if (p != Precision::Fp32) {
    ArenaScope scope(ctx.arena);  // the half copy of x
    linearHalfInput(ctx, toHalf(ctx, x, M, K, ldx, p), M, K, W, b, N, y, act, accumulate, ldy);
    return;
  }
  Gemm g = linearGemm(W, x, ldx, M, K, N, y, ldy);
  runLinear(ctx, g, M, N, b, y, ldy, act, accumulate);
}

void linearHalfInput(Ctx& ctx, const void* xh, int64_t M, int64_t K, const float* W,
                     const float* b, int64_t N, float* y, Act act, bool accumulate, int64_t ldy) {
  const Precision p = ctx.gpu->precision();
  OMNISEG_CHECK(p != Precision::Fp32, "linearHalfInput: fp32 precision");
  OMNISEG_CHECK(M >= 0 && K > 0 && N > 0, "linearHalfInput: bad shape");
  OMNISEG_CHECK(xh && W && y, "linearHalfInput: null operand");
  if (ldy == 0) ldy = N;
  if (M == 0) return;
  ArenaScope scope(ctx.arena);  // the half copy of W when it is not a weight
  Gemm g = halfLinearGemm(ctx, xh, M, K, W, N, y, ldy);
  runLinear(ctx, g, M, N, b, y, ldy, act, accumulate);
}

const void* linearHalfOutput(Ctx& ctx, const void* xh, int64_t M, int64_t K, const float* W,
                             const float* b, int64_t N, Act act) {
  const Precision p = ctx.gpu->precision();
  OMNISEG_CHECK(p != Precision::Fp32, "linearHalfOutput: fp32 precision");
  OMNISEG_CHECK(M > 0 && K > 0 && N > 0, "linearHalfOutput: bad shape");
  OMNISEG_CHECK(xh && W, "linearHalfOutput: null operand");
  void* y = ctx.arena.bytes(static_cast<size_t>(M * N) * 2);
  // (a rounded W or b lands in the arena past y: kept with it)
  Gemm g = halfLinearGemm(ctx, xh, M, K, W, N, y, N);
  g.dType = g.type;
  if (b) {
    const void* bh = ctx.gpu->half(b);
    g.bias = bh && biasAligned(bh) ? bh : toHalf(ctx, b, 1, N, N, p);
  }
  ltGemm(ctx, g);
  if (act != Act::None) actHalf(ctx, y, M * N, act);
  return y;
}

void matmul(Ctx& ctx, const float* x, int64_t M, int64_t K, const float* B, int64_t N, float* y,
            bool accumulate) {
  OMNISEG_CHECK(M >= 0 && K > 0 && N > 0, "matmul: bad shape");
  OMNISEG_CHECK(x && B && y, "matmul: null operand");
  if (M == 0) return;
  // Col-major D[N,M] = B_cm[N,K] (ld N) · x_cm[K,M] (ld K).
  Gemm g;
  g.m = N;
  g.n = M;
  g.k = K;
  g.A = B;
  g.lda = N;
  g.B = x;
  g.ldb = K;
  g.D = y;
  g.ldd = N;
  g.beta = accumulate ? 1.f : 0.f;
  ltGemm(ctx, g);
}

void convTranspose(Ctx& ctx, const float* x, int64_t H, int64_t W, int64_t Cin, int64_t k,
                   const float* weight, const float* b, int64_t Cout, float* y, Act act) {
  OMNISEG_CHECK(H > 0 && W > 0 && Cin > 0 && Cout > 0 && k > 0, "convTranspose: bad shape");
  OMNISEG_CHECK(x && weight && y, "convTranspose: null operand");
  ArenaScope scope(ctx.arena);
  const int64_t kk = k * k;
  float* tmp = ctx.arena.floats(static_cast<size_t>(H * W * Cout * kk));
  matmul(ctx, x, H * W, Cin, weight, Cout * kk, tmp);
  convTScatter<<<gridFor(kk * H * W * Cout), kThreads, 0, stream(ctx)>>>(tmp, H, W, k, Cout, b, act,
                                                                         y);
  gpu::checkLaunch("convTScatter");
}

}  // namespace omniseg::ops::cuda
