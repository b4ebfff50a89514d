// COCO run-length boundaries of binary masks on the CPU (native/ops/cpu/mask_boundaries.cc)
// against the definition, walked the slow way: down each column of each plane in column-major
// order, a boundary wherever the value changes (the first pixel compared with 0). Shapes with one
// row or one column, widths that are not multiples of the 8-byte row comparison, empty planes,
// and masks that are all 0, all 1, noise, a checkerboard, stripes both ways and discs. The runs
// also have to decode back to the masks (COCO's counts: differences of 0, positions and H·W).
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "ops/ops.h"

using namespace omniseg;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::printf("FAIL %s\n", what.c_str());
  }
}

std::vector<uint32_t> reference(const std::vector<uint8_t>& m, int64_t planes, int64_t H,
                                int64_t W, std::vector<uint32_t>& ends) {
  std::vector<uint32_t> pos;
  ends.assign(static_cast<size_t>(planes), 0);
  for (int64_t p = 0; p < planes; ++p) {
    uint8_t prev = 0;
    for (int64_t x = 0; x < W; ++x)
      for (int64_t y = 0; y < H; ++y) {
        const uint8_t v = m[static_cast<size_t>((p * H + y) * W + x)];
        if (v != prev) pos.push_back(static_cast<uint32_t>(x * H + y));
        prev = v;
      }
    ends[static_cast<size_t>(p)] = static_cast<uint32_t>(pos.size());
  }
  return pos;
}

enum class Pattern { Zeros, Ones, Noise, Checker, Rows, Columns, Discs };
const char* const kNames[] = {"zeros", "ones", "noise", "checker", "rows", "columns", "discs"};

std::vector<uint8_t> makeMasks(Pattern pat, int64_t planes, int64_t H, int64_t W, std::mt19937& rng) {
  std::vector<uint8_t> m(static_cast<size_t>(planes * H * W));
  std::uniform_real_distribution<double> u(0, 1);
  for (int64_t p = 0; p < planes; ++p) {
    const double cx = u(rng) * W, cy = u(rng) * H, r = (0.2 + u(rng)) * (H < W ? H : W) / 2;
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        uint8_t v = 0;
        switch (pat) {
          case Pattern::Zeros: v = 0; break;
          case Pattern::Ones: v = 1; break;
          case Pattern::Noise: v = u(rng) < 0.5; break;
          case Pattern::Checker: v = (x + y + p) % 2; break;
          case Pattern::Rows: v = (y / 3 + p) % 2; break;
          case Pattern::Columns: v = (x / 2 + p) % 2; break;
          case Pattern::Discs: v = (x - cx) * (x - cx) + (y - cy) * (y - cy) < r * r; break;
        }
        m[static_cast<size_t>((p * H + y) * W + x)] = v;
      }
  }
  return m;
}

void runCase(Ctx& ctx, Pattern pat, int64_t planes, int64_t H, int64_t W, std::mt19937& rng) {
  const std::string name = std::string(kNames[static_cast<int>(pat)]) + " " +
                           std::to_string(planes) + "x" + std::to_string(H) + "x" + std::to_string(W);
  const auto m = makeMasks(pat, planes, H, W, rng);
  std::vector<uint32_t> refEnds;
  const auto ref = reference(m, planes, H, W, refEnds);
  std::vector<uint32_t> ends(static_cast<size_t>(planes), 12345);
  // capacity planes·H·W, plus a sentinel past what the reference writes
  std::vector<uint32_t> pos(static_cast<size_t>(planes * H * W) + 1, 0xdeadbeef);
  ops::cpu::maskBoundaries(ctx, m.data(), planes, H, W, ends.data(), pos.data());
  check(ends == refEnds, name + ": ends");
  bool same = true;
  for (size_t i = 0; i < ref.size(); ++i) same = same && pos[i] == ref[i];
  check(same, name + ": positions");
  check(pos[ref.size()] == 0xdeadbeef, name + ": wrote past the last boundary");
  // The runs decode back to the masks.
  bool decodes = true;
  for (int64_t p = 0; p < planes && same; ++p) {
    uint32_t k = 0, v = 0;
    for (uint32_t i = p == 0 ? 0 : ends[p - 1]; i <= ends[p]; ++i) {
      const uint32_t next = i < ends[p] ? pos[i] : static_cast<uint32_t>(H * W);
      for (; k < next; ++k)
        decodes = decodes && m[static_cast<size_t>(p * H * W + (k % H) * W + k / H)] == v;
      v ^= 1;
    }
  }
  check(decodes, name + ": runs decode back to the masks");
}

}  // namespace

int main() {
  ThreadPool pool(2);
  Arena arena;
  Ctx ctx{pool, arena};
  std::mt19937 rng(7);
  const int64_t shapes[][3] = {{1, 1, 1}, {1, 1, 9}, {1, 9, 1}, {2, 2, 3}, {3, 37, 53},
                               {1, 64, 16}, {4, 17, 8}, {2, 5, 23}, {0, 4, 4}, {2, 0, 5}, {2, 5, 0}};
  int cases = 0;
  for (int pat = 0; pat <= static_cast<int>(Pattern::Discs); ++pat)
    for (const auto& s : shapes) {
      runCase(ctx, static_cast<Pattern>(pat), s[0], s[1], s[2], rng);
      ++cases;
    }
  // a mask image at camera size
  runCase(ctx, Pattern::Discs, 3, 480, 641, rng);
  runCase(ctx, Pattern::Noise, 1, 480, 641, rng);
  cases += 2;
  std::printf("mask_boundaries_test: %d cases, %d failures\n", cases, failures);
  return failures ? 1 : 0;
}
