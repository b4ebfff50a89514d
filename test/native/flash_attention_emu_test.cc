// The fused attention kernel (native/ops/cuda/flash_attention_kernel.cuh) run on the CPU by the
// SIMT emulator (simt_emu.h), no GPU needed: every bias mode (none, per-score table, row bias of
// w = 64, key rows of w ≤ 16), windows written onto the grids of one or more images, half output,
// odd sizes, against a double-precision reference on the same half inputs; and one vs two m-tiles
// per warp (64 / 128 query rows per block), which must give the same bits, as must the
// emulator's three schedules (simt_emu.h: threads taking turns, warp by warp, copies landing as
// issued) for one m-tile. Both sources: dense Q, K, V with the rel-pos terms from memory
// (flashAttention), and the qkv GEMM's output with the terms computed in the kernel
// (flashAttentionQkv: B images, or the windows gathered from the images' grids with the fill row
// on padding cells). The GPU runs the same kernel in test/gpu/attention_ops_test.cc (testFlash),
// against the CPU backend.
#include "simt_emu.h"
// (the emulator first: it provides the primitives the kernel is written over)
#include "ops/cuda/flash_attention_kernel.cuh"

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

namespace fl = omniseg::ops::cuda::flash;

namespace {

int failures = 0;

struct Case {
  int64_t B, h, w, heads, d;
  int bias;  // 0 none, 1 th and tw, 2 th only, 3 tw only
  bool rows = false;     // key-row layout (w ≤ 16)
  bool outHalf = false;  // output rounded to the half type
  int64_t gridE = 0;     // > 0: the B sets are the windows of an E×E grid
  float qScale = 1.f;    // > 1: a peaked softmax
  int64_t pad = 0;       // extra row stride of th / tw
};

template <class Half>
const char* halfName() {
  return std::is_same_v<Half, __half> ? "fp16" : "bf16";
}

template <class Half>
std::vector<Half> randomHalves(std::mt19937& rng, size_t n, float scale) {
  std::normal_distribution<float> nd(0.f, scale);
  std::vector<Half> v(n);
  for (auto& x : v) x = Half(nd(rng));
  return v;
}

template <class Half, int D>
std::vector<float> launchPlan(const fl::FaPlan& pl, int m, bool outHalf, std::vector<float>& out,
                              const std::vector<Half>& outH);

// Runs the kernel with m m-tiles per warp; the output as floats (widened when outHalf).
template <class Half, int D>
std::vector<float> runKernel(const Case& c, const std::vector<Half>& q, const std::vector<Half>& k,
                             const std::vector<Half>& v, const float* th, const float* tw, int m,
                             size_t outRows) {
  const int64_t C = c.heads * c.d;
  std::vector<float> out(outRows * C, -7.f);  // (rows the kernel must not write keep -7)
  std::vector<Half> outH(outRows * C, Half(-7.f));
  void* o = c.outHalf ? static_cast<void*>(outH.data()) : static_cast<void*>(out.data());
  const float scale = 1.f / std::sqrt(static_cast<float>(c.d));
  const fl::FaSource src =
      fl::denseSource(q.data(), k.data(), v.data(), c.heads, c.h * c.w, c.d, th, tw,
                      c.pad ? 2 * c.h - 1 + c.pad : 0, c.pad ? 2 * c.w - 1 + c.pad : 0);
  return launchPlan<Half, D>(fl::planFlash(src, c.B, c.heads, c.h, c.w, c.d, scale, o, c.gridE, c.rows,
                                           m, c.outHalf, sizeof(Half)),
                             m, c.outHalf, out, outH);
}

// Runs a plan in the emulator; the output as floats (widened from outH when outHalf).
template <class Half, int D>
std::vector<float> launchPlan(const fl::FaPlan& pl, int m, bool outHalf, std::vector<float>& out,
                              const std::vector<Half>& outH) {
  auto kernel = [&]() -> std::function<void()> {
    const fl::FaParams p = pl.p;
    auto withSrc = [&](auto mode, auto src) -> std::function<void()> {
      constexpr int Mode = decltype(mode)::value, Src = decltype(src)::value;
      if constexpr (Src != fl::kDense && Mode == fl::kNoBias) {
        simt::fail("no bias from qkv");  // (planFlash never plans it; not instantiated)
      } else {
        if constexpr (D == 64)
          if (m == 2) return [p] { fl::flashAttentionKernel<Half, D, Mode, 2, Src>(p); };
        return [p] { fl::flashAttentionKernel<Half, D, Mode, 1, Src>(p); };
      }
    };
    auto pick = [&](auto mode) -> std::function<void()> {
      switch (pl.p.kind) {
        case fl::kQkvGather: return withSrc(mode, std::integral_constant<int, fl::kQkvGather>{});
        case fl::kQkv: return withSrc(mode, std::integral_constant<int, fl::kQkv>{});
        default: return withSrc(mode, std::integral_constant<int, fl::kDense>{});
      }
    };
    switch (pl.mode) {
      case fl::kBiasRow: return pick(std::integral_constant<int, fl::kBiasRow>{});
      case fl::kBiasRows: return pick(std::integral_constant<int, fl::kBiasRows>{});
      case fl::kBiasTable: return pick(std::integral_constant<int, fl::kBiasTable>{});
      default: return pick(std::integral_constant<int, fl::kNoBias>{});
    }
  }();
  simt::launch({pl.gridX, pl.gridY, 1}, {fl::kFaThreads, 1, 1}, pl.smem, kernel);
  if (outHalf)
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(outH[i]);
  return out;
}

// The reference in double: for set b, head hd: at(which, b, hd, t, e) the value e of token t of
// Q / K / V (which 0 / 1 / 2), th(b, hd, t, kh) and tw(b, hd, t, kw) the rel-pos terms. Output
// rows b·T + t, or with gridE the grid cells (image b / n², n² windows per grid); the rows never
// written stay -7.
template <class At, class Th, class Tw>
std::vector<double> reference(const Case& c, At at, Th th, Tw tw) {
  const int64_t T = c.h * c.w, C = c.heads * c.d;
  const int64_t nwin = c.gridE > 0 ? (c.gridE + c.w - 1) / c.w : 1, images = c.B / (nwin * nwin);
  std::vector<double> ref((c.gridE > 0 ? images * c.gridE * c.gridE : c.B * T) * C, -7.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.d));
  std::vector<double> s(T);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t hd = 0; hd < c.heads; ++hd)
      for (int64_t t = 0; t < T; ++t) {
        const int64_t qh = t / c.w, qw = t % c.w;
        double mx = -INFINITY;
        for (int64_t j = 0; j < T; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < c.d; ++e) dot += at(0, b, hd, t, e) * at(1, b, hd, j, e);
          s[j] = dot * scale + th(b, hd, t, j / c.w) + tw(b, hd, t, j % c.w);
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (auto& x : s) sum += (x = std::exp(x - mx));
        int64_t orow = b * T + t;
        if (c.gridE > 0) {
          const int64_t image = b / (nwin * nwin), win = b % (nwin * nwin);
          const int64_t gy = win / nwin * c.w + qh, gx = win % nwin * c.w + qw;
          if (gy >= c.gridE || gx >= c.gridE) continue;
          orow = (image * c.gridE + gy) * c.gridE + gx;
        }
        for (int64_t e = 0; e < c.d; ++e) {
          double acc = 0;
          for (int64_t j = 0; j < T; ++j) acc += s[j] * at(2, b, hd, j, e);
          ref[orow * C + hd * c.d + e] = acc / sum;
        }
      }
  return ref;
}

