// AMX bf16x3 linear layers (see gemm_amx.h). Tiles: four 16×16 fp32 accumulators hold a 32×32
// block of y; per 32-wide slice of K the kernel loads the x block's hi and lo tiles (16 rows ×
// 32 k each) and W's hi and lo tiles (16 k-pairs × 16 outputs), ten loads for twelve
// TDPBF16PS (hi·hi, hi·lo, lo·hi on each accumulator). x is split and laid out in tiles per
// group of 32-row blocks (about 1 MB, so it stays in the core's L2 while every block of W
// streams past it).
#include "ops/cpu/gemm_amx.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "core/error.h"
#include "core/profile.h"
#include "ops/cpu/exp_avx512.h"

#if defined(__x86_64__) && defined(__GNUC__) && (defined(__clang__) || __GNUC__ >= 11)
// GCC 12's masked load intrinsics start from an undefined vector and warn about it when inlined
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#define OMNISEG_AMX 1
#define AMX_FN __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16")))
#endif

namespace omniseg::ops::cpu::amx {

namespace {

constexpr int64_t kBlock = 32;         // rows of x and of W per block (2 tiles of 16)
constexpr int64_t kTileFloats = 512;   // bf16 elements per 16×32 tile (1 KiB)
constexpr int64_t kSliceElems = 4 * kTileFloats;  // a block's 4 tiles per 32-wide K slice
constexpr size_t kGroupBytes = 1 << 20;  // x tiles per group: what stays in L2

std::atomic<bool> on{true};

int64_t roundUp(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

#ifdef OMNISEG_AMX
struct TileConfig {
  uint8_t palette, startRow;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

bool probe() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool avx512f = b & (1u << 16), amxBf16 = d & (1u << 22), amxTile = d & (1u << 24);
  if (!avx512f || !amxBf16 || !amxTile) return false;
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !(a & (1u << 5))) return false;  // AVX512-BF16
  // Linux (5.16+) hands out the 8 KiB tile state only on request: ARCH_REQ_XCOMP_PERM for
  // XFEATURE_XTILEDATA (18).
  return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

// The 32 floats at src times scale (n of them valid, the rest zero; none when n <= 0) as 32 bf16
// hi parts and 32 bf16 lo parts (hi = bf16(v), lo = bf16(v − hi), both rounded to nearest even).
struct Split {
  __m512i hi, lo;
};
// 16 bf16 back to fp32 (a bf16 is the top half of a float)
AMX_FN inline __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
// (v0, v1): the 32 floats
AMX_FN inline Split splitPair(__m512 v0, __m512 v1) {
  const __m512bh hi = _mm512_cvtne2ps_pbh(v1, v0);
  const __m512i hiBits = reinterpret_cast<const __m512i&>(hi);
  const __m512 h0 = widen(_mm512_castsi512_si256(hiBits)), h1 = widen(_mm512_extracti64x4_epi64(hiBits, 1));
  const __m512bh lo = _mm512_cvtne2ps_pbh(_mm512_sub_ps(v1, h1), _mm512_sub_ps(v0, h0));
  return {hiBits, reinterpret_cast<const __m512i&>(lo)};
}
AMX_FN inline Split split32(const float* src, int64_t n, float scale = 1.f) {
  __m512 v0 = _mm512_setzero_ps(), v1 = _mm512_setzero_ps();
  if (n > 0) v0 = _mm512_maskz_loadu_ps(static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << n) - 1), src);
  if (n > 16) v1 = _mm512_maskz_loadu_ps(static_cast<__mmask16>(n >= 32 ? 0xffff : (1u << (n - 16)) - 1), src + 16);
  if (scale != 1.f) {
    v0 = _mm512_mul_ps(v0, _mm512_set1_ps(scale));
    v1 = _mm512_mul_ps(v1, _mm512_set1_ps(scale));
  }
  return splitPair(v0, v1);
}

// Row i's first tile row (slice 0, hi) in split tiles of rows of `slices` 32-wide K slices.
inline uint16_t* tileRow(uint16_t* tiles, int64_t i, int64_t slices) {
  return tiles + (i / kBlock) * slices * kSliceElems + (i % kBlock / 16) * kTileFloats + (i % 16) * 32;
}

// scale·x rows [m0, m0 + 32·blocks) → hi/lo tiles, one 32-row block after another; zero past M
// and K. A tile row is 32 consecutive k of one row of x.
AMX_FN void splitRows(const float* x, int64_t M, int64_t K, int64_t ldx, float scale, int64_t m0, int64_t blocks,
                      uint16_t* tiles) {
  const int64_t slices = roundUp(K, kBlock) / kBlock;
  for (int64_t i = 0; i < blocks * kBlock; ++i) {
    const int64_t m = m0 + i;
    uint16_t* row = tileRow(tiles, i, slices);
    for (int64_t s = 0; s < slices; ++s, row += kSliceElems) {
      const Split v = split32(m < M ? x + m * ldx + s * kBlock : x, m < M ? K - s * kBlock : 0, scale);
      _mm512_storeu_si512(row, v.hi);
      _mm512_storeu_si512(row + 2 * kTileFloats, v.lo);
    }
  }
}

// r[i][j] ← r[j][i]: a 16 × 16 transpose of 32-bit elements (four rounds of in-lane unpacks and
// lane shuffles, 64 operations in registers).
AMX_FN inline void transpose16(__m512i* r) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i + 0], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i + 0], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 4; ++k) {
      t[8 * i + k] = _mm512_shuffle_i32x4(r[8 * i + k], r[8 * i + 4 + k], 0x88);
      t[8 * i + 4 + k] = _mm512_shuffle_i32x4(r[8 * i + k], r[8 * i + 4 + k], 0xdd);
    }
  for (int k = 0; k < 8; ++k) {
    r[k] = _mm512_shuffle_i32x4(t[k], t[8 + k], 0x88);
    r[8 + k] = _mm512_shuffle_i32x4(t[k], t[8 + k], 0xdd);
  }
}

