// Fused attention (FlashAttention-2 style) on tensor cores for the encoder's half-precision mode.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "ops/ops.h"

namespace omniseg::ops::cuda {

// out[b, t, hd*d + j] ([B, T, heads*d], T = h*w; fp32, or Half when outHalf) =
//   softmax_k(scale · q_t·k_k + th[r, qh-kh+h-1] + tw[r, qw-kw+w-1]) · v_k
// for each (b, head hd) with r = (b*heads + hd)*T + t, qh = t / w, qw = t % w, kh = k / w,
// kw = k % w. Q, K, V: half [B*heads, T, d] (dense). th: fp32 [B*heads*T, 2h-1] (row stride
// ldth), tw: fp32 [B*heads*T, 2w-1] (ldtw) — the decomposed rel-pos terms from the unscaled q;
// either may be null; a stride of 0 means dense.
// gridE > 0: the B sets are the h×w (h = w) windows of gridE×gridE grids, n² per grid (n =
// ceil(gridE / w), row-major over the grid padded to a multiple of w): set b is window b % n² of
// image b / n², and out is those grids [B / n², gridE*gridE, heads*d] (window_unpartition on the
// way out: token t of window b lands on its grid cell; padding cells are dropped).
// keys: how key tiles are laid out when there is a bias and w ≠ 64 (w = 64 has its own row
// layout): Dense = 64 keys in token order per tile, the bias looked up per score; Rows (w ≤ 16,
// e.g. SAM's 14×14 windows) = 4 key rows of 16 slots per tile, the bias from registers and one
// term per key row; Auto = Rows where it adds no tiles, unless OMNISEG_FLASH_KEYS=dense.
// tile: query rows per block: Q64 = one m-tile of 16 rows per warp; Q128 = two (each K/V fragment
// feeds two MMAs; d = 64 only, other head sizes take Q64); Auto = Q64 unless
// OMNISEG_FLASH_QTILE=128. Both give the same bits.
// Returns false, doing nothing, for shapes it does not support (the caller falls back): head
// sizes other than flashHeadSize's, over 2^24 tokens or 65535 sets·heads, misaligned operands.
enum class FlashKeys { Auto, Dense, Rows };
enum class FlashTile { Auto, Q64, Q128 };
template <class Half>
bool flashAttention(Ctx& ctx, const Half* Q, const Half* K, const Half* V, int64_t B, int64_t heads,
                    int64_t h, int64_t w, int64_t d, float scale, const float* th, const float* tw,
                    void* out, int64_t ldth = 0, int64_t ldtw = 0, int64_t gridE = 0,
                    FlashKeys keys = FlashKeys::Auto, bool outHalf = false,
                    FlashTile tile = FlashTile::Auto);

// The same attention straight from the qkv GEMM's output, without the split into Q, K, V or the
// rel-pos terms in memory: qkv [rows, 3, heads, d] half, rows b·T + t of B images of h×w tokens;
// or with gridE > 0 images of gridE×gridE grids (rows (image·gridE + y)·gridE + x) whose h×w
// windows (h = w; n² per image, n = ceil(gridE / w)) are the B sets (image b / n², window b % n²),
// the padding cells reading `fill` [3, heads, d] (SAM: the qkv bias, window_partition's zero
// tokens after the qkv projection), zeros where fill is null; out the same grids. The terms come
// from the half relPosH [2h-1, d] and relPosW [2w-1, d] in the kernel (q·relPosᵀ, fp32
// accumulate, as the GEMM of relPosAttention's half path). out, keys, outHalf and tile as
// flashAttention's. Returns false, doing nothing, where the kernel declines (as flashAttention).
template <class Half>
bool flashAttentionQkv(Ctx& ctx, const Half* qkv, const Half* fill, int64_t B, int64_t heads,
                       int64_t h, int64_t w, int64_t d, float scale, const Half* relPosH,
                       const Half* relPosW, void* out, int64_t gridE = 0, bool outHalf = false,
                       FlashKeys keys = FlashKeys::Auto, FlashTile tile = FlashTile::Auto);

// The most sets × heads one call takes (the launch's gridY); flashAttention declines more.
constexpr int64_t kFlashMaxSetHeads = 65535;

// The head sizes the fused kernel is built for.
inline bool flashHeadSize(int64_t d) { return d == 32 || d == 64 || d == 80 || d == 96 || d == 128; }

}  // namespace omniseg::ops::cuda
