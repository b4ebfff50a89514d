// CPU linear layers (native/ops/cpu/gemm.cc) on the AMX bf16x3 path (gemm_amx.cc) against a
// double-precision reference: tails of every block (M, N, K not multiples of 32, fewer than 16
// columns in the last block), row strides, accumulate, bias and every activation; the error
// bound sits between what bf16x3 reaches (~4e-6) and what plain bf16 (the lo parts lost) would
// give (~2e-3). Also: activations (pointers outside the model's weights) are never packed, rows
// come out the same whatever the batch, and the OpenBLAS path is untouched without packs.
// Skips the AMX cases (and says so) on CPUs without AMX.
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "ops/cpu/gemm_amx.h"
#include "ops/ops.h"

using namespace omniseg;
using ops::Act;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::printf("FAIL %s\n", what.c_str());
  }
}

std::vector<float> randomVec(size_t n, std::mt19937& rng, float scale) {
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

double act(double v, Act a) {
  switch (a) {
    case Act::Gelu: return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    case Act::Relu: return v > 0 ? v : 0;
    case Act::QuickGelu: return v / (1.0 + std::exp(-1.702 * v));
    default: return v;
  }
}

struct Case {
  int64_t M, K, N, ldx, ldy;
  bool bias, accumulate;
  Act act;
};

// relative L2 error of y [M, N] (stride ldy) against the reference; also checks the padding
// columns of y (ldy > N) kept their sentinel.
double runCase(Ctx& ctx, const Case& c, std::mt19937& rng, ops::cpu::amx::WeightPacks* packs,
               std::vector<float>& weights, const std::string& name) {
  const auto x = randomVec(static_cast<size_t>(c.M * c.ldx), rng, 1.f);
  const float* W = weights.data();
  const auto b = randomVec(static_cast<size_t>(c.N), rng, 0.5f);
  std::vector<float> y(static_cast<size_t>(c.M * c.ldy), 7.f);
  if (c.accumulate)
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < c.N; ++j) y[i * c.ldy + j] = static_cast<float>(std::sin(double(i * 31 + j)));
  const std::vector<float> before = y;
  ctx.packs = packs;
  ops::cpu::linear(ctx, x.data(), c.M, c.K, W, c.bias ? b.data() : nullptr, c.N, y.data(), c.act, c.accumulate,
                   c.ldx, c.ldy);
  double e2 = 0, r2 = 0;
  bool padKept = true;
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < c.N; ++j) {
      double s = c.accumulate ? before[i * c.ldy + j] : 0.0;
      for (int64_t k = 0; k < c.K; ++k) s += double(x[i * c.ldx + k]) * W[j * c.K + k];
      if (c.bias) s += b[j];
      s = act(s, c.act);
      const double d = y[i * c.ldy + j] - s;
      e2 += d * d;
      r2 += s * s;
    }
    for (int64_t j = c.N; j < c.ldy; ++j) padKept = padKept && y[i * c.ldy + j] == 7.f;
  }
  check(padKept, name + ": columns past N written");
  return std::sqrt(e2 / r2);
}

}  // namespace

int main() {
  ThreadPool pool(2);
  Arena arena;
  Ctx ctx{pool, arena};
  std::mt19937 rng(7);
  const bool amx = ops::cpu::amx::supported();
  if (!amx) std::printf("gemm_amx_test: this CPU has no AMX; bf16x3 cases skipped\n");

  const Case cases[] = {
      {64, 32, 32, 32, 32, false, false, Act::None},
      {65, 37, 33, 37, 33, true, false, Act::None},       // one row, 5 k and 1 column past a block
      {100, 64, 15, 70, 20, true, true, Act::None},       // fewer than 16 columns; strides
      {97, 200, 48, 200, 50, true, false, Act::Gelu},     // 48 = one and a half blocks
      {130, 96, 80, 96, 80, false, true, Act::QuickGelu},
      {64, 128, 40, 128, 40, true, false, Act::Relu},
      {485, 768, 2304, 768, 2304, true, false, Act::None},  // CLIPSeg's q/k/v projection
      {200, 3072, 96, 3072, 96, true, true, Act::None},     // an MLP's second layer (K = 3072)
  };
  int checked = 0;
  for (const Case& c : cases) {
    const std::string name = std::to_string(c.M) + "x" + std::to_string(c.K) + "x" + std::to_string(c.N) +
                             (c.bias ? " +b" : "") + (c.accumulate ? " +=" : "") +
                             (c.act == Act::None ? "" : " act");
    auto weights = randomVec(static_cast<size_t>(c.N * c.K), rng, 1.f / std::sqrt(float(c.K)));
    const double fp32 = runCase(ctx, c, rng, nullptr, weights, name + " (fp32)");
    check(fp32 < 1e-6, name + ": OpenBLAS path rel L2 " + std::to_string(fp32));
    if (!amx) continue;
    ops::cpu::amx::WeightPacks packs;
    packs.add(weights.data(), weights.size());
    const double e = runCase(ctx, c, rng, &packs, weights, name + " (bf16x3)");
    check(packs.bytes() > 0, name + ": the weight was not packed (AMX path not taken)");
    check(e < 2e-5, name + ": bf16x3 rel L2 " + std::to_string(e));
    std::printf("  %-28s fp32 %.2e  bf16x3 %.2e\n", name.c_str(), fp32, e);
    ++checked;
  }

  if (amx) {
    // activations are not packed: a pointer outside the added ranges takes OpenBLAS
    auto weights = randomVec(64 * 64, rng, 0.1f);
    auto other = weights;
    ops::cpu::amx::WeightPacks packs;
    packs.add(weights.data(), weights.size());
    check(packs.find(ctx, other.data(), 64, 64) == nullptr, "an unregistered pointer was packed");
    check(packs.find(ctx, weights.data() + 32 * 64, 64, 64) == nullptr, "a range past the weights was packed");
    check(packs.find(ctx, weights.data() + 32 * 64, 32, 64) != nullptr, "a sub-range of the weights was not packed");

    // a row's result does not depend on the rows around it (batched encodes equal single ones)
    const int64_t M = 300, K = 160, N = 72;
    auto W = randomVec(static_cast<size_t>(N * K), rng, 0.1f);
    auto x = randomVec(static_cast<size_t>(M * K), rng, 1.f);
    ops::cpu::amx::WeightPacks p2;
    p2.add(W.data(), W.size());
    ctx.packs = &p2;
    std::vector<float> all(M * N), part(100 * N);
    ops::cpu::linear(ctx, x.data(), M, K, W.data(), nullptr, N, all.data());
    ops::cpu::linear(ctx, x.data() + 150 * K, 100, K, W.data(), nullptr, N, part.data());
    bool same = true;
    for (int64_t i = 0; i < 100 * N; ++i) same = same && part[i] == all[150 * N + i];
    check(same, "rows 150..249 differ between an M=300 and an M=100 call");

    // the test hook switches the path off: the same call then matches OpenBLAS
    ops::cpu::amx::setEnabled(false);
    std::vector<float> off(M * N);
    ops::cpu::linear(ctx, x.data(), M, K, W.data(), nullptr, N, off.data());
    ops::cpu::amx::setEnabled(true);
    ctx.packs = nullptr;
    std::vector<float> blas(M * N);
    ops::cpu::linear(ctx, x.data(), M, K, W.data(), nullptr, N, blas.data());
    check(off == blas, "setEnabled(false) did not fall back to OpenBLAS");
  }

  if (failures) {
    std::printf("gemm_amx_test: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("gemm_amx_test: ok (%d bf16x3 cases)\n", checked);
  return 0;
}