// W rows [n0, n0 + 32) (row stride ldw) over the K slice from k0 → that block's four tiles; zero
// past N and K. A tile row is one (k, k+1) pair of 16 outputs: each row of W goes down a tile
// column, so each 16 rows' split parts (16 pairs each, as 32-bit lanes) are transposed.
AMX_FN void packSlice(const float* W, int64_t ldw, int64_t N, int64_t K, int64_t n0, int64_t k0, uint16_t* tiles) {
  for (int64_t half = 0; half < 2; ++half) {  // rows 16·half.. → hi tile `half`, lo tile 2 + half
    __m512i hi[16], lo[16];
    for (int64_t j = 0; j < 16; ++j) {
      const int64_t n = n0 + 16 * half + j;
      const Split v = split32(n < N ? W + n * ldw + k0 : W, n < N ? K - k0 : 0);
      hi[j] = v.hi;
      lo[j] = v.lo;
    }
    transpose16(hi);
    transpose16(lo);
    for (int64_t r = 0; r < 16; ++r) {
      _mm512_storeu_si512(tiles + half * kTileFloats + r * 32, hi[r]);
      _mm512_storeu_si512(tiles + (2 + half) * kTileFloats + r * 32, lo[r]);
    }
  }
}

// Blocks [nb0, nb1) of 32 rows of W (row stride ldw), every K slice: packRows' work, split by
// PackedWeight across threads.
AMX_FN void packRowBlocks(const float* W, int64_t ldw, int64_t N, int64_t K, uint16_t* out, int64_t nb0, int64_t nb1) {
  const int64_t slices = roundUp(K, kBlock) / kBlock;
  for (int64_t nb = nb0; nb < nb1; ++nb)
    for (int64_t s = 0; s < slices; ++s)
      packSlice(W, ldw, N, K, nb * kBlock, s * kBlock, out + (nb * slices + s) * kSliceElems);
}

