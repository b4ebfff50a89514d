// Parity test of the CUDA op backend against the CPU one: for every op in ops/op_list.inc, random
// inputs (fixed seed) go through ops::cpu::X on host buffers and through the dispatcher ops::X
// with a GPU Ctx (device arena + gpu::Stream); the results are downloaded and compared.
// One line per case: `op shape maxAbsErr maxRelErr bound PASS/FAIL`; exit code 1 on any failure.
//
// Bounds (stated per case below):
//  - GEMM-based ops (linear, matmul, convTranspose2x2, attention, relPosAttention): the error is
//    taken relative to the magnitude of the result (maxAbsErr / max|ref|), bound 1e-5·sqrt(K)
//    with K the longest reduction (fp32 summation order differs between cuBLASLt and OpenBLAS).
//  - resizeBilinear: relative to the magnitude, bound 1e-6 (the CUDA kernel rounds every
//    operation like the CPU code and is expected to be bit-exact).
//  - layerNorm: relative to the magnitude, bound 1e-5 (warp reductions sum in another order
//    than the CPU).
//  - gelu, relu, add: per-element relative error, bound 1e-6 (expected bit-exact too).
//  - layout ops (window partition, transpose, im2col, broadcast, threshold, copy, transfers):
//    exact.
//  - flashAttention (the half-precision fused kernel, ops/cuda/flash_attention.h): the reference
//    is the CPU path (fp32) on the same half-rounded q/k/v, so only the kernel's own rounding
//    (P rounded to the half type, exp2 approximation) counts. Relative to the magnitude, bound
//    5e-3 for fp16 and 2e-2 for bf16.
// `cuda_ops_test --bench` prints GPU timings of the heaviest ops instead.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "core/arena.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "gpu/check.h"
#include "gpu/device.h"
#include "gpu/stream.h"
#include "ops/cuda/flash_attention.h"
#include "ops/ops.h"

using namespace omniseg;
using ops::Act;

namespace {

int failures = 0;
std::mt19937 rng(12345);

std::vector<float> randn(size_t n, float scale = 1.f) {
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

enum class Norm { Magnitude, Element, Exact };

// Compares got against ref over n values and prints the case's line.
void report(const std::string& op, const std::string& shape, const float* ref, const float* got,
            size_t n, double bound, Norm norm) {
  double maxAbs = 0, maxRef = 0, maxRel = 0;
  bool nan = false;
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(ref[i]) != std::isnan(got[i])) nan = true;
    if (std::isnan(ref[i]) || std::isnan(got[i])) continue;
    const double d = std::fabs(static_cast<double>(ref[i]) - got[i]);
    maxAbs = std::max(maxAbs, d);
    maxRef = std::max(maxRef, std::fabs(static_cast<double>(ref[i])));
    if (norm == Norm::Element && d > 0)
      maxRel = std::max(maxRel, d / std::max(std::fabs(static_cast<double>(ref[i])), 1e-30));
  }
  if (norm != Norm::Element) maxRel = maxAbs > 0 ? maxAbs / std::max(maxRef, 1e-30) : 0.0;
  const bool pass = !nan && (norm == Norm::Exact ? maxAbs == 0 : maxRel <= bound);
  if (!pass) ++failures;
  std::printf("%-18s %-44s %.3e %.3e %.1e %s%s\n", op.c_str(), shape.c_str(), maxAbs, maxRel, bound,
              pass ? "PASS" : "FAIL", nan ? " (NaN mismatch)" : "");
  std::fflush(stdout);
}

void reportBytes(const std::string& op, const std::string& shape, const uint8_t* ref,
                 const uint8_t* got, size_t n) {
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) bad += ref[i] != got[i];
  if (bad) ++failures;
  std::printf("%-18s %-44s %.3e %.3e %.1e %s\n", op.c_str(), shape.c_str(), bad ? 1.0 : 0.0,
              bad ? 1.0 : 0.0, 0.0, bad ? "FAIL" : "PASS");
  std::fflush(stdout);
}

