// Parity test of the CUDA op backend against the CPU one: for every op in ops/op_list.inc, random
// inputs (fixed seed) go through ops::cpu::X on host buffers and through the dispatcher ops::X
// with a GPU Ctx (device arena + gpu::Stream); the results are downloaded and compared.
// One line per case: `op shape maxAbsErr maxRelErr bound PASS/FAIL`; exit code 1 on any failure.
//
// Bounds (stated per case below):
//  - GEMM-based ops (linear, matmul, convTranspose, attention, relPosAttention): the error is
//    taken relative to the magnitude of the result (maxAbsErr / max|ref|), bound 1e-5·sqrt(K)
//    with K the longest reduction (fp32 summation order differs between cuBLASLt and OpenBLAS).
//  - resizeBilinear: relative to the magnitude, bound 1e-6 (the CUDA kernel rounds every
//    operation like the CPU code and is expected to be bit-exact); resizeThreshold: exact.
//  - layerNorm: relative to the magnitude, bound 1e-5 (warp reductions sum in another order
//    than the CPU).
//  - gelu, relu, add: per-element relative error, bound 1e-6 (expected bit-exact too).
//  - layout ops (window partition, transpose, im2col, broadcast, threshold, maskBoundaries,
//    copy, transfers): exact.
//  - flashAttention (the half-precision fused kernel, ops/cuda/flash_attention.h): the reference
//    is the CPU path (fp32) on the same half-rounded q/k/v, so only the kernel's own rounding
//    (P rounded to the half type, exp2 approximation) counts. Relative to the magnitude, bound
//    5e-3 for fp16 and 2e-2 for bf16.
// `cuda_ops_test --bench` prints GPU timings of the heaviest ops instead; `--gemm-algos` times
// every cuBLASLt candidate for the encoder's linear layers (gemm_algos_bench.cc).
//  - normalizeRgb, resizeU8Pil (integer arithmetic): exact.
// The cases live in this file (GEMM-based, row-wise, layout), attention_ops_test.cc and
// image_ops_test.cc; test/gpu/op_test.h has what they share.
#include "test/gpu/op_test.h"

using namespace optest;