// The same four tiles from B [K, N] (row stride ldb) read as W = Bᵀ: columns [n0, n0 + 32) of
// B's rows [k0, k0 + 32). A tile row interleaves two rows of B (k and k+1) over 16 columns.
AMX_FN void packColumnsSlice(const float* B, int64_t ldb, int64_t K, int64_t N, int64_t n0, int64_t k0,
                             uint16_t* tiles) {
  // (k, k+1) pairs of columns 0-15, then of columns 16-31, from the two rows' 32 bf16 each
  __m512i pairs[2];
  for (int t = 0; t < 2; ++t) {
    alignas(64) uint16_t idx[32];
    for (int c = 0; c < 16; ++c) {
      idx[2 * c] = static_cast<uint16_t>(16 * t + c);
      idx[2 * c + 1] = static_cast<uint16_t>(32 + 16 * t + c);
    }
    pairs[t] = _mm512_load_si512(idx);
  }
  const int64_t cols = N - n0;
  for (int64_t r = 0; r < 16; ++r) {
    const int64_t k = k0 + 2 * r;
    const Split a = split32(k < K ? B + k * ldb + n0 : B, k < K ? cols : 0);
    const Split b = split32(k + 1 < K ? B + (k + 1) * ldb + n0 : B, k + 1 < K ? cols : 0);
    for (int t = 0; t < 2; ++t) {
      _mm512_storeu_si512(tiles + t * kTileFloats + r * 32, _mm512_permutex2var_epi16(a.hi, pairs[t], b.hi));
      _mm512_storeu_si512(tiles + (2 + t) * kTileFloats + r * 32, _mm512_permutex2var_epi16(a.lo, pairs[t], b.lo));
    }
  }
}

// c [32, 32] (row stride ldc) = the x block's tiles · the W block's tiles over `slices`.
AMX_FN void blockProduct(const uint16_t* a, const uint16_t* b, int64_t slices, float* c, int64_t ldc) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t s = 0; s < slices; ++s, a += kSliceElems, b += kSliceElems) {
    // tmm4/5: W's 16-output tiles; tmm6/7: x's 16-row tiles; tmm0-3: y's quadrants. Tiles are
    // not renamed: a load waits for the products still reading its register, so each load is
    // issued right before the first product that needs it, behind products that do not.
    _tile_loadd(6, a, 64);
    _tile_loadd(4, b, 64);
    _tile_dpbf16ps(0, 6, 4);  // hi · hi
    _tile_loadd(5, b + kTileFloats, 64);
    _tile_dpbf16ps(1, 6, 5);
    _tile_loadd(7, a + kTileFloats, 64);
    _tile_dpbf16ps(2, 7, 4);
    _tile_dpbf16ps(3, 7, 5);
    _tile_loadd(4, b + 2 * kTileFloats, 64);
    _tile_dpbf16ps(0, 6, 4);  // hi(x) · lo(W)
    _tile_dpbf16ps(2, 7, 4);
    _tile_loadd(5, b + 3 * kTileFloats, 64);
    _tile_dpbf16ps(1, 6, 5);
    _tile_dpbf16ps(3, 7, 5);
    _tile_loadd(6, a + 2 * kTileFloats, 64);
    _tile_loadd(4, b, 64);
    _tile_dpbf16ps(0, 6, 4);  // lo(x) · hi(W)
    _tile_loadd(5, b + kTileFloats, 64);
    _tile_dpbf16ps(1, 6, 5);
    _tile_loadd(7, a + 3 * kTileFloats, 64);
    _tile_dpbf16ps(2, 7, 4);
    _tile_dpbf16ps(3, 7, 5);
  }
  _tile_stored(0, c, ldc * sizeof(float));
  _tile_stored(1, c + 16, ldc * sizeof(float));
  _tile_stored(2, c + 16 * ldc, ldc * sizeof(float));
  _tile_stored(3, c + 16 * ldc + 16, ldc * sizeof(float));
}

