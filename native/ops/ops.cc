// The dispatchers: one per op, each runs the CPU implementation or, when the pass has a GPU
// stream, the CUDA one. For CUDA, every input pointer goes through dev(): model weights are host
// pointers into the checkpoint and map to their device copies; activations pass through as
// they are.
#include "ops/ops.h"

#include <cstdint>

#include "core/error.h"

#ifdef OMNISEG_CUDA
#include "gpu/stream.h"
#define OMNISEG_DISPATCH(call)                          \
  do {                                                  \
    if (ctx.gpu) {                                      \
      const gpu::Stream& s = *ctx.gpu;                  \
      [[maybe_unused]] auto dev = [&s](const float* p) { return s.resolve(p); }; \
      return cuda::call;                                \
    }                                                   \
    [[maybe_unused]] auto dev = [](const float* p) { return p; }; \
    return cpu::call;                                   \
  } while (0)
#else
#define OMNISEG_DISPATCH(call)                   \
  do {                                           \
    [[maybe_unused]] auto dev = [](const float* p) { return p; }; \
    return cpu::call;                            \
  } while (0)
#endif

namespace omniseg::ops {

void linear(Ctx& ctx, const float* x, int64_t M, int64_t K, const float* W, const float* b,
            int64_t N, float* y, Act act, bool accumulate, int64_t ldx, int64_t ldy) {
  OMNISEG_DISPATCH(linear(ctx, dev(x), M, K, dev(W), dev(b), N, y, act, accumulate, ldx, ldy));
}

void matmul(Ctx& ctx, const float* x, int64_t M, int64_t K, const float* B, int64_t N, float* y,
            bool accumulate) {
  OMNISEG_DISPATCH(matmul(ctx, dev(x), M, K, dev(B), N, y, accumulate));
}

void layerNorm(Ctx& ctx, const float* x, int64_t rows, int64_t C, const float* gamma,
               const float* beta, float eps, float* y) {
  OMNISEG_DISPATCH(layerNorm(ctx, dev(x), rows, C, dev(gamma), dev(beta), eps, y));
}

void layerNormLinear(Ctx& ctx, const float* x, int64_t M, int64_t K, const float* gamma,
                     const float* beta, float eps, const float* W, const float* b, int64_t N,
                     float* y) {
  OMNISEG_DISPATCH(layerNormLinear(ctx, dev(x), M, K, dev(gamma), dev(beta), eps, dev(W), dev(b), N, y));
}

void preNormMlp(Ctx& ctx, float* x, int64_t M, int64_t C, const float* gamma, const float* beta,
                float eps, const float* W1, const float* b1, int64_t H, Act act, const float* W2,
                const float* b2) {
  OMNISEG_DISPATCH(preNormMlp(ctx, x, M, C, dev(gamma), dev(beta), eps, dev(W1), dev(b1), H, act,
                              dev(W2), dev(b2)));
}

void gelu(Ctx& ctx, float* x, int64_t n) { OMNISEG_DISPATCH(gelu(ctx, x, n)); }
void relu(Ctx& ctx, float* x, int64_t n) { OMNISEG_DISPATCH(relu(ctx, x, n)); }

void add(Ctx& ctx, const float* a, const float* b, int64_t n, float* y) {
  OMNISEG_DISPATCH(add(ctx, dev(a), dev(b), n, y));
}

void scaleShiftRows(Ctx& ctx, const float* x, int64_t rows, int64_t C, const float* scale,
                    const float* shift, float* y) {
  OMNISEG_DISPATCH(scaleShiftRows(ctx, dev(x), rows, C, dev(scale), dev(shift), y));
}

void attention(Ctx& ctx, const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v,
               int64_t ldv, int64_t Nq, int64_t Nk, int64_t heads, int64_t d, float scale,
               float* out, bool causal) {
  OMNISEG_DISPATCH(attention(ctx, dev(q), ldq, dev(k), ldk, dev(v), ldv, Nq, Nk, heads, d, scale, out,
                             causal));
}

void tokensAttendImage(Ctx& ctx, const float* q, int64_t Nq, const float* k, const float* v,
                       int64_t N, int64_t C, const float* Wk, const float* bk, const float* Wv,
                       const float* bv, int64_t heads, int64_t d, float scale, float* out) {
  OMNISEG_DISPATCH(tokensAttendImage(ctx, dev(q), Nq, dev(k), dev(v), N, C, dev(Wk), dev(bk), dev(Wv),
                                     dev(bv), heads, d, scale, out));
}

void imageAttendsTokens(Ctx& ctx, const float* xq, const float* Q, int64_t N, int64_t C,
                        const float* Wq, const float* bq, const float* K, const float* V,
                        int64_t Nt, int64_t heads, int64_t d, float scale, const float* Wo,
                        const float* bo, float* x) {
  OMNISEG_DISPATCH(imageAttendsTokens(ctx, dev(xq), dev(Q), N, C, dev(Wq), dev(bq), dev(K), dev(V), Nt,
                                      heads, d, scale, dev(Wo), dev(bo), x));
}

void relPosAttention(Ctx& ctx, const float* qkv, int64_t B, int64_t h, int64_t w, int64_t heads,
                     int64_t d, const float* relPosH, const float* relPosW, float* out) {
  OMNISEG_DISPATCH(relPosAttention(ctx, dev(qkv), B, h, w, heads, d, dev(relPosH), dev(relPosW), out));
}

void windowRelPosAttention(Ctx& ctx, const float* qkv, int64_t E, int64_t ws, const float* fill,
                           int64_t heads, int64_t d, const float* relPosH, const float* relPosW,
                           float* out) {
  OMNISEG_DISPATCH(windowRelPosAttention(ctx, dev(qkv), E, ws, dev(fill), heads, d, dev(relPosH),
                                         dev(relPosW), out));
}

void preNormRelPosAttention(Ctx& ctx, float* x, int64_t B, int64_t E, int64_t C, const float* gamma,
                            const float* beta, float eps, const float* Wqkv, const float* bqkv,
                            int64_t heads, int64_t ws, const float* relPosH, const float* relPosW,
                            const float* Wproj, const float* bproj) {
  OMNISEG_DISPATCH(preNormRelPosAttention(ctx, x, B, E, C, dev(gamma), dev(beta), eps, dev(Wqkv),
                                          dev(bqkv), heads, ws, dev(relPosH), dev(relPosW), dev(Wproj),
                                          dev(bproj)));
}

void resizeBilinear(Ctx& ctx, const float* in, int64_t planes, int64_t ih, int64_t iw,
                    int64_t inStride, int64_t inPlaneStride, float* out, int64_t oh, int64_t ow,
                    int64_t outRows, int64_t outCols) {
  OMNISEG_DISPATCH(resizeBilinear(ctx, dev(in), planes, ih, iw, inStride, inPlaneStride, out, oh,
                                  ow, outRows, outCols));
}

void resizeThreshold(Ctx& ctx, const float* x, int64_t ih, int64_t iw, int64_t H, int64_t W,
                     float t, uint8_t* mask, double* bounds) {
  OMNISEG_CHECK(ih > 0 && iw > 0 && H > 0 && W > 0, "resizeThreshold: bad shape");
  OMNISEG_CHECK(x && mask, "resizeThreshold: null operand");
  OMNISEG_CHECK(!bounds || !ctx.gpu, "resizeThreshold: bounds are taken on the CPU only");
  OMNISEG_DISPATCH(resizeThreshold(ctx, dev(x), ih, iw, H, W, t, mask, bounds));
}

void resizeU8Pil(Ctx& ctx, const uint8_t* in, int64_t ih, int64_t iw, int64_t channels,
                 uint8_t* out, int64_t oh, int64_t ow) {
  OMNISEG_DISPATCH(resizeU8Pil(ctx, in, ih, iw, channels, out, oh, ow));
}

void patchify(Ctx& ctx, const float* x, int64_t C, int64_t H, int64_t W, int64_t k, float* cols) {
  OMNISEG_DISPATCH(patchify(ctx, dev(x), C, H, W, k, cols));
}

void im2col3x3(Ctx& ctx, const float* x, int64_t H, int64_t W, int64_t C, float* cols) {
  OMNISEG_DISPATCH(im2col3x3(ctx, dev(x), H, W, C, cols));
}

void convTranspose(Ctx& ctx, const float* x, int64_t H, int64_t W, int64_t Cin, int64_t k,
                   const float* weight, const float* b, int64_t Cout, float* y, Act act) {
  OMNISEG_DISPATCH(convTranspose(ctx, dev(x), H, W, Cin, k, dev(weight), dev(b), Cout, y, act));
}

void convTransposeProject(Ctx& ctx, const float* x, int64_t H, int64_t W, int64_t Cin, int64_t k,
                          const float* weight, const float* b, int64_t Cout, Act act,
                          const float* proj, int64_t P, float* y) {
  OMNISEG_DISPATCH(convTransposeProject(ctx, dev(x), H, W, Cin, k, dev(weight), dev(b), Cout, act, dev(proj), P, y));
}

void windowPartition(Ctx& ctx, const float* x, int64_t E, int64_t D, int64_t ws,
                     const float* fill, float* win) {
  OMNISEG_DISPATCH(windowPartition(ctx, dev(x), E, D, ws, dev(fill), win));
}

void windowUnpartition(Ctx& ctx, const float* win, int64_t E, int64_t D, int64_t ws, float* x) {
  OMNISEG_DISPATCH(windowUnpartition(ctx, dev(win), E, D, ws, x));
}

void transpose(Ctx& ctx, const float* x, int64_t rows, int64_t cols, float* y) {
  OMNISEG_DISPATCH(transpose(ctx, dev(x), rows, cols, y));
}

void broadcastRows(Ctx& ctx, const float* row, int64_t rows, int64_t C, float* y) {
  OMNISEG_DISPATCH(broadcastRows(ctx, dev(row), rows, C, y));
}

void normalizeRgb(Ctx& ctx, const uint8_t* rgb, int64_t h, int64_t w, const float* lut, int64_t S,
                  float* planes) {
  OMNISEG_DISPATCH(normalizeRgb(ctx, rgb, h, w, dev(lut), S, planes));
}

void threshold(Ctx& ctx, const float* x, int64_t n, float t, uint8_t* y) {
  OMNISEG_DISPATCH(threshold(ctx, dev(x), n, t, y));
}

void maskBoundaries(Ctx& ctx, const uint8_t* masks, int64_t planes, int64_t H, int64_t W,
                    uint32_t* ends, uint32_t* pos) {
  OMNISEG_CHECK(planes >= 0 && H >= 0 && W >= 0, "maskBoundaries: bad shape");
  OMNISEG_CHECK(H == 0 || W == 0 || planes <= static_cast<int64_t>(UINT32_MAX) / H / W,
                "maskBoundaries: planes x H x W must stay below 2^32");
  OMNISEG_DISPATCH(maskBoundaries(ctx, masks, planes, H, W, ends, pos));
}

void copy(Ctx& ctx, const float* src, int64_t n, float* dst) {
  OMNISEG_DISPATCH(copy(ctx, dev(src), n, dst));
}

void upload(Ctx& ctx, const void* host, size_t bytes, void* dst) {
  OMNISEG_DISPATCH(upload(ctx, host, bytes, dst));
}

void download(Ctx& ctx, const void* src, size_t bytes, void* host) {
  OMNISEG_DISPATCH(download(ctx, src, bytes, host));
}

const void* stage(Ctx& ctx, const void* host, size_t bytes) {
  if (!ctx.gpu) return host;
  void* dst = ctx.arena.bytes(bytes);
  upload(ctx, host, bytes, dst);
  return dst;
}

void* outputBuffer(Ctx& ctx, void* host, size_t bytes) { return ctx.gpu ? ctx.arena.bytes(bytes) : host; }

void collect(Ctx& ctx, const void* buffer, size_t bytes, void* host) {
  if (buffer != host) download(ctx, buffer, bytes, host);
}

void wait(Ctx& ctx) {
#ifdef OMNISEG_CUDA
  if (ctx.gpu) ctx.gpu->synchronize();
#endif
}

}  // namespace omniseg::ops