// The kernel's output (runOnce(m), m m-tiles per warp) against ref, for m = 1 under each schedule
// and (d = 64) m = 2, all of which must give the same bits.
template <class Half, int D, class RunOnce>
void check(const Case& c, const std::string& source, const std::vector<double>& ref, RunOnce runOnce) {
  // P is rounded to the half type before P·V (up to half an ulp of each weight), and the output
  // once more when outHalf; relative to max(1, |ref|). Measured: ≤ 0.4 ulp, ≤ 0.5 with outHalf.
  const double ulp = std::is_same_v<Half, __half> ? 1.0 / 1024 : 1.0 / 128;
  const double bound = (c.outHalf ? 1.0 : 0.6) * ulp;
  std::string name = std::string(halfName<Half>()) + " " + source + " B" + std::to_string(c.B) + " " +
                     std::to_string(c.h) + "x" + std::to_string(c.w) + " h" + std::to_string(c.heads) +
                     " d" + std::to_string(c.d) +
                     (c.bias == 1 ? " bias" : c.bias == 2 ? " th-only" : c.bias == 3 ? " tw-only" : "") +
                     (c.rows ? " rows" : "") + (c.outHalf ? " out-half" : "") +
                     (c.gridE ? " grid" + std::to_string(c.gridE) : "") + (c.qScale != 1.f ? " peaked" : "") +
                     (c.pad ? " strided" : "");
  // (m, schedule): M1 taking turns (the reference bits), warp by warp, copies as issued; M2.
  struct Run {
    int m;
    simt::Schedule sched;
    const char* label;
  };
  std::vector<Run> runs = {{1, {}, "M1"}, {1, {true, false}, "M1 warp-serial"}, {1, {false, true}, "M1 eager-copies"}};
  if (D == 64) runs.push_back({2, {}, "M2"});
  std::vector<float> first;
  for (const Run& run : runs) {
    simt::schedule() = run.sched;
    const std::vector<float> got = runOnce(run.m);
    simt::schedule() = {};
    double maxErr = 0;  // relative to max(1, |ref|), as bounded
    bool bad = false;
    for (size_t i = 0; i < got.size(); ++i) {
      if (ref[i] == -7.0) {
        bad |= got[i] != -7.f;  // a padding cell written
        continue;
      }
      const double err = std::abs(got[i] - ref[i]) / std::max(1.0, std::abs(ref[i]));
      if (!(err <= bound)) bad = true;
      maxErr = std::max(maxErr, std::isnan(err) ? INFINITY : err);
    }
    const bool same = first.empty() || std::memcmp(first.data(), got.data(), got.size() * sizeof(float)) == 0;
    if (first.empty()) first = got;
    const bool ok = !bad && same;
    failures += !ok;
    std::printf("flash emu %-58s %-15s err %.2e (bound %.1e)%s  %s\n", name.c_str(), run.label, maxErr, bound,
                &run == &runs[0] ? "" : same ? "  same bits" : "  DIFFERS from M1", ok ? "PASS" : "FAIL");
  }
}

