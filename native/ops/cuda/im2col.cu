// im2col layouts for the convolutions SAM runs as GEMMs (same layouts as ops/cpu/im2col.cc).
#include "ops/cuda/launch.h"

namespace omniseg::ops::cuda {

namespace {

// cols [(H/k)*(W/k), C*k*k]; one thread per output value.
__global__ void patchifyKernel(const float* x, int64_t C, int64_t H, int64_t W, int64_t k,
                               float* cols) {
  const int64_t gw = W / k, K = C * k * k, n = (H / k) * gw * K;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = i / K, j = i - p * K;
    const int64_t py = p / gw, px = p - py * gw;
    const int64_t kx = j % k, ky = (j / k) % k, c = j / (k * k);
    cols[i] = x[(c * H + py * k + ky) * W + px * k + kx];
  }
}

// cols [H*W, C*9], column c*9 + ky*3 + kx; zero outside the image.
__global__ void im2col3x3Kernel(const float* x, int64_t H, int64_t W, int64_t C, float* cols) {
  const int64_t K = C * 9, n = H * W * K;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t pix = i / K, j = i - pix * K;
    const int64_t c = j / 9, tap = j - c * 9;
    const int64_t y = pix / W, xx = pix - y * W;
    const int64_t sy = y + tap / 3 - 1, sx = xx + tap % 3 - 1;
    cols[i] = (sy >= 0 && sy < H && sx >= 0 && sx < W) ? x[(sy * W + sx) * C + c] : 0.f;
  }
}

}  // namespace

void patchify(Ctx& ctx, const float* x, int64_t C, int64_t H, int64_t W, int64_t k, float* cols) {
  OMNISEG_CHECK(C > 0 && H >= 0 && W >= 0 && k > 0, "patchify: bad shape");
  const int64_t n = (H / k) * (W / k) * C * k * k;
  if (n == 0) return;
  OMNISEG_CHECK(x && cols, "patchify: null operand");
  patchifyKernel<<<gridFor(n), kThreads, 0, stream(ctx)>>>(x, C, H, W, k, cols);
  gpu::checkLaunch("patchifyKernel");
}

void im2col3x3(Ctx& ctx, const float* x, int64_t H, int64_t W, int64_t C, float* cols) {
  OMNISEG_CHECK(H >= 0 && W >= 0 && C > 0, "im2col3x3: bad shape");
  const int64_t n = H * W * C * 9;
  if (n == 0) return;
  OMNISEG_CHECK(x && cols, "im2col3x3: null operand");
  im2col3x3Kernel<<<gridFor(n), kThreads, 0, stream(ctx)>>>(x, H, W, C, cols);
  gpu::checkLaunch("im2col3x3Kernel");
}

}  // namespace omniseg::ops::cuda
