// Data movement: window partition/unpartition, transposes, broadcasts, thresholds, copies.
// On the CPU backend the backend's memory is host memory, so upload/download are copies.
#include <algorithm>
#include <cstring>

#include "ops/cpu/simd.h"
#include "ops/ops.h"

namespace omniseg::ops::cpu {

void windowPartition(Ctx& ctx, const float* x, int64_t E, int64_t D, int64_t ws,
                     const float* fill, float* win) {
  const int64_t nw = (E + ws - 1) / ws;
  ctx.pool.parallelFor(nw * nw, 1, [&](int64_t b, int64_t e) {
    for (int64_t w = b; w < e; ++w) {
      const int64_t wy = w / nw, wx = w % nw;
      for (int64_t r = 0; r < ws; ++r)
        for (int64_t c = 0; c < ws; ++c) {
          const int64_t y = wy * ws + r, xx = wx * ws + c;
          float* dst = win + (w * ws * ws + r * ws + c) * D;
          if (y < E && xx < E)
            std::memcpy(dst, x + (y * E + xx) * D, D * sizeof(float));
          else if (fill)
            std::memcpy(dst, fill, D * sizeof(float));
          else
            std::memset(dst, 0, D * sizeof(float));
        }
    }
  });
}

void windowUnpartition(Ctx& ctx, const float* win, int64_t E, int64_t D, int64_t ws, float* x) {
  const int64_t nw = (E + ws - 1) / ws;
  ctx.pool.parallelFor(E, 1, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y)
      for (int64_t xx = 0; xx < E; ++xx) {
        const int64_t w = (y / ws) * nw + xx / ws;
        std::memcpy(x + (y * E + xx) * D, win + (w * ws * ws + (y % ws) * ws + xx % ws) * D,
                    D * sizeof(float));
      }
  });
}

void transpose(Ctx& ctx, const float* x, int64_t rows, int64_t cols, float* y) {
  constexpr int64_t kTile = 32;  // tiles keep both sides' cache lines in use
  ctx.pool.parallelFor((rows + kTile - 1) / kTile, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t)
      for (int64_t c0 = 0; c0 < cols; c0 += kTile)
        for (int64_t r = t * kTile; r < std::min(rows, (t + 1) * kTile); ++r)
          for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c) y[c * rows + r] = x[r * cols + c];
  });
}

void broadcastRows(Ctx& ctx, const float* row, int64_t rows, int64_t C, float* y) {
  for (int64_t i = 0; i < rows; ++i) std::memcpy(y + i * C, row, C * sizeof(float));
}

void normalizeRgb(Ctx& ctx, const uint8_t* rgb, int64_t h, int64_t w, const float* lut, int64_t S,
                  float* planes) {
  ctx.pool.parallelFor(S, 16, [&](int64_t y0, int64_t y1) {
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = y0; y < y1; ++y) {
        float* row = planes + (c * S + y) * S;
        if (y >= h) {
          std::memset(row, 0, S * sizeof(float));
          continue;
        }
        const uint8_t* src = rgb + y * w * 3 + c;
        const float* map = lut + c * 256;
        for (int64_t x = 0; x < w; ++x) row[x] = map[src[x * 3]];
        std::memset(row + w, 0, (S - w) * sizeof(float));
      }
  });
}

namespace {
OMNISEG_SIMD void thresholdSpan(const float* x, int64_t n, float t, uint8_t* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > t ? 1 : 0;
}
}  // namespace

void threshold(Ctx& ctx, const float* x, int64_t n, float t, uint8_t* y) {
  ctx.pool.parallelFor(n, 1 << 16, [&](int64_t b, int64_t e) { thresholdSpan(x + b, e - b, t, y + b); });
}

// (an empty copy may name null pointers, which memcpy may not be given even for 0 bytes: an rle
// decode whose masks are all empty collects no boundaries)
void copy(Ctx& ctx, const float* src, int64_t n, float* dst) {
  if (n > 0) std::memcpy(dst, src, n * sizeof(float));
}

void upload(Ctx& ctx, const void* host, size_t bytes, void* dst) {
  if (bytes > 0) std::memcpy(dst, host, bytes);
}

void download(Ctx& ctx, const void* src, size_t bytes, void* host) {
  if (bytes > 0) std::memcpy(host, src, bytes);
}

}  // namespace omniseg::ops::cpu
