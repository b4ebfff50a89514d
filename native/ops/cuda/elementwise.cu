// Elementwise ops: exact (erf) GELU, ReLU, add, per-channel scale + shift (FiLM). GELU uses the
// CPU backend's erf/exp (launch.h dev::), so results equal the CPU's bit for bit.
#include "ops/cuda/launch.h"

namespace omniseg::ops::cuda {

namespace {

#define OMNISEG_GRID_STRIDE(i, n)                                                     \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

__global__ void geluKernel(float* x, int64_t n) {
  OMNISEG_GRID_STRIDE(i, n) x[i] = dev::gelu(x[i]);
}

__global__ void reluKernel(float* x, int64_t n) {
  OMNISEG_GRID_STRIDE(i, n) {
    const float v = x[i];
    x[i] = v > 0.f ? v : 0.f;
  }
}

__global__ void addKernel(const float* a, const float* b, int64_t n, float* y) {
  OMNISEG_GRID_STRIDE(i, n) y[i] = dev::add(a[i], b[i]);
}

__global__ void scaleShiftRowsKernel(const float* x, int64_t n, int64_t C, const float* scale,
                                     const float* shift, float* y) {
  OMNISEG_GRID_STRIDE(i, n) {
    const int64_t c = i % C;
    y[i] = dev::add(dev::mul(x[i], scale[c]), shift[c]);
  }
}

#undef OMNISEG_GRID_STRIDE

}  // namespace

void gelu(Ctx& ctx, float* x, int64_t n) {
  OMNISEG_CHECK(n >= 0 && (x || n == 0), "gelu: bad operand");
  if (n == 0) return;
  geluKernel<<<gridFor(n), kThreads, 0, stream(ctx)>>>(x, n);
  gpu::checkLaunch("geluKernel");
}

void relu(Ctx& ctx, float* x, int64_t n) {
  OMNISEG_CHECK(n >= 0 && (x || n == 0), "relu: bad operand");
  if (n == 0) return;
  reluKernel<<<gridFor(n), kThreads, 0, stream(ctx)>>>(x, n);
  gpu::checkLaunch("reluKernel");
}

void add(Ctx& ctx, const float* a, const float* b, int64_t n, float* y) {
  OMNISEG_CHECK(n >= 0 && ((a && b && y) || n == 0), "add: bad operand");
  if (n == 0) return;
  addKernel<<<gridFor(n), kThreads, 0, stream(ctx)>>>(a, b, n, y);
  gpu::checkLaunch("addKernel");
}

void scaleShiftRows(Ctx& ctx, const float* x, int64_t rows, int64_t C, const float* scale,
                    const float* shift, float* y) {
  OMNISEG_CHECK(rows >= 0 && C > 0, "scaleShiftRows: bad shape");
  if (rows == 0) return;
  OMNISEG_CHECK(x && scale && shift && y, "scaleShiftRows: null operand");
  scaleShiftRowsKernel<<<gridFor(rows * C), kThreads, 0, stream(ctx)>>>(x, rows * C, C, scale, shift, y);
  gpu::checkLaunch("scaleShiftRowsKernel");
}

}  // namespace omniseg::ops::cuda