double gemmBound(int64_t K) { return 1e-5 * std::sqrt(static_cast<double>(K)); }

std::string dims(std::initializer_list<int64_t> v) {
  std::string s;
  for (int64_t x : v) s += (s.empty() ? "" : "x") + std::to_string(x);
  return s;
}

// The two backends' contexts and device buffer helpers.
struct Env {
  ThreadPool pool{static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))};
  Arena hostArena;
  Arena devArena{gpu::deviceAllocator()};
  gpu::Stream stream;
  Ctx cpu{pool, hostArena, nullptr};
  Ctx gpu{pool, devArena, &stream};

  // Device copy of a host vector (arena memory, released by reset()).
  float* dev(const std::vector<float>& h) {
    float* d = devArena.floats(h.size());
    ops::upload(gpu, h.data(), h.size() * sizeof(float), d);
    return d;
  }
  float* devAlloc(size_t n) { return devArena.floats(n); }
  std::vector<float> host(const float* d, size_t n) {
    std::vector<float> h(n);
    ops::download(gpu, d, n * sizeof(float), h.data());
    return h;
  }
  void reset() {
    stream.synchronize();
    devArena.reset();
    hostArena.reset();
  }
};

const char* actName(Act a) { return a == Act::Gelu ? "gelu" : a == Act::Relu ? "relu" : "none"; }

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
  ops::cpu::convTranspose2x2(e.cpu, x.data(), H, W, Cin, w.data(), bias ? b.data() : nullptr, Cout,
                             ref.data(), act);
  float* dy = e.devAlloc(n);
  ops::convTranspose2x2(e.gpu, e.dev(x), H, W, Cin, e.dev(w), bias ? e.dev(b) : nullptr, Cout, dy,
                        act);
  auto got = e.host(dy, n);
  report("convTranspose2x2", dims({H, W, Cin, Cout}) + " " + actName(act) + (bias ? " bias" : ""),
         ref.data(), got.data(), n, gemmBound(Cin), Norm::Magnitude);
  e.reset();
}

void testAttention(Env& e, int64_t Nq, int64_t Nk, int64_t heads, int64_t d, int64_t pad) {
  const int64_t C = heads * d, ldq = C + pad, ldk = C + 2 * pad, ldv = C + 3 * pad;
  auto q = randn(Nq * ldq), k = randn(Nk * ldk), v = randn(Nk * ldv);
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  std::vector<float> ref(Nq * C);
  ops::cpu::attention(e.cpu, q.data(), ldq, k.data(), ldk, v.data(), ldv, Nq, Nk, heads, d, scale,
                      ref.data());
  float* dout = e.devAlloc(Nq * C);
  ops::attention(e.gpu, e.dev(q), ldq, e.dev(k), ldk, e.dev(v), ldv, Nq, Nk, heads, d, scale, dout);
  auto got = e.host(dout, Nq * C);
  report("attention",
         "Nq" + std::to_string(Nq) + " Nk" + std::to_string(Nk) + " h" + std::to_string(heads) +
             " d" + std::to_string(d) + (pad ? " strided" : ""),
         ref.data(), got.data(), ref.size(), gemmBound(std::max(d, Nk)), Norm::Magnitude);
  e.reset();
}

void testRelPos(Env& e, int64_t B, int64_t h, int64_t w, int64_t heads, int64_t d) {
  const int64_t T = h * w, C = heads * d;
  auto qkv = randn(B * T * 3 * C), rh = randn((2 * h - 1) * d, 0.3f), rw = randn((2 * w - 1) * d, 0.3f);
  std::vector<float> ref(B * T * C);
  ops::cpu::relPosAttention(e.cpu, qkv.data(), B, h, w, heads, d, rh.data(), rw.data(), ref.data());
  float* dout = e.devAlloc(B * T * C);
  ops::relPosAttention(e.gpu, e.dev(qkv), B, h, w, heads, d, e.dev(rh), e.dev(rw), dout);
  auto got = e.host(dout, B * T * C);
  report("relPosAttention", "B" + std::to_string(B) + " " + dims({h, w}) + " h" +
                                std::to_string(heads) + " d" + std::to_string(d),
         ref.data(), got.data(), ref.size(), gemmBound(std::max(d, T)), Norm::Magnitude);
  e.reset();
}

