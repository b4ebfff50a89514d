// Fused attention for the encoder's half-precision mode: the host side (shape checks, the choice
// of bias mode, key layout and query tile, the launch). The kernel and its plan are in
// flash_attention_kernel.cuh, over the warp primitives of warp_mma.cuh.
#include "ops/cuda/flash_attention.h"
#include "ops/cuda/launch.h"
#include "ops/cuda/warp_mma.cuh"
#include "ops/cuda/flash_attention_kernel.cuh"

namespace omniseg::ops::cuda {

namespace {

using namespace flash;  // NOLINT(build/namespaces): the kernel's own namespace

template <class Half, int D, int Mode, int M, int Src>
void launch(const FaPlan& pl, cudaStream_t st) {
  auto* kernel = flashAttentionKernel<Half, D, Mode, M, Src>;
  // Opt in to more than 48 KiB of dynamic shared memory (the same value on every call).
  int dev = 0, optin = 0;
  OMNISEG_CUDA_CHECK(cudaGetDevice(&dev));
  OMNISEG_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  OMNISEG_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, optin));
  kernel<<<dim3(pl.gridX, pl.gridY), kFaThreads, pl.smem, st>>>(pl.p);
  gpu::checkLaunch("flashAttentionKernel");
}

// The instantiations: every mode from dense operands; from qkv the three with a bias (the terms
// are computed), of which gathered windows take the two window layouts (run() declines the rest).
template <class Half, int D, int M, int Src>
void launchS(const FaPlan& pl, cudaStream_t st) {
  if (pl.mode == kBiasRows) {
    launch<Half, D, kBiasRows, M, Src>(pl, st);
  } else if (pl.mode == kBiasTable) {
    launch<Half, D, kBiasTable, M, Src>(pl, st);
  } else if constexpr (Src != kQkvGather) {
    if (pl.mode == kBiasRow)
      launch<Half, D, kBiasRow, M, Src>(pl, st);
    else if constexpr (Src == kDense)
      launch<Half, D, kNoBias, M, Src>(pl, st);
  }
}
template <class Half, int D, int M>
void launchM(const FaPlan& pl, cudaStream_t st) {
  if (pl.p.kind == kQkvGather)
    launchS<Half, D, M, kQkvGather>(pl, st);
  else if (pl.p.kind == kQkv)
    launchS<Half, D, M, kQkv>(pl, st);
  else
    launchS<Half, D, M, kDense>(pl, st);
}

template <class Half, int D>
void launchD(const FaPlan& pl, cudaStream_t st) {
  if constexpr (D == 64) {  // (two m-tiles per warp: d = 64 only, see tileOf)
    if (pl.m == 2) return launchM<Half, D, 2>(pl, st);
  }
  launchM<Half, D, 1>(pl, st);
}

bool aligned(const void* p, uintptr_t a) { return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0; }

// Whether B sets can be the h×w windows of gridE×gridE grids (gridE = 0: no grid): h = w and a
// whole number of grids, n² windows each (n = ceil(gridE / w)).
bool setsTileGrids(int64_t B, int64_t h, int64_t w, int64_t gridE) {
  const int64_t n = (gridE + w - 1) / w;
  return gridE == 0 || (h == w && B % (n * n) == 0);
}

// FlashKeys::Auto takes the key-row layout where it costs no extra tiles, unless
// OMNISEG_FLASH_KEYS=dense (token order). Measured on an H100 (session 17): SAM ViT-B's 14×14
// windows take 0.061 ms in rows against 0.073 ms in token order, and the batch-4 encode per image
// was faster with rows in 7 of 8 runs. Read on every call (one per attention layer), so that a
// test can switch it.
bool rowsByDefault() { return !envIs("OMNISEG_FLASH_KEYS", "dense"); }

// m-tiles per warp: FlashTile::Q128 → 2 at d = 64 (the registers of two m-tiles' scores and
// outputs fit at d ≤ 64 only), else 1; Auto → 1 unless OMNISEG_FLASH_QTILE=128. Two m-tiles
// (FlashAttention-2's 128 query rows per block) halve the ldmatrix traffic per MMA; not yet
// measured on a GPU, so not the default. Read on every call, as above.
int tileOf(FlashTile tile, int64_t d) {
  if (tile == FlashTile::Auto)
    tile = envIs("OMNISEG_FLASH_QTILE", "128") ? FlashTile::Q128 : FlashTile::Q64;
  return tile == FlashTile::Q128 && d == 64 ? 2 : 1;
}