// Rows of x in [mb0, mb1) 32-row blocks, already split into `tiles` (block mb0 first): every
// block of W against them.
AMX_FN void blocksTimesW(const uint16_t* tiles, int64_t M, const Packed& w, float* y, int64_t ldy, bool accumulate,
                         Finish finish, const void* finishArg, int64_t mb0, int64_t mb1) {
  const int64_t K = w.K, N = w.N, slices = roundUp(K, kBlock) / kBlock;
  TileConfig cfg{};
  cfg.palette = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  _tile_loadconfig(&cfg);
  alignas(64) float c[kBlock * kBlock];
  for (int64_t n0 = 0; n0 < N; n0 += kBlock) {
    const uint16_t* b = w.data + n0 / kBlock * slices * kSliceElems;
    const int64_t cols = std::min(kBlock, N - n0);
    const __mmask16 m0 = static_cast<__mmask16>(cols >= 16 ? 0xffff : (1u << cols) - 1);
    const __mmask16 m1 = static_cast<__mmask16>(cols >= 32 ? 0xffff : cols > 16 ? (1u << (cols - 16)) - 1 : 0);
    for (int64_t mb = mb0; mb < mb1; ++mb) {
      const uint16_t* a = tiles + (mb - mb0) * slices * kSliceElems;
      const int64_t r0 = mb * kBlock, rows = std::min(kBlock, M - r0);
      float* yb = y + r0 * ldy + n0;
      if (!accumulate && rows == kBlock && cols == kBlock) {  // whole block: the tiles store into y
        blockProduct(a, b, slices, yb, ldy);
        if (finish) finish(finishArg, yb, rows, cols, ldy, n0);
        continue;
      }
      blockProduct(a, b, slices, c, kBlock);
      for (int64_t r = 0; r < rows; ++r) {
        float* yr = yb + r * ldy;
        __m512 v0 = _mm512_load_ps(c + r * kBlock), v1 = _mm512_load_ps(c + r * kBlock + 16);
        if (accumulate) {
          v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, yr), v0);
          v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, yr + 16), v1);
        }
        _mm512_mask_storeu_ps(yr, m0, v0);
        _mm512_mask_storeu_ps(yr + 16, m1, v1);
      }
      if (finish) finish(finishArg, yb, rows, cols, ldy, n0);
    }
  }
  _tile_release();
}

// x's tiles, 64-byte aligned (a tile row across two cache lines costs two loads), per thread.
uint16_t* alignedTiles(size_t elems) {
  thread_local std::vector<uint16_t> buf;
  if (buf.size() < elems + 32) buf.resize(elems + 32);
  return buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64 / sizeof(uint16_t);
}

// Rows of x in [mb0, mb1) 32-row blocks: split, then every block of W against them.
AMX_FN void rowBlocks(const float* x, int64_t M, int64_t ldx, float scale, const Packed& w, float* y,
                      int64_t ldy, bool accumulate, Finish finish, const void* finishArg, int64_t mb0,
                      int64_t mb1) {
  const int64_t slices = roundUp(w.K, kBlock) / kBlock;
  uint16_t* tiles = alignedTiles(static_cast<size_t>((mb1 - mb0) * slices * kSliceElems));
  splitRows(x, M, w.K, ldx, scale, mb0 * kBlock, mb1 - mb0, tiles);
  blocksTimesW(tiles, M, w, y, ldy, accumulate, finish, finishArg, mb0, mb1);
}

bool detected() {
  static const bool ok = probe();
  return ok;
}
#else
bool detected() { return false; }
#endif

}  // namespace

bool supported() { return detected(); }
void setEnabled(bool enable) { on = enable; }
bool enabled() { return on && detected(); }

void PackedWeight::Free::operator()(uint16_t* p) const { std::free(p); }

