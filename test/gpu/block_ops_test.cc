// CUDA vs CPU: the fused transformer-layer ops (ops/cuda/blocks.cu, windowRelPosAttention in
// rel_pos_attention.cu) in fp32 and both half precisions. fp32 runs the single ops in sequence,
// so its bound is the GEMMs' (gemmBound); half precision rounds the GEMM and attention inputs, so
// its bounds are those of rounding (fp16 keeps 11 significant bits, bf16 8), relative to the
// output's magnitude. The benchmarks time each fused op next to the sequence it replaces.
#include <cstdlib>

#include "test/gpu/op_test.h"

namespace optest {

namespace {

void testLayerNormLinear(Env& e, int64_t M, int64_t K, int64_t N, bool bias, Precision p) {
  auto x = randn(M * K, 2.f), g = randn(K), b = randn(K), W = randn(N * K, 0.05f), wb = randn(N);
  std::vector<float> ref(M * N);
  ops::cpu::layerNormLinear(e.cpu, x.data(), M, K, g.data(), b.data(), 1e-6f, W.data(),
                            bias ? wb.data() : nullptr, N, ref.data());
  float* dy = e.devAlloc(M * N);
  withPrecision(e, p, [&] {
    ops::layerNormLinear(e.gpu, e.dev(x), M, K, e.dev(g), e.dev(b), 1e-6f, e.dev(W),
                         bias ? e.dev(wb) : nullptr, N, dy);
  });
  auto got = e.host(dy, M * N);
  report("layerNormLinear", dims({M, K, N}) + (bias ? " bias " : " ") + precisionName(p), ref.data(),
         got.data(), ref.size(), halfBound(p, K), Norm::Magnitude);
  e.reset();
}

void testPreNormMlp(Env& e, int64_t M, int64_t C, int64_t H, Act act, Precision p) {
  auto x = randn(M * C), g = randn(C), b = randn(C), W1 = randn(H * C, 0.05f), b1 = randn(H),
       W2 = randn(C * H, 0.03f), b2 = randn(C);
  std::vector<float> ref = x;
  ops::cpu::preNormMlp(e.cpu, ref.data(), M, C, g.data(), b.data(), 1e-6f, W1.data(), b1.data(), H,
                       act, W2.data(), b2.data());
  float* dx = e.dev(x);
  withPrecision(e, p, [&] {
    ops::preNormMlp(e.gpu, dx, M, C, e.dev(g), e.dev(b), 1e-6f, e.dev(W1), e.dev(b1), H, act,
                    e.dev(W2), e.dev(b2));
  });
  auto got = e.host(dx, M * C);
  report("preNormMlp", dims({M, C, H}) + " " + actName(act) + " " + precisionName(p), ref.data(),
         got.data(), ref.size(), halfBound(p, H, 2), Norm::Magnitude);
  e.reset();
}

void testWindowRelPos(Env& e, int64_t E, int64_t ws, int64_t heads, int64_t d, bool fill, Precision p) {
  const int64_t C = heads * d;
  auto qkv = randn(E * E * 3 * C), f = randn(3 * C), rh = randn((2 * ws - 1) * d, 0.3f),
       rw = randn((2 * ws - 1) * d, 0.3f);
  std::vector<float> ref(E * E * C);
  ops::cpu::windowRelPosAttention(e.cpu, qkv.data(), E, ws, fill ? f.data() : nullptr, heads, d,
                                  rh.data(), rw.data(), ref.data());
  float* dout = e.devAlloc(E * E * C);
  withPrecision(e, p, [&] {
    ops::windowRelPosAttention(e.gpu, e.dev(qkv), E, ws, fill ? e.dev(f) : nullptr, heads, d,
                               e.dev(rh), e.dev(rw), dout);
  });
  auto got = e.host(dout, E * E * C);
  report("windowRelPosAttn", "E" + std::to_string(E) + " ws" + std::to_string(ws) + " h" +
                                 std::to_string(heads) + " d" + std::to_string(d) +
                                 (fill ? " fill " : " ") + precisionName(p),
         ref.data(), got.data(), ref.size(), halfBound(p, std::max(d, ws * ws)), Norm::Magnitude);
  e.reset();
}

// Reports what ref and got (outputs of x += layer(x)) add to x, within half precision's bound of
// three roundings.
void reportAdded(const std::string& op, const std::string& shape, const std::vector<float>& x,
                 std::vector<float> ref, std::vector<float> got, Precision p, int64_t K) {
  for (size_t i = 0; i < x.size(); ++i) {
    ref[i] -= x[i];
    got[i] -= x[i];
  }
  report(op, shape, ref.data(), got.data(), ref.size(), halfBound(p, K, 3), Norm::Magnitude);
}

// The attention half of a SAM ViT layer (B grids, windowed when ws > 0). The half path hands qkv
// and the attention output on in half precision, so it is checked on what it adds to x (the
// residual would dilute an error in it), within three roundings' bound.
void testPreNormRelPos(Env& e, int64_t B, int64_t E, int64_t C, int64_t heads, int64_t ws, Precision p) {
  const int64_t M = B * E * E, d = C / heads, s = ws > 0 ? ws : E;
  auto x = randn(M * C), g = randn(C), b = randn(C), Wqkv = randn(3 * C * C, 0.05f), bqkv = randn(3 * C),
       rh = randn((2 * s - 1) * d, 0.3f), rw = randn((2 * s - 1) * d, 0.3f), Wo = randn(C * C, 0.05f),
       bo = randn(C);
  std::vector<float> ref = x;
  ops::cpu::preNormRelPosAttention(e.cpu, ref.data(), B, E, C, g.data(), b.data(), 1e-6f, Wqkv.data(),
                                   bqkv.data(), heads, ws, rh.data(), rw.data(), Wo.data(), bo.data());
  float* dx = e.dev(x);
  withPrecision(e, p, [&] {
    ops::preNormRelPosAttention(e.gpu, dx, B, E, C, e.dev(g), e.dev(b), 1e-6f, e.dev(Wqkv), e.dev(bqkv),
                                heads, ws, e.dev(rh), e.dev(rw), e.dev(Wo), e.dev(bo));
  });
  const char* keys = std::getenv("OMNISEG_FLASH_KEYS");
  const char* qkv = std::getenv("OMNISEG_FLASH_QKV");
  reportAdded("preNormRelPosAttn",
              "B" + std::to_string(B) + " E" + std::to_string(E) + " C" + std::to_string(C) + " h" +
                  std::to_string(heads) + " ws" + std::to_string(ws) + " " + precisionName(p) +
                  (keys ? std::string(" keys=") + keys : "") + (qkv ? std::string(" qkv=") + qkv : ""),
              x, ref, e.host(dx, M * C), p, std::max(C, s * s));
  e.reset();
}

// The same through a model's weight mirror with half copies (host weight pointers, as SAM's
// encoder passes them): the padded [relPosH; relPosW] pair is then made once per stream and layer
// (gpu::Stream::derived). A windowed and a global layer, each with its own rel-pos tables, run
// alternately on the same input buffer: every run of a layer must give the first run's bits (the
// pair taken from the stream's cache, not mixed up between the layers), within the CPU bound.
void testPreNormRelPosMirror(Env& e, int64_t E, int64_t C, int64_t heads, int64_t ws, Precision p) {
  const int64_t M = E * E, d = C / heads;
  auto x = randn(M * C), g = randn(C), b = randn(C), Wqkv = randn(3 * C * C, 0.05f), bqkv = randn(3 * C),
       Wo = randn(C * C, 0.05f), bo = randn(C);
  std::vector<std::vector<float>> rel;  // windowed relPosH, relPosW; global relPosH, relPosW
  for (int64_t s : {ws, ws, E, E}) rel.push_back(randn((2 * s - 1) * d, 0.3f));
  gpu::WeightMirror mirror;
  for (auto* t : {&g, &b, &Wqkv, &bqkv, &Wo, &bo}) mirror.add(t->data(), t->size());
  for (auto& t : rel) mirror.add(t.data(), t.size());
  mirror.addHalfCopies(p);
  gpu::Stream ms(&mirror);
  ms.setPrecision(p);
  Arena arena(gpu::deviceAllocator());
  Ctx mctx{e.pool, arena, &ms};
  float* dx = arena.floats(M * C);
  auto layer = [&](int64_t w) {  // one layer (w: its window size, 0 global) on x
    ops::upload(mctx, x.data(), x.size() * sizeof(float), dx);
    const auto& rh = rel[w ? 0 : 2];
    const auto& rw = rel[w ? 1 : 3];
    ops::preNormRelPosAttention(mctx, dx, 1, E, C, g.data(), b.data(), 1e-6f, Wqkv.data(), bqkv.data(), heads, w,
                                rh.data(), rw.data(), Wo.data(), bo.data());
    std::vector<float> got(M * C);
    ops::download(mctx, dx, got.size() * sizeof(float), got.data());
    return got;
  };
  for (int64_t w : {ws, int64_t{0}}) {
    const auto first = layer(w);
    layer(w ? 0 : ws);  // (the other layer in between)
    const auto again = layer(w);
    std::vector<float> ref = x;
    ops::cpu::preNormRelPosAttention(e.cpu, ref.data(), 1, E, C, g.data(), b.data(), 1e-6f, Wqkv.data(),
                                     bqkv.data(), heads, w, rel[w ? 0 : 2].data(), rel[w ? 1 : 3].data(),
                                     Wo.data(), bo.data());
    const int64_t s = w ? w : E;
    const std::string shape = "E" + std::to_string(E) + " C" + std::to_string(C) + " h" + std::to_string(heads) +
                              " ws" + std::to_string(w) + " " + precisionName(p);
    reportAdded("preNormRelPos(mirror)", shape, x, ref, first, p, std::max(C, s * s));
    report("preNormRelPos(mirror)", shape + " again", first.data(), again.data(), first.size(), 0, Norm::Exact);
  }
  e.reset();
}

// SAM's cross attention: the CUDA ops run the reference's order (project, attend, out_proj), the
// CPU the factored one (ops/cpu/cross_attention.cc); both must agree within the GEMMs' bound.
void testCrossAttention(Env& e, int64_t N, int64_t C, int64_t heads, int64_t d, int64_t Nt, bool given, Precision p,
                        bool biases = true) {
  const int64_t I = heads * d;
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  auto q = randn(Nt * I), k = randn(N * C), v = randn(N * C), K = randn(Nt * I), V = randn(Nt * I),
       Q = randn(N * I), x = randn(N * C), Wq = randn(I * C, 0.1f), bq = randn(I), Wk = randn(I * C, 0.1f),
       bk = randn(I), Wv = randn(I * C, 0.1f), bv = randn(I), Wo = randn(C * I, 0.1f), bo = randn(C);
  const std::string shape = dims({N, C, heads, d, Nt}) + (given ? " Q given " : " ") + (biases ? "" : "no biases ") +
                            precisionName(p);
  // Null biases take the ops' bias-free branches (the CPU's shift, value-bias and out_proj terms).
  const auto bias = [&](const std::vector<float>& b) { return biases ? b.data() : nullptr; };
  const auto devBias = [&](const std::vector<float>& b) { return biases ? e.dev(b) : nullptr; };
  std::vector<float> ref(Nt * I);
  ops::cpu::tokensAttendImage(e.cpu, q.data(), Nt, k.data(), v.data(), N, C, Wk.data(), bias(bk), Wv.data(),
                              bias(bv), heads, d, scale, ref.data());
  float* dout = e.devAlloc(Nt * I);
  withPrecision(e, p, [&] {
    ops::tokensAttendImage(e.gpu, e.dev(q), Nt, e.dev(k), e.dev(v), N, C, e.dev(Wk), devBias(bk), e.dev(Wv),
                           devBias(bv), heads, d, scale, dout);
  });
  auto got = e.host(dout, Nt * I);
  report("tokensAttendImage", shape, ref.data(), got.data(), ref.size(), halfBound(p, C), Norm::Magnitude);
  std::vector<float> refX = x;
  ops::cpu::imageAttendsTokens(e.cpu, given ? nullptr : k.data(), given ? Q.data() : nullptr, N, C,
                               given ? nullptr : Wq.data(), given ? nullptr : bias(bq), K.data(), V.data(), Nt,
                               heads, d, scale, Wo.data(), bias(bo), refX.data());
  float* dx = e.dev(x);
  withPrecision(e, p, [&] {
    ops::imageAttendsTokens(e.gpu, given ? nullptr : e.dev(k), given ? e.dev(Q) : nullptr, N, C,
                            given ? nullptr : e.dev(Wq), given ? nullptr : devBias(bq), e.dev(K), e.dev(V), Nt,
                            heads, d, scale, e.dev(Wo), devBias(bo), dx);
  });
  got = e.host(dx, N * C);
  report("imageAttendsTokens", shape, refX.data(), got.data(), refX.size(), halfBound(p, C, 2), Norm::Magnitude);
  e.reset();
}

}  // namespace

void blockTests(Env& e) {
  for (Precision p : {Precision::Fp32, Precision::Fp16, Precision::Bf16}) {
    testLayerNormLinear(e, 4096, 768, 2304, true, p);
    testLayerNormLinear(e, 77, 512, 1536, false, p);
    testLayerNormLinear(e, 5, 64, 48, true, p);  // small M: linear's fp32 kernels
    testPreNormMlp(e, 4096, 768, 3072, Act::Gelu, p);
    testPreNormMlp(e, 485, 768, 3072, Act::QuickGelu, p);
    testPreNormMlp(e, 7, 256, 2048, Act::Relu, p);
    testPreNormMlp(e, 33, 20, 44, Act::Gelu, p);  // unaligned biases and sizes
    // SAM's windows (64 = 4·14 + 8: padded), an exact tiling, a fill-less grid, ViT-H's heads,
    // and a head size the fused kernel declines (the half path falls back to the fp32 one)
    testWindowRelPos(e, 64, 14, 12, 64, true, p);
    testWindowRelPos(e, 28, 14, 2, 64, true, p);
    testWindowRelPos(e, 9, 4, 2, 32, false, p);
    testWindowRelPos(e, 30, 14, 16, 80, true, p);
    testWindowRelPos(e, 64, 14, 12, 14, true, p);  // SlimSAM-77's 14 per head: no fused kernel
    testRelPos(e, 2, 64, 64, 12, 14, p);  // its global layers, two images
    testRelPos(e, 1, 32, 32, 4, 64, p);
    // The attention half of SAM's layers: ViT-B windowed and global (two images), padded windows
    // of two images, SlimSAM-77's 14-wide heads (the half path declines: fp32 ops), ViT-H's d = 80
    testPreNormRelPos(e, 1, 64, 768, 12, 14, p);
    testPreNormRelPos(e, 2, 64, 768, 12, 0, p);
    testPreNormRelPos(e, 2, 20, 128, 2, 7, p);
    testPreNormRelPos(e, 2, 64, 768, 12, 14, p);  // (ViT-B's windows of two images in one pass)
    // (1024 windows of 2×2 × 32 heads per image: one image per launch, the batch in two groups)
    testPreNormRelPos(e, 2, 64, 1024, 32, 2, p);
    if (p != Precision::Fp32) testPreNormRelPosMirror(e, 32, 256, 4, 14, p);
    testPreNormRelPos(e, 1, 16, 168, 12, 14, p);
    testPreNormRelPos(e, 1, 24, 160, 2, 0, p);
    // the windows again with the fused kernel's token-order key layout (OMNISEG_FLASH_KEYS=dense;
    // key rows are the default), its half output written onto the grid
    withEnv("OMNISEG_FLASH_KEYS", "dense", [&] {
      testPreNormRelPos(e, 1, 64, 768, 12, 14, p);
      testPreNormRelPos(e, 2, 20, 128, 2, 7, p);
    });
    // straight from the qkv GEMM's output, the rel-pos terms in the kernel (OMNISEG_FLASH_QKV=1):
    // ViT-B's windows and global layers (two images), padded windows of two images (fill rows),
    // ViT-H's d = 80, key rows and token order
    withEnv("OMNISEG_FLASH_QKV", "1", [&] {
      testPreNormRelPos(e, 1, 64, 768, 12, 14, p);
      testPreNormRelPos(e, 2, 64, 768, 12, 0, p);
      testPreNormRelPos(e, 2, 20, 128, 2, 7, p);
      testPreNormRelPos(e, 1, 24, 160, 2, 0, p);
      withEnv("OMNISEG_FLASH_KEYS", "dense", [&] { testPreNormRelPos(e, 2, 20, 128, 2, 7, p); });
    });
    // SAM's decoder (7 tokens: factored on the CPU; 20: the plain order there too)
    testCrossAttention(e, 4096, 256, 8, 16, 7, false, p);
    testCrossAttention(e, 4096, 256, 8, 16, 7, true, p);
    testCrossAttention(e, 1000, 256, 8, 16, 20, false, p);
    testCrossAttention(e, 1000, 256, 8, 16, 20, true, p);         // Q given, plain order
    testCrossAttention(e, 513, 256, 8, 16, 16, false, p);         // heads·tokens = heads·d: the last factored count
    testCrossAttention(e, 4096, 256, 8, 16, 7, false, p, false);  // no biases
    testCrossAttention(e, 300, 16, 2, 8, 7, true, p, false);      // the tiny fixture's widths, Q given, no biases
  }
}

void blockBenchmarks(Env& e) {
  const int64_t T = 4096, C = 768, H = 3072, E = 64;
  float* x = e.dev(randn(T * C));
  float* g = e.dev(randn(C));
  float* W1 = e.dev(randn(H * C, 0.05f));
  float* b1 = e.dev(randn(H));
  float* W2 = e.dev(randn(C * H, 0.03f));
  float* y = e.devAlloc(T * H);
  float* ln = e.devAlloc(T * C);
  float* qkv = e.dev(randn(T * 3 * C));
  float* rh = e.dev(randn(27 * 64, 0.3f));
  float* rh127 = e.dev(randn(127 * 64, 0.3f));  // (global: 2·64 - 1 rows; windows read the first 27)
  float* win = e.devAlloc(25 * 196 * 3 * C);
  float* winOut = e.devAlloc(25 * 196 * C);
  float* x4 = e.dev(randn(4 * T * C));  // (four images)
  for (Precision p : {Precision::Bf16, Precision::Fp16}) {
    withPrecision(e, p, [&] {
      const std::string n = precisionName(p);
      bench(e, ("preNormMlp 4096x768x3072 gelu " + n).c_str(),
            [&] { ops::preNormMlp(e.gpu, x, T, C, g, g, 1e-6f, W1, b1, H, Act::Gelu, W2, g); });
      bench(e, ("  vs layerNorm + 2 linear " + n).c_str(), [&] {
        ops::layerNorm(e.gpu, x, T, C, g, g, 1e-6f, ln);
        ops::linear(e.gpu, ln, T, C, W1, b1, H, y, Act::Gelu);
        ops::linear(e.gpu, y, T, H, W2, g, C, x, Act::None, true);
      });
      bench(e, ("layerNormLinear 4096x768x2304 " + n).c_str(),
            [&] { ops::layerNormLinear(e.gpu, x, T, C, g, g, 1e-6f, W1, b1, 3 * C, y); });
      bench(e, ("  vs layerNorm + linear " + n).c_str(), [&] {
        ops::layerNorm(e.gpu, x, T, C, g, g, 1e-6f, ln);
        ops::linear(e.gpu, ln, T, C, W1, b1, 3 * C, y);
      });
      for (int64_t ws : {14, 0}) {
        const std::string what = std::string(ws ? "windowed" : "global") + " E64 C768 h12 " + n;
        bench(e, ("preNormRelPosAttention " + what).c_str(), [&] {
          ops::preNormRelPosAttention(e.gpu, x, 1, E, C, g, g, 1e-6f, W1, b1, 12, ws, rh127, rh127, W2, g);
        });
        withEnv("OMNISEG_FLASH_QKV", "1", [&] {  // the attention straight from qkv
          bench(e, ("preNormRelPosAttention qkv=1 " + what).c_str(), [&] {
            ops::preNormRelPosAttention(e.gpu, x, 1, E, C, g, g, 1e-6f, W1, b1, 12, ws, rh127, rh127, W2, g);
          });
        });
        bench(e, ("  vs layerNormLinear + attention + linear " + what).c_str(), [&] {
          ops::layerNormLinear(e.gpu, x, T, C, g, g, 1e-6f, W1, b1, 3 * C, y);
          if (ws)
            ops::windowRelPosAttention(e.gpu, y, E, 14, b1, 12, 64, rh127, rh127, ln);
          else
            ops::relPosAttention(e.gpu, y, 1, E, E, 12, 64, rh127, rh127, ln);
          ops::linear(e.gpu, ln, T, C, W2, g, C, x, Act::None, true);
        });
      }
      // A batch of 4: the windowed layer takes all the images' windows in one split, rel-pos GEMM
      // and fused attention (the qkv path too); against four calls of one image.
      const std::string b4 = "windowed B4 E64 C768 h12 " + n;
      bench(e, ("preNormRelPosAttention " + b4).c_str(), [&] {
        ops::preNormRelPosAttention(e.gpu, x4, 4, E, C, g, g, 1e-6f, W1, b1, 12, 14, rh127, rh127, W2, g);
      });
      withEnv("OMNISEG_FLASH_QKV", "1", [&] {
        bench(e, ("preNormRelPosAttention qkv=1 " + b4).c_str(), [&] {
          ops::preNormRelPosAttention(e.gpu, x4, 4, E, C, g, g, 1e-6f, W1, b1, 12, 14, rh127, rh127, W2, g);
        });
      });
      bench(e, ("  vs 4 x B1 " + b4).c_str(), [&] {
        for (int64_t i = 0; i < 4; ++i)
          ops::preNormRelPosAttention(e.gpu, x4 + i * T * C, 1, E, C, g, g, 1e-6f, W1, b1, 12, 14, rh127, rh127,
                                      W2, g);
      });
      bench(e, ("windowRelPosAttention E64 ws14 h12 d64 " + n).c_str(),
            [&] { ops::windowRelPosAttention(e.gpu, qkv, E, 14, g, 12, 64, rh, rh, ln); });
      bench(e, ("  vs partition + relPosAttention + unpartition " + n).c_str(), [&] {
        ops::windowPartition(e.gpu, qkv, E, 3 * C, 14, g, win);
        ops::relPosAttention(e.gpu, win, 25, 14, 14, 12, 64, rh, rh, winOut);
        ops::windowUnpartition(e.gpu, winOut, E, C, 14, ln);
      });
    });
  }
  e.reset();
}

}  // namespace optest