template <class Half>
double val(const std::vector<Half>& v, int64_t i) {
  return static_cast<float>(v[i]);
}

// Dense Q, K, V and terms from memory (random th / tw).
template <class Half, int D>
void run(const Case& c) {
  const int64_t T = c.h * c.w, BH = c.B * c.heads;
  const int64_t nh = 2 * c.h - 1, nw = 2 * c.w - 1, ldh = nh + c.pad, ldw = nw + c.pad;
  std::mt19937 rng(static_cast<unsigned>(T * 131 + c.d * 7 + c.bias + c.heads));
  const auto q = randomHalves<Half>(rng, BH * T * c.d, c.qScale);
  const auto k = randomHalves<Half>(rng, BH * T * c.d, 1.f);
  const auto v = randomHalves<Half>(rng, BH * T * c.d, 1.f);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> th(BH * T * ldh), tw(BH * T * ldw);
  for (auto& x : th) x = nd(rng);
  for (auto& x : tw) x = nd(rng);
  const bool useTh = c.bias == 1 || c.bias == 2, useTw = c.bias == 1 || c.bias == 3;
  const int64_t n = c.gridE > 0 ? (c.gridE + c.w - 1) / c.w : 1;  // (windows per grid side)
  const size_t outRows = c.gridE > 0 ? c.B / (n * n) * c.gridE * c.gridE : c.B * T;
  const auto ref = reference(
      c,
      [&](int which, int64_t b, int64_t hd, int64_t t, int64_t e) {
        const auto& x = which == 0 ? q : which == 1 ? k : v;
        return val(x, ((b * c.heads + hd) * T + t) * c.d + e);
      },
      [&](int64_t b, int64_t hd, int64_t t, int64_t kh) {
        return useTh ? th[((b * c.heads + hd) * T + t) * ldh + t / c.w - kh + c.h - 1] : 0.0;
      },
      [&](int64_t b, int64_t hd, int64_t t, int64_t kw) {
        return useTw ? tw[((b * c.heads + hd) * T + t) * ldw + t % c.w - kw + c.w - 1] : 0.0;
      });
  check<Half, D>(c, "dense", ref, [&](int m) {
    return runKernel<Half, D>(c, q, k, v, useTh ? th.data() : nullptr, useTw ? tw.data() : nullptr, m,
                              outRows);
  });
}

