// im2col layouts for the convolutions SAM runs as GEMMs (same layouts as ops/cpu/im2col.cc).
#include <algorithm>

#include "ops/cuda/launch.h"

namespace omniseg::ops::cuda {

namespace {

// cols [(H/k)*(W/k), C*k*k]; one thread per output value. I: the index type, 32-bit whenever
// the sizes allow (64-bit divisions made this kernel 4x slower than its memory traffic).
template <class I>
__global__ void patchifyKernel(const float* x, I C, I H, I W, I k, float* cols) {
  const I gw = W / k, K = C * k * k, n = (H / k) * gw * K;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const I p = i / K, j = i - p * K;
    const I py = p / gw, px = p - py * gw;
    const I c = j / (k * k), r = j - c * (k * k), ky = r / k, kx = r - ky * k;
    cols[i] = x[(c * H + py * k + ky) * W + px * k + kx];
  }
}

// cols [H*W, C*9], column c*9 + ky*3 + kx; zero outside the image; one thread per output value.
// The 32-bit index type is what counts: SAM's neck (64x64x256) took 110 µs with 64-bit indices
// (ncu, base clocks) and takes 48 (0.040 ms at full clocks, H100). One thread per (pixel,
// channel) writing its nine taps, which makes the reads contiguous but strides the writes, took
// 0.102 ms.
template <class I>
__global__ void im2col3x3Kernel(const float* x, I H, I W, I C, float* cols) {
  const I K = C * 9, n = H * W * K;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const I pix = i / K, j = i - pix * K;
    const I c = j / 9, tap = j - c * 9;
    const I y = pix / W, xx = pix - y * W;
    const I sy = y + tap / 3 - 1, sx = xx + tap % 3 - 1;
    cols[i] = (sy >= 0 && sy < H && sx >= 0 && sx < W) ? x[(sy * W + sx) * C + c] : 0.f;
  }
}

}  // namespace

void patchify(Ctx& ctx, const float* x, int64_t C, int64_t H, int64_t W, int64_t k, float* cols) {
  OMNISEG_CHECK(C > 0 && H >= 0 && W >= 0 && k > 0, "patchify: bad shape");
  const int64_t n = (H / k) * (W / k) * C * k * k;
  if (n == 0) return;
  OMNISEG_CHECK(x && cols, "patchify: null operand");
  // 32-bit when every index (of cols and of x, whose edge rows beyond a patch are not read) and
  // the grid-stride index stay below 2^31.
  if (std::max(n, C * H * W) <= INT32_MAX - 65535LL * 8 * kThreads)
    patchifyKernel<int32_t><<<gridFor(n), kThreads, 0, stream(ctx)>>>(
        x, static_cast<int32_t>(C), static_cast<int32_t>(H), static_cast<int32_t>(W), static_cast<int32_t>(k), cols);
  else
    patchifyKernel<int64_t><<<gridFor(n), kThreads, 0, stream(ctx)>>>(x, C, H, W, k, cols);
  gpu::checkLaunch("patchifyKernel");
}

void im2col3x3(Ctx& ctx, const float* x, int64_t H, int64_t W, int64_t C, float* cols) {
  OMNISEG_CHECK(H >= 0 && W >= 0 && C > 0, "im2col3x3: bad shape");
  const int64_t n = H * W * C * 9;
  if (n == 0) return;
  OMNISEG_CHECK(x && cols, "im2col3x3: null operand");
  if (n <= INT32_MAX - 65535LL * 8 * kThreads)
    im2col3x3Kernel<int32_t><<<gridFor(n), kThreads, 0, stream(ctx)>>>(
        x, static_cast<int32_t>(H), static_cast<int32_t>(W), static_cast<int32_t>(C), cols);
  else
    im2col3x3Kernel<int64_t><<<gridFor(n), kThreads, 0, stream(ctx)>>>(x, H, W, C, cols);
  gpu::checkLaunch("im2col3x3Kernel");
}

}  // namespace omniseg::ops::cuda