// ---- Half-precision fused attention -------------------------------------------------------------

float roundTo(__half, float x) { return __half2float(__float2half_rn(x)); }
float roundTo(__nv_bfloat16, float x) { return __bfloat162float(__float2bfloat16_rn(x)); }
template <class Half>
Half toHalfT(float x);
template <>
__half toHalfT<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__nv_bfloat16 toHalfT<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
template <class Half>
const char* halfName();
template <>
const char* halfName<__half>() {
  return "fp16";
}
template <>
const char* halfName<__nv_bfloat16>() {
  return "bf16";
}

// Q, K, V in the kernel's layout [B*heads, T, d] (half) and rel-pos terms th/tw [B*heads*T, 2h-1 /
// 2w-1] (fp32, from the unscaled q), built from one random qkv [B, T, 3, heads, d] whose values
// are rounded to Half first, so that the CPU reference sees the same inputs.
template <class Half>
struct FlashInputs {
  std::vector<float> qkv, rh, rw, th, tw;
  std::vector<Half> q, k, v;
  FlashInputs(Env& e, int64_t B, int64_t h, int64_t w, int64_t heads, int64_t d, float qScale) {
    const int64_t T = h * w, C = heads * d, BH = B * heads, nh = 2 * h - 1, nw = 2 * w - 1;
    qkv = randn(B * T * 3 * C);
    for (int64_t i = 0; i < B * T; ++i)
      for (int64_t c = 0; c < C; ++c) qkv[i * 3 * C + c] *= qScale;  // sharper softmax rows
    for (auto& x : qkv) x = roundTo(Half(), x);
    rh = randn(nh * d, 0.3f);
    rw = randn(nw * d, 0.3f);
    q.resize(BH * T * d);
    k.resize(BH * T * d);
    v.resize(BH * T * d);
    std::vector<float> qf(BH * T * d);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t hd = 0; hd < heads; ++hd)
          for (int64_t j = 0; j < d; ++j) {
            const int64_t dst = ((b * heads + hd) * T + t) * d + j;
            const float* src = qkv.data() + (b * T + t) * 3 * C + hd * d + j;
            qf[dst] = src[0];
            q[dst] = toHalfT<Half>(src[0]);
            k[dst] = toHalfT<Half>(src[C]);
            v[dst] = toHalfT<Half>(src[2 * C]);
          }
    // th = q·relPosHᵀ, tw = q·relPosWᵀ (the CPU matmul wants the right factor as [d, n]).
    std::vector<float> rhT(d * nh), rwT(d * nw);
    for (int64_t i = 0; i < nh; ++i)
      for (int64_t j = 0; j < d; ++j) rhT[j * nh + i] = rh[i * d + j];
    for (int64_t i = 0; i < nw; ++i)
      for (int64_t j = 0; j < d; ++j) rwT[j * nw + i] = rw[i * d + j];
    th.resize(BH * T * nh);
    tw.resize(BH * T * nw);
    ops::cpu::matmul(e.cpu, qf.data(), BH * T, d, rhT.data(), nh, th.data());
    ops::cpu::matmul(e.cpu, qf.data(), BH * T, d, rwT.data(), nw, tw.data());
  }
};

template <class Half>
Half* devHalf(Env& e, const std::vector<Half>& h) {
  auto* d = static_cast<Half*>(e.devArena.bytes(h.size() * sizeof(Half)));
  ops::upload(e.gpu, h.data(), h.size() * sizeof(Half), d);
  return d;
}

