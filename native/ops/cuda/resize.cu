// Bilinear resize with torch's align_corners=False semantics. The taps are computed in the kernel
// exactly as ops/cpu/resize.cc's linearTaps does on the host (same float operations, rounded the
// same way; the scale in/out is divided on the host), and the interpolation rounds like the CPU's
// bilinearRow, so the result equals the CPU backend's bit for bit.
#include "ops/cuda/launch.h"

namespace omniseg::ops::cuda {

namespace {

struct Tap {
  int64_t i0, i1;
  float w0, w1;
};

// ref: aten/src/ATen/native/UpSample.h area_pixel_compute_source_index, guard_index_and_lambda
__device__ __forceinline__ Tap linearTap(int64_t o, int64_t in, float scale) {
  float src = dev::add(dev::mul(scale, dev::add(static_cast<float>(o), 0.5f)), -0.5f);
  if (src < 0.f) src = 0.f;
  const int64_t f = static_cast<int64_t>(floorf(src));
  const int64_t i0 = f < in - 1 ? f : in - 1;
  float l1 = dev::add(src, -static_cast<float>(i0));
  l1 = l1 < 0.f ? 0.f : l1;
  l1 = 1.f < l1 ? 1.f : l1;
  return {i0, i0 + (i0 < in - 1 ? 1 : 0), dev::add(1.f, -l1), l1};
}

__global__ void resizeBilinearKernel(const float* in, int64_t planes, int64_t ih, int64_t iw,
                                     int64_t inStride, int64_t inPlaneStride, float* out,
                                     float scaleY, float scaleX, int64_t outRows,
                                     int64_t outCols) {
  const int64_t n = planes * outRows * outCols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t x = i % outCols, r = i / outCols;
    const int64_t y = r % outRows, p = r / outRows;
    const Tap ty = linearTap(y, ih, scaleY), tx = linearTap(x, iw, scaleX);
    const float* plane = in + p * inPlaneStride;
    const float* r0 = plane + ty.i0 * inStride;
    const float* r1 = plane + ty.i1 * inStride;
    const float a = dev::add(dev::mul(r0[tx.i0], tx.w0), dev::mul(r0[tx.i1], tx.w1));
    const float b = dev::add(dev::mul(r1[tx.i0], tx.w0), dev::mul(r1[tx.i1], tx.w1));
    out[i] = dev::add(dev::mul(a, ty.w0), dev::mul(b, ty.w1));
  }
}

}  // namespace

void resizeBilinear(Ctx& ctx, const float* in, int64_t planes, int64_t ih, int64_t iw,
                    int64_t inStride, int64_t inPlaneStride, float* out, int64_t oh, int64_t ow,
                    int64_t outRows, int64_t outCols) {
  OMNISEG_CHECK(planes >= 0 && ih > 0 && iw > 0 && oh > 0 && ow > 0, "resizeBilinear: bad shape");
  OMNISEG_CHECK(outRows >= 0 && outRows <= oh && outCols >= 0 && outCols <= ow,
                "resizeBilinear: output crop larger than the output");
  OMNISEG_CHECK(inStride >= iw && inPlaneStride >= 0, "resizeBilinear: bad input strides");
  const int64_t n = planes * outRows * outCols;
  if (n == 0) return;
  OMNISEG_CHECK(in && out, "resizeBilinear: null operand");
  // The same float divisions as the CPU's linearTaps.
  const float scaleY = static_cast<float>(ih) / static_cast<float>(oh);
  const float scaleX = static_cast<float>(iw) / static_cast<float>(ow);
  resizeBilinearKernel<<<gridFor(n), kThreads, 0, stream(ctx)>>>(
      in, planes, ih, iw, inStride, inPlaneStride, out, scaleY, scaleX, outRows, outCols);
  gpu::checkLaunch("resizeBilinearKernel");
}

// The resize into scratch, then the threshold (two launches; the bounds are the CPU's).
void resizeThreshold(Ctx& ctx, const float* x, int64_t ih, int64_t iw, int64_t H, int64_t W,
                     float t, uint8_t* mask, double* bounds) {
  OMNISEG_CHECK(!bounds, "resizeThreshold: bounds are taken on the CPU only");
  if (ih == H && iw == W) {
    threshold(ctx, x, H * W, t, mask);
    return;
  }
  ArenaScope scratch(ctx.arena);
  float* up = ctx.arena.floats(H * W);
  resizeBilinear(ctx, x, 1, ih, iw, iw, 0, up, H, W, H, W);
  threshold(ctx, up, H * W, t, mask);
}

}  // namespace omniseg::ops::cuda
