// im2col layouts for the convolutions SAM uses, so they run as GEMMs.
#include <cstring>

#include "ops/ops.h"

namespace omniseg::ops::cpu {

void patchify(Ctx& ctx, const float* x, int64_t C, int64_t H, int64_t W, int64_t k, float* cols) {
  const int64_t gh = H / k, gw = W / k, K = C * k * k;
  ctx.pool.parallelFor(gh, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t py = p0; py < p1; ++py)
      for (int64_t px = 0; px < gw; ++px) {
        float* row = cols + (py * gw + px) * K;
        for (int64_t c = 0; c < C; ++c)
          for (int64_t ky = 0; ky < k; ++ky)
            std::memcpy(row + (c * k + ky) * k, x + (c * H + py * k + ky) * W + px * k,
                        static_cast<size_t>(k) * sizeof(float));
      }
  });
}

void im2col3x3(Ctx& ctx, const float* x, int64_t H, int64_t W, int64_t C, float* cols) {
  ctx.pool.parallelFor(H, 1, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y)
      for (int64_t xx = 0; xx < W; ++xx) {
        float* row = cols + (y * W + xx) * C * 9;
        for (int64_t ky = 0; ky < 3; ++ky)
          for (int64_t kx = 0; kx < 3; ++kx) {
            const int64_t sy = y + ky - 1, sx = xx + kx - 1;
            const bool inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
            const float* src = inside ? x + (sy * W + sx) * C : nullptr;
            for (int64_t c = 0; c < C; ++c) row[c * 9 + ky * 3 + kx] = inside ? src[c] : 0.f;
          }
      }
  });
}

}  // namespace omniseg::ops::cpu