// Straight from qkv [rows, 3, heads, d] with the terms computed in the kernel from relH / relW:
// B images of h×w tokens, or (gridE) the windows of one gridE×gridE grid with the fill row (or
// zeros, !withFill) on its padding cells.
template <class Half, int D>
void runQkv(const Case& c, bool withFill = true) {
  const int64_t T = c.h * c.w, C = c.heads * c.d, nh = 2 * c.h - 1, nw = 2 * c.w - 1;
  const int64_t nwin = c.gridE > 0 ? (c.gridE + c.w - 1) / c.w : 1;
  const int64_t rows = c.gridE > 0 ? c.B / (nwin * nwin) * c.gridE * c.gridE : c.B * T;
  std::mt19937 rng(static_cast<unsigned>(rows * 17 + c.d + c.heads));
  auto qkv = randomHalves<Half>(rng, rows * 3 * C, 1.f);
  if (c.qScale != 1.f)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < C; ++i) qkv[r * 3 * C + i] = Half(static_cast<float>(qkv[r * 3 * C + i]) * c.qScale);
  const auto fill = randomHalves<Half>(rng, 3 * C, 1.f);
  const auto relH = randomHalves<Half>(rng, nh * c.d, 0.3f), relW = randomHalves<Half>(rng, nw * c.d, 0.3f);
  // Token t of set b: its qkv row, or -1 for a padding cell.
  auto rowOf = [&](int64_t b, int64_t t) -> int64_t {
    if (c.gridE == 0) return b * T + t;
    const int64_t image = b / (nwin * nwin), win = b % (nwin * nwin);
    const int64_t gy = win / nwin * c.w + t / c.w, gx = win % nwin * c.w + t % c.w;
    return gy < c.gridE && gx < c.gridE ? (image * c.gridE + gy) * c.gridE + gx : -1;
  };
  auto at = [&](int which, int64_t b, int64_t hd, int64_t t, int64_t e) {
    const int64_t r = rowOf(b, t), i = which * C + hd * c.d + e;
    return r >= 0 ? val(qkv, r * 3 * C + i) : withFill ? val(fill, i) : 0.0;
  };
  auto term = [&](const std::vector<Half>& rel, int64_t b, int64_t hd, int64_t t, int64_t i) {
    double acc = 0;
    for (int64_t e = 0; e < c.d; ++e) acc += at(0, b, hd, t, e) * val(rel, i * c.d + e);
    return acc;
  };
  const auto ref = reference(
      c, at,
      [&](int64_t b, int64_t hd, int64_t t, int64_t kh) { return term(relH, b, hd, t, t / c.w - kh + c.h - 1); },
      [&](int64_t b, int64_t hd, int64_t t, int64_t kw) { return term(relW, b, hd, t, t % c.w - kw + c.w - 1); });
  check<Half, D>(c, withFill || c.gridE == 0 ? "qkv" : "qkv no-fill", ref, [&](int m) {
    std::vector<float> out(rows * C, -7.f);
    std::vector<Half> outH(rows * C, Half(-7.f));
    void* o = c.outHalf ? static_cast<void*>(outH.data()) : static_cast<void*>(out.data());
    const fl::FaSource src = fl::qkvSource(qkv.data(), withFill ? fill.data() : nullptr, c.heads, T, c.d,
                                           c.gridE > 0, relH.data(), relW.data(), sizeof(Half));
    const float scale = 1.f / std::sqrt(static_cast<float>(c.d));
    return launchPlan<Half, D>(fl::planFlash(src, c.B, c.heads, c.h, c.w, c.d, scale, o, c.gridE, c.rows, m,
                                             c.outHalf, sizeof(Half)),
                               m, c.outHalf, out, outH);
  });
}

}  // namespace