namespace {

// ---- GEMM-based ---------------------------------------------------------------------------------

void testLinear(Env& e, int64_t M, int64_t K, int64_t N, bool bias, Act act, bool accumulate,
                int64_t ldx = 0, int64_t ldy = 0, bool unalignedBias = false) {
  const int64_t lx = ldx ? ldx : K, ly = ldy ? ldy : N;
  auto x = randn(M * lx), W = randn(N * K, 1.f / std::sqrt(static_cast<float>(K)));
  auto b = randn(N + 1), y0 = randn(M * ly);
  const float* bh = bias ? b.data() + (unalignedBias ? 1 : 0) : nullptr;
  std::vector<float> ref = y0;
  ops::cpu::linear(e.cpu, x.data(), M, K, W.data(), bh, N, ref.data(), act, accumulate, ldx, ldy);
  float* dx = e.dev(x);
  float* dW = e.dev(W);
  float* db = e.dev(b);
  float* dy = e.dev(y0);
  ops::linear(e.gpu, dx, M, K, dW, bias ? db + (unalignedBias ? 1 : 0) : nullptr, N, dy, act,
              accumulate, ldx, ldy);
  auto got = e.host(dy, M * ly);
  std::string shape = dims({M, K, N}) + " " + actName(act) + (bias ? " bias" : "") +
                      (unalignedBias ? "(unaligned)" : "") + (accumulate ? " acc" : "") +
                      (ldx || ldy ? " ld" + std::to_string(lx) + "/" + std::to_string(ly) : "");
  report("linear", shape, ref.data(), got.data(), ref.size(), gemmBound(K), Norm::Magnitude);
  e.reset();
}

void testMatmul(Env& e, int64_t M, int64_t K, int64_t N, bool accumulate) {
  auto x = randn(M * K), B = randn(K * N), y0 = randn(M * N);
  std::vector<float> ref = y0;
  ops::cpu::matmul(e.cpu, x.data(), M, K, B.data(), N, ref.data(), accumulate);
  float* dy = e.dev(y0);
  ops::matmul(e.gpu, e.dev(x), M, K, e.dev(B), N, dy, accumulate);
  auto got = e.host(dy, M * N);
  report("matmul", dims({M, K, N}) + (accumulate ? " acc" : ""), ref.data(), got.data(), ref.size(),
         gemmBound(K), Norm::Magnitude);
  e.reset();
}

void testConvT(Env& e, int64_t H, int64_t W, int64_t Cin, int64_t Cout, bool bias, Act act) {
  auto x = randn(H * W * Cin), w = randn(Cin * Cout * 4, 1.f / std::sqrt(static_cast<float>(Cin)));
  auto b = randn(Cout);
  const int64_t n = 4 * H * W * Cout;
  std::vector<float> ref(n);
  ops::cpu::convTranspose(e.cpu, x.data(), H, W, Cin, 2, w.data(), bias ? b.data() : nullptr, Cout,
                          ref.data(), act);
  float* dy = e.devAlloc(n);
  ops::convTranspose(e.gpu, e.dev(x), H, W, Cin, 2, e.dev(w), bias ? e.dev(b) : nullptr, Cout, dy,
                     act);
  auto got = e.host(dy, n);
  report("convTranspose k2", dims({H, W, Cin, Cout}) + " " + actName(act) + (bias ? " bias" : ""),
         ref.data(), got.data(), n, gemmBound(Cin), Norm::Magnitude);
  e.reset();
}

// convTranspose (k = 2) + GELU, then y [P, 4HW] = proj [P, Cout] · itᵀ: the CUDA composition
// against the CPU's fused, chunked op.
void testConvTProject(Env& e, int64_t H, int64_t W, int64_t Cin, int64_t Cout, int64_t P, bool bias) {
  auto x = randn(H * W * Cin), w = randn(Cin * Cout * 4, 1.f / std::sqrt(static_cast<float>(Cin)));
  auto b = randn(Cout), proj = randn(P * Cout, 1.f / std::sqrt(static_cast<float>(Cout)));
  const int64_t n = P * 4 * H * W;
  std::vector<float> ref(n);
  ops::cpu::convTransposeProject(e.cpu, x.data(), H, W, Cin, 2, w.data(), bias ? b.data() : nullptr, Cout,
                                 Act::Gelu, proj.data(), P, ref.data());
  float* dy = e.devAlloc(n);
  ops::convTransposeProject(e.gpu, e.dev(x), H, W, Cin, 2, e.dev(w), bias ? e.dev(b) : nullptr, Cout,
                            Act::Gelu, e.dev(proj), P, dy);
  auto got = e.host(dy, n);
  report("convTransposeProject", dims({H, W, Cin, Cout, P}) + (bias ? " bias" : ""), ref.data(), got.data(),
         n, gemmBound(Cin) + gemmBound(Cout), Norm::Magnitude);
  e.reset();
}

// ---- Row-wise / elementwise --------------------------------------------------------------------

void testLayerNorm(Env& e, int64_t rows, int64_t C, bool alias) {
  auto x = randn(rows * C, 2.f), g = randn(C), b = randn(C);
  for (auto& v : x) v += 0.5f;  // non-zero mean
  std::vector<float> ref(rows * C);
  ops::cpu::layerNorm(e.cpu, x.data(), rows, C, g.data(), b.data(), 1e-6f, ref.data());
  float* dx = e.dev(x);
  float* dy = alias ? dx : e.devAlloc(rows * C);
  ops::layerNorm(e.gpu, dx, rows, C, e.dev(g), e.dev(b), 1e-6f, dy);
  auto got = e.host(dy, rows * C);
  report("layerNorm", dims({rows, C}) + (alias ? " y==x" : ""), ref.data(), got.data(), ref.size(),
         1e-5, Norm::Magnitude);
  e.reset();
}

void testActivation(Env& e, Act act, int64_t n) {
  auto x = randn(n, 3.f);
  std::vector<float> ref = x;
  if (act == Act::Gelu)
    ops::cpu::gelu(e.cpu, ref.data(), n);
  else
    ops::cpu::relu(e.cpu, ref.data(), n);
  float* dx = e.dev(x);
  if (act == Act::Gelu)
    ops::gelu(e.gpu, dx, n);
  else
    ops::relu(e.gpu, dx, n);
  auto got = e.host(dx, n);
  report(actName(act), std::to_string(n), ref.data(), got.data(), n, 1e-6, Norm::Element);
  e.reset();
}

// actHalf on the device over `bits` (half values), placed `offset` elements past an aligned
// start; the results as floats.
std::vector<float> actHalfOnDevice(Env& e, Precision p, const std::vector<uint16_t>& bits, int64_t offset, Act act) {
  const size_t n = bits.size();
  std::vector<uint16_t> h(n + offset);
  std::copy(bits.begin(), bits.end(), h.begin() + offset);
  auto* d = static_cast<uint16_t*>(e.devArena.bytes(h.size() * 2));
  ops::upload(e.gpu, h.data(), h.size() * 2, d);
  withPrecision(e, p, [&] { ops::cuda::actHalf(e.gpu, d + offset, static_cast<int64_t>(n), act); });
  ops::download(e.gpu, d, h.size() * 2, h.data());
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = fromHalfBits(h[offset + i], p);
  return out;
}

// The in-place activation of a half-precision hidden layer (ops/cuda/convert.cu: 16-byte vectors
// when n % 8 == 0 and y is 16-byte aligned, one value at a time otherwise) against the CPU's
// activation of the same rounded values, rounded again. ReLU: exact. GELU (CUDA's erff there, the
// CPU's own erf here; either erf is within ~1.5e-7 of the true one): every output within one ulp
// of the half type at |ref| (2^-7·|ref| bf16, 2^-10·|ref| fp16) plus 2e-6 (where 1 + erf cancels,
// x ≲ -4), and at most 3 % (bf16) / 8 % (fp16) of the outputs differing at all (measured on an
// H100: 1.5 % / 4.9 %; tanh-form GELU or a wrong constant flips far more). offset: elements past
// an aligned start (1: the unaligned path).
void testActHalf(Env& e, Precision p, Act act, int64_t n, int64_t offset) {
  const auto bits = toHalfBits(randn(n, 3.f), p);
  std::vector<float> ref(n);
  for (int64_t i = 0; i < n; ++i) ref[i] = fromHalfBits(bits[i], p);
  if (act == Act::Gelu) ops::cpu::gelu(e.cpu, ref.data(), n);
  if (act == Act::Relu) ops::cpu::relu(e.cpu, ref.data(), n);
  for (auto& v : ref) v = fromHalfBits(toHalfBits(v, p), p);
  const auto got = actHalfOnDevice(e, p, bits, offset, act);
  if (act != Act::Gelu) {
    report("actHalf", std::string(precisionName(p)) + " " + actName(act) + " " + std::to_string(n) +
                          (offset ? " unaligned" : ""),
           ref.data(), got.data(), n, 0, Norm::Exact);
    e.reset();
    return;
  }
  const double ulp = p == Precision::Bf16 ? 1.0 / 128 : 1.0 / 1024, maxShare = p == Precision::Bf16 ? 0.03 : 0.08;
  size_t differ = 0, outside = 0;
  double maxAbs = 0, worst = 0;  // worst: |got - ref| / (ulp·|ref| + 2e-6)
  for (int64_t i = 0; i < n; ++i) {
    const double d = std::fabs(static_cast<double>(got[i]) - ref[i]);
    differ += d != 0 || std::isnan(got[i]) != std::isnan(ref[i]);
    const double r = d / (ulp * std::fabs(static_cast<double>(ref[i])) + 2e-6);
    outside += !(r <= 1.0);
    maxAbs = std::max(maxAbs, d);
    worst = std::max(worst, r);
  }
  const double share = static_cast<double>(differ) / static_cast<double>(n);
  const bool pass = outside == 0 && share <= maxShare;
  if (!pass) ++failures;
  const std::string shape = std::string(precisionName(p)) + " gelu " + std::to_string(n) + (offset ? " unaligned" : "") +
                            " (" + std::to_string(differ) + " differ)";
  std::printf("%-18s %-44s %.3e %.3e %.1e %s\n", "actHalf", shape.c_str(), maxAbs, worst, 1.0, pass ? "PASS" : "FAIL");
  std::fflush(stdout);
  e.reset();
}

// actHalf's two paths on the same values: 16-byte vectors (aligned) and one at a time (one
// element past an aligned start): exact.
void testActHalfPaths(Env& e, Precision p, Act act, int64_t n) {
  const auto bits = toHalfBits(randn(n, 3.f), p);
  const auto vec = actHalfOnDevice(e, p, bits, 0, act), one = actHalfOnDevice(e, p, bits, 1, act);
  report("actHalf paths", std::string(precisionName(p)) + " " + actName(act) + " " + std::to_string(n) +
                              " vector vs scalar", vec.data(), one.data(), n, 0, Norm::Exact);
  e.reset();
}

void testAdd(Env& e, int64_t n, bool alias) {
  auto a = randn(n), b = randn(n);
  std::vector<float> ref(n);
  ops::cpu::add(e.cpu, a.data(), b.data(), n, ref.data());
  float* da = e.dev(a);
  float* db = e.dev(b);
  float* dy = alias ? da : e.devAlloc(n);
  ops::add(e.gpu, da, db, n, dy);
  auto got = e.host(dy, n);
  report("add", std::to_string(n) + (alias ? " y==a" : ""), ref.data(), got.data(), n, 1e-6,
         Norm::Element);
  e.reset();
}

// ---- Layout --------------------------------------------------------------------------------------

void testPatchify(Env& e, int64_t C, int64_t H, int64_t W, int64_t k) {
  auto x = randn(C * H * W);
  const size_t n = (H / k) * (W / k) * C * k * k;
  std::vector<float> ref(n);
  ops::cpu::patchify(e.cpu, x.data(), C, H, W, k, ref.data());
  float* d = e.devAlloc(n);
  ops::patchify(e.gpu, e.dev(x), C, H, W, k, d);
  auto got = e.host(d, n);
  report("patchify", dims({C, H, W}) + " k" + std::to_string(k), ref.data(), got.data(), n, 0,
         Norm::Exact);
  e.reset();
}

void testIm2col(Env& e, int64_t H, int64_t W, int64_t C) {
  auto x = randn(H * W * C);
  const size_t n = H * W * C * 9;
  std::vector<float> ref(n);
  ops::cpu::im2col3x3(e.cpu, x.data(), H, W, C, ref.data());
  float* d = e.devAlloc(n);
  ops::im2col3x3(e.gpu, e.dev(x), H, W, C, d);
  auto got = e.host(d, n);
  report("im2col3x3", dims({H, W, C}), ref.data(), got.data(), n, 0, Norm::Exact);
  e.reset();
}

void testWindows(Env& e, int64_t E, int64_t D, int64_t ws, bool fill) {
  const int64_t nw = (E + ws - 1) / ws, n = nw * nw * ws * ws * D;
  auto x = randn(E * E * D), f = randn(D);
  std::vector<float> ref(n);
  ops::cpu::windowPartition(e.cpu, x.data(), E, D, ws, fill ? f.data() : nullptr, ref.data());
  float* dw = e.devAlloc(n);
  ops::windowPartition(e.gpu, e.dev(x), E, D, ws, fill ? e.dev(f) : nullptr, dw);
  auto got = e.host(dw, n);
  const std::string shape = dims({E, E, D}) + " ws" + std::to_string(ws) + (fill ? " fill" : "") +
                            (E % ws ? " padded" : "");
  report("windowPartition", shape, ref.data(), got.data(), n, 0, Norm::Exact);
  // Unpartition of a random window tensor (padding rows dropped).
  auto win = randn(n);
  std::vector<float> refx(E * E * D);
  ops::cpu::windowUnpartition(e.cpu, win.data(), E, D, ws, refx.data());
  float* dx = e.devAlloc(E * E * D);
  ops::windowUnpartition(e.gpu, e.dev(win), E, D, ws, dx);
  auto gotx = e.host(dx, E * E * D);
  report("windowUnpartition", shape, refx.data(), gotx.data(), refx.size(), 0, Norm::Exact);
  e.reset();
}

void testTranspose(Env& e, int64_t rows, int64_t cols) {
  auto x = randn(rows * cols);
  std::vector<float> ref(rows * cols);
  ops::cpu::transpose(e.cpu, x.data(), rows, cols, ref.data());
  float* d = e.devAlloc(rows * cols);
  ops::transpose(e.gpu, e.dev(x), rows, cols, d);
  auto got = e.host(d, rows * cols);
  report("transpose", dims({rows, cols}), ref.data(), got.data(), ref.size(), 0, Norm::Exact);
  e.reset();
}

void testBroadcast(Env& e, int64_t rows, int64_t C) {
  auto r = randn(C);
  std::vector<float> ref(rows * C);
  ops::cpu::broadcastRows(e.cpu, r.data(), rows, C, ref.data());
  float* d = e.devAlloc(rows * C);
  ops::broadcastRows(e.gpu, e.dev(r), rows, C, d);
  auto got = e.host(d, rows * C);
  report("broadcastRows", dims({rows, C}), ref.data(), got.data(), ref.size(), 0, Norm::Exact);
  e.reset();
}

void testThreshold(Env& e, int64_t n, float t) {
  auto x = randn(n);
  x[0] = t;  // the boundary: not above
  std::vector<uint8_t> ref(n), got(n);
  ops::cpu::threshold(e.cpu, x.data(), n, t, ref.data());
  auto* d = static_cast<uint8_t*>(e.devArena.bytes(n));
  ops::threshold(e.gpu, e.dev(x), n, t, d);
  ops::download(e.gpu, d, n, got.data());
  reportBytes("threshold", std::to_string(n) + " t=" + std::to_string(t), ref.data(), got.data(), n);
  e.reset();
}

// Masks [planes, H, W]: noise (a boundary at every other pixel or so) or discs (few, long runs);
// the boundaries and each plane's end are compared exactly with the CPU's.
enum class Fill { Discs, Noise, Zeros, Ones };
const char* const kFillNames[] = {" discs", " noise", " zeros", " ones"};
void testMaskBoundaries(Env& e, int64_t planes, int64_t H, int64_t W, Fill fill) {
  const int64_t n = planes * H * W;
  std::vector<uint8_t> m(n);
  auto v = randn(n);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        const int64_t i = (p * H + y) * W + x;
        const double dx = x - W * (0.3 + 0.2 * p), dy = y - H * 0.5;
        m[i] = fill == Fill::Noise ? v[i] > 0
               : fill == Fill::Discs ? dx * dx + dy * dy < 0.1 * H * W
                                     : fill == Fill::Ones;
      }
  std::vector<uint32_t> refEnds(planes), refPos(n), ends(planes), pos(n);
  ops::cpu::maskBoundaries(e.cpu, m.data(), planes, H, W, refEnds.data(), refPos.data());
  auto* dm = static_cast<uint8_t*>(e.devArena.bytes(n));
  ops::upload(e.gpu, m.data(), n, dm);
  auto* dEnds = static_cast<uint32_t*>(e.devArena.bytes(planes * sizeof(uint32_t)));
  auto* dPos = static_cast<uint32_t*>(e.devArena.bytes(n * sizeof(uint32_t)));
  ops::maskBoundaries(e.gpu, dm, planes, H, W, dEnds, dPos);
  ops::download(e.gpu, dEnds, planes * sizeof(uint32_t), ends.data());
  const size_t total = planes ? refEnds.back() : 0;
  ops::download(e.gpu, dPos, total * sizeof(uint32_t), pos.data());
  const bool same = ends == refEnds && std::equal(refPos.begin(), refPos.begin() + total, pos.begin());
  if (!same) ++failures;
  std::printf("%-18s %-44s %-9zu %-9s %-7s %s\n", "maskBoundaries",
              (dims({planes, H, W}) + kFillNames[static_cast<int>(fill)]).c_str(),
              total, "-", "exact",
              same ? "PASS" : "FAIL");
  e.reset();
}

