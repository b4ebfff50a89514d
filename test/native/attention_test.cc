// CPU attention (native/ops/cpu/attention.cc) against a double-precision reference written
// from the definitions, on both paths: the AVX-512 kernels (where this CPU has them) and
// OpenBLAS. Shapes cover every kernel tile tail: head sizes 14..80 (1..5 vectors), key counts
// around the 32-key blocks and the 128-key value chunks, few keys or few queries (the in-register
// kernels), short rows (< 64 keys), causal rows,
// values packed (>= 1024 keys) or read in place, and SAM's rel-pos bias on square and
// non-square grids, batched.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "ops/cpu/attention_avx2.h"
#include "ops/cpu/attention_avx512.h"
#include "ops/cpu/gemm_amx.h"
#include "ops/ops.h"

using namespace omniseg;

namespace {

int failures = 0;
// Error bound of the path under test: fp32 paths 2e-6; the AMX bf16x3 products (operands carried
// as bf16 pairs, ~2^-17 relative each) 3e-5 — plain bf16 would be ~1e-2.
double tolerance = 2e-6;

std::vector<float> randomVec(size_t n, std::mt19937& rng, float scale) {
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// out [Nq, heads*d] = softmax(scale·q·kᵀ + bias)·v per head; bias(i, j) from rel-pos when given.
void reference(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv,
               int64_t Nq, int64_t Nk, int64_t heads, int64_t d, double scale, bool causal,
               const float* relH, const float* relW, int64_t h, int64_t w, std::vector<double>& out) {
  out.assign(static_cast<size_t>(Nq * heads * d), 0.0);
  std::vector<double> s(Nk);
  for (int64_t hd = 0; hd < heads; ++hd)
    for (int64_t i = 0; i < Nq; ++i) {
      const float* qi = q + i * ldq + hd * d;
      double mx = -INFINITY;
      const int64_t valid = causal ? std::min(Nk, i + 1) : Nk;
      for (int64_t j = 0; j < valid; ++j) {
        double dot = 0;
        for (int64_t c = 0; c < d; ++c) dot += double(qi[c]) * k[j * ldk + hd * d + c];
        s[j] = dot * scale;
        if (relH) {  // get_decomposed_rel_pos: q (unscaled) · Rh[qh - kh + h - 1] + q · Rw[qw - kw + w - 1]
          const int64_t qh = i / w, qw = i % w, kh = j / w, kw = j % w;
          double bh = 0, bw = 0;
          for (int64_t c = 0; c < d; ++c) {
            bh += double(qi[c]) * relH[(qh - kh + h - 1) * d + c];
            bw += double(qi[c]) * relW[(qw - kw + w - 1) * d + c];
          }
          s[j] += bh + bw;
        }
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j < valid; ++j) sum += (s[j] = std::exp(s[j] - mx));
      for (int64_t j = 0; j < valid; ++j)
        for (int64_t c = 0; c < d; ++c) out[i * heads * d + hd * d + c] += s[j] / sum * v[j * ldv + hd * d + c];
    }
}

void check(const std::string& name, double err) {
  const bool ok = err <= tolerance && std::isfinite(err);
  if (!ok) ++failures;
  std::printf("%s %-60s rel err %.2e\n", ok ? "ok  " : "FAIL", name.c_str(), err);
}

// (with ctx.packs set, the blocked paths of the kernels take the AMX tiles)
const char* pathName(const Ctx& ctx, int64_t d) {
  if (d > ops::cpu::avx512::kMaxHeadDim) return "openblas";
  const bool amx = ops::cpu::amx::active(ctx);
  if (!ops::cpu::avx512::supported()) return ops::cpu::avx2::supported() ? (amx ? "amx + avx2" : "avx2") : "openblas";
  return amx ? "amx mode" : "kernels";
}

void testAttention(Ctx& ctx, int64_t Nq, int64_t Nk, int64_t heads, int64_t d, bool causal, std::mt19937& rng) {
  const int64_t C = heads * d, ld = 3 * C + 5;  // q | k | v interleaved per token, odd stride
  const int64_t N = std::max(Nq, Nk);
  const auto qkv = randomVec(static_cast<size_t>(N * ld), rng, 1.f);
  const float scale = 1.f / std::sqrt(float(d));
  std::vector<double> want;
  reference(qkv.data(), ld, qkv.data() + C, ld, qkv.data() + 2 * C, ld, Nq, Nk, heads, d, scale, causal,
            nullptr, nullptr, 0, 0, want);
  std::vector<float> out(static_cast<size_t>(Nq * C), NAN);
  ops::cpu::attention(ctx, qkv.data(), ld, qkv.data() + C, ld, qkv.data() + 2 * C, ld, Nq, Nk, heads, d, scale,
                      out.data(), causal);
  check(std::string(pathName(ctx, d)) + " attention Nq=" + std::to_string(Nq) + " Nk=" + std::to_string(Nk) +
            " heads=" + std::to_string(heads) + " d=" + std::to_string(d) + (causal ? " causal" : ""),
        nativetest::maxRelErr(out.data(), want));
}

void testRelPos(Ctx& ctx, int64_t B, int64_t h, int64_t w, int64_t heads, int64_t d, std::mt19937& rng) {
  const int64_t S = h * w, C = heads * d;
  const auto qkv = randomVec(static_cast<size_t>(B * S * 3 * C), rng, 1.f);
  const auto relH = randomVec(static_cast<size_t>((2 * h - 1) * d), rng, 0.1f);
  const auto relW = randomVec(static_cast<size_t>((2 * w - 1) * d), rng, 0.1f);
  std::vector<float> out(static_cast<size_t>(B * S * C), NAN);
  ops::cpu::relPosAttention(ctx, qkv.data(), B, h, w, heads, d, relH.data(), relW.data(), out.data());
  double err = 0;
  for (int64_t b = 0; b < B; ++b) {
    const float* base = qkv.data() + b * S * 3 * C;
    std::vector<double> want;
    reference(base, 3 * C, base + C, 3 * C, base + 2 * C, 3 * C, S, S, heads, d, 1.0 / std::sqrt(double(d)), false,
              relH.data(), relW.data(), h, w, want);
    err = nativetest::worst(err, nativetest::maxRelErr(out.data() + b * S * C, want));
  }
  check(std::string(pathName(ctx, d)) + " relPosAttention B=" + std::to_string(B) + " grid=" + std::to_string(h) + "x" +
            std::to_string(w) + " heads=" + std::to_string(heads) + " d=" + std::to_string(d),
        err);
}

// The AMX path's fused softmax (amx::expSplitRow + productSplit) gives the floats of the two
// passes it replaces (avx512::expSum storing the exponentials, then amx::product splitting them),
// bit for bit, on every tail of the 16- and 32-wide steps and of the 32-row blocks.
void testExpSplit(std::mt19937& rng) {
  for (int64_t K : {1, 15, 16, 17, 31, 32, 33, 48, 200, 1030}) {
    bool same = true;
    for (int64_t M : {1, 31, 32, 33, 64}) {
      const int64_t d = 40;
      auto x = randomVec(static_cast<size_t>(M * K), rng, 3.f);
      const auto v = randomVec(static_cast<size_t>(K * d), rng, 1.f);  // [K, d]: p·v's weight
      std::vector<uint16_t> vt(ops::cpu::amx::packedElems(d, K));
      ops::cpu::amx::packColumns(v.data(), d, K, d, vt.data());
      const ops::cpu::amx::Packed V{vt.data(), d, K};
      std::vector<float> mx(static_cast<size_t>(M)), two(static_cast<size_t>(M * d)), fused(two.size(), NAN);
      std::vector<float> sumsTwo(static_cast<size_t>(M)), sumsFused(static_cast<size_t>(M));
      std::vector<uint16_t> tiles(ops::cpu::amx::splitElems(M, K), 0xFFFF);  // (garbage past the rows)
      for (int64_t i = 0; i < M; ++i) {
        const float* row = x.data() + i * K;
        mx[i] = *std::max_element(row, row + K);
        sumsFused[i] = ops::cpu::amx::expSplitRow(row, K, mx[i], i, tiles.data());
      }
      ops::cpu::amx::zeroSplitRows(M, K, tiles.data());
      ops::cpu::amx::productSplit(tiles.data(), M, V, fused.data(), d);
      for (int64_t i = 0; i < M; ++i) sumsTwo[i] = ops::cpu::avx512::expSum(x.data() + i * K, K, mx[i]);
      ops::cpu::amx::product(x.data(), M, K, 1.f, V, two.data(), d);
      same = same && std::memcmp(sumsTwo.data(), sumsFused.data(), sumsTwo.size() * sizeof(float)) == 0 &&
             std::memcmp(two.data(), fused.data(), two.size() * sizeof(float)) == 0;
    }
    if (!same) ++failures;
    const std::string name = "expSplitRow + productSplit M=1,31,32,33,64 K=" + std::to_string(K);
    std::printf("%s %-62s %s\n", same ? "ok  " : "FAIL", name.c_str(), same ? "bit-identical" : "differs");
  }
}

void runAll(Ctx& ctx) {
  std::mt19937 rng(7);
  for (int64_t d : {14, 16, 32, 64, 80}) testAttention(ctx, 37, 200, 3, d, false, rng);
  testAttention(ctx, 1, 1, 2, 64, false, rng);
  testAttention(ctx, 4096 / 8, 7, 8, 16, false, rng);     // image → tokens: few keys
  testAttention(ctx, 300, 16, 2, 80, false, rng);         // few keys, widest head
  testAttention(ctx, 5, 12, 2, 40, false, rng);           // few keys and few queries
  testAttention(ctx, 7, 1030, 8, 16, false, rng);         // tokens → image: few queries
  testAttention(ctx, 16, 33, 2, 9, false, rng);           // few queries, narrow head
  testAttention(ctx, 17, 40, 2, 16, false, rng);          // one query too many: blocks
  testAttention(ctx, 7, 1030, 2, 32, false, rng);         // few queries, wide head: blocks, values packed
  testAttention(ctx, 13, 31, 2, 32, false, rng);          // a single partial key block
  testAttention(ctx, 77, 77, 4, 64, true, rng);           // the CLIP text tower's causal mask
  testAttention(ctx, 130, 129, 2, 48, false, rng);        // value chunks 128 + 1
  testRelPos(ctx, 2, 14, 14, 3, 64, rng);                 // SAM windows
  testRelPos(ctx, 1, 32, 33, 2, 64, rng);                 // global, non-square, >= 1024 keys
  testRelPos(ctx, 1, 24, 64, 2, 64, rng);                 // SAM's global grid width
  testRelPos(ctx, 2, 3, 32, 2, 80, rng);                  // batched, widest head
  testRelPos(ctx, 3, 5, 7, 2, 14, rng);                   // SlimSAM head size
  testRelPos(ctx, 1, 8, 8, 1, 96, rng);                   // wider than the kernels: OpenBLAS
}

}  // namespace

int main() {
  ThreadPool pool(3);
  Arena arena;
  Ctx ctx{pool, arena};
  ops::initBlas();
  runAll(ctx);
  if (ops::cpu::amx::supported()) {  // the blocked paths through the AMX tiles (bf16x3)
    ops::cpu::amx::WeightPacks packs;   // (no weights: its presence switches the mode on)
    ctx.packs = &packs;
    tolerance = 3e-5;
    runAll(ctx);
    std::mt19937 rng(11);
    testExpSplit(rng);
    if (ops::cpu::avx512::supported()) {  // the tiles with the AVX2 kernels' softmax (no fused exp)
      ops::cpu::avx512::setEnabled(false);
      runAll(ctx);
      ops::cpu::avx512::setEnabled(true);
    }
    ctx.packs = nullptr;
    tolerance = 2e-6;
  } else {
    std::printf("(this CPU has no AMX: the bf16x3 path was not tested)\n");
  }
  if (ops::cpu::avx512::supported()) {  // the AVX2 kernels, on a CPU that would take AVX-512
    ops::cpu::avx512::setEnabled(false);
    runAll(ctx);
  } else {
    std::printf("(this CPU has no AVX-512F: the AVX-512 kernels were not tested)\n");
  }
  if (ops::cpu::avx2::supported()) {  // and the same through OpenBLAS
    ops::cpu::avx2::setEnabled(false);
    runAll(ctx);
  } else {
    std::printf("(this CPU has no AVX2 + FMA: only the OpenBLAS path was tested)\n");
  }
  std::printf("%s\n", failures ? "attention_test: FAILED" : "attention_test: all passed");
  return failures ? 1 : 0;
}
