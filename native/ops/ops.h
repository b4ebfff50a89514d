// The op library every model is written against. Tensors are plain float arrays with their
// shapes given in the comments; activations are channels-last ([tokens, channels] / NHWC).
// One declaration per op here; the CPU implementations live in ops/cpu/ (OpenBLAS GEMM +
// vectorised kernels). Model code never branches on the backend.
#pragma once
#include <cstdint>

#include "core/arena.h"
#include "core/thread_pool.h"

namespace omniseg {

// What an op needs besides its operands: threads and scratch memory of the running pass.
struct Ctx {
  ThreadPool& pool;
  Arena& arena;
};

namespace ops {

enum class Act { None, Gelu, Relu };

// Sets the BLAS library to run single-threaded in the calling thread; omniseg parallelises
// around it with its own pool. Called once when the addon loads.
void initBlas();

// y[M,N] = act(x[M,K] · W[N,K]ᵀ + b[N])      (torch.nn.Linear; b may be null)
// accumulate: y[M,N] += x · Wᵀ + b, then act  (residual connections)
// ldx / ldy: row strides of x and y (0 = dense: K and N).
void linear(Ctx& ctx, const float* x, int64_t M, int64_t K, const float* W, const float* b,
            int64_t N, float* y, Act act = Act::None, bool accumulate = false, int64_t ldx = 0,
            int64_t ldy = 0);

// y[M,N] = x[M,K] · B[K,N] (+ y when accumulate)  (plain matrix product, B row-major)
void matmul(Ctx& ctx, const float* x, int64_t M, int64_t K, const float* B, int64_t N, float* y,
            bool accumulate = false);

// Row-wise layer norm over the last dim C (nn.LayerNorm; also LayerNorm2d on NHWC data).
// y may alias x.
void layerNorm(Ctx& ctx, const float* x, int64_t rows, int64_t C, const float* gamma,
               const float* beta, float eps, float* y);

// In place activations over n values.
void gelu(Ctx& ctx, float* x, int64_t n);  // exact (erf) GELU, nn.GELU()
void relu(Ctx& ctx, float* x, int64_t n);

// y[i] = a[i] + b[i] over n values (y may alias a or b).
void add(Ctx& ctx, const float* a, const float* b, int64_t n, float* y);

// Multi-head attention (SamAttention / eager_attention_forward):
// q [Nq, heads*d] (row stride ldq), k [Nk, heads*d] (ldk), v [Nk, heads*d] (ldv),
// out [Nq, heads*d] (dense) = softmax(q·kᵀ·scale) · v per head.
void attention(Ctx& ctx, const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v,
               int64_t ldv, int64_t Nq, int64_t Nk, int64_t heads, int64_t d, float scale,
               float* out);

// SAM ViT attention with decomposed relative-position bias, over B independent grids of h×w
// tokens (B windows, or B = 1 for global attention):
// qkv [B, h*w, 3*heads*d] as produced by the qkv Linear; relPosH [2h-1, d], relPosW [2w-1, d];
// out [B, h*w, heads*d].
// ref: transformers/models/sam/modeling_sam.py SamVisionAttention.forward / get_decomposed_rel_pos
void relPosAttention(Ctx& ctx, const float* qkv, int64_t B, int64_t h, int64_t w, int64_t heads,
                     int64_t d, const float* relPosH, const float* relPosW, float* out);

// Bilinear resize of `planes` single-channel images [planes, ih, iw] → [planes, oh, ow] with
// torch's F.interpolate(mode="bilinear", align_corners=False) semantics (no antialias).
// The input may be a crop of a larger plane: row stride inStride, plane stride inPlaneStride.
// Only the top-left outRows × outCols of the [oh, ow] result are computed and stored
// (densely, [planes, outRows, outCols]); a crop of the upscale costs only what it keeps.
void resizeBilinear(Ctx& ctx, const float* in, int64_t planes, int64_t ih, int64_t iw,
                    int64_t inStride, int64_t inPlaneStride, float* out, int64_t oh, int64_t ow,
                    int64_t outRows, int64_t outCols);

// PIL's Image.resize(..., BILINEAR, reducing_gap=None) on 8-bit interleaved pixels
// [ih, iw, channels] → [oh, ow, channels], bit-exact with Pillow (fixed-point coefficients,
// antialiasing support when shrinking).
void resizeU8Pil(Ctx& ctx, const uint8_t* in, int64_t ih, int64_t iw, int64_t channels,
                 uint8_t* out, int64_t oh, int64_t ow);

// Non-overlapping k×k patches (conv with kernel = stride = k, no padding) of an NCHW image
// [C, H, W] → im2col rows [(H/k)*(W/k), C*k*k] in the order of a Conv2d weight [out, C, k, k].
void patchify(Ctx& ctx, const float* x, int64_t C, int64_t H, int64_t W, int64_t k, float* cols);

// 3×3, stride 1, padding 1 im2col of NHWC x [H, W, C] → [H*W, C*9] (Conv2d weight order).
void im2col3x3(Ctx& ctx, const float* x, int64_t H, int64_t W, int64_t C, float* cols);

// ConvTranspose2d(kernel 2, stride 2): x [H*W, Cin] (NHWC) · W [Cin, Cout, 2, 2] + b
// → y [(2H)*(2W), Cout] (NHWC), then act.
void convTranspose2x2(Ctx& ctx, const float* x, int64_t H, int64_t W, int64_t Cin,
                      const float* weight, const float* b, int64_t Cout, float* y,
                      Act act = Act::None);

}  // namespace ops
}  // namespace omniseg
