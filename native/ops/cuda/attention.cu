// Decoder attention (softmax(q·kᵀ·scale)·v per head) and the row softmax shared with the
// encoder's rel-pos attention. Per chunk of heads: one strided-batched cuBLASLt GEMM for the
// scores straight from the strided q/k (a head is a batch entry d floats further on), a softmax
// kernel over the rows (the CPU's exp, so only the GEMMs' summation order differs from the CPU),
// and one batched GEMM with v writing each head's columns of `out` in place. Works for any d.
#include "core/arena.h"
#include "ops/cuda/launch.h"

namespace omniseg::ops::cuda {

namespace {

// Rel-pos bias of key j for the row's query (see softmaxRows in launch.h).
struct RelPos {
  const float* th;  // null: no bias
  const float* tw;
  int h, w, T;
  __device__ __forceinline__ float bias(const float* thr, const float* twr, int qh, int qw,
                                        int j) const {
    const int kh = j / w, kw = j - kh * w;
    return dev::add(thr[qh - kh + h - 1], twr[qw - kw + w - 1]);
  }
};

// One warp per row (short rows).
__global__ void softmaxWarpKernel(float* S, int64_t rows, int n, RelPos rp) {
  const int64_t row = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;  // whole warps leave together
  float* s = S + row * n;
  float mx = -INFINITY;
  if (rp.th) {
    const int t = static_cast<int>(row % rp.T), qh = t / rp.w, qw = t - qh * rp.w;
    const float* thr = rp.th + row * (2 * rp.h - 1);
    const float* twr = rp.tw + row * (2 * rp.w - 1);
    for (int j = lane; j < n; j += 32) {
      const float v = dev::add(s[j], rp.bias(thr, twr, qh, qw, j));
      s[j] = v;
      mx = fmaxf(mx, v);
    }
  } else {
    for (int j = lane; j < n; j += 32) mx = fmaxf(mx, s[j]);
  }
  mx = dev::warpMax(mx);
  float sum = 0.f;
  for (int j = lane; j < n; j += 32) {
    const float e = dev::expf(dev::add(s[j], -mx));
    s[j] = e;
    sum += e;
  }
  const float inv = __fdiv_rn(1.f, dev::warpSum(sum));
  for (int j = lane; j < n; j += 32) s[j] = dev::mul(s[j], inv);
}

constexpr int kRowThreads = 256;

__device__ __forceinline__ float blockReduce(float v, bool isMax, float* red) {
  v = isMax ? dev::warpMax(v) : dev::warpSum(v);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();  // red may still be read from the previous reduction
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = lane < static_cast<int>(blockDim.x >> 5) ? red[lane] : (isMax ? -INFINITY : 0.f);
  return isMax ? dev::warpMax(v) : dev::warpSum(v);
}

// One block per row (long rows).
__global__ void softmaxBlockKernel(float* S, int n, RelPos rp) {
  __shared__ float red[32];
  const int64_t row = blockIdx.x;
  float* s = S + row * n;
  float mx = -INFINITY;
  if (rp.th) {
    const int t = static_cast<int>(row % rp.T), qh = t / rp.w, qw = t - qh * rp.w;
    const float* thr = rp.th + row * (2 * rp.h - 1);
    const float* twr = rp.tw + row * (2 * rp.w - 1);
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
      const float v = dev::add(s[j], rp.bias(thr, twr, qh, qw, j));
      s[j] = v;
      mx = fmaxf(mx, v);
    }
  } else {
    for (int j = threadIdx.x; j < n; j += blockDim.x) mx = fmaxf(mx, s[j]);
  }
  mx = blockReduce(mx, true, red);
  float sum = 0.f;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    const float e = dev::expf(dev::add(s[j], -mx));
    s[j] = e;
    sum += e;
  }
  const float inv = __fdiv_rn(1.f, blockReduce(sum, false, red));
  for (int j = threadIdx.x; j < n; j += blockDim.x) s[j] = dev::mul(s[j], inv);
}

}  // namespace

void softmaxRows(Ctx& ctx, float* S, int64_t rows, int64_t n, const float* th, const float* tw,
                 int64_t h, int64_t w) {
  OMNISEG_CHECK(rows >= 0 && n > 0 && n <= INT32_MAX, "softmaxRows: bad shape");
  if (rows == 0) return;
  RelPos rp{th, tw, static_cast<int>(h), static_cast<int>(w), static_cast<int>(h * w)};
  if (th) {
    OMNISEG_CHECK(tw && h > 0 && w > 0 && h * w == n, "softmaxRows: bad rel-pos shape");
  }
  if (n <= 1024) {
    const int64_t blocks = (rows * 32 + kThreads - 1) / kThreads;
    OMNISEG_CHECK(blocks <= INT32_MAX, "softmaxRows: too many rows");
    softmaxWarpKernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream(ctx)>>>(
        S, rows, static_cast<int>(n), rp);
    gpu::checkLaunch("softmaxWarpKernel");
  } else {
    OMNISEG_CHECK(rows <= INT32_MAX, "softmaxRows: too many rows");
    softmaxBlockKernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream(ctx)>>>(
        S, static_cast<int>(n), rp);
    gpu::checkLaunch("softmaxBlockKernel");
  }
}

void attention(Ctx& ctx, const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v,
               int64_t ldv, int64_t Nq, int64_t Nk, int64_t heads, int64_t d, float scale,
               float* out) {
  const int64_t C = heads * d;
  OMNISEG_CHECK(Nq >= 0 && Nk > 0 && heads > 0 && d > 0, "attention: bad shape");
  OMNISEG_CHECK(ldq >= C && ldk >= C && ldv >= C, "attention: row stride smaller than heads*d");
  OMNISEG_CHECK(q && k && v && out, "attention: null operand");
  if (Nq == 0) return;
  ArenaScope scope(ctx.arena);
  const int64_t per = Nq * Nk;
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(heads, kScoreChunkFloats / per));
  float* S = ctx.arena.floats(static_cast<size_t>(chunk * per));
  for (int64_t h0 = 0; h0 < heads; h0 += chunk) {
    const int64_t nb = std::min(chunk, heads - h0);
    // Row-major S_h[Nq, Nk] = scale·Q_h·K_hᵀ: col-major D[Nk, Nq] = K_cm[d, Nk]ᵀ · Q_cm[d, Nq].
    Gemm s;
    s.transA = true;
    s.m = Nk;
    s.n = Nq;
    s.k = d;
    s.A = k + h0 * d;
    s.lda = ldk;
    s.strideA = d;
    s.B = q + h0 * d;
    s.ldb = ldq;
    s.strideB = d;
    s.D = S;
    s.ldd = Nk;
    s.strideD = per;
    s.batch = nb;
    s.alpha = scale;
    ltGemm(ctx, s);
    softmaxRows(ctx, S, nb * Nq, Nk);
    // Row-major O_h[Nq, d] = P_h[Nq, Nk]·V_h[Nk, d]: col-major D[d, Nq] = V_cm[d, Nk]·P_cm[Nk, Nq].
    Gemm o;
    o.m = d;
    o.n = Nq;
    o.k = Nk;
    o.A = v + h0 * d;
    o.lda = ldv;
    o.strideA = d;
    o.B = S;
    o.ldb = Nk;
    o.strideB = per;
    o.D = out + h0 * d;
    o.ldd = C;
    o.strideD = d;
    o.batch = nb;
    ltGemm(ctx, o);
  }
}

}  // namespace omniseg::ops::cuda