void testCopy(Env& e, int64_t n) {
  auto x = randn(n);
  float* d = e.devAlloc(n);
  ops::copy(e.gpu, e.dev(x), n, d);
  auto got = e.host(d, n);
  report("copy+transfers", std::to_string(n), x.data(), got.data(), n, 0, Norm::Exact);
  e.reset();
}

// Weights passed as host pointers resolve to their device copies through a WeightMirror.
void testWeightMirror(Env& e) {
  const int64_t M = 37, K = 96, N = 130;
  // One "checkpoint" buffer holding W and b; the ops get pointers into it (W at an offset, as
  // a tensor inside a mapped file would be).
  auto ckpt = randn(8 + N * K + N, 0.1f);
  const float* W = ckpt.data() + 8;
  const float* b = W + N * K;
  gpu::WeightMirror mirror;
  mirror.add(ckpt.data(), ckpt.size());
  gpu::Stream ms(&mirror);
  Arena arena(gpu::deviceAllocator());
  Ctx mctx{e.pool, arena, &ms};
  auto x = randn(M * K);
  std::vector<float> ref(M * N);
  ops::cpu::linear(e.cpu, x.data(), M, K, W, b, N, ref.data(), Act::Gelu);
  float* dx = arena.floats(M * K);
  ops::upload(mctx, x.data(), x.size() * sizeof(float), dx);
  float* dy = arena.floats(M * N);
  ops::linear(mctx, dx, M, K, W, b, N, dy, Act::Gelu);
  std::vector<float> got(M * N);
  ops::download(mctx, dy, got.size() * sizeof(float), got.data());
  report("linear(mirror)", dims({M, K, N}) + " gelu bias host-W", ref.data(), got.data(), ref.size(),
         gemmBound(K), Norm::Magnitude);
  e.reset();
}

