// CUDA vs CPU: decoder attention, the encoder's rel-pos attention, and the half-precision fused
// attention (ops/cuda/flash_attention.h). Bounds: see cuda_ops_test.cc.
#include "ops/cuda/flash_attention.h"
#include "test/gpu/op_test.h"

namespace optest {

namespace {

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

// bias: 0 none, 1 th and tw, 2 th only (tw null), 3 tw only (th null). keys: the key-tile layout
// asked for; outHalf: the output rounded to Half (compared after widening it on the host). tile
// Q128 (two m-tiles per warp) must also give the same bits as Q64.
template <class Half>
void testFlash(Env& e, int64_t B, int64_t h, int64_t w, int64_t heads, int64_t d, int bias,
               float qScale = 1.f, ops::cuda::FlashKeys keys = ops::cuda::FlashKeys::Dense,
               bool outHalf = false, ops::cuda::FlashTile tile = ops::cuda::FlashTile::Q64) {
  const int64_t T = h * w, C = heads * d;
  FlashInputs<Half> in(e, B, h, w, heads, d, qScale);
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  std::vector<float> ref(B * T * C);
  if (bias == 1) {
    ops::cpu::relPosAttention(e.cpu, in.qkv.data(), B, h, w, heads, d, in.rh.data(), in.rw.data(),
                              ref.data());
  } else {
    // Without bias (or one term only: a zero relPosW / relPosH makes tw / th = 0) through the
    // CPU's rel-pos attention too, or its plain attention.
    if (bias == 2) {
      std::vector<float> zw(in.rw.size(), 0.f);
      ops::cpu::relPosAttention(e.cpu, in.qkv.data(), B, h, w, heads, d, in.rh.data(), zw.data(),
                                ref.data());
    } else if (bias == 3) {
      std::vector<float> zh(in.rh.size(), 0.f);
      ops::cpu::relPosAttention(e.cpu, in.qkv.data(), B, h, w, heads, d, zh.data(), in.rw.data(),
                                ref.data());
    } else {
      for (int64_t b = 0; b < B; ++b) {
        const float* base = in.qkv.data() + b * T * 3 * C;
        ops::cpu::attention(e.cpu, base, 3 * C, base + C, 3 * C, base + 2 * C, 3 * C, T, T, heads,
                            d, scale, ref.data() + b * T * C);
      }
    }
  }
  float* dout = e.devAlloc(B * T * C);  // (outHalf: B·T·C halves in its first half)
  const float* dth = bias == 1 || bias == 2 ? e.dev(in.th) : nullptr;
  const float* dtw = bias == 1 || bias == 3 ? e.dev(in.tw) : nullptr;
  const Half *dq = devHalf(e, in.q), *dk = devHalf(e, in.k), *dv = devHalf(e, in.v);
  // (the output is filled with NaNs before each launch: rows a launch leaves unwritten show)
  auto launch = [&](ops::cuda::FlashTile t) {
    OMNISEG_CUDA_CHECK(cudaMemsetAsync(dout, 0xFF, B * T * C * sizeof(float), e.stream.get()));
    return ops::cuda::flashAttention(e.gpu, dq, dk, dv, B, heads, h, w, d, scale, dth, dtw, dout, 0,
                                     0, 0, keys, outHalf, t);
  };
  // The output's bytes, as written (outHalf: B·T·C halves).
  auto bytes = [&] {
    std::vector<char> b(B * T * C * (outHalf ? sizeof(Half) : sizeof(float)));
    OMNISEG_CUDA_CHECK(cudaMemcpyAsync(b.data(), dout, b.size(), cudaMemcpyDeviceToHost, e.stream.get()));
    OMNISEG_CUDA_CHECK(cudaStreamSynchronize(e.stream.get()));
    return b;
  };
  // (Q128 must give Q64's bits; a Q64 that declines where Q128 runs fails the case too)
  bool sameAsQ64 = true;
  if (tile == ops::cuda::FlashTile::Q128) {
    const bool q64Ran = launch(ops::cuda::FlashTile::Q64);
    const auto q64 = q64Ran ? bytes() : std::vector<char>{};
    sameAsQ64 = q64Ran && launch(tile) && bytes() == q64;
  }
  const bool ran = launch(tile);
  const std::string shape = std::string(halfName<Half>()) + " B" + std::to_string(B) + " " +
                            dims({h, w}) + " h" + std::to_string(heads) + " d" +
                            std::to_string(d) +
                            (bias == 1 ? " bias" : bias == 2 ? " th-only" : bias == 3 ? " tw-only" : "") +
                            (qScale != 1.f ? " q*" + std::to_string(static_cast<int>(qScale)) : "") +
                            (keys == ops::cuda::FlashKeys::Rows ? " rows" : "") + (outHalf ? " out-half" : "") +
                            (tile == ops::cuda::FlashTile::Q128 ? " q128" : "");
  const double bound = std::is_same<Half, __half>::value ? 5e-3 : 2e-2;
  if (!ran) {
    ++failures;
    std::printf("%-18s %-44s %-9s %-9s %.1e FAIL (unsupported)\n", "flashAttention",
                shape.c_str(), "-", "-", bound);
  } else {
    std::vector<float> got;
    if (outHalf) {
      std::vector<Half> gh(B * T * C);
      OMNISEG_CUDA_CHECK(cudaMemcpyAsync(gh.data(), dout, gh.size() * sizeof(Half), cudaMemcpyDeviceToHost,
                                         e.stream.get()));
      OMNISEG_CUDA_CHECK(cudaStreamSynchronize(e.stream.get()));
      for (const Half& v : gh) got.push_back(static_cast<float>(v));
    } else {
      got = e.host(dout, B * T * C);
    }
    report("flashAttention", shape, ref.data(), got.data(), ref.size(), bound, Norm::Magnitude);
    if (!sameAsQ64) {
      ++failures;
      std::printf("%-18s %-44s FAIL (not the same bits as q64)\n", "flashAttention", shape.c_str());
    }
  }
  e.reset();
}

// The fused kernel straight from qkv [rows, 3, heads, d] with the rel-pos terms computed in it
// (flashAttentionQkv), against the CPU's relPosAttention (B images, ws = 0) or
// windowRelPosAttention (the ws×ws windows of B E×E grids in one launch, the padding cells reading
// the bias row: fill), on the same half-rounded inputs. It must run (not decline) and write every
// output.
template <class Half>
void testFlashQkv(Env& e, int64_t B, int64_t E, int64_t ws, int64_t heads, int64_t d, bool fill,
                  ops::cuda::FlashKeys keys = ops::cuda::FlashKeys::Auto, bool outHalf = false,
                  ops::cuda::FlashTile tile = ops::cuda::FlashTile::Q64) {
  const int64_t C = heads * d, s = ws > 0 ? ws : E, rows = B * E * E;
  auto round = [](std::vector<float> v) {
    for (auto& x : v) x = roundTo(Half(), x);
    return v;
  };
  const auto qkv = round(randn(rows * 3 * C)), rh = round(randn((2 * s - 1) * d, 0.3f)),
             rw = round(randn((2 * s - 1) * d, 0.3f)), bias = round(randn(3 * C));
  std::vector<float> ref(rows * C);
  if (ws == 0)
    ops::cpu::relPosAttention(e.cpu, qkv.data(), B, E, E, heads, d, rh.data(), rw.data(), ref.data());
  else
    for (int64_t b = 0; b < B; ++b)
      ops::cpu::windowRelPosAttention(e.cpu, qkv.data() + b * E * E * 3 * C, E, ws, fill ? bias.data() : nullptr,
                                      heads, d, rh.data(), rw.data(), ref.data() + b * E * E * C);
  auto halves = [](const std::vector<float>& v) {
    std::vector<Half> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) h[i] = toHalfT<Half>(v[i]);
    return h;
  };
  float* dout = e.devAlloc(rows * C);
  OMNISEG_CUDA_CHECK(cudaMemsetAsync(dout, 0xFF, rows * C * sizeof(float), e.stream.get()));
  const int64_t nw = ws > 0 ? (E + ws - 1) / ws : 0;
  const bool ran = ops::cuda::flashAttentionQkv<Half>(
      e.gpu, devHalf(e, halves(qkv)), fill ? devHalf(e, halves(bias)) : nullptr, ws > 0 ? B * nw * nw : B, heads,
      s, s, d, 1.f / std::sqrt(static_cast<float>(d)), devHalf(e, halves(rh)), devHalf(e, halves(rw)), dout,
      ws > 0 ? E : 0, outHalf, keys, tile);
  const std::string shape = std::string(halfName<Half>()) + " qkv B" + std::to_string(B) + " E" +
                            std::to_string(E) + " ws" + std::to_string(ws) + " h" + std::to_string(heads) +
                            " d" + std::to_string(d) + (fill ? " fill" : "") +
                            (keys == ops::cuda::FlashKeys::Dense ? " dense-keys" : "") + (outHalf ? " out-half" : "") +
                            (tile == ops::cuda::FlashTile::Q128 ? " q128" : "");
  const double bound = std::is_same<Half, __half>::value ? 5e-3 : 2e-2;
  if (!ran) {
    ++failures;
    std::printf("%-18s %-44s %-9s %-9s %.1e FAIL (declined)\n", "flashAttentionQkv", shape.c_str(), "-", "-",
                bound);
  } else {
    std::vector<float> got;
    if (outHalf) {
      std::vector<Half> gh(rows * C);
      OMNISEG_CUDA_CHECK(cudaMemcpyAsync(gh.data(), dout, gh.size() * sizeof(Half), cudaMemcpyDeviceToHost,
                                         e.stream.get()));
      OMNISEG_CUDA_CHECK(cudaStreamSynchronize(e.stream.get()));
      for (const Half& v : gh) got.push_back(static_cast<float>(v));
    } else {
      got = e.host(dout, rows * C);
    }
    report("flashAttentionQkv", shape, ref.data(), got.data(), ref.size(), bound, Norm::Magnitude);
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


}  // namespace

// fp16 / bf16: the fused kernel where it supports the head size, else the fp32 path.
void testRelPos(Env& e, int64_t B, int64_t h, int64_t w, int64_t heads, int64_t d, Precision p) {
  const int64_t T = h * w, C = heads * d;
  auto qkv = randn(B * T * 3 * C), rh = randn((2 * h - 1) * d, 0.3f), rw = randn((2 * w - 1) * d, 0.3f);
  std::vector<float> ref(B * T * C);
  ops::cpu::relPosAttention(e.cpu, qkv.data(), B, h, w, heads, d, rh.data(), rw.data(), ref.data());
  float* dout = e.devAlloc(B * T * C);
  withPrecision(e, p, [&] {
    ops::relPosAttention(e.gpu, e.dev(qkv), B, h, w, heads, d, e.dev(rh), e.dev(rw), dout);
  });
  auto got = e.host(dout, B * T * C);
  report("relPosAttention", "B" + std::to_string(B) + " " + dims({h, w}) + " h" + std::to_string(heads) +
                                " d" + std::to_string(d) +
                                (p == Precision::Fp32 ? "" : std::string(" ") + precisionName(p)),
         ref.data(), got.data(), ref.size(), halfBound(p, std::max(d, T)), Norm::Magnitude);
  e.reset();
}

void attentionTests(Env& e) {
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
    // The key-row layout (w ≤ 16), forced: SAM's windows, odd and tiny grids (h not a multiple of
    // the 4 key rows per tile, w < 8), th only, a peaked softmax, every head size.
    {
      constexpr auto kRows = ops::cuda::FlashKeys::Rows;
      testFlash<__half>(e, 25, 14, 14, 12, 64, 1, 1.f, kRows);
      testFlash<__nv_bfloat16>(e, 25, 14, 14, 12, 64, 1, 1.f, kRows);
      testFlash<__half>(e, 25, 14, 14, 12, 64, 2, 1.f, kRows);
      testFlash<__nv_bfloat16>(e, 25, 14, 14, 12, 64, 1, 3.f, kRows);
      testFlash<__half>(e, 3, 5, 7, 3, 64, 1, 1.f, kRows);
      testFlash<__half>(e, 2, 9, 11, 2, 32, 1, 1.f, kRows);
      testFlash<__half>(e, 2, 9, 11, 2, 96, 1, 1.f, kRows);
      testFlash<__nv_bfloat16>(e, 2, 9, 11, 2, 128, 1, 1.f, kRows);
      testFlash<__nv_bfloat16>(e, 2, 14, 14, 16, 80, 1, 1.f, kRows);
      testFlash<__half>(e, 2, 17, 16, 2, 64, 1, 1.f, kRows);  // w = 16: every slot used
      testFlash<__half>(e, 1, 1, 1, 1, 64, 1, 1.f, kRows);
      testFlash<__half>(e, 3, 5, 7, 3, 64, 3, 1.f, kRows);  // tw only
      testFlash<__nv_bfloat16>(e, 25, 14, 14, 12, 64, 1, 1.f, kRows, true);  // half output
      testFlash<__half>(e, 2, 9, 11, 2, 80, 1, 1.f, kRows, true);
    }
    // Half output and tw only in the other layouts.
    testFlash<__half>(e, 25, 14, 14, 12, 64, 1, 1.f, ops::cuda::FlashKeys::Dense, true);
    testFlash<__nv_bfloat16>(e, 1, 64, 64, 12, 64, 1, 1.f, ops::cuda::FlashKeys::Dense, true);
    testFlash<__half>(e, 2, 40, 36, 2, 80, 0, 1.f, ops::cuda::FlashKeys::Dense, true);
    testFlash<__half>(e, 3, 5, 7, 3, 64, 3);
    testFlash<__nv_bfloat16>(e, 2, 32, 64, 3, 64, 3);  // the row-bias path without th
    // Two m-tiles per warp (128 query rows per block, d = 64): every bias mode, against the CPU
    // and bit for bit against one m-tile; h = 3 leaves the last block half past T.
    {
      constexpr auto kDense = ops::cuda::FlashKeys::Dense, kRows = ops::cuda::FlashKeys::Rows;
      constexpr auto kQ128 = ops::cuda::FlashTile::Q128;
      testFlash<__half>(e, 1, 64, 64, 12, 64, 1, 1.f, kDense, false, kQ128);
      testFlash<__nv_bfloat16>(e, 1, 64, 64, 12, 64, 1, 1.f, kDense, true, kQ128);
      testFlash<__half>(e, 1, 64, 64, 12, 64, 0, 1.f, kDense, false, kQ128);
      testFlash<__half>(e, 2, 3, 64, 2, 64, 1, 1.f, kDense, false, kQ128);
      testFlash<__nv_bfloat16>(e, 2, 3, 64, 2, 64, 2, 3.f, kDense, false, kQ128);
      testFlash<__half>(e, 2, 32, 64, 3, 64, 3, 1.f, kDense, false, kQ128);
      testFlash<__half>(e, 25, 14, 14, 12, 64, 1, 1.f, kRows, false, kQ128);
      testFlash<__nv_bfloat16>(e, 25, 14, 14, 12, 64, 1, 1.f, kRows, true, kQ128);
      testFlash<__half>(e, 3, 5, 7, 3, 64, 1, 1.f, kDense, false, kQ128);
      testFlash<__nv_bfloat16>(e, 25, 14, 14, 12, 64, 1, 3.f, kDense, false, kQ128);
      testFlash<__half>(e, 1, 1, 1, 1, 64, 1, 1.f, kDense, false, kQ128);
      testFlash<__half>(e, 2, 40, 36, 2, 80, 1, 1.f, kDense, false, kQ128);  // d = 80: takes Q64
    }
    // Straight from qkv, the terms computed in the kernel: ViT-B's global layer (two images) and
    // windows (fill), both tiles, both key layouts, half output, ViT-H's d = 80, odd padded windows.
    {
      constexpr auto kQ128 = ops::cuda::FlashTile::Q128, kQ64 = ops::cuda::FlashTile::Q64;
      constexpr auto kAuto = ops::cuda::FlashKeys::Auto, kDense = ops::cuda::FlashKeys::Dense;
      testFlashQkv<__half>(e, 2, 64, 0, 12, 64, false);
      testFlashQkv<__nv_bfloat16>(e, 1, 64, 0, 12, 64, false, kAuto, true, kQ128);
      testFlashQkv<__half>(e, 1, 64, 14, 12, 64, true);
      testFlashQkv<__nv_bfloat16>(e, 1, 64, 14, 12, 64, true, kAuto, true, kQ128);
      testFlashQkv<__half>(e, 1, 64, 14, 12, 64, true, kDense, false, kQ64);
      testFlashQkv<__half>(e, 1, 64, 14, 12, 64, false);
      testFlashQkv<__nv_bfloat16>(e, 1, 64, 0, 16, 80, false);
      testFlashQkv<__half>(e, 1, 20, 7, 2, 64, true);
      testFlashQkv<__nv_bfloat16>(e, 3, 64, 14, 12, 64, true);  // three images' windows, one launch
      testFlashQkv<__half>(e, 2, 20, 7, 2, 64, true, kDense, false, kQ128);
      testFlashQkv<__half>(e, 2, 9, 0, 3, 32, false);
    }
    testFlashDeclines(e);
}

void attentionBenchmarks(Env& e) {
  const int64_t T = 4096, C = 768;
  float* x = e.dev(randn(T * 3 * C));
  float* y = e.devAlloc(T * 4 * C);
  float* rh = e.dev(randn(127 * 64));
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
    // The same with two m-tiles per warp (FlashTile::Q128, OMNISEG_FLASH_QTILE=128).
    constexpr auto kQ128 = ops::cuda::FlashTile::Q128;
    bench(e, "flashAttention fp16 global B1 64x64 h12 d64 q128", [&] {
      ops::cuda::flashAttention(e.gpu, q16, q16 + n, q16 + 2 * n, 1, 12, 64, 64, 64, 0.125f, th,
                                th, ow, 0, 0, 0, ops::cuda::FlashKeys::Auto, false, kQ128);
    });
    bench(e, "flashAttention bf16 global B1 64x64 h12 d64 q128 out-half", [&] {
      ops::cuda::flashAttention(e.gpu, qb, qb + n, qb + 2 * n, 1, 12, 64, 64, 64, 0.125f, th, th,
                                ow, 0, 0, 0, ops::cuda::FlashKeys::Auto, true, kQ128);
    });
    bench(e, "flashAttention bf16 global B1 64x64 h12 d64 out-half", [&] {
      ops::cuda::flashAttention(e.gpu, qb, qb + n, qb + 2 * n, 1, 12, 64, 64, 64, 0.125f, th, th,
                                ow, 0, 0, 0, ops::cuda::FlashKeys::Auto, true);
    });
    bench(e, "flashAttention fp16 global B1 64x64 h12 d64 no bias q128", [&] {
      ops::cuda::flashAttention(e.gpu, q16, q16 + n, q16 + 2 * n, 1, 12, 64, 64, 64, 0.125f,
                                nullptr, nullptr, ow, 0, 0, 0, ops::cuda::FlashKeys::Auto, false, kQ128);
    });
    const int64_t nw = 25 * 12 * 196 * 64;
    auto* w16 = static_cast<__half*>(e.devArena.bytes(3 * nw * sizeof(__half)));
    OMNISEG_CUDA_CHECK(cudaMemsetAsync(w16, 0, 3 * nw * sizeof(__half), e.stream.get()));
    auto* wb = reinterpret_cast<__nv_bfloat16*>(w16);
    float* thw = e.dev(randn(25 * 12 * 196 * 27, 0.5f));
    float* oww = e.devAlloc(25 * 196 * 12 * 64);
    bench(e, "flashAttention fp16 windows B25 14x14 h12 d64", [&] {
      ops::cuda::flashAttention(e.gpu, w16, w16 + nw, w16 + 2 * nw, 25, 12, 14, 14, 64, 0.125f,
                                thw, thw, oww, 0, 0, 0, ops::cuda::FlashKeys::Dense);
    });
    bench(e, "flashAttention fp16 windows B25 14x14 h12 d64 rows", [&] {
      ops::cuda::flashAttention(e.gpu, w16, w16 + nw, w16 + 2 * nw, 25, 12, 14, 14, 64, 0.125f,
                                thw, thw, oww, 0, 0, 0, ops::cuda::FlashKeys::Rows);
    });
    bench(e, "flashAttention bf16 windows B25 14x14 h12 d64", [&] {
      ops::cuda::flashAttention(e.gpu, wb, wb + nw, wb + 2 * nw, 25, 12, 14, 14, 64, 0.125f, thw,
                                thw, oww, 0, 0, 0, ops::cuda::FlashKeys::Dense);
    });
    bench(e, "flashAttention bf16 windows B25 14x14 h12 d64 rows", [&] {
      ops::cuda::flashAttention(e.gpu, wb, wb + nw, wb + 2 * nw, 25, 12, 14, 14, 64, 0.125f, thw,
                                thw, oww, 0, 0, 0, ops::cuda::FlashKeys::Rows);
    });
    bench(e, "flashAttention bf16 windows B25 14x14 h12 d64 rows q128", [&] {
      ops::cuda::flashAttention(e.gpu, wb, wb + nw, wb + 2 * nw, 25, 12, 14, 14, 64, 0.125f, thw,
                                thw, oww, 0, 0, 0, ops::cuda::FlashKeys::Rows, false, kQ128);
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
  e.reset();
}

}  // namespace optest