size_t packedElems(int64_t N, int64_t K) {
  return static_cast<size_t>(roundUp(N, kBlock) / kBlock * (roundUp(K, kBlock) / kBlock) * kSliceElems);
}

PackedWeight::PackedWeight(Ctx& ctx, const float* W, int64_t N, int64_t K) : N_(N), K_(K) {
  const int64_t blocks = roundUp(N, kBlock) / kBlock;
  bytes_ = packedElems(N, K) * sizeof(uint16_t);
  data_.reset(static_cast<uint16_t*>(std::aligned_alloc(64, bytes_)));
  if (!data_) throw std::bad_alloc();
  uint16_t* out = data_.get();
#ifdef OMNISEG_AMX
  ctx.pool.parallelFor(blocks, 1, [&](int64_t nb0, int64_t nb1) { packRowBlocks(W, K, N, K, out, nb0, nb1); });
#else
  (void)ctx, (void)W, (void)out;
  throw Error("AMX weights packed on a build without AMX support");
#endif
}

void WeightPacks::add(const float* data, size_t count) {
  const auto begin = reinterpret_cast<uintptr_t>(data);
  ranges_.emplace_back(begin, begin + count * sizeof(float));
}

const PackedWeight* WeightPacks::find(Ctx& ctx, const float* W, int64_t N, int64_t K) {
  const auto begin = reinterpret_cast<uintptr_t>(W), end = begin + static_cast<uintptr_t>(N * K) * sizeof(float);
  const bool known = std::any_of(ranges_.begin(), ranges_.end(),
                                 [&](const auto& r) { return begin >= r.first && end <= r.second; });
  if (!known) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = packs_[{W, N}];
  if (!slot) {
    ProfileScope ps("pack weights (first use)");
    slot = std::make_unique<PackedWeight>(ctx, W, N, K);
    bytes_ += slot->bytes();
    if (packed_) packed_(W, static_cast<size_t>(N * K));
  } else if (slot->K() != K) {
    return nullptr;  // the same pointer read with another shape: not a weight we know
  }
  return slot.get();
}

size_t WeightPacks::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

void linear(Ctx& ctx, const float* x, int64_t M, int64_t ldx, const PackedWeight& w, float* y,
            int64_t ldy, bool accumulate, Finish finish, const void* finishArg) {
#ifdef OMNISEG_AMX
  const int64_t blocks = roundUp(M, kBlock) / kBlock, slices = roundUp(w.K(), kBlock) / kBlock;
  // groups of row blocks: at most kGroupBytes of x tiles, and at least one group per thread
  const size_t blockBytes = static_cast<size_t>(slices * kSliceElems) * sizeof(uint16_t);
  const int64_t fit = std::max<int64_t>(1, static_cast<int64_t>(kGroupBytes / blockBytes));
  const int64_t group = std::min(fit, (blocks + ctx.pool.size() - 1) / ctx.pool.size());
  ctx.pool.parallelFor(blocks, group, [&](int64_t mb0, int64_t mb1) {
    rowBlocks(x, M, ldx, 1.f, w.view(), y, ldy, accumulate, finish, finishArg, mb0, mb1);
  });
#else
  throw Error("AMX GEMM called on a build without AMX support");
#endif
}

#ifdef OMNISEG_AMX
void packRows(const float* W, int64_t ldw, int64_t N, int64_t K, uint16_t* out) {
  packRowBlocks(W, ldw, N, K, out, 0, roundUp(N, kBlock) / kBlock);
}

void packColumns(const float* B, int64_t ldb, int64_t K, int64_t N, uint16_t* out) {
  const int64_t slices = roundUp(K, kBlock) / kBlock;
  for (int64_t nb = 0; nb * kBlock < N; ++nb)
    for (int64_t s = 0; s < slices; ++s)
      packColumnsSlice(B, ldb, K, N, nb * kBlock, s * kBlock, out + (nb * slices + s) * kSliceElems);
}

