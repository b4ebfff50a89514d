// CPU kernel timings at sam-vit-base shapes: the encoder's attention (one global layer, one layer of
// 14×14 windows) on every path this CPU has, and the AMX bf16x3 linear layers with their share of
// the tiles' nominal peak. For kernel work between `npm run bench` runs (which time the whole
// model next to PyTorch); medians of several runs, flush-to-zero as the addon's threads run.
//   make -C bench/native && bench/native/build/cpu_kernels [threads]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "core/denormals.h"
#include "ops/cpu/attention_avx2.h"
#include "ops/cpu/attention_avx512.h"
#include "ops/cpu/gemm_amx.h"
#include "ops/ops.h"

using namespace omniseg;

namespace {

std::vector<float> randomVec(size_t n, std::mt19937& rng, float scale) {
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

template <class Fn>
double medianMs(int runs, const Fn& fn) {
  std::vector<double> t;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// relPosAttention over B grids of h×h tokens, 12 heads of 64 (sam-vit-base)
double attentionMs(Ctx& ctx, int64_t B, int64_t h, int runs) {
  std::mt19937 rng(1);
  const int64_t S = h * h, heads = 12, d = 64, C = heads * d;
  const auto qkv = randomVec(static_cast<size_t>(B * S * 3 * C), rng, 1.f);
  const auto relH = randomVec(static_cast<size_t>((2 * h - 1) * d), rng, 0.1f);
  const auto relW = randomVec(static_cast<size_t>((2 * h - 1) * d), rng, 0.1f);
  std::vector<float> out(static_cast<size_t>(B * S * C));
  return medianMs(runs, [&] {
    ops::cpu::relPosAttention(ctx, qkv.data(), B, h, h, heads, d, relH.data(), relW.data(), out.data());
  });
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  FlushDenormals ftz;
  ThreadPool pool(threads);
  Arena arena;
  Ctx ctx{pool, arena};
  ops::initBlas();
  std::printf("%d threads\nattention (ms per layer)           global 64x64   windows 25 x 14x14\n", threads);
  ops::cpu::amx::WeightPacks packs;  // (its presence switches the blocked paths to the tiles)
  struct Path {
    const char* name;
    bool amx, avx512, avx2;
  };
  for (const Path& p : {Path{"amx bf16x3", true, true, true}, Path{"avx-512 kernels", false, true, true},
                        Path{"avx2 kernels", false, false, true}, Path{"openblas", false, false, false}}) {
    if ((p.amx && !ops::cpu::amx::supported()) || (p.avx512 && !ops::cpu::avx512::supported()) ||
        (p.avx2 && !ops::cpu::avx2::supported()))
      continue;
    ctx.packs = p.amx ? &packs : nullptr;
    ops::cpu::avx512::setEnabled(p.avx512);
    ops::cpu::avx2::setEnabled(p.avx2);
    std::printf("  %-30s %12.1f %20.1f\n", p.name, attentionMs(ctx, 1, 64, 7), attentionMs(ctx, 25, 14, 9));
  }
  ctx.packs = nullptr;
  ops::cpu::avx512::setEnabled(true);
  ops::cpu::avx2::setEnabled(true);
  if (!ops::cpu::amx::supported()) {
    std::printf("(no AMX: the bf16x3 linear layers are not timed)\n");
    return 0;
  }
  std::printf("AMX bf16x3 linear layers (one image; peak: 1024 bf16 MAC/cycle/core at an assumed 2.6 GHz)\n");
  std::mt19937 rng(2);
  struct Shape {
    const char* name;
    int64_t M, K, N;
  };
  for (const Shape& s : {Shape{"mlp.lin1", 4096, 768, 3072}, Shape{"mlp.lin2", 4096, 3072, 768},
                         Shape{"attn.qkv", 4096, 768, 2304}, Shape{"attn.proj", 4096, 768, 768}}) {
    const auto x = randomVec(static_cast<size_t>(s.M * s.K), rng, 1.f), W = randomVec(static_cast<size_t>(s.N * s.K), rng, 1.f);
    std::vector<float> y(static_cast<size_t>(s.M * s.N));
    const ops::cpu::amx::PackedWeight w(ctx, W.data(), s.N, s.K);
    const double ms = medianMs(7, [&] {
      ops::cpu::amx::linear(ctx, x.data(), s.M, s.K, w, y.data(), s.N, false, nullptr, nullptr);
    });
    const double macs = static_cast<double>(s.M) * s.K * s.N;
    std::printf("  %-10s %5ldx%5ldx%5ld  %7.2f ms  %5.0f GFLOP/s  %4.1f %% of the tiles' peak (3 products per MAC)\n", s.name,
                static_cast<long>(s.M), static_cast<long>(s.K), static_cast<long>(s.N), ms, 2 * macs / ms / 1e6,
                100 * 3 * macs / (ms / 1e3) / (threads * 1024 * 2.6e9));
  }
}
