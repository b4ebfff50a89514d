// The head split of relPosAttention (rel_pos_attention.cu): qkv rows [3, heads, d] of B sets of
// Tn tokens → Q, K, V [B, heads, Tn, d], or with a window source the sets being the ws×ws windows
// of one or more E×E grids (window_partition on the way in). Plain CUDA over threadIdx / blockIdx
// / blockDim / gridDim, so that test/native/split_heads_emu_test.cc runs the same kernels in the
// CPU emulator (test/native/simt_emu.h), which the includer then provides first.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "ops/cuda/device_cast.cuh"

namespace omniseg::ops::cuda::split {

// Where the windowed split reads its tokens: set b is window b % n² of image b / n² (n = ceil(E /
// ws) windows per grid side), token t its cell of that image's E×E grid qkv [E*E, 3C] (grids
// padded to a multiple of ws; padding cells read `fill`, or zeros).
struct WindowSource {
  int64_t E = 0, ws = 0;  // E = 0: qkv is already [B, T, 3C]
  const float* fill = nullptr;
};

// Four values at o (4-aligned element offset): one 16-byte store of floats, one 8-byte store of halves.
template <class T>
__device__ __forceinline__ void store4(T* o, float4 f) {
  if constexpr (sizeof(T) == 4) {
    *reinterpret_cast<float4*>(o) = f;
  } else {
    struct alignas(8) H4 { T v[4]; };
    *reinterpret_cast<H4*>(o) = H4{{dev::to<T>(f.x), dev::to<T>(f.y), dev::to<T>(f.z), dev::to<T>(f.w)}};
  }
}

// A value as fp32 (exact for __half / __nv_bfloat16), and four at once from a 4-aligned offset.
__device__ __forceinline__ float toFloat(float v) { return v; }
__device__ __forceinline__ float toFloat(__half v) { return __half2float(v); }
__device__ __forceinline__ float toFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class R>
__device__ __forceinline__ float4 load4(const R* p) {
  struct alignas(4 * sizeof(R)) R4 { R v[4]; };
  const R4 r = *reinterpret_cast<const R4*>(p);
  return make_float4(toFloat(r.v[0]), toFloat(r.v[1]), toFloat(r.v[2]), toFloat(r.v[3]));
}

// The image and grid cell (gy, gx) of token t of window set b (see WindowSource); false on a
// padding cell.
__device__ __forceinline__ bool windowCell(const WindowSource& win, int64_t b, int64_t t, int64_t& image,
                                           int64_t& gy, int64_t& gx) {
  const int64_t nw = (win.E + win.ws - 1) / win.ws, n2 = nw * nw;
  image = b / n2;
  const int64_t wb = b - image * n2, wy = wb / nw, wx = wb - wy * nw, ty = t / win.ws;
  gy = wy * win.ws + ty;
  gx = wx * win.ws + (t - ty * win.ws);
  return gy < win.E && gx < win.E;
}

// Token t of set b: its qkv row src [3, heads, d] (of R: fp32 or half; null: zeros) → dst
// [3][B, heads, Tn, d] as T (per = B*heads*Tn*d). One block per token.
template <class R, class T>
__device__ __forceinline__ void splitRow(const R* src, int64_t b, int64_t t, int64_t Tn, int64_t heads,
                                         int64_t d, int64_t per, T* dst) {
  const int64_t C = heads * d;
  auto at = [&](int64_t i) {
    const int64_t which = i / C, r = i - which * C, hd = r / d, e = r - hd * d;
    return dst + which * per + ((b * heads + hd) * Tn + t) * d + e;
  };
  if (!src) {
    for (int64_t i = threadIdx.x; i < 3 * C; i += blockDim.x) *at(i) = dev::to<T>(0.f);
  } else if (d % 4 == 0 && (reinterpret_cast<uintptr_t>(src) & (4 * sizeof(R) - 1)) == 0) {
    // Four values of one head at a time (16- or 8-byte loads).
    for (int64_t i = 4 * threadIdx.x; i < 3 * C; i += 4 * blockDim.x) store4(at(i), load4(src + i));
  } else {
    for (int64_t i = threadIdx.x; i < 3 * C; i += blockDim.x) *at(i) = dev::to<T>(toFloat(src[i]));
  }
}

// One block per token (b, t) of qkv [B, T, 3, heads, d] (fp32, or already half: In) → dst
// [3][B, heads, T, d] as T (fp32, or rounded to half; per = B*heads*T*d). With a window source,
// token t of window b is read from its grid cell, or from the fill row (fp32) on padding.
template <class In, class T>
__global__ void splitHeadsKernel(const In* qkv, int64_t Tn, int64_t heads, int64_t d,
                                 int64_t per, WindowSource win, T* dst) {
  const int64_t bt = blockIdx.x, b = bt / Tn, t = bt - b * Tn, C = heads * d;
  if (win.E > 0) {
    int64_t image = 0, gy = 0, gx = 0;
    if (windowCell(win, b, t, image, gy, gx))
      splitRow(qkv + ((image * win.E + gy) * win.E + gx) * 3 * C, b, t, Tn, heads, d, per, dst);
    else
      splitRow(win.fill, b, t, Tn, heads, d, per, dst);
    return;
  }
  splitRow(qkv + bt * 3 * C, b, t, Tn, heads, d, per, dst);
}

// Eight values at a 16-byte aligned element offset, as floats, and back (exact for halves in,
// rounded to nearest even for halves out).
template <class R>
__device__ __forceinline__ void load8(const R* p, float (&v)[8]) {
  struct alignas(16) R8 { R v[8]; };
  if constexpr (sizeof(R) == 4) {
    const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  } else {
    const R8 r = *reinterpret_cast<const R8*>(p);
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = toFloat(r.v[j]);
  }
}
template <class T>
__device__ __forceinline__ void store8(T* o, const float (&v)[8]) {
  store4(o, make_float4(v[0], v[1], v[2], v[3]));
  store4(o + 4, make_float4(v[4], v[5], v[6], v[7]));
}

// splitHeadsKernel's layout, one thread per eight values of a head (d % 8 == 0, every row and
// dst 16-byte aligned, fewer than 2^31 chunks and 3·heads·d < 2^31): a flat grid with 32-bit
// index arithmetic. One block per token left the copy latency-bound: ViT-B's 12 splits took
// 356 µs per encode under ncu on an H100, and take 215 this way. Same values as splitHeadsKernel.
template <class In, class T>
__global__ void splitHeads8Kernel(const In* qkv, uint32_t chunks, uint32_t Tn, uint32_t heads,
                                  uint32_t d, int64_t per, WindowSource win, T* dst) {
  const uint32_t C = heads * d, rowChunks = 3 * C / 8;
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < chunks; i += gridDim.x * blockDim.x) {
    const uint32_t bt = i / rowChunks, e0 = (i - bt * rowChunks) * 8;
    const uint32_t b = bt / Tn, t = bt - b * Tn;
    const uint32_t which = e0 / C, r = e0 - which * C, hd = r / d, e = r - hd * d;
    float v[8];
    const In* src = qkv + static_cast<int64_t>(bt) * 3 * C;
    bool zero = false;
    const float* fill = nullptr;
    if (win.E > 0) {
      const uint32_t ws = static_cast<uint32_t>(win.ws), E = static_cast<uint32_t>(win.E);
      const uint32_t nw = (E + ws - 1) / ws, n2 = nw * nw, image = b / n2, wb = b - image * n2;
      const uint32_t wy = wb / nw, wx = wb - wy * nw;
      const uint32_t ty = t / ws, gy = wy * ws + ty, gx = wx * ws + (t - ty * ws);
      if (gy < E && gx < E)
        src = qkv + ((static_cast<int64_t>(image) * E + gy) * E + gx) * 3 * C;
      else if (win.fill)
        fill = win.fill;
      else
        zero = true;
    }
    if (fill) {
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = fill[e0 + j];
    } else if (zero) {
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = 0.f;
    } else {
      load8(src + e0, v);
    }
    store8(dst + which * per + ((static_cast<int64_t>(b) * heads + hd) * Tn + t) * d + e, v);
  }
}

}  // namespace omniseg::ops::cuda::split