int main() {
  // The row-bias path (w = 64; h = 3: T is not a multiple of the 128 rows of two m-tiles).
  run<__half, 64>({1, 3, 64, 2, 64, 1});
  run<__nv_bfloat16, 64>({1, 3, 64, 2, 64, 1});
  run<__nv_bfloat16, 64>({2, 2, 64, 1, 64, 2});            // th only
  run<__half, 64>({1, 2, 64, 2, 64, 3, false, true});      // tw only, half output
  run<__half, 64>({1, 2, 64, 1, 64, 1, false, false, 0, 3.f, 5});  // peaked, strided terms
  // Key rows (SAM's 14×14 windows; 5×7), written onto a 20×20 grid, half output.
  run<__half, 64>({2, 14, 14, 2, 64, 1, true});
  run<__nv_bfloat16, 64>({4, 14, 14, 1, 64, 1, true, true, 20});
  run<__half, 64>({3, 5, 7, 2, 64, 2, true});
  run<__nv_bfloat16, 64>({8, 14, 14, 2, 64, 1, true, true, 20});  // two images' windows
  run<__half, 64>({18, 7, 7, 1, 64, 1, false, false, 20});        // two images, token order
  run<__half, 32>({2, 9, 11, 1, 32, 1, true});
  // The per-score table (any h, w), and no bias.
  run<__half, 64>({2, 5, 7, 2, 64, 1});
  run<__nv_bfloat16, 64>({4, 14, 14, 1, 64, 1, false, false, 20});
  run<__half, 64>({1, 9, 17, 1, 64, 0});
  run<__nv_bfloat16, 64>({1, 1, 1, 1, 64, 1});  // a single token
  run<__half, 80>({1, 9, 11, 2, 80, 1});
  run<__nv_bfloat16, 32>({2, 5, 7, 1, 32, 0, false, true});
  // Straight from the qkv GEMM's output, the terms computed in the kernel: global attention
  // (w = 64; two images; h = 3), SAM's windows gathered from a 20×20 grid (key rows and token
  // order; with the fill row and with zeros), the per-score table, d = 80, a peaked softmax.
  runQkv<__half, 64>({2, 2, 64, 2, 64, 1});
  runQkv<__nv_bfloat16, 64>({1, 3, 64, 1, 64, 1, false, true});
  runQkv<__half, 64>({4, 14, 14, 2, 64, 1, true, false, 20});
  runQkv<__nv_bfloat16, 64>({4, 14, 14, 1, 64, 1, true, true, 20});
  runQkv<__half, 64>({4, 14, 14, 1, 64, 1, false, false, 20});
  runQkv<__half, 64>({4, 14, 14, 1, 64, 1, true, false, 20}, false);
  runQkv<__nv_bfloat16, 64>({8, 14, 14, 2, 64, 1, true, true, 20});   // two images' windows
  runQkv<__half, 64>({18, 7, 7, 1, 64, 1, false, false, 20});          // two images, token order
  runQkv<__half, 64>({2, 5, 7, 2, 64, 1});
  runQkv<__nv_bfloat16, 80>({1, 2, 64, 2, 80, 1});
  runQkv<__half, 32>({9, 7, 7, 1, 32, 1, true, false, 20});
  runQkv<__half, 64>({1, 2, 64, 1, 64, 1, false, false, 0, 3.f});
  // Edge shapes (from review): other head sizes from qkv, relPosH of several 64-row chunks (h = 40),
  // w = 16 / 1 / 65 (key rows full, one column, past the row-bias width), 1×1 and 17×17 windows.
  runQkv<__half, 96>({1, 2, 64, 1, 96, 1});
  runQkv<__nv_bfloat16, 128>({2, 5, 7, 1, 128, 1});
  runQkv<__half, 64>({2, 5, 7, 2, 64, 1, true});
  runQkv<__half, 64>({1, 40, 3, 1, 64, 1});
  runQkv<__half, 64>({2, 3, 16, 1, 64, 1, true});
  run<__half, 64>({2, 3, 16, 1, 64, 1, true});
  runQkv<__half, 64>({1, 9, 1, 1, 64, 1, true});
  runQkv<__half, 64>({1, 2, 65, 1, 64, 1});
  run<__half, 64>({1, 2, 65, 1, 64, 1});
  runQkv<__half, 64>({9, 1, 1, 1, 64, 1, true, false, 3});
  runQkv<__half, 32>({4, 17, 17, 1, 32, 1, false, false, 20});
  runQkv<__nv_bfloat16, 64>({4, 17, 17, 1, 64, 1, false, true, 20});
  runQkv<__half, 80>({2, 5, 7, 1, 80, 1, true});
  std::printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