// A precondition failure throws omniseg::Error (never aborts).
void testChecks(Env& e) {
  bool threw = false;
  try {
    ops::linear(e.gpu, e.devAlloc(16), 2, 4, e.devAlloc(16), nullptr, 4, e.devAlloc(16), Act::None,
                false, 2 /* ldx < K */);
  } catch (const Error&) {
    threw = true;
  }
  if (!threw) ++failures;
  std::printf("%-18s %-44s %.3e %.3e %.1e %s\n", "preconditions", "linear ldx<K throws", 0.0, 0.0,
              0.0, threw ? "PASS" : "FAIL");
  // A failed API call that is not sticky (here a copy of an invalid direction) throws, and leaves
  // no error behind for the next launch check on this thread to report.
  threw = false;
  try {
    const auto badKind = static_cast<cudaMemcpyKind>(99);
    OMNISEG_CUDA_CHECK(cudaMemcpyAsync(e.devAlloc(4), e.devAlloc(4), 16, badKind, e.stream.get()));
  } catch (const Error&) {
    threw = true;
  }
  bool cleared = true;
  try {
    gpu::checkLaunch("the launch check after it");
  } catch (const Error&) {
    cleared = false;
  }
  if (!threw || !cleared) ++failures;
  std::printf("%-18s %-44s %.3e %.3e %.1e %s\n", "errors", "a failed call leaves no error behind", 0.0,
              0.0, 0.0, threw && cleared ? "PASS" : "FAIL");
  e.reset();
}