// bias: 0 none, 1 th and tw, 2 th only (tw null).
template <class Half>
void testFlash(Env& e, int64_t B, int64_t h, int64_t w, int64_t heads, int64_t d, int bias,
               float qScale = 1.f) {
  const int64_t T = h * w, C = heads * d;
  FlashInputs<Half> in(e, B, h, w, heads, d, qScale);
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  std::vector<float> ref(B * T * C);
  if (bias == 1) {
    ops::cpu::relPosAttention(e.cpu, in.qkv.data(), B, h, w, heads, d, in.rh.data(), in.rw.data(),
                              ref.data());
  } else {
    // Without bias (or th only: zero relPosW makes tw = 0) through the CPU's rel-pos attention
    // too, or its plain attention.
    if (bias == 2) {
      std::vector<float> zw(in.rw.size(), 0.f);
      ops::cpu::relPosAttention(e.cpu, in.qkv.data(), B, h, w, heads, d, in.rh.data(), zw.data(),
                                ref.data());
    } else {
      for (int64_t b = 0; b < B; ++b) {
        const float* base = in.qkv.data() + b * T * 3 * C;
        ops::cpu::attention(e.cpu, base, 3 * C, base + C, 3 * C, base + 2 * C, 3 * C, T, T, heads,
                            d, scale, ref.data() + b * T * C);
      }
    }
  }
  float* dout = e.devAlloc(B * T * C);
  const float* dth = bias ? e.dev(in.th) : nullptr;
  const float* dtw = bias == 1 ? e.dev(in.tw) : nullptr;
  const bool ran = ops::cuda::flashAttention(e.gpu, devHalf(e, in.q), devHalf(e, in.k),
                                             devHalf(e, in.v), B, heads, h, w, d, scale, dth, dtw,
                                             dout);
  const std::string shape = std::string(halfName<Half>()) + " B" + std::to_string(B) + " " +
                            dims({h, w}) + " h" + std::to_string(heads) + " d" +
                            std::to_string(d) +
                            (bias == 1 ? " bias" : bias == 2 ? " th-only" : "") +
                            (qScale != 1.f ? " q*" + std::to_string(static_cast<int>(qScale)) : "");
  const double bound = std::is_same<Half, __half>::value ? 5e-3 : 2e-2;
  if (!ran) {
    ++failures;
    std::printf("%-18s %-44s %-9s %-9s %.1e FAIL (unsupported)\n", "flashAttention",
                shape.c_str(), "-", "-", bound);
  } else {
    auto got = e.host(dout, B * T * C);
    report("flashAttention", shape, ref.data(), got.data(), ref.size(), bound, Norm::Magnitude);
  }
  e.reset();
}

// Unsupported head sizes are declined (false, nothing launched) so the caller can fall back.
void testFlashDeclines(Env& e) {
  auto* q = static_cast<__half*>(e.devArena.bytes(2 * 4 * 4 * 24 * sizeof(__half)));
  const bool ran = ops::cuda::flashAttention(e.gpu, q, q, q, 1, 2, 4, 4, 24, 0.2f, nullptr, nullptr,
                                             e.devAlloc(4 * 4 * 48));
  if (ran) ++failures;
  std::printf("%-18s %-44s %.3e %.3e %.1e %s\n", "flashAttention", "d24 declined", 0.0, 0.0, 0.0,
              ran ? "FAIL" : "PASS");
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

void testResize(Env& e, int64_t planes, int64_t ih, int64_t iw, int64_t inStride, int64_t inRows,
                int64_t oh, int64_t ow, int64_t outRows, int64_t outCols) {
  const int64_t planeStride = inStride * inRows;
  auto in = randn(planes * planeStride);
  std::vector<float> ref(planes * outRows * outCols);
  ops::cpu::resizeBilinear(e.cpu, in.data(), planes, ih, iw, inStride, planeStride, ref.data(), oh,
                           ow, outRows, outCols);
  float* dout = e.devAlloc(ref.size());
  ops::resizeBilinear(e.gpu, e.dev(in), planes, ih, iw, inStride, planeStride, dout, oh, ow,
                      outRows, outCols);
  auto got = e.host(dout, ref.size());
  const bool crop = inStride != iw || inRows != ih || outRows != oh || outCols != ow;
  report("resizeBilinear",
         std::to_string(planes) + "x" + dims({ih, iw}) + "->" + dims({oh, ow}) +
             (crop ? " crop " + dims({outRows, outCols}) + " in" + dims({inRows, inStride}) : ""),
         ref.data(), got.data(), ref.size(), 1e-6, Norm::Magnitude);
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
  e.reset();
}

// --bench: GPU time of the heaviest ops at ViT-B shapes (mean of 10 after 2 warm-ups).
template <class F>
void bench(Env& e, const char* what, F&& f) {
  cudaEvent_t a, b;
  OMNISEG_CUDA_CHECK(cudaEventCreate(&a));
  OMNISEG_CUDA_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < 2; ++i) f();
  OMNISEG_CUDA_CHECK(cudaEventRecord(a, e.stream.get()));
  for (int i = 0; i < 10; ++i) f();
  OMNISEG_CUDA_CHECK(cudaEventRecord(b, e.stream.get()));
  OMNISEG_CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0;
  OMNISEG_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  std::printf("bench %-48s %8.3f ms\n", what, ms / 10);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
}

