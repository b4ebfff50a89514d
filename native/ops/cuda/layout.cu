// Data movement on the device: window partition/unpartition, transpose, broadcast, threshold,
// copies, and the host ↔ device transfers (same layouts as ops/cpu/layout.cc).
#include "ops/cuda/launch.h"

namespace omniseg::ops::cuda {

namespace {

#define OMNISEG_GRID_STRIDE(i, n)                                                        \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// One block per row of win [nW, ws*ws, D] (x [E, E, D] padded to [nw*ws, nw*ws]): the grid row,
// or fill (or zeros) for padding.
__global__ void windowPartitionKernel(const float* x, int64_t E, int64_t D, int64_t ws,
                                      const float* fill, float* win) {
  const int64_t nw = (E + ws - 1) / ws, row = blockIdx.x;
  const int64_t w = row / (ws * ws), rr = row - w * ws * ws;
  const int64_t y = (w / nw) * ws + rr / ws, xx = (w % nw) * ws + rr % ws;
  dev::copyRow(y < E && xx < E ? x + (y * E + xx) * D : fill, win + row * D, D);
}

// One block per row of x [E, E, D]: its row of win.
__global__ void windowUnpartitionKernel(const float* win, int64_t E, int64_t D, int64_t ws,
                                        float* x) {
  const int64_t nw = (E + ws - 1) / ws, pix = blockIdx.x;
  const int64_t y = pix / E, xx = pix - y * E;
  const int64_t w = (y / ws) * nw + xx / ws;
  dev::copyRow(win + (w * ws * ws + (y % ws) * ws + xx % ws) * D, x + pix * D, D);
}

constexpr int kTile = 32, kTileRows = 8;

// y [cols, rows] = x [rows, cols]ᵀ through a shared-memory tile (coalesced both ways).
__global__ void transposeKernel(const float* x, int64_t rows, int64_t cols, float* y) {
  __shared__ float tile[kTile][kTile + 1];
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * kTile;
  for (int i = threadIdx.y; i < kTile; i += kTileRows) {
    const int64_t r = r0 + i, c = c0 + threadIdx.x;
    if (r < rows && c < cols) tile[i][threadIdx.x] = x[r * cols + c];
  }
  __syncthreads();
  for (int i = threadIdx.y; i < kTile; i += kTileRows) {
    const int64_t c = c0 + i, r = r0 + threadIdx.x;
    if (r < rows && c < cols) y[c * rows + r] = tile[threadIdx.x][i];
  }
}

__global__ void broadcastRowsKernel(const float* row, int64_t rows, int64_t C, float* y) {
  OMNISEG_GRID_STRIDE(i, rows * C) y[i] = row[i % C];
}

// planes [3, S, S] from rgb [h, w, 3] through lut [3, 256], zero padding.
__global__ void normalizeRgbKernel(const uint8_t* rgb, int64_t h, int64_t w, const float* lut,
                                   int64_t S, float* planes) {
  OMNISEG_GRID_STRIDE(i, 3 * S * S) {
    const int64_t c = i / (S * S), y = (i / S) % S, x = i % S;
    planes[i] = (y < h && x < w) ? lut[c * 256 + rgb[(y * w + x) * 3 + c]] : 0.f;
  }
}

__global__ void thresholdKernel(const float* x, int64_t n, float t, uint8_t* y) {
  OMNISEG_GRID_STRIDE(i, n) y[i] = x[i] > t ? 1 : 0;
}

#undef OMNISEG_GRID_STRIDE

}  // namespace

void windowPartition(Ctx& ctx, const float* x, int64_t E, int64_t D, int64_t ws,
                     const float* fill, float* win) {
  OMNISEG_CHECK(E > 0 && D > 0 && ws > 0, "windowPartition: bad shape");
  OMNISEG_CHECK(x && win, "windowPartition: null operand");
  const int64_t nw = (E + ws - 1) / ws, rows = nw * nw * ws * ws;
  OMNISEG_CHECK(rows <= INT32_MAX, "windowPartition: grid too large");
  windowPartitionKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream(ctx)>>>(x, E, D, ws, fill, win);
  gpu::checkLaunch("windowPartitionKernel");
}

void windowUnpartition(Ctx& ctx, const float* win, int64_t E, int64_t D, int64_t ws, float* x) {
  OMNISEG_CHECK(E > 0 && D > 0 && ws > 0, "windowUnpartition: bad shape");
  OMNISEG_CHECK(x && win, "windowUnpartition: null operand");
  OMNISEG_CHECK(E * E <= INT32_MAX, "windowUnpartition: grid too large");
  windowUnpartitionKernel<<<static_cast<unsigned>(E * E), kThreads, 0, stream(ctx)>>>(win, E, D, ws, x);
  gpu::checkLaunch("windowUnpartitionKernel");
}

void transpose(Ctx& ctx, const float* x, int64_t rows, int64_t cols, float* y) {
  OMNISEG_CHECK(rows >= 0 && cols >= 0, "transpose: bad shape");
  if (rows == 0 || cols == 0) return;
  OMNISEG_CHECK(x && y, "transpose: null operand");
  const int64_t gx = (cols + kTile - 1) / kTile, gy = (rows + kTile - 1) / kTile;
  OMNISEG_CHECK(gx <= INT32_MAX && gy <= 65535, "transpose: matrix too large");
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy));
  transposeKernel<<<grid, dim3(kTile, kTileRows), 0, stream(ctx)>>>(x, rows, cols, y);
  gpu::checkLaunch("transposeKernel");
}

