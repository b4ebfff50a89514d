// Pillow's 8-bit bilinear resize (ops::resizeU8Pil) on the device, bit-exact with the CPU backend
// (ops/cpu/resize.cc): the fixed-point coefficient tables come from the same host function
// (ops/pil_coeffs.h), the passes run in the same order (horizontal into an intermediate
// [ih, ow, C] buffer, then vertical; a pass is skipped when its dimension is unchanged, and the
// same size is a plain copy), and every output byte is the same int32 sum and clip.
#include <vector>

#include "core/arena.h"
#include "ops/cuda/launch.h"
#include "ops/pil_coeffs.h"

namespace omniseg::ops::cuda {

namespace {

constexpr int kPrecisionBits = pil::kPrecisionBits;

__device__ __forceinline__ uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// out [rows, ow, C] from in [rows, iw, C]: output column x takes bounds[2x+1] taps from input
// column bounds[2x] with the weights kk[x, :]. One thread per output byte.
__global__ void resizeU8HorizontalKernel(const uint8_t* in, int64_t rows, int64_t iw, int64_t C,
                                         const int32_t* bounds, const int32_t* kk, int ksize,
                                         int64_t ow, uint8_t* out) {
  const int64_t n = rows * ow * C;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t ch = i % C, t = i / C;
    const int64_t x = t % ow, y = t / ow;
    const int xmin = bounds[x * 2], xn = bounds[x * 2 + 1];
    const int32_t* k = kk + x * ksize;
    const uint8_t* p = in + (y * iw + xmin) * C + ch;
    int32_t ss = 1 << (kPrecisionBits - 1);
    for (int j = 0; j < xn; ++j) ss += static_cast<int32_t>(p[j * C]) * k[j];
    out[i] = clip8(ss);
  }
}

// out [oh, rowBytes] from in [ih, rowBytes]: output row y takes bounds[2y+1] rows from input row
// bounds[2y] with the weights kk[y, :]. One thread per output byte (coalesced along the row).
__global__ void resizeU8VerticalKernel(const uint8_t* in, int64_t rowBytes, const int32_t* bounds,
                                       const int32_t* kk, int ksize, int64_t oh, uint8_t* out) {
  const int64_t n = oh * rowBytes;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t x = i % rowBytes, y = i / rowBytes;
    const int ymin = bounds[y * 2], yn = bounds[y * 2 + 1];
    const int32_t* k = kk + y * ksize;
    const uint8_t* p = in + ymin * rowBytes + x;
    int32_t ss = 1 << (kPrecisionBits - 1);
    for (int j = 0; j < yn; ++j) ss += static_cast<int32_t>(p[j * rowBytes]) * k[j];
    out[i] = clip8(ss);
  }
}

// Appends a pass's tables (bounds, then kk) to the host staging vector; returns their offsets.
struct TableOffsets {
  size_t bounds, kk;
};
TableOffsets append(std::vector<int32_t>& host, const pil::Coeffs& c) {
  static_assert(sizeof(int) == sizeof(int32_t), "Pillow bounds are int");
  TableOffsets o{host.size(), 0};
  host.insert(host.end(), c.bounds.begin(), c.bounds.end());
  o.kk = host.size();
  host.insert(host.end(), c.kk.begin(), c.kk.end());
  return o;
}

}  // namespace

void resizeU8Pil(Ctx& ctx, const uint8_t* in, int64_t ih, int64_t iw, int64_t channels,
                 uint8_t* out, int64_t oh, int64_t ow) {
  OMNISEG_CHECK(ih > 0 && iw > 0 && oh > 0 && ow > 0 && channels > 0, "resizeU8Pil: empty image");
  OMNISEG_CHECK(ih <= INT32_MAX && iw <= INT32_MAX && oh <= INT32_MAX && ow <= INT32_MAX,
                "resizeU8Pil: image too large");
  OMNISEG_CHECK(in && out, "resizeU8Pil: null operand");
  const int64_t C = channels;
  const cudaStream_t s = stream(ctx);
  if (ih == oh && iw == ow) {
    OMNISEG_CUDA_CHECK(cudaMemcpyAsync(out, in, static_cast<size_t>(ih * iw * C),
                                       cudaMemcpyDeviceToDevice, s));
    return;
  }
  const bool horizontal = ow != iw, vertical = oh != ih;
  // Both passes' tables, computed on the host as the CPU backend does, in one upload.
  std::vector<int32_t> tables;
  pil::Coeffs hc, vc;
  TableOffsets ho{}, vo{};
  if (horizontal) {
    hc = pil::bilinearCoeffs(static_cast<int>(iw), static_cast<int>(ow));
    ho = append(tables, hc);
  }
  if (vertical) {
    vc = pil::bilinearCoeffs(static_cast<int>(ih), static_cast<int>(oh));
    vo = append(tables, vc);
  }
  ArenaScope scope(ctx.arena);  // tables and the intermediate image; reuse is stream-ordered
  auto* dTables = static_cast<int32_t*>(ctx.arena.bytes(tables.size() * sizeof(int32_t)));
  // From pageable memory this returns once `tables` has been staged.
  OMNISEG_CUDA_CHECK(cudaMemcpyAsync(dTables, tables.data(), tables.size() * sizeof(int32_t),
                                     cudaMemcpyHostToDevice, s));
  // Horizontal pass into tmp [ih, ow, C] (straight into out when the height is unchanged).
  const uint8_t* src = in;
  if (horizontal) {
    uint8_t* dst =
        vertical ? static_cast<uint8_t*>(ctx.arena.bytes(static_cast<size_t>(ih * ow * C))) : out;
    resizeU8HorizontalKernel<<<gridFor(ih * ow * C), kThreads, 0, s>>>(
        in, ih, iw, C, dTables + ho.bounds, dTables + ho.kk, hc.ksize, ow, dst);
    gpu::checkLaunch("resizeU8HorizontalKernel");
    if (!vertical) return;
    src = dst;
  }
  // Vertical pass from src [ih, ow, C] into out [oh, ow, C].
  resizeU8VerticalKernel<<<gridFor(oh * ow * C), kThreads, 0, s>>>(
      src, ow * C, dTables + vo.bounds, dTables + vo.kk, vc.ksize, oh, out);
  gpu::checkLaunch("resizeU8VerticalKernel");
}

}  // namespace omniseg::ops::cuda