void benchmarks(Env& e) {
  const int64_t T = 4096, C = 768;
  float* x = e.dev(randn(T * 3 * C));
  float* W = e.dev(randn(3 * C * 4 * C, 0.02f));
  float* b = e.dev(randn(4 * C));
  float* y = e.devAlloc(T * 4 * C);
  bench(e, "linear 4096x768x2304 bias", [&] { ops::linear(e.gpu, x, T, C, W, b, 3 * C, y); });
  bench(e, "linear 4096x768x3072 bias gelu",
        [&] { ops::linear(e.gpu, x, T, C, W, b, 4 * C, y, Act::Gelu); });
  bench(e, "layerNorm 4096x768", [&] { ops::layerNorm(e.gpu, x, T, C, b, b, 1e-6f, y); });
  bench(e, "gelu 4096x3072", [&] { ops::gelu(e.gpu, y, T * 4 * C); });
  for (Precision p : {Precision::Bf16, Precision::Fp16})
    withPrecision(e, p, [&] {
      // a hidden layer's values (randn · 3 in the half type; each run applies the activation again)
      const auto hb = toHalfBits(randn(T * 4 * C, 3.f), p);
      ops::upload(e.gpu, hb.data(), hb.size() * 2, y);
      bench(e, (std::string("actHalf 4096x3072 gelu ") + precisionName(p)).c_str(),
            [&] { ops::cuda::actHalf(e.gpu, y, T * 4 * C, Act::Gelu); });
      bench(e, (std::string("actHalf 4096x3072 relu (memory floor) ") + precisionName(p)).c_str(),
            [&] { ops::cuda::actHalf(e.gpu, y, T * 4 * C, Act::Relu); });
    });
  bench(e, "im2col3x3 64x64x256", [&] { ops::im2col3x3(e.gpu, x, 64, 64, 256, y); });
  bench(e, "patchify 3x1024x1024 k16", [&] { ops::patchify(e.gpu, x, 3, 1024, 1024, 16, y); });
  e.reset();
  // the RLE of three 1080p masks (discs: a few thousand boundaries)
  const int64_t P = 3, mh = 1080, mw = 1920;
  std::vector<uint8_t> m(P * mh * mw);
  for (int64_t i = 0; i < P * mh * mw; ++i) {
    const int64_t yy = (i / mw) % mh - mh / 2, xx = i % mw - mw / 2;
    m[i] = xx * xx + yy * yy < 400 * 400;
  }
  auto* dm = static_cast<uint8_t*>(e.devArena.bytes(m.size()));
  ops::upload(e.gpu, m.data(), m.size(), dm);
  auto* ends = static_cast<uint32_t*>(e.devArena.bytes(P * sizeof(uint32_t)));
  auto* pos = static_cast<uint32_t*>(e.devArena.bytes(m.size() * sizeof(uint32_t)));
  bench(e, "maskBoundaries 3x1080x1920", [&] { ops::maskBoundaries(e.gpu, dm, P, mh, mw, ends, pos); });
  e.reset();
}