void benchmarks(Env& e) {
  const int64_t T = 4096, C = 768;
  float* x = e.dev(randn(T * 3 * C));
  float* W = e.dev(randn(3 * C * 4 * C, 0.02f));
  float* b = e.dev(randn(4 * C));
  float* y = e.devAlloc(T * 4 * C);
  float* rh = e.dev(randn(127 * 64));
  bench(e, "linear 4096x768x2304 bias", [&] { ops::linear(e.gpu, x, T, C, W, b, 3 * C, y); });
  bench(e, "linear 4096x768x3072 bias gelu",
        [&] { ops::linear(e.gpu, x, T, C, W, b, 4 * C, y, Act::Gelu); });
  bench(e, "relPosAttention global B1 64x64 h12 d64",
        [&] { ops::relPosAttention(e.gpu, x, 1, 64, 64, 12, 64, rh, rh, y); });
  float* xw = e.dev(randn(25 * 196 * 3 * C));
  float* yw = e.devAlloc(25 * 196 * C);
  bench(e, "relPosAttention windows B25 14x14 h12 d64",
        [&] { ops::relPosAttention(e.gpu, xw, 25, 14, 14, 12, 64, rh, rh, yw); });
  bench(e, "attention Nq4096 Nk7 h8 d16",
        [&] { ops::attention(e.gpu, x, 256, x, 256, x, 256, 4096, 7, 8, 16, 0.25f, y); });
  bench(e, "attention Nq7 Nk4096 h8 d16",
        [&] { ops::attention(e.gpu, x, 256, x, 256, x, 256, 7, 4096, 8, 16, 0.25f, y); });
  {
    // flashAttention (half inputs, rel-pos bias) at the encoder's ViT-B shapes.
    const int64_t n = 12 * T * 64;
    auto* q16 = static_cast<__half*>(e.devArena.bytes(3 * n * sizeof(__half)));
    OMNISEG_CUDA_CHECK(cudaMemsetAsync(q16, 0, 3 * n * sizeof(__half), e.stream.get()));
    auto* qb = reinterpret_cast<__nv_bfloat16*>(q16);
    float* th = e.dev(randn(12 * T * 127, 0.5f));
    float* ow = e.devAlloc(12 * T * 64);
    bench(e, "flashAttention fp16 global B1 64x64 h12 d64", [&] {
      ops::cuda::flashAttention(e.gpu, q16, q16 + n, q16 + 2 * n, 1, 12, 64, 64, 64, 0.125f, th,
                                th, ow);
    });
    bench(e, "flashAttention bf16 global B1 64x64 h12 d64", [&] {
      ops::cuda::flashAttention(e.gpu, qb, qb + n, qb + 2 * n, 1, 12, 64, 64, 64, 0.125f, th, th,
                                ow);
    });
    bench(e, "flashAttention fp16 global B1 64x64 h12 d64 no bias", [&] {
      ops::cuda::flashAttention(e.gpu, q16, q16 + n, q16 + 2 * n, 1, 12, 64, 64, 64, 0.125f,
                                nullptr, nullptr, ow);
    });
    const int64_t nw = 25 * 12 * 196 * 64;
    auto* w16 = static_cast<__half*>(e.devArena.bytes(3 * nw * sizeof(__half)));
    OMNISEG_CUDA_CHECK(cudaMemsetAsync(w16, 0, 3 * nw * sizeof(__half), e.stream.get()));
    auto* wb = reinterpret_cast<__nv_bfloat16*>(w16);
    float* thw = e.dev(randn(25 * 12 * 196 * 27, 0.5f));
    float* oww = e.devAlloc(25 * 196 * 12 * 64);
    bench(e, "flashAttention fp16 windows B25 14x14 h12 d64", [&] {
      ops::cuda::flashAttention(e.gpu, w16, w16 + nw, w16 + 2 * nw, 25, 12, 14, 14, 64, 0.125f,
                                thw, thw, oww);
    });
    bench(e, "flashAttention bf16 windows B25 14x14 h12 d64", [&] {
      ops::cuda::flashAttention(e.gpu, wb, wb + nw, wb + 2 * nw, 25, 12, 14, 14, 64, 0.125f, thw,
                                thw, oww);
    });
    const int64_t nh = 16 * T * 80;
    auto* h16 = static_cast<__half*>(e.devArena.bytes(3 * nh * sizeof(__half)));
    OMNISEG_CUDA_CHECK(cudaMemsetAsync(h16, 0, 3 * nh * sizeof(__half), e.stream.get()));
    float* thh = e.dev(randn(16 * T * 127, 0.5f));
    float* owh = e.devAlloc(16 * T * 80);
    bench(e, "flashAttention fp16 global B1 64x64 h16 d80 (ViT-H)", [&] {
      ops::cuda::flashAttention(e.gpu, h16, h16 + nh, h16 + 2 * nh, 1, 16, 64, 64, 80, 0.1118f,
                                thh, thh, owh);
    });
  }
  bench(e, "layerNorm 4096x768", [&] { ops::layerNorm(e.gpu, x, T, C, b, b, 1e-6f, y); });
  bench(e, "gelu 4096x3072", [&] { ops::gelu(e.gpu, y, T * 4 * C); });
  e.reset();
}