void product(const float* x, int64_t M, int64_t ldx, float scale, const Packed& w, float* y, int64_t ldy) {
  rowBlocks(x, M, ldx, scale, w, y, ldy, false, nullptr, nullptr, 0, roundUp(M, kBlock) / kBlock);
}

size_t splitElems(int64_t M, int64_t K) { return static_cast<size_t>(roundUp(M, kBlock) * roundUp(K, kBlock) * 2); }

// The sum in avx512::expSum's order: 32-wide steps into two partial vectors, then the tail in
// 16-wide (masked) steps into the first, reduced once at the end.
AMX_FN float expSplitRow(const float* x, int64_t K, float mx, int64_t i, uint16_t* tiles) {
  const int64_t slices = roundUp(K, kBlock) / kBlock;
  uint16_t* row = tileRow(tiles, i, slices);
  const __m512 vmx = _mm512_set1_ps(mx);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 32 <= K; j += 32, row += kSliceElems) {
    const __m512 e0 = avx512::expNonPositive(_mm512_sub_ps(_mm512_loadu_ps(x + j), vmx));
    const __m512 e1 = avx512::expNonPositive(_mm512_sub_ps(_mm512_loadu_ps(x + j + 16), vmx));
    acc0 = _mm512_add_ps(acc0, e0);
    acc1 = _mm512_add_ps(acc1, e1);
    const Split v = splitPair(e0, e1);
    _mm512_storeu_si512(row, v.hi);
    _mm512_storeu_si512(row + 2 * kTileFloats, v.lo);
  }
  if (j < K) {  // the last slice, zero past K
    __m512 e[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int h = 0; h < 2 && j + 16 * h < K; ++h) {
      const int64_t left = K - j - 16 * h;
      const auto m = static_cast<__mmask16>(left >= 16 ? 0xFFFF : (1u << left) - 1);
      e[h] = _mm512_maskz_mov_ps(
          m, avx512::expNonPositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + j + 16 * h), vmx)));
      acc0 = _mm512_mask_add_ps(acc0, m, acc0, e[h]);
    }
    const Split v = splitPair(e[0], e[1]);
    _mm512_storeu_si512(row, v.hi);
    _mm512_storeu_si512(row + 2 * kTileFloats, v.lo);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

void zeroSplitRows(int64_t M, int64_t K, uint16_t* tiles) {
  const int64_t slices = roundUp(K, kBlock) / kBlock;
  for (int64_t i = M; i < roundUp(M, kBlock); ++i)
    for (int64_t s = 0; s < slices; ++s) {
      uint16_t* row = tileRow(tiles, i, slices) + s * kSliceElems;
      std::memset(row, 0, 32 * sizeof(uint16_t));
      std::memset(row + 2 * kTileFloats, 0, 32 * sizeof(uint16_t));
    }
}

void productSplit(const uint16_t* tiles, int64_t M, const Packed& w, float* y, int64_t ldy) {
  blocksTimesW(tiles, M, w, y, ldy, false, nullptr, nullptr, 0, roundUp(M, kBlock) / kBlock);
}
#else
void packRows(const float*, int64_t, int64_t, int64_t, uint16_t*) { throw Error("no AMX in this build"); }
void packColumns(const float*, int64_t, int64_t, int64_t, uint16_t*) { throw Error("no AMX in this build"); }
void product(const float*, int64_t, int64_t, float, const Packed&, float*, int64_t) {
  throw Error("no AMX in this build");
}
size_t splitElems(int64_t, int64_t) { throw Error("no AMX in this build"); }
float expSplitRow(const float*, int64_t, float, int64_t, uint16_t*) { throw Error("no AMX in this build"); }
void zeroSplitRows(int64_t, int64_t, uint16_t*) { throw Error("no AMX in this build"); }
void productSplit(const uint16_t*, int64_t, const Packed&, float*, int64_t) { throw Error("no AMX in this build"); }
#endif

}  // namespace omniseg::ops::cpu::amx