// Host ↔ device copies through ops::upload / ops::download (what a request pays around its GPU
// work) from pageable memory, as the addon's buffers are now, and from pinned memory
// (cudaHostAlloc), the case for pinned staging buffers (issue #7): wall time per copy, host
// side, 20 copies after 3 warm-ups.
void transferBenchmarks(Env& e) {
  const struct { const char* what; size_t bytes; } sizes[] = {
      {"1080p RGB image", 1920ull * 1080 * 3},
      {"3 low-res masks 256x256 f32", 3ull * 256 * 256 * 4},
      {"3 masks 1080p u8", 3ull * 1920 * 1080},
      {"image embedding 256x64x64 f32", 256ull * 64 * 64 * 4},
  };
  for (const auto& s : sizes) {
    void* dev = e.devArena.bytes(s.bytes);
    std::vector<uint8_t> pageable(s.bytes, 1);
    void* pinned = nullptr;
    OMNISEG_CUDA_CHECK(cudaHostAlloc(&pinned, s.bytes, cudaHostAllocDefault));
    std::memset(pinned, 1, s.bytes);
    for (int kind = 0; kind < 2; ++kind) {
      void* host = kind ? pinned : pageable.data();
      for (int dir = 0; dir < 2; ++dir) {
        const auto copy = [&] {
          if (dir == 0)
            ops::upload(e.gpu, host, s.bytes, dev);
          else
            ops::download(e.gpu, dev, s.bytes, host);
        };
        for (int i = 0; i < 3; ++i) copy();
        e.stream.synchronize();
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < 20; ++i) copy();
        e.stream.synchronize();
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 20;
        std::printf("bench %-48s %8.3f ms %6.1f GB/s\n",
                    (std::string(dir ? "download " : "upload ") + s.what + (kind ? " pinned" : " pageable")).c_str(),
                    ms, s.bytes / ms / 1e6);
      }
    }
    OMNISEG_CUDA_CHECK(cudaFreeHost(pinned));
  }
  e.reset();
}

}  // namespace