// resizeU8Pil (Pillow's 8-bit bilinear): CUDA vs CPU on random bytes, exact (0 differing bytes).
// With `time`: GPU time of the resize and of the original's (pageable) upload, and the CPU
// backend's time on this machine's pool, for the preprocessing cost per image.
void testResizeU8(Env& e, int64_t ih, int64_t iw, int64_t C, int64_t oh, int64_t ow,
                  bool time = false) {
  std::uniform_int_distribution<int> byte(0, 255);
  const size_t inBytes = static_cast<size_t>(ih * iw * C);
  const size_t outBytes = static_cast<size_t>(oh * ow * C);
  std::vector<uint8_t> in(inBytes), ref(outBytes), got(outBytes, 0xAB);
  for (auto& v : in) v = static_cast<uint8_t>(byte(rng));
  // Some saturated runs (clipping at both ends of the fixed-point sums).
  for (size_t i = 0; i < inBytes / 4; ++i) in[i] = (i / 7) % 2 ? 255 : 0;
  ops::cpu::resizeU8Pil(e.cpu, in.data(), ih, iw, C, ref.data(), oh, ow);
  auto* din = static_cast<uint8_t*>(e.devArena.bytes(inBytes));
  auto* dout = static_cast<uint8_t*>(e.devArena.bytes(outBytes));
  ops::upload(e.gpu, in.data(), inBytes, din);
  ops::resizeU8Pil(e.gpu, din, ih, iw, C, dout, oh, ow);
  ops::download(e.gpu, dout, outBytes, got.data());
  const std::string shape = dims({ih, iw, C}) + " -> " + dims({oh, ow});
  reportBytes("resizeU8Pil", shape, ref.data(), got.data(), outBytes);
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < outBytes; ++i)
    if (ref[i] != got[i] && bad++ == 0) first = i;
  if (bad)
    std::printf("  %zu differing bytes, first at %zu: cpu %d cuda %d\n", bad, first, ref[first],
                got[first]);
  if (time) {
    bench(e, ("resizeU8Pil " + shape).c_str(),
          [&] { ops::resizeU8Pil(e.gpu, din, ih, iw, C, dout, oh, ow); });
    bench(e, ("upload original " + dims({ih, iw, C})).c_str(),
          [&] { ops::upload(e.gpu, in.data(), inBytes, din); });
    ops::cpu::resizeU8Pil(e.cpu, in.data(), ih, iw, C, ref.data(), oh, ow);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i)
      ops::cpu::resizeU8Pil(e.cpu, in.data(), ih, iw, C, ref.data(), oh, ow);
    const auto dt = std::chrono::steady_clock::now() - t0;
    const double ms = std::chrono::duration<double, std::milli>(dt).count() / 5;
    std::printf("bench %-48s %8.3f ms (host, %d threads)\n",
                ("cpu resizeU8Pil " + shape).c_str(), ms, e.pool.size());
  }
  e.reset();
}

