// The fused attention kernel (native/ops/cuda/flash_attention_kernel.cuh) run on the CPU by the
// SIMT emulator (simt_emu.h), no GPU needed: every bias mode (none, per-score table, row bias of
// w = 64, key rows of w ≤ 16), windows written onto a grid, half output, odd sizes, against a
// double-precision reference on the same half inputs; and one vs two m-tiles per warp (64 / 128
// query rows per block), which must give the same bits. The GPU runs the same kernel in
// test/gpu/attention_ops_test.cc (testFlash), against the CPU backend.
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
  const fl::FaPlan pl =
      fl::planFlash(q.data(), k.data(), v.data(), c.B, c.heads, c.h, c.w, c.d, scale, th, tw, o,
                    c.pad ? 2 * c.h - 1 + c.pad : 0, c.pad ? 2 * c.w - 1 + c.pad : 0, c.gridE,
                    c.rows, m, c.outHalf, sizeof(Half));
  auto kernel = [&]() -> std::function<void()> {
    const fl::FaParams p = pl.p;
    auto pick = [&](auto mode) -> std::function<void()> {
      constexpr int Mode = decltype(mode)::value;
      if constexpr (D == 64)
        if (m == 2) return [p] { fl::flashAttentionKernel<Half, D, Mode, 2>(p); };
      return [p] { fl::flashAttentionKernel<Half, D, Mode, 1>(p); };
    };
    switch (pl.mode) {
      case fl::kBiasRow: return pick(std::integral_constant<int, fl::kBiasRow>{});
      case fl::kBiasRows: return pick(std::integral_constant<int, fl::kBiasRows>{});
      case fl::kBiasTable: return pick(std::integral_constant<int, fl::kBiasTable>{});
      default: return pick(std::integral_constant<int, fl::kNoBias>{});
    }
  }();
  simt::launch({pl.gridX, pl.gridY, 1}, {fl::kFaThreads, 1, 1}, pl.smem, kernel);
  if (c.outHalf)
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(outH[i]);
  return out;
}

template <class Half, int D>
void run(const Case& c) {
  const int64_t T = c.h * c.w, BH = c.B * c.heads, C = c.heads * c.d;
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
  const size_t outRows = c.gridE > 0 ? c.gridE * c.gridE : c.B * T;

  // Reference in double on the same half values; out rows the kernel must leave alone stay -7.
  std::vector<double> ref(outRows * C, -7.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.d));
  std::vector<double> s(T);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t hd = 0; hd < c.heads; ++hd) {
      const int64_t bh = b * c.heads + hd;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t qh = t / c.w, qw = t % c.w;
        double mx = -INFINITY;
        for (int64_t j = 0; j < T; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < c.d; ++e)
            dot += static_cast<double>(static_cast<float>(q[(bh * T + t) * c.d + e])) *
                   static_cast<float>(k[(bh * T + j) * c.d + e]);
          const int64_t kh = j / c.w, kw = j % c.w, row = bh * T + t;
          s[j] = dot * scale + (useTh ? th[row * ldh + qh - kh + c.h - 1] : 0.0) +
                 (useTw ? tw[row * ldw + qw - kw + c.w - 1] : 0.0);
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (auto& x : s) sum += (x = std::exp(x - mx));
        int64_t orow = b * T + t;
        if (c.gridE > 0) {
          const int64_t nwin = (c.gridE + c.w - 1) / c.w, wy = b / nwin, wx = b % nwin;
          const int64_t gy = wy * c.w + qh, gx = wx * c.w + qw;
          if (gy >= c.gridE || gx >= c.gridE) continue;
          orow = gy * c.gridE + gx;
        }
        for (int64_t e = 0; e < c.d; ++e) {
          double acc = 0;
          for (int64_t j = 0; j < T; ++j)
            acc += s[j] * static_cast<float>(v[(bh * T + j) * c.d + e]);
          ref[orow * C + hd * c.d + e] = acc / sum;
        }
      }
    }

  // P is rounded to the half type before P·V (up to half an ulp of each weight), and the output
  // once more when outHalf; relative to max(1, |ref|). Measured: ≤ 0.4 ulp, ≤ 0.5 with outHalf.
  const double ulp = std::is_same_v<Half, __half> ? 1.0 / 1024 : 1.0 / 128;
  const double bound = (c.outHalf ? 1.0 : 0.6) * ulp;
  std::string name = std::string(halfName<Half>()) + " B" + std::to_string(c.B) + " " +
                     std::to_string(c.h) + "x" + std::to_string(c.w) + " h" + std::to_string(c.heads) +
                     " d" + std::to_string(c.d) +
                     (c.bias == 1 ? " bias" : c.bias == 2 ? " th-only" : c.bias == 3 ? " tw-only" : "") +
                     (c.rows ? " rows" : "") + (c.outHalf ? " out-half" : "") +
                     (c.gridE ? " grid" + std::to_string(c.gridE) : "") + (c.qScale != 1.f ? " peaked" : "") +
                     (c.pad ? " strided" : "");
  std::vector<float> first;
  for (int m : {1, 2}) {
    if (m == 2 && D != 64) break;
    const auto got = runKernel<Half, D>(c, q, k, v, useTh ? th.data() : nullptr,
                                        useTw ? tw.data() : nullptr, m, outRows);
    double maxErr = 0;
    bool bad = false;
    for (size_t i = 0; i < got.size(); ++i) {
      if (ref[i] == -7.0) {
        bad |= got[i] != -7.f;  // a padding cell written
        continue;
      }
      const double err = std::abs(got[i] - ref[i]);
      if (!(err <= bound * std::max(1.0, std::abs(ref[i])))) bad = true;
      maxErr = std::max(maxErr, std::isnan(err) ? INFINITY : err);
    }
    const bool same = m == 1 || std::memcmp(first.data(), got.data(), got.size() * sizeof(float)) == 0;
    if (m == 1) first = got;
    const bool ok = !bad && same;
    failures += !ok;
    std::printf("flash emu %-52s M%d  max err %.2e (bound %.1e)%s  %s\n", name.c_str(), m, maxErr,
                bound, m == 2 ? (same ? "  same bits as M1" : "  DIFFERS from M1") : "",
                ok ? "PASS" : "FAIL");
  }
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
  run<__half, 32>({2, 9, 11, 1, 32, 1, true});
  // The per-score table (any h, w), and no bias.
  run<__half, 64>({2, 5, 7, 2, 64, 1});
  run<__nv_bfloat16, 64>({4, 14, 14, 1, 64, 1, false, false, 20});
  run<__half, 64>({1, 9, 17, 1, 64, 0});
  run<__nv_bfloat16, 64>({1, 1, 1, 1, 64, 1});  // a single token
  run<__half, 80>({1, 9, 11, 2, 80, 1});
  run<__nv_bfloat16, 32>({2, 5, 7, 1, 32, 0, false, true});
  std::printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
