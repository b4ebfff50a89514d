// The head split of the CUDA relPosAttention (native/ops/cuda/split_heads.cuh) run on the CPU by
// the SIMT emulator (simt_emu.h): both kernels (one block per token; eight values per thread on a
// grid-stride loop), fp32 and half in, fp32 and half out, plain sets and the ws×ws windows of one
// or two E×E grids (padding cells from the fill row, or zeros), against a direct reference of
// window_partition + the head split. The values are copied or rounded once, so the check is exact.
#include "simt_emu.h"
// (the emulator first: it provides what the kernels are written over)
#include "ops/cuda/split_heads.cuh"

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

namespace sp = omniseg::ops::cuda::split;

namespace {

int failures = 0;

struct Case {
  int64_t images, E, ws;  // ws = 0: `images` plain sets of E tokens each
  int64_t heads, d;
  bool fill = true;
};

template <class T>
float asFloat(T v) {
  return static_cast<float>(v);
}

// v rounded to nearest even in T with CUDA's own conversions, not the kernel's dev::to.
template <class T>
T rounded(float v) {
  if constexpr (std::is_same_v<T, __half>)
    return __float2half_rn(v);
  else if constexpr (std::is_same_v<T, __nv_bfloat16>)
    return __float2bfloat16_rn(v);
  else
    return v;
}

// The split of qkv (In) into T for case c by the kernel `vec ? splitHeads8Kernel : splitHeadsKernel`,
// compared with the reference.
template <class In, class T>
void run(const Case& c, bool vec, const char* types) {
  const int64_t C = c.heads * c.d, nw = c.ws > 0 ? (c.E + c.ws - 1) / c.ws : 1;
  const int64_t B = c.ws > 0 ? c.images * nw * nw : c.images, Tn = c.ws > 0 ? c.ws * c.ws : c.E;
  const int64_t rows = c.ws > 0 ? c.images * c.E * c.E : c.images * c.E, per = B * c.heads * Tn * c.d;
  std::mt19937 rng(static_cast<unsigned>(c.E * 31 + c.ws * 7 + c.heads + c.d + vec));
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<In> qkv(rows * 3 * C);
  for (auto& x : qkv) x = In(nd(rng));
  std::vector<float> fill(3 * C);
  for (auto& x : fill) x = nd(rng);
  sp::WindowSource win;
  if (c.ws > 0) {
    win.E = c.E;
    win.ws = c.ws;
    win.fill = c.fill ? fill.data() : nullptr;
  }
  // Reference: token t of set b from its grid cell (or the fill row / zeros), rounded to T.
  std::vector<T> ref(3 * per);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < Tn; ++t)
      for (int64_t i = 0; i < 3 * C; ++i) {
        float v = 0.f;
        if (c.ws > 0) {
          const int64_t image = b / (nw * nw), wb = b % (nw * nw);
          const int64_t gy = wb / nw * c.ws + t / c.ws, gx = wb % nw * c.ws + t % c.ws;
          if (gy < c.E && gx < c.E)
            v = asFloat(qkv[((image * c.E + gy) * c.E + gx) * 3 * C + i]);
          else if (c.fill)
            v = fill[i];
        } else {
          v = asFloat(qkv[(b * Tn + t) * 3 * C + i]);
        }
        const int64_t which = i / C, hd = i % C / c.d, e = i % c.d;
        ref[which * per + ((b * c.heads + hd) * Tn + t) * c.d + e] = rounded<T>(v);
      }
  std::vector<T> got(3 * per, rounded<T>(-7.f));
  if (vec) {
    const int64_t chunks = B * Tn * 3 * C / 8;
    // (a grid smaller than the work: the grid-stride loop takes several turns)
    simt::launch({3, 1, 1}, {64, 1, 1}, 0, [&] {
      sp::splitHeads8Kernel(qkv.data(), static_cast<uint32_t>(chunks), static_cast<uint32_t>(Tn),
                            static_cast<uint32_t>(c.heads), static_cast<uint32_t>(c.d), per, win, got.data());
    });
  } else {
    simt::launch({static_cast<unsigned>(B * Tn), 1, 1}, {32, 1, 1}, 0,
                 [&] { sp::splitHeadsKernel(qkv.data(), Tn, c.heads, c.d, per, win, got.data()); });
  }
  int64_t bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) bad += std::memcmp(&ref[i], &got[i], sizeof(T)) != 0;
  failures += bad != 0;
  const std::string where = c.ws > 0 ? " E" + std::to_string(c.E) + " ws" + std::to_string(c.ws) +
                                          (c.fill ? " fill" : " zeros")
                                    : " T" + std::to_string(c.E);
  const std::string name = std::string(vec ? "split8 " : "split ") + types + " images " +
                           std::to_string(c.images) + where + " h" + std::to_string(c.heads) + " d" +
                           std::to_string(c.d);
  std::printf("split emu %-48s %lld of %lld values differ  %s\n", name.c_str(), static_cast<long long>(bad),
              static_cast<long long>(ref.size()), bad ? "FAIL" : "PASS");
}

}  // namespace

int main() {
  // Windows of one and of two images (7×7 over 20×20: 9 windows each, the last row and column
  // partly padding), with the fill row and with zeros; plain sets; both kernels, the half and fp32
  // types SAM's encoder uses (fp32 qkv → half or fp32 parts; half qkv → half parts).
  for (const bool vec : {false, true}) {
    run<float, __half>({1, 20, 7, 2, 8}, vec, "f32->f16");
    run<float, float>({2, 20, 7, 2, 8}, vec, "f32->f32");
    run<__nv_bfloat16, __nv_bfloat16>({2, 20, 7, 2, 16}, vec, "bf16->bf16");
    run<__half, __half>({2, 20, 7, 1, 8, false}, vec, "f16->f16");
    run<__half, __half>({3, 9, 0, 2, 8}, vec, "f16->f16");
  }
  // (one block per token only: d not a multiple of 8 or 4)
  run<float, __half>({2, 10, 4, 3, 6}, false, "f32->f16");
  run<float, float>({2, 10, 4, 1, 5, false}, false, "f32->f32");
  std::printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
