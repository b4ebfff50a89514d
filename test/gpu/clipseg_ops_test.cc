// CUDA vs CPU for the ops CLIPSeg added: linear with quick_gelu (aligned and unaligned bias: the
// cuBLASLt bias epilogue must not skip the activation), causal attention (the CLIP text tower),
// convTranspose with kernel = stride = k, scaleShiftRows (FiLM). The CPU's causal attention is
// itself checked against a naive loop. Bounds: see cuda_ops_test.cc.
#include "test/gpu/op_test.h"

namespace optest {

namespace {

void testQuickGeluLinear(Env& e, int64_t M, int64_t K, int64_t N, bool unalignedBias) {
  auto x = randn(M * K), W = randn(N * K, 1.f / std::sqrt(static_cast<float>(K))), b = randn(N + 1);
  const int64_t off = unalignedBias ? 1 : 0;
  std::vector<float> ref(M * N);
  ops::cpu::linear(e.cpu, x.data(), M, K, W.data(), b.data() + off, N, ref.data(), Act::QuickGelu);
  float* dy = e.devAlloc(M * N);
  ops::linear(e.gpu, e.dev(x), M, K, e.dev(W), e.dev(b) + off, N, dy, Act::QuickGelu);
  auto got = e.host(dy, M * N);
  report("linear", dims({M, K, N}) + " quick_gelu bias" + (unalignedBias ? "(unaligned)" : ""),
         ref.data(), got.data(), ref.size(), gemmBound(K), Norm::Magnitude);
  e.reset();
}

// softmax(q·kᵀ·scale, keys ≤ query) · v per head, in double.
std::vector<float> naiveCausal(const std::vector<float>& qkv, int64_t T, int64_t heads, int64_t d,
                               float scale) {
  const int64_t C = heads * d, ld = 3 * C;
  std::vector<float> out(T * C);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < T; ++i) {
      std::vector<double> p(i + 1);
      double mx = -1e300, sum = 0;
      for (int64_t j = 0; j <= i; ++j) {
        double s = 0;
        for (int64_t c = 0; c < d; ++c) s += double(qkv[i * ld + h * d + c]) * qkv[j * ld + C + h * d + c];
        p[j] = s * scale;
        mx = std::max(mx, p[j]);
      }
      for (auto& v : p) sum += (v = std::exp(v - mx));
      for (int64_t c = 0; c < d; ++c) {
        double o = 0;
        for (int64_t j = 0; j <= i; ++j) o += p[j] * qkv[j * ld + 2 * C + h * d + c];
        out[i * C + h * d + c] = static_cast<float>(o / sum);
      }
    }
  return out;
}

void testCausal(Env& e, int64_t T, int64_t heads, int64_t d) {
  const int64_t C = heads * d, ld = 3 * C;
  auto qkv = randn(T * ld);
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  std::vector<float> ref(T * C);
  ops::cpu::attention(e.cpu, qkv.data(), ld, qkv.data() + C, ld, qkv.data() + 2 * C, ld, T, T, heads,
                      d, scale, ref.data(), /*causal=*/true);
  const auto naive = naiveCausal(qkv, T, heads, d, scale);
  const std::string shape = "T" + std::to_string(T) + " h" + std::to_string(heads) + " d" + std::to_string(d);
  report("causal cpu/naive", shape, naive.data(), ref.data(), ref.size(), gemmBound(std::max(d, T)),
         Norm::Magnitude);
  float* dq = e.dev(qkv);
  float* dout = e.devAlloc(T * C);
  ops::attention(e.gpu, dq, ld, dq + C, ld, dq + 2 * C, ld, T, T, heads, d, scale, dout, true);
  auto got = e.host(dout, T * C);
  report("causal attention", shape, ref.data(), got.data(), ref.size(), gemmBound(std::max(d, T)),
         Norm::Magnitude);
  e.reset();
}

void testConvTK(Env& e, int64_t H, int64_t W, int64_t Cin, int64_t k, int64_t Cout, Act act) {
  auto x = randn(H * W * Cin), w = randn(Cin * Cout * k * k, 1.f / std::sqrt(static_cast<float>(Cin)));
  auto b = randn(Cout);
  const int64_t n = k * k * H * W * Cout;
  std::vector<float> ref(n);
  ops::cpu::convTranspose(e.cpu, x.data(), H, W, Cin, k, w.data(), b.data(), Cout, ref.data(), act);
  float* dy = e.devAlloc(n);
  ops::convTranspose(e.gpu, e.dev(x), H, W, Cin, k, e.dev(w), e.dev(b), Cout, dy, act);
  auto got = e.host(dy, n);
  report("convTranspose", dims({H, W, Cin, k, Cout}) + " " + actName(act), ref.data(), got.data(), n,
         gemmBound(Cin), Norm::Magnitude);
  e.reset();
}

void testScaleShift(Env& e, int64_t rows, int64_t C) {
  auto x = randn(rows * C), s = randn(C), t = randn(C);
  std::vector<float> ref(rows * C);
  ops::cpu::scaleShiftRows(e.cpu, x.data(), rows, C, s.data(), t.data(), ref.data());
  float* dx = e.dev(x);
  ops::scaleShiftRows(e.gpu, dx, rows, C, e.dev(s), e.dev(t), dx);  // in place
  auto got = e.host(dx, rows * C);
  report("scaleShiftRows", dims({rows, C}), ref.data(), got.data(), ref.size(), 0, Norm::Exact);
  e.reset();
}

}  // namespace

void clipSegTests(Env& e) {
  // the towers' MLP fc1 (ViT-B/16 at 352²: 485 tokens; text: 77 tokens) and odd sizes
  testQuickGeluLinear(e, 485, 768, 3072, false);
  testQuickGeluLinear(e, 77, 512, 2048, true);
  testQuickGeluLinear(e, 5, 33, 17, false);
  // the text tower (77 tokens, 8 heads of 64), short and odd cases, the block-softmax path
  testCausal(e, 77, 8, 64);
  testCausal(e, 5, 2, 16);
  testCausal(e, 1, 1, 8);
  testCausal(e, 1100, 2, 32);
  // the decoder head: k = 4 (patch 16 / 4) twice, k = 16 (plain head), k = 2
  testConvTK(e, 22, 22, 64, 4, 32, Act::Relu);
  testConvTK(e, 88, 88, 32, 4, 1, Act::None);
  testConvTK(e, 22, 22, 64, 16, 1, Act::None);
  testConvTK(e, 3, 5, 7, 2, 3, Act::Gelu);
  testScaleShift(e, 485, 64);
  testScaleShift(e, 3, 5);
}

}  // namespace optest
