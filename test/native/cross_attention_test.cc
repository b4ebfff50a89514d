// SAM's token ↔ image cross attention (native/ops/cpu/cross_attention.cc) against a
// double-precision reference written in the reference's order: project the image rows, attend,
// out_proj. Shapes: SAM's decoder (4096 image rows of 256, 8 heads of 16, 7 tokens), key and
// row counts around the 512-key and 256-row tasks, the plain order (heads·tokens > heads·d),
// missing biases, a given (cached) image-side projection, and the tiny test model's widths.
// The results must also be bit for bit the same with 1 and 3 threads.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "ops/ops.h"

using namespace omniseg;

namespace {

int failures = 0;
constexpr double kTolerance = 2e-6;  // fp32 GEMMs and exp: rounding only (seen: ≤ 7.3e-7)

std::vector<float> randomVec(int64_t n, std::mt19937& rng, float scale) {
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

// y [M, N] = x [M, K] · W[N, K]ᵀ + b, in double
std::vector<double> project(const float* x, int64_t M, int64_t K, const float* W, const float* b, int64_t N) {
  std::vector<double> y(static_cast<size_t>(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double acc = b ? b[n] : 0.0;
      for (int64_t k = 0; k < K; ++k) acc += double(x[m * K + k]) * W[n * K + k];
      y[m * N + n] = acc;
    }
  return y;
}

// out [Nq, heads*d] = softmax(scale·q·kᵀ)·v per head, in double
std::vector<double> attend(const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
                           int64_t Nq, int64_t Nk, int64_t heads, int64_t d, double scale) {
  const int64_t I = heads * d;
  std::vector<double> out(static_cast<size_t>(Nq * I), 0.0), s(static_cast<size_t>(Nk));
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < Nq; ++i) {
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j < Nk; ++j) {
        double dot = 0;
        for (int64_t c = 0; c < d; ++c) dot += q[i * I + h * d + c] * k[j * I + h * d + c];
        mx = std::max(mx, s[j] = dot * scale);
      }
      for (int64_t j = 0; j < Nk; ++j) sum += (s[j] = std::exp(s[j] - mx));
      for (int64_t j = 0; j < Nk; ++j)
        for (int64_t c = 0; c < d; ++c) out[i * I + h * d + c] += s[j] / sum * v[j * I + h * d + c];
    }
  return out;
}

void check(const std::string& name, bool ok, const char* what, double value) {
  if (!ok) ++failures;
  std::printf("%s %-62s %s %.2e\n", ok ? "ok  " : "FAIL", name.c_str(), what, value);
}

struct Weights {
  std::vector<float> Wq, bq, Wk, bk, Wv, bv, Wo, bo;
  Weights(int64_t C, int64_t I, std::mt19937& rng)
      : Wq(randomVec(I * C, rng, 0.1f)), bq(randomVec(I, rng, 0.5f)), Wk(randomVec(I * C, rng, 0.1f)),
        bk(randomVec(I, rng, 0.5f)), Wv(randomVec(I * C, rng, 0.1f)), bv(randomVec(I, rng, 0.5f)),
        Wo(randomVec(C * I, rng, 0.1f)), bo(randomVec(C, rng, 0.5f)) {}
};

// Runs fn with a 1-thread and a 3-thread pool; the outputs must be identical.
template <typename Fn>
std::vector<float> runBoth(const std::string& name, Fn fn) {
  std::vector<float> out[2];
  const int threads[2] = {1, 3};
  for (int i = 0; i < 2; ++i) {
    ThreadPool pool(threads[i]);
    Arena arena;
    Ctx ctx{pool, arena};
    out[i] = fn(ctx);
  }
  const bool same = out[0].size() == out[1].size() &&
                    std::memcmp(out[0].data(), out[1].data(), out[0].size() * sizeof(float)) == 0;
  if (!same) {
    ++failures;
    std::printf("FAIL %-62s differs between 1 and 3 threads\n", name.c_str());
  }
  return out[1];
}

void testTokensAttendImage(int64_t N, int64_t C, int64_t heads, int64_t d, int64_t Nq, bool biases, std::mt19937& rng) {
  const int64_t I = heads * d;
  const Weights w(C, I, rng);
  const auto q = randomVec(Nq * I, rng, 1.f), k = randomVec(N * C, rng, 1.f), v = randomVec(N * C, rng, 1.f);
  const float* bk = biases ? w.bk.data() : nullptr;
  const float* bv = biases ? w.bv.data() : nullptr;
  const double scale = 1.0 / std::sqrt(double(d));
  std::vector<double> qd(q.begin(), q.end());
  const auto want = attend(qd, project(k.data(), N, C, w.Wk.data(), bk, I), project(v.data(), N, C, w.Wv.data(), bv, I),
                           Nq, N, heads, d, scale);
  const std::string name = "tokensAttendImage N=" + std::to_string(N) + " C=" + std::to_string(C) + " heads=" +
                           std::to_string(heads) + " d=" + std::to_string(d) + " Nq=" + std::to_string(Nq) +
                           (heads * Nq > I ? " (plain)" : "") + (biases ? "" : " no bias");
  const auto got = runBoth(name, [&](Ctx& ctx) {
    std::vector<float> out(static_cast<size_t>(Nq * I), NAN);
    ops::cpu::tokensAttendImage(ctx, q.data(), Nq, k.data(), v.data(), N, C, w.Wk.data(), bk, w.Wv.data(), bv,
                                heads, d, static_cast<float>(scale), out.data());
    return out;
  });
  const double err = nativetest::maxRelErr(got, want);
  check(name, err <= kTolerance && std::isfinite(err), "rel err", err);
}

// given: the image rows' Q is passed projected (the decoder's first-layer cache)
void testImageAttendsTokens(int64_t N, int64_t C, int64_t heads, int64_t d, int64_t Nt, bool biases, bool given,
                            std::mt19937& rng) {
  const int64_t I = heads * d;
  const Weights w(C, I, rng);
  const auto xq = randomVec(N * C, rng, 1.f), x0 = randomVec(N * C, rng, 1.f);
  const auto K = randomVec(Nt * I, rng, 1.f), V = randomVec(Nt * I, rng, 1.f);
  const float* bq = biases ? w.bq.data() : nullptr;
  const float* bo = biases ? w.bo.data() : nullptr;
  const double scale = 1.0 / std::sqrt(double(d));
  const auto Qd = project(xq.data(), N, C, w.Wq.data(), bq, I);
  std::vector<float> Q(Qd.begin(), Qd.end());  // the cached projection, as fp32
  const auto att = attend(given ? std::vector<double>(Q.begin(), Q.end()) : Qd, std::vector<double>(K.begin(), K.end()),
                          std::vector<double>(V.begin(), V.end()), N, Nt, heads, d, scale);
  std::vector<double> want(static_cast<size_t>(N * C));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      double acc = double(x0[n * C + c]) + (bo ? bo[c] : 0.0);
      for (int64_t i = 0; i < I; ++i) acc += att[n * I + i] * w.Wo[c * I + i];
      want[n * C + c] = acc;
    }
  const std::string name = "imageAttendsTokens N=" + std::to_string(N) + " C=" + std::to_string(C) + " heads=" +
                           std::to_string(heads) + " d=" + std::to_string(d) + " Nt=" + std::to_string(Nt) +
                           (heads * Nt > I ? " (plain)" : "") + (biases ? "" : " no bias") + (given ? " Q given" : "");
  const auto got = runBoth(name, [&](Ctx& ctx) {
    std::vector<float> x = x0;
    ops::cpu::imageAttendsTokens(ctx, given ? nullptr : xq.data(), given ? Q.data() : nullptr, N, C,
                                 given ? nullptr : w.Wq.data(), given ? nullptr : bq, K.data(), V.data(), Nt, heads,
                                 d, static_cast<float>(scale), w.Wo.data(), bo, x.data());
    return x;
  });
  const double err = nativetest::maxRelErr(got, want);
  check(name, err <= kTolerance && std::isfinite(err), "rel err", err);
}

}  // namespace

