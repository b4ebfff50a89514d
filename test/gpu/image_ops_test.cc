// CUDA vs CPU: resampling (torch bilinear on float planes, Pillow-exact 8-bit resize) and the
// image normalisation of the preprocessing. Bounds: see cuda_ops_test.cc.
#include "test/gpu/op_test.h"

namespace optest {

namespace {

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

// resizeThreshold (the decoder's last resize and threshold in one op; CUDA: the resize into
// scratch, then the threshold): exact, as the resize is bit-exact. Same size: x > t itself.
void testResizeThreshold(Env& e, int64_t ih, int64_t iw, int64_t H, int64_t W, float t) {
  auto in = randn(ih * iw);
  in[0] = t;  // (not above)
  std::vector<uint8_t> ref(H * W), got(H * W, 7);
  ops::cpu::resizeThreshold(e.cpu, in.data(), ih, iw, H, W, t, ref.data(), nullptr);
  auto* d = static_cast<uint8_t*>(e.devArena.bytes(H * W));
  ops::resizeThreshold(e.gpu, e.dev(in), ih, iw, H, W, t, d, nullptr);
  ops::download(e.gpu, d, H * W, got.data());
  reportBytes("resizeThreshold", dims({ih, iw}) + "->" + dims({H, W}) + " t=" + std::to_string(t),
              ref.data(), got.data(), ref.size());
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

// normalizeRgb: 8-bit RGB through a per-channel table into zero-padded planes; exact.
void testNormalize(Env& e, int64_t h, int64_t w, int64_t S) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> rgb(static_cast<size_t>(h * w * 3));
  for (auto& v : rgb) v = static_cast<uint8_t>(byte(rng));
  const auto lut = randn(3 * 256);
  std::vector<float> ref(3 * S * S);
  ops::cpu::normalizeRgb(e.cpu, rgb.data(), h, w, lut.data(), S, ref.data());
  auto* drgb = static_cast<uint8_t*>(e.devArena.bytes(rgb.size()));
  ops::upload(e.gpu, rgb.data(), rgb.size(), drgb);
  float* dout = e.devAlloc(3 * S * S);
  ops::normalizeRgb(e.gpu, drgb, h, w, e.dev(lut), S, dout);
  auto got = e.host(dout, 3 * S * S);
  report("normalizeRgb", dims({h, w, 3}) + " -> " + dims({3, S, S}), ref.data(), got.data(),
         ref.size(), 0, Norm::Exact);
  e.reset();
}

}  // namespace

void imageTests(Env& e) {
    // resizeBilinear: upscale, downscale, odd, crops of the input and of the output
    testResize(e, 3, 256, 256, 256, 256, 1024, 1024, 1024, 1024);
    testResize(e, 2, 1024, 1024, 1024, 1024, 333, 517, 333, 517);
    testResize(e, 1, 7, 5, 5, 7, 23, 11, 23, 11);
    testResize(e, 3, 250, 260, 300, 280, 1024, 1024, 700, 900);
    testResize(e, 2, 256, 256, 256, 256, 1024, 1024, 683, 1024);
    testResize(e, 1, 1, 1, 1, 1, 4, 3, 4, 3);
    testResizeThreshold(e, 1024, 683, 2160, 1440, 0.f);
    testResizeThreshold(e, 700, 1024, 300, 410, 0.5f);
    testResizeThreshold(e, 64, 64, 64, 64, -0.25f);
    testResizeU8All(e);
    testNormalize(e, 681, 1024, 1024);
    testNormalize(e, 1024, 1024, 1024);
    testNormalize(e, 5, 3, 8);
}

}  // namespace optest
