// Matrix products on Intel AMX tiles at near-fp32 accuracy ("bf16x3", the scheme torch calls the
// "high" float32 matmul precision). Each fp32 operand a is split into two bf16 numbers,
// hi = bf16(a) and lo = bf16(a - hi), which carry 16 of its 24 significant bits; a product a·b is
// then hi_a·hi_b + lo_a·hi_b + hi_a·lo_b (the lo·lo term, ~2⁻¹⁶ of it, dropped), each bf16
// product exact in fp32 and summed in fp32 by the tiles. Measured error: ~4e-6 relative (L2)
// per GEMM, against ~4e-7 for OpenBLAS's fp32, at 2.2-3.3× its speed on two cores.
//
// Model code never calls this: ops/cpu/gemm.cc's linear() takes it for a weight the Ctx's
// WeightPacks knows (a model weight, packed on first use) when the product has enough rows, and
// ops/cpu/attention.cc for the two products of attention (keys and values packed per call), both
// only inside a bf16x3 image encoder (active(ctx)).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "ops/ops.h"

namespace omniseg::ops::cpu::amx {

// Whether this CPU runs the kernels: it has AMX-TILE, AMX-BF16 and AVX512-BF16, and Linux
// granted the process the tile data state (arch_prctl ARCH_REQ_XCOMP_PERM). Checked once.
bool supported();

// The packed form of W [N, K] (a linear layer's weight, y = x·Wᵀ): W split into bf16 hi and lo
// parts and laid out as the kernel loads them: for each block of 32 rows of W (32 output
// columns) and each 32-wide slice of K, four 16×32 bf16 tiles: hi of rows 0-15, hi of rows
// 16-31, lo of rows 0-15, lo of rows 16-31, each tile row holding the (k, k+1) pairs of 16
// outputs (AMX's VNNI order). Zero past N and K; packedElems(N, K) uint16 values.
struct Packed {
  const uint16_t* data;
  int64_t N, K;
};
size_t packedElems(int64_t N, int64_t K);

// out = the packed form of W [N, K] (row stride ldw), on the calling thread.
void packRows(const float* W, int64_t ldw, int64_t N, int64_t K, uint16_t* out);
// out = the packed form of Bᵀ for B [K, N] (row stride ldb): the operand of y = x · B.
void packColumns(const float* B, int64_t ldb, int64_t K, int64_t N, uint16_t* out);
// y [M, N] = (scale·x) [M, K] · Wᵀ (row strides ldx, ldy) on the calling thread (attention's
// products, one block of queries at a time).
void product(const float* x, int64_t M, int64_t ldx, float scale, const Packed& w, float* y, int64_t ldy);

// The left operand of productSplit made row by row: attention's probabilities, each row's
// exponentials written straight into the tiles' bf16 hi/lo parts (the layout product() makes
// from fp32 rows), not stored as floats and split in a second pass.
//   splitElems:   uint16 elements of the split form of M rows of K
//   expSplitRow:  row i = exp(x[j] - mx) for j < K (x[j] <= mx), zero past K; returns the row's
//                 sum, the float avx512::expSum returns for it
//   zeroSplitRows: rows [M, M rounded up to 32) zero (product rows are computed in 32s)
//   productSplit: y [M, N] = that operand · Wᵀ, the floats of product() on the fp32 rows
size_t splitElems(int64_t M, int64_t K);
float expSplitRow(const float* x, int64_t K, float mx, int64_t i, uint16_t* tiles);
void zeroSplitRows(int64_t M, int64_t K, uint16_t* tiles);
void productSplit(const uint16_t* tiles, int64_t M, const Packed& w, float* y, int64_t ldy);

// A model weight packed once (packRows, in parallel), owned.
class PackedWeight {
 public:
  PackedWeight(Ctx& ctx, const float* W, int64_t N, int64_t K);
  int64_t N() const { return N_; }
  int64_t K() const { return K_; }
  Packed view() const { return {data_.get(), N_, K_}; }
  size_t bytes() const { return bytes_; }

 private:
  struct Free {
    void operator()(uint16_t* p) const;
  };
  int64_t N_, K_;
  size_t bytes_;
  std::unique_ptr<uint16_t, Free> data_;
};

// The packed forms of one model's weights, made the first time a weight is used (so a model
// pays for the layers it runs). Only pointers inside the ranges add()ed at load are packed:
// everything else (activations) is left to OpenBLAS. Safe to use from concurrent calls.
class WeightPacks {
 public:
  // packed(W, count): called once W is packed (the model's store then drops the file pages of
  // W that it no longer reads).
  explicit WeightPacks(std::function<void(const float*, size_t)> packed = {}) : packed_(std::move(packed)) {}
  void add(const float* data, size_t count);
  // The packed form of W [N, K] if W lies in an added range, else null.
  const PackedWeight* find(Ctx& ctx, const float* W, int64_t N, int64_t K);
  size_t bytes() const;

 private:
  std::function<void(const float*, size_t)> packed_;
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges_;
  mutable std::mutex mu_;
  std::map<std::pair<const float*, int64_t>, std::unique_ptr<PackedWeight>> packs_;
  size_t bytes_ = 0;
};

// Fewest rows for which linear() takes the tiles (rows are padded to 32: fewer waste most of
// the work, and OpenBLAS's small-matrix kernels serve them well).
constexpr int64_t kMinRows = 64;

// y[M, N] = x[M, K] · Wᵀ (row strides ldx, ldy; y += with accumulate), then finish(y block)
// on each 32×32-or-smaller block of y as it is written (bias and activation, while the block is
// in L1). Rows split across ctx.pool.
using Finish = void (*)(const void* arg, float* y, int64_t rows, int64_t cols, int64_t ldy, int64_t col0);
void linear(Ctx& ctx, const float* x, int64_t M, int64_t ldx, const PackedWeight& w, float* y,
            int64_t ldy, bool accumulate, Finish finish, const void* finishArg);

// Test hook: switches the tiles off (false) or back on, so tests can compare both paths.
void setEnabled(bool on);
bool enabled();

// Whether ops on ctx take the tiles: inside the scope of a model's bf16x3 encoder
// (Runtime::EncoderMatmul gives its ctx the packs) on a CPU that runs them.
inline bool active(const Ctx& ctx) { return ctx.packs != nullptr && enabled(); }

}  // namespace omniseg::ops::cpu::amx