int main() {
  ops::initBlas();
  std::mt19937 rng(11);
  // SAM's decoder: sam-vit-* (C 256, 8 heads of 16) and the test fixtures' tiny model (C 32, 2 heads of 8)
  testTokensAttendImage(4096, 256, 8, 16, 7, true, rng);
  testImageAttendsTokens(4096, 256, 8, 16, 7, true, false, rng);
  testImageAttendsTokens(4096, 256, 8, 16, 7, true, true, rng);
  testTokensAttendImage(256, 32, 2, 8, 7, true, rng);
  testImageAttendsTokens(256, 32, 2, 8, 7, true, false, rng);
  // tails of the 512-key and 256-row tasks, a single row, and many tokens (16 = I / heads, the
  // last factored count)
  for (int64_t N : {1, 37, 511, 513, 1000}) {
    testTokensAttendImage(N, 64, 4, 16, 5, true, rng);
    testImageAttendsTokens(N, 64, 4, 16, 5, true, false, rng);
    testImageAttendsTokens(N, 64, 4, 16, 5, true, true, rng);
  }
  testTokensAttendImage(700, 64, 4, 16, 16, true, rng);
  testImageAttendsTokens(700, 64, 4, 16, 16, true, false, rng);
  // the plain order (heads·tokens > heads·d)
  testTokensAttendImage(700, 64, 4, 16, 17, true, rng);
  testImageAttendsTokens(700, 64, 4, 16, 17, true, false, rng);
  testImageAttendsTokens(700, 64, 4, 16, 17, true, true, rng);
  // no biases
  testTokensAttendImage(600, 64, 4, 16, 3, false, rng);
  testImageAttendsTokens(600, 64, 4, 16, 3, false, false, rng);
  std::printf("%s\n", failures ? "cross_attention_test: FAILED" : "cross_attention_test: all passed");
  return failures ? 1 : 0;
}