void testResizeU8All(Env& e) {
  testResizeU8(e, 300, 400, 3, 300, 123);    // shrink x only (horizontal pass straight to out)
  testResizeU8(e, 300, 123, 3, 300, 400);    // enlarge x only
  testResizeU8(e, 400, 300, 3, 123, 300);    // shrink y only (vertical pass only)
  testResizeU8(e, 123, 300, 3, 400, 300);    // enlarge y only
  testResizeU8(e, 50, 300, 3, 170, 77);      // shrink x, enlarge y
  testResizeU8(e, 300, 50, 3, 77, 170);      // enlarge x, shrink y
  testResizeU8(e, 37, 53, 3, 37, 53);        // same size (copy)
  testResizeU8(e, 1, 1, 3, 1, 1);            // 1-pixel images
  testResizeU8(e, 1, 1, 3, 9, 4);
  testResizeU8(e, 1, 1, 3, 1, 5);
  testResizeU8(e, 6, 9, 3, 1, 1);
  testResizeU8(e, 7, 3, 3, 1, 1);            // 3x7 -> 1x1 (width x height)
  testResizeU8(e, 3, 7, 3, 1, 1);
  testResizeU8(e, 2, 5000, 3, 1, 3);         // extreme shrink (thousands of taps)
  testResizeU8(e, 33, 65, 1, 100, 17);       // other channel counts
  testResizeU8(e, 64, 48, 4, 31, 97);
  testResizeU8(e, 300, 451, 3, 681, 1024, true);    // SAM shapes: 451x300 -> 1024x681
  testResizeU8(e, 512, 512, 3, 1024, 1024, true);   // 512x512 -> 1024x1024
  testResizeU8(e, 3000, 4000, 3, 768, 1024, true);  // 4000x3000 -> 1024x768
  testResizeU8(e, 1080, 1920, 3, 576, 1024, true);  // 1920x1080 -> 1024x576
}

}  // namespace

