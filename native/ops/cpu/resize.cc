// Resampling: torch-style bilinear for float planes (mask post-processing) and Pillow's
// bilinear for 8-bit images (the SAM processor's resize).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "masks/run_lengths.h"
#include "ops/cpu/simd.h"
#include "ops/ops.h"
#include "ops/pil_coeffs.h"

namespace omniseg::ops {

namespace {

// One output coordinate's two source taps and weights (torch's compute_indices_weights_linear,
// align_corners=False).
struct Tap {
  int64_t i0, i1;
  float w0, w1;
};

std::vector<Tap> linearTaps(int64_t in, int64_t out) {
  // ref: aten/src/ATen/native/UpSample.h area_pixel_compute_source_index, guard_index_and_lambda
  std::vector<Tap> taps(static_cast<size_t>(out));
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (int64_t o = 0; o < out; ++o) {
    float src = scale * (static_cast<float>(o) + 0.5f) - 0.5f;
    if (src < 0.f) src = 0.f;
    const int64_t i0 = std::min(static_cast<int64_t>(std::floor(src)), in - 1);
    const float l1 = std::min(std::max(src - static_cast<float>(i0), 0.f), 1.f);
    taps[o] = {i0, i0 + (i0 < in - 1 ? 1 : 0), 1.f - l1, l1};
  }
  return taps;
}

// Horizontal pass of one source row: h[x] = r[i0]·w0 + r[i1]·w1.
OMNISEG_SIMD void horizontalRow(const float* r, const Tap* tx, int64_t n, float* h) {
  for (int64_t x = 0; x < n; ++x) h[x] = r[tx[x].i0] * tx[x].w0 + r[tx[x].i1] * tx[x].w1;
}

// Vertical pass: out[x] = h0[x]·wy0 + h1[x]·wy1 (the same operations, in the same order, as
// interpolating both rows for every output row, so results are identical).
OMNISEG_SIMD void blendRows(const float* h0, const float* h1, float wy0, float wy1, int64_t n,
                            float* out) {
  for (int64_t x = 0; x < n; ++x) out[x] = h0[x] * wy0 + h1[x] * wy1;
}

}  // namespace

// ---- Pillow ----------------------------------------------------------------------------------
// ref: Pillow src/libImaging/Resample.c (precompute_coeffs, normalize_coeffs_8bpc,
// ImagingResampleHorizontal_8bpc / Vertical_8bpc) with the bilinear filter (support 1).
// The coefficients are shared with the CUDA backend (ops/pil_coeffs.h).
namespace pil {

static double bilinearFilter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

Coeffs bilinearCoeffs(int inSize, int outSize) {
  const double scale = static_cast<double>(inSize) / outSize;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 1.0 * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(static_cast<size_t>(outSize) * 2);
  c.kk.assign(static_cast<size_t>(outSize) * c.ksize, 0);
  std::vector<double> k(static_cast<size_t>(c.ksize));
  for (int xx = 0; xx < outSize; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double w = bilinearFilter((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? k[x] / ww : k[x];
      c.kk[static_cast<size_t>(xx) * c.ksize + x] =
          static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[xx * 2] = xmin;
    c.bounds[xx * 2 + 1] = xmax;
  }
  return c;
}

}  // namespace pil

namespace {

constexpr int kPrecisionBits = pil::kPrecisionBits;

inline uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

}  // namespace

namespace {

// Rows [b, e) of a resize (r = plane · outRows + y): each output row r is handed to
// emit(r, h0, h1, wy0, wy1), its two source rows interpolated horizontally and their vertical
// weights. Separable: each source row is interpolated once (upsampling reuses it for several
// output rows), kept in one of two row buffers.
template <class Emit>
void resizeRows(const float* in, int64_t ih, int64_t inStride, int64_t inPlaneStride,
                const std::vector<Tap>& tx, const std::vector<Tap>& ty, int64_t outRows,
                int64_t outCols, int64_t b, int64_t e, Emit&& emit) {
  std::vector<float> buf[2] = {std::vector<float>(outCols), std::vector<float>(outCols)};
  int64_t held[2] = {-1, -1};  // the (plane, source row) each buffer holds
  int next = 0;
  auto row = [&](int64_t p, int64_t i) -> const float* {
    const int64_t key = p * ih + i;
    for (int k = 0; k < 2; ++k)
      if (held[k] == key) return buf[k].data();
    const int k = next;
    next ^= 1;
    horizontalRow(in + p * inPlaneStride + i * inStride, tx.data(), outCols, buf[k].data());
    held[k] = key;
    return buf[k].data();
  };
  for (int64_t r = b; r < e; ++r) {
    const int64_t p = r / outRows, y = r % outRows;
    const Tap& t = ty[y];
    const float* h0 = row(p, t.i0);
    next = held[0] == p * ih + t.i0 ? 1 : 0;  // keep h0's buffer while fetching h1
    const float* h1 = row(p, t.i1);
    emit(r, h0, h1, t.w0, t.w1);
  }
}

}  // namespace

namespace cpu {
void resizeBilinear(Ctx& ctx, const float* in, int64_t planes, int64_t ih, int64_t iw,
                    int64_t inStride, int64_t inPlaneStride, float* out, int64_t oh, int64_t ow,
                    int64_t outRows, int64_t outCols) {
  const std::vector<Tap> tx = linearTaps(iw, ow), ty = linearTaps(ih, oh);
  ctx.pool.parallelFor(planes * outRows, 16, [&](int64_t b, int64_t e) {
    resizeRows(in, ih, inStride, inPlaneStride, tx, ty, outRows, outCols, b, e,
               [&](int64_t r, const float* h0, const float* h1, float w0, float w1) {
                 blendRows(h0, h1, w0, w1, outCols, out + r * outCols);
               });
  });
}

void resizeThreshold(Ctx& ctx, const float* x, int64_t ih, int64_t iw, int64_t H, int64_t W,
                     float t, uint8_t* mask, double* bounds) {
  // Blocks of rows of ~64 K pixels over the pool; within a block, 8 rows at a time are
  // interpolated into a buffer the cache holds and thresholded from it (masks::thresholdBounds).
  constexpr int64_t kRows = 8;
  const bool same = ih == H && iw == W;  // (a bilinear resize to the same size is the identity)
  const std::vector<Tap> tx = same ? std::vector<Tap>() : linearTaps(iw, W);
  const std::vector<Tap> ty = same ? std::vector<Tap>() : linearTaps(ih, H);
  masks::Bounds all{0, 0, 0, 0, 0};
  std::mutex merge;
  ctx.pool.parallelFor(H, std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(W, 1)),
                       [&](int64_t b, int64_t e) {
    masks::Bounds part{0, 0, 0, 0, 0};
    if (same) {
      part = masks::unionBounds(part, masks::thresholdBounds(x + b * W, e - b, W, t, mask + b * W), b);
    } else {
      // (uninitialised: each row is written before it is read)
      const std::unique_ptr<float[]> rows(new float[static_cast<size_t>(std::min(kRows, e - b) * W)]);
      int64_t first = b;  // the buffer holds rows [first, r)
      resizeRows(x, ih, iw, 0, tx, ty, H, W, b, e,
                 [&](int64_t r, const float* h0, const float* h1, float w0, float w1) {
                   blendRows(h0, h1, w0, w1, W, rows.get() + (r - first) * W);
                   if (r + 1 - first < kRows && r + 1 < e) return;
                   const int64_t n = r + 1 - first;
                   part = masks::unionBounds(
                       part, masks::thresholdBounds(rows.get(), n, W, t, mask + first * W), first);
                   first = r + 1;
                 });
    }
    std::lock_guard<std::mutex> lock(merge);
    all = masks::unionBounds(all, part);
  });
  if (bounds) masks::writeBounds(all, bounds);
}

void resizeU8Pil(Ctx& ctx, const uint8_t* in, int64_t ih, int64_t iw, int64_t channels,
                 uint8_t* out, int64_t oh, int64_t ow) {
  OMNISEG_CHECK(ih > 0 && iw > 0 && oh > 0 && ow > 0 && channels > 0, "resizeU8Pil: empty image");
  OMNISEG_CHECK(ih <= INT32_MAX && iw <= INT32_MAX && oh <= INT32_MAX && ow <= INT32_MAX,
                "resizeU8Pil: image too large");
  OMNISEG_CHECK(in && out, "resizeU8Pil: null operand");
  const int64_t C = channels;
  if (ih == oh && iw == ow) {
    std::memcpy(out, in, static_cast<size_t>(ih * iw * C));
    return;
  }
  // Horizontal pass into tmp [ih, ow, C] (skipped when the width is unchanged).
  std::vector<uint8_t> tmp;
  const uint8_t* src = in;
  if (ow != iw) {
    const pil::Coeffs c = pil::bilinearCoeffs(static_cast<int>(iw), static_cast<int>(ow));
    uint8_t* dst = oh == ih ? out : (tmp.resize(static_cast<size_t>(ih * ow * C)), tmp.data());
    ctx.pool.parallelFor(ih, 8, [&](int64_t y0, int64_t y1) {
      for (int64_t y = y0; y < y1; ++y) {
        const uint8_t* row = in + y * iw * C;
        for (int64_t x = 0; x < ow; ++x) {
          const int xmin = c.bounds[x * 2], xn = c.bounds[x * 2 + 1];
          const int32_t* k = &c.kk[static_cast<size_t>(x) * c.ksize];
          for (int64_t ch = 0; ch < C; ++ch) {
            int32_t ss = 1 << (kPrecisionBits - 1);
            for (int i = 0; i < xn; ++i) ss += row[(xmin + i) * C + ch] * k[i];
            dst[(y * ow + x) * C + ch] = clip8(ss);
          }
        }
      }
    });
    if (oh == ih) return;
    src = tmp.data();
  }
  // Vertical pass from src [ih, ow, C] into out [oh, ow, C].
  const pil::Coeffs c = pil::bilinearCoeffs(static_cast<int>(ih), static_cast<int>(oh));
  ctx.pool.parallelFor(oh, 8, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      const int ymin = c.bounds[y * 2], yn = c.bounds[y * 2 + 1];
      const int32_t* k = &c.kk[static_cast<size_t>(y) * c.ksize];
      for (int64_t x = 0; x < ow * C; ++x) {
        int32_t ss = 1 << (kPrecisionBits - 1);
        for (int i = 0; i < yn; ++i) ss += src[(ymin + i) * ow * C + x] * k[i];
        out[y * ow * C + x] = clip8(ss);
      }
    }
  });
}

}  // namespace cpu

}  // namespace omniseg::ops