void broadcastRows(Ctx& ctx, const float* row, int64_t rows, int64_t C, float* y) {
  OMNISEG_CHECK(rows >= 0 && C >= 0, "broadcastRows: bad shape");
  if (rows == 0 || C == 0) return;
  OMNISEG_CHECK(row && y, "broadcastRows: null operand");
  broadcastRowsKernel<<<gridFor(rows * C), kThreads, 0, stream(ctx)>>>(row, rows, C, y);
  gpu::checkLaunch("broadcastRowsKernel");
}

void normalizeRgb(Ctx& ctx, const uint8_t* rgb, int64_t h, int64_t w, const float* lut, int64_t S,
                  float* planes) {
  OMNISEG_CHECK(h > 0 && w > 0 && h <= S && w <= S, "normalizeRgb: bad shape");
  normalizeRgbKernel<<<gridFor(3 * S * S), kThreads, 0, stream(ctx)>>>(rgb, h, w, lut, S, planes);
  gpu::checkLaunch("normalizeRgbKernel");
}

void threshold(Ctx& ctx, const float* x, int64_t n, float t, uint8_t* y) {
  OMNISEG_CHECK(n >= 0, "threshold: bad size");
  if (n == 0) return;
  OMNISEG_CHECK(x && y, "threshold: null operand");
  thresholdKernel<<<gridFor(n), kThreads, 0, stream(ctx)>>>(x, n, t, y);
  gpu::checkLaunch("thresholdKernel");
}

void copy(Ctx& ctx, const float* src, int64_t n, float* dst) {
  OMNISEG_CHECK(n >= 0, "copy: bad size");
  if (n == 0) return;
  OMNISEG_CHECK(src && dst, "copy: null operand");
  OMNISEG_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * sizeof(float),
                                     cudaMemcpyDeviceToDevice, stream(ctx)));
}

void upload(Ctx& ctx, const void* host, size_t bytes, void* dst) {
  if (bytes == 0) return;
  OMNISEG_CHECK(host && dst, "upload: null operand");
  // From pageable memory this returns once the host buffer has been staged.
  OMNISEG_CUDA_CHECK(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, stream(ctx)));
}

void download(Ctx& ctx, const void* src, size_t bytes, void* host) {
  if (bytes) {
    OMNISEG_CHECK(src && host, "download: null operand");
    OMNISEG_CUDA_CHECK(cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, stream(ctx)));
  }
  ctx.gpu->synchronize();  // also for 0 bytes: download waits for the work queued before it
}

}  // namespace omniseg::ops::cuda