// The shared part of flashAttention and flashAttentionQkv: the limits every source has, the key
// layout and query tile, the plan, the launch. False (nothing launched) where declined.
template <class Half>
bool run(Ctx& ctx, const FaSource& src, int64_t B, int64_t heads, int64_t h, int64_t w, int64_t d,
         float scale, void* out, int64_t gridE, FlashKeys keys, bool outHalf, FlashTile tile) {
  const int64_t T = h * w, BH = B * heads;
  if (T > (int64_t{1} << 24) || BH > kFlashMaxSetHeads || gridE > (1 << 15)) return false;
  if (!aligned(out, outHalf ? 4 : 8)) return false;
  const int64_t rowTiles = (h + kRowsPerTile - 1) / kRowsPerTile;
  const bool rows = w <= kWp && (keys == FlashKeys::Rows ||
                                 (keys == FlashKeys::Auto && rowsByDefault() &&
                                  rowTiles <= (T + kBc - 1) / kBc));
  const FaPlan pl = planFlash(src, B, heads, h, w, d, scale, out, gridE, rows, tileOf(tile, d), outHalf,
                              sizeof(Half));
  if (pl.p.kind == kQkvGather && pl.mode != kBiasRows && pl.mode != kBiasTable) return false;
  int dev = 0, optin = 0;
  OMNISEG_CUDA_CHECK(cudaGetDevice(&dev));
  OMNISEG_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  if (pl.smem > static_cast<size_t>(optin)) return false;
  const cudaStream_t st = stream(ctx);
  switch (d) {
    case 32: launchD<Half, 32>(pl, st); break;
    case 64: launchD<Half, 64>(pl, st); break;
    case 80: launchD<Half, 80>(pl, st); break;
    case 96: launchD<Half, 96>(pl, st); break;
    default: launchD<Half, 128>(pl, st); break;
  }
  return true;
}

}  // namespace

template <class Half>
bool flashAttention(Ctx& ctx, const Half* Q, const Half* K, const Half* V, int64_t B, int64_t heads,
                    int64_t h, int64_t w, int64_t d, float scale, const float* th, const float* tw,
                    void* out, int64_t ldth, int64_t ldtw, int64_t gridE, FlashKeys keys,
                    bool outHalf, FlashTile tile) {
  OMNISEG_CHECK(B > 0 && heads > 0 && h > 0 && w > 0 && d > 0, "flashAttention: bad shape");
  OMNISEG_CHECK(setsTileGrids(B, h, w, gridE),
                "flashAttention: B is not a multiple of the window count of the grid");
  OMNISEG_CHECK(Q && K && V && out, "flashAttention: null operand");
  const int64_t T = h * w;
  if (!flashHeadSize(d)) return false;
  if (!aligned(Q, 16) || !aligned(K, 16) || !aligned(V, 16)) return false;
  return run<Half>(ctx, denseSource(Q, K, V, heads, T, d, th, tw, ldth, ldtw), B, heads, h, w, d,
                   scale, out, gridE, keys, outHalf, tile);
}

template <class Half>
bool flashAttentionQkv(Ctx& ctx, const Half* qkv, const Half* fill, int64_t B, int64_t heads,
                       int64_t h, int64_t w, int64_t d, float scale, const Half* relPosH,
                       const Half* relPosW, void* out, int64_t gridE, bool outHalf, FlashKeys keys,
                       FlashTile tile) {
  OMNISEG_CHECK(B > 0 && heads > 0 && h > 0 && w > 0 && d > 0, "flashAttentionQkv: bad shape");
  OMNISEG_CHECK(setsTileGrids(B, h, w, gridE),
                "flashAttentionQkv: B is not a multiple of the window count of the grid");
  OMNISEG_CHECK(qkv && relPosH && relPosW && out, "flashAttentionQkv: null operand");
  const int64_t T = h * w, C = heads * d;
  // (16-byte rows: every token's d values and the operands' starts at C, 2C)
  if (!flashHeadSize(d) || C % 8 != 0 || 3 * C > INT32_MAX) return false;
  if (!aligned(qkv, 16) || !aligned(relPosH, 16) || !aligned(relPosW, 16) || (fill && !aligned(fill, 16)))
    return false;
  return run<Half>(ctx, qkvSource(qkv, fill, heads, T, d, gridE > 0, relPosH, relPosW, sizeof(Half)),
                   B, heads, h, w, d, scale, out, gridE, keys, outHalf, tile);
}

template bool flashAttention<__half>(Ctx&, const __half*, const __half*, const __half*, int64_t,
                                     int64_t, int64_t, int64_t, int64_t, float, const float*,
                                     const float*, void*, int64_t, int64_t, int64_t, FlashKeys,
                                     bool, FlashTile);
template bool flashAttention<__nv_bfloat16>(Ctx&, const __nv_bfloat16*, const __nv_bfloat16*,
                                            const __nv_bfloat16*, int64_t, int64_t, int64_t,
                                            int64_t, int64_t, float, const float*, const float*,
                                            void*, int64_t, int64_t, int64_t, FlashKeys, bool,
                                            FlashTile);

template bool flashAttentionQkv<__half>(Ctx&, const __half*, const __half*, int64_t, int64_t,
                                        int64_t, int64_t, int64_t, float, const __half*,
                                        const __half*, void*, int64_t, bool, FlashKeys, FlashTile);
template bool flashAttentionQkv<__nv_bfloat16>(Ctx&, const __nv_bfloat16*, const __nv_bfloat16*,
                                               int64_t, int64_t, int64_t, int64_t, int64_t, float,
                                               const __nv_bfloat16*, const __nv_bfloat16*, void*,
                                               int64_t, bool, FlashKeys, FlashTile);

}  // namespace omniseg::ops::cuda