int main(int argc, char** argv) {
  const bool benchOnly = argc > 1 && std::strcmp(argv[1], "--bench") == 0;
  const bool gemmAlgos = argc > 1 && std::strcmp(argv[1], "--gemm-algos") == 0;
  const gpu::BackendInfo info = gpu::probe();
  if (!info.available) {
    std::printf("no CUDA device: %s\n", info.reason.c_str());
    return 1;
  }
  std::printf("device %s (sm_%d%d)\n", info.devices[0].name.c_str(), info.devices[0].computeMajor,
              info.devices[0].computeMinor);
  std::printf("%-18s %-44s %-9s %-9s %-7s %s\n", "op", "shape", "maxAbsErr", "maxRelErr", "bound",
              "result");
  try {
    Env e;
    if (gemmAlgos) {
      gemmAlgoBenchmarks(e);
      return 0;
    }
    if (benchOnly) {
      benchmarks(e);
      attentionBenchmarks(e);
      blockBenchmarks(e);
      transferBenchmarks(e);
      return 0;
    }
    // linear: SAM shapes, odd sizes, every Act, accumulate, strides, unaligned bias.
    testLinear(e, 4096, 768, 2304, true, Act::None, false);
    testLinear(e, 4096, 768, 3072, true, Act::Gelu, false);
    testLinear(e, 4096, 3072, 768, true, Act::None, true);
    testLinear(e, 7, 256, 2048, true, Act::Relu, false);
    testLinear(e, 33, 17, 65, true, Act::Relu, false);
    testLinear(e, 33, 17, 65, false, Act::Relu, true);
    testLinear(e, 5, 31, 9, false, Act::Gelu, false);
    testLinear(e, 1, 256, 32, true, Act::None, false);
    // the small-M kernels: block per column (K ≥ 64, up to 16 rows, strided), thread per column
    testLinear(e, 12, 2048, 256, true, Act::None, true);
    testLinear(e, 16, 256, 300, true, Act::Relu, false, 300, 310);
    testLinear(e, 7, 100, 33, true, Act::Gelu, false);
    testLinear(e, 3, 32, 65536, false, Act::None, false);
    testLinear(e, 100, 64, 48, true, Act::Gelu, true, 70, 53);
    testLinear(e, 100, 64, 48, true, Act::Relu, false, 192, 0);
    testLinear(e, 61, 40, 24, true, Act::None, false, 0, 0, true);
    testLinear(e, 61, 40, 24, true, Act::Relu, true, 43, 29, true);
    // matmul
    testMatmul(e, 4096, 32, 256, false);
    testMatmul(e, 13, 7, 9, false);
    testMatmul(e, 13, 7, 9, true);
    testMatmul(e, 3, 256, 4096, true);
    // convTranspose, k = 2 (SAM's upscaling; other k in clipseg_ops_test.cc)
    testConvT(e, 64, 64, 256, 64, true, Act::Gelu);
    testConvT(e, 128, 128, 64, 32, true, Act::Gelu);
    testConvT(e, 3, 5, 7, 3, false, Act::Relu);
    testConvT(e, 4, 4, 16, 5, true, Act::None);
    testConvTProject(e, 128, 128, 64, 32, 3, true);  // SAM's last upscaling + hypernetwork products
    testConvTProject(e, 128, 128, 64, 32, 1, false);
    testConvTProject(e, 5, 3, 7, 6, 4, true);
    attentionTests(e);
    blockTests(e);
    // layerNorm
    testLayerNorm(e, 4096, 768, false);
    testLayerNorm(e, 4096, 256, true);
    testLayerNorm(e, 5, 37, false);
    testLayerNorm(e, 9, 3, true);
    testLayerNorm(e, 1024, 1280, false);
    // elementwise
    testActivation(e, Act::Gelu, (1 << 20) + 3);
    testActivation(e, Act::Gelu, 5);
    testActivation(e, Act::Relu, (1 << 20) + 3);
    for (Precision p : {Precision::Bf16, Precision::Fp16}) {
      testActHalf(e, p, Act::Gelu, 4096 * 3072, 0);  // ViT-B's MLP hidden layer
      testActHalf(e, p, Act::Gelu, 8 * 1000 + 5, 0);
      testActHalf(e, p, Act::Gelu, 8 * 1000, 1);
      testActHalf(e, p, Act::Relu, 8 * 1000, 0);
      testActHalfPaths(e, p, Act::Gelu, 8 * 4096);
    }
    testAdd(e, (1 << 20) + 3, false);
    testAdd(e, 7, true);
    imageTests(e);
    clipSegTests(e);
    // layout
    testPatchify(e, 3, 1024, 1024, 16);
    testPatchify(e, 3, 33, 35, 4);
    testIm2col(e, 64, 64, 256);  // SAM's neck
    testIm2col(e, 64, 64, 32);
    testIm2col(e, 1, 9, 5);
    testIm2col(e, 5, 7, 3);
    testWindows(e, 64, 768, 14, true);
    testWindows(e, 64, 96, 14, false);
    testWindows(e, 14, 32, 14, false);
    testWindows(e, 9, 5, 4, true);
    testTranspose(e, 4096, 256);
    testTranspose(e, 33, 65);
    testTranspose(e, 1, 7);
    testBroadcast(e, 4096, 256);
    testBroadcast(e, 3, 5);
    testThreshold(e, (1 << 20) + 1, 0.f);
    testThreshold(e, 13, 0.5f);
    testMaskBoundaries(e, 3, 1080, 1920, Fill::Discs);
    testMaskBoundaries(e, 2, 480, 641, Fill::Noise);
    testMaskBoundaries(e, 1, 33, 1, Fill::Noise);
    testMaskBoundaries(e, 4, 1, 70, Fill::Noise);
    testMaskBoundaries(e, 2, 65, 33, Fill::Zeros);
    testMaskBoundaries(e, 2, 65, 33, Fill::Ones);
    testMaskBoundaries(e, 2, 0, 5, Fill::Ones);  // empty planes: ends only
    testMaskBoundaries(e, 0, 4, 4, Fill::Ones);
    testMaskBoundaries(e, 1, 31, 33, Fill::Discs);
    testCopy(e, 12345);
    testWeightMirror(e);
    testChecks(e);
  } catch (const std::exception& ex) {
    std::printf("exception: %s\n", ex.what());
    return 1;
  }
  std::printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