int main(int argc, char** argv) {
  const bool benchOnly = argc > 1 && std::strcmp(argv[1], "--bench") == 0;
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
    if (benchOnly) {
      benchmarks(e);
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
    // the small-M kernels: warp per column (K ≥ 64, up to 16 rows, strided), thread per column
    testLinear(e, 12, 2048, 256, true, Act::None, true);
    testLinear(e, 16, 256, 300, true, Act::Relu, false, 300, 310);
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
    // convTranspose2x2
    testConvT(e, 64, 64, 256, 64, true, Act::Gelu);
    testConvT(e, 128, 128, 64, 32, true, Act::Gelu);
    testConvT(e, 3, 5, 7, 3, false, Act::Relu);
    testConvT(e, 4, 4, 16, 5, true, Act::None);
    // attention (decoder shapes, odd sizes, strided q/k/v)
    testAttention(e, 7, 4096, 8, 16, 0);
    testAttention(e, 4096, 7, 8, 16, 0);
    testAttention(e, 5, 5, 8, 32, 0);
    testAttention(e, 6, 6, 8, 32, 64);
    testAttention(e, 64, 300, 1, 128, 0);
    testAttention(e, 33, 65, 3, 17, 5);
    testAttention(e, 1100, 1500, 2, 64, 3);
    testAttention(e, 9, 4096, 8, 128, 0);
    // the fused few-query kernel for each head size it takes (strided too)
    testAttention(e, 16, 300, 4, 32, 7);
    testAttention(e, 3, 8192, 2, 64, 0);
    testAttention(e, 1, 257, 8, 16, 3);
    // relPosAttention: windows (B > 1), global, non-square odd grid
    testRelPos(e, 25, 14, 14, 12, 64);
    testRelPos(e, 3, 5, 7, 3, 24);
    testRelPos(e, 2, 40, 36, 2, 80);
    testRelPos(e, 1, 64, 64, 12, 64);
    // flashAttention (half precision): both types, with and without the rel-pos bias.
    for (int bias : {1, 0}) {
      testFlash<__half>(e, 1, 64, 64, 12, 64, bias);
      testFlash<__nv_bfloat16>(e, 1, 64, 64, 12, 64, bias);
      testFlash<__half>(e, 25, 14, 14, 12, 64, bias);
      testFlash<__nv_bfloat16>(e, 25, 14, 14, 12, 64, bias);
      testFlash<__half>(e, 2, 40, 36, 2, 80, bias);
      testFlash<__nv_bfloat16>(e, 2, 40, 36, 2, 80, bias);
      testFlash<__half>(e, 3, 5, 7, 3, 64, bias);
      testFlash<__nv_bfloat16>(e, 3, 5, 7, 3, 64, bias);
      testFlash<__half>(e, 1, 64, 64, 16, 80, bias);
      testFlash<__nv_bfloat16>(e, 1, 64, 64, 16, 80, bias);
    }
    testFlash<__half>(e, 3, 5, 7, 3, 64, 2);             // th only
    testFlash<__nv_bfloat16>(e, 2, 64, 64, 2, 64, 2);   // th only, w = 64 (the row-bias path)
    testFlash<__half>(e, 2, 32, 64, 3, 80, 1);           // row-bias path, h != w
    testFlash<__half>(e, 2, 40, 36, 2, 80, 1, 3.f);      // peaked softmax (q scaled by 3)
    testFlash<__nv_bfloat16>(e, 25, 14, 14, 12, 64, 1, 3.f);
    testFlash<__half>(e, 3, 9, 11, 2, 32, 1);            // other head sizes
    testFlash<__half>(e, 2, 9, 11, 2, 96, 1);
    testFlash<__nv_bfloat16>(e, 2, 9, 11, 2, 128, 1);
    testFlash<__half>(e, 1, 1, 1, 1, 64, 1);             // a single token
    testFlashDeclines(e);
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
    testAdd(e, (1 << 20) + 3, false);
    testAdd(e, 7, true);
    // resizeBilinear: upscale, downscale, odd, crops of the input and of the output
    testResize(e, 3, 256, 256, 256, 256, 1024, 1024, 1024, 1024);
    testResize(e, 2, 1024, 1024, 1024, 1024, 333, 517, 333, 517);
    testResize(e, 1, 7, 5, 5, 7, 23, 11, 23, 11);
    testResize(e, 3, 250, 260, 300, 280, 1024, 1024, 700, 900);
    testResize(e, 2, 256, 256, 256, 256, 1024, 1024, 683, 1024);
    testResize(e, 1, 1, 1, 1, 1, 4, 3, 4, 3);
    // layout
    testPatchify(e, 3, 1024, 1024, 16);
    testPatchify(e, 3, 33, 35, 4);
    testIm2col(e, 64, 64, 32);
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
    testCopy(e, 12345);
    testResizeU8All(e);
    testWeightMirror(e);
    testChecks(e);
  } catch (const std::exception& ex) {
    std::printf("exception: %s\n", ex.what());
    return 1;
  }
  std::printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
