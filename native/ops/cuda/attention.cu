// Decoder attention (softmax(q·kᵀ·scale)·v per head) and the row softmax shared with the
// encoder's rel-pos attention. Per chunk of heads: one strided-batched cuBLASLt GEMM for the
// scores straight from the strided q/k (a head is a batch entry d floats further on), a softmax
// kernel over the rows (the CPU's exp, so only the GEMMs' summation order differs from the CPU),
// and one batched GEMM with v writing each head's columns of `out` in place. Works for any d.
// A few queries against many keys (the decoder's tokens attending to the image) take one fused
// kernel instead: cuBLAS runs that P·V as a latency-bound GEMV.
#include "core/arena.h"
#include "ops/cuda/launch.h"

namespace omniseg::ops::cuda {

namespace {

// Rel-pos bias of key j for the row's query (see softmaxRows in launch.h).
struct RelPos {
  const float* th;  // null: no bias
  const float* tw;
  int h, w, T;
  int causalNq;  // > 0: row r is query r % causalNq and sees keys 0..that query only
  __device__ __forceinline__ int validKeys(int64_t row, int n) const {
    return causalNq > 0 ? min(n, static_cast<int>(row % causalNq) + 1) : n;
  }
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
  const int nAll = n;
  n = rp.validKeys(row, n);
  for (int j = n + lane; j < nAll; j += 32) s[j] = 0.f;
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

constexpr int64_t kFewQueries = 16, kMaxKeysFused = 8192;
// Keys per block of the few-queries kernel (and its threads: one key each for the scores).
constexpr int kFewKeys = 256;

// Split-key ("flash-decoding") attention for a few queries: block (query·head, split) scores its
// kFewKeys keys (one per thread), takes their max and exp-sum and Σ p·v over them, and writes
// the partial [D accumulators, max, sum] to part [Nq·heads, splits, D + 2]; fewQueriesCombine
// rescales the partials to the global max and normalises. D = d (16, 32, 64 or 128) divides
// kFewKeys: for P·V, thread t sums element t % D over every (kFewKeys / D)-th key of the block.
template <int D>
__global__ void __launch_bounds__(kFewKeys) fewQueriesPartial(const float* q, int64_t ldq, const float* k,
                                                              int64_t ldk, const float* v, int64_t ldv,
                                                              int Nk, int heads, float scale, float* part) {
  constexpr int G = kFewKeys / D;  // key groups of the P·V pass
  __shared__ float qs[D];
  __shared__ float p[kFewKeys];
  __shared__ float red[kFewKeys / 32];
  __shared__ float accs[G][D];
  const int qh = blockIdx.x, split = blockIdx.y, splits = gridDim.y;
  const int qi = qh / heads, hd = qh - qi * heads;
  const int base = split * kFewKeys, t = threadIdx.x, j = base + t;
  if (t < D) qs[t] = q[qi * ldq + hd * D + t];
  __syncthreads();
  float sc = -INFINITY;
  if (j < Nk) {
    const float* kr = k + j * ldk + hd * D;
    float dot = 0.f;
#pragma unroll
    for (int e = 0; e < D; ++e) dot = dev::add(dot, dev::mul(qs[e], kr[e]));
    sc = dev::mul(dot, scale);
  }
  const int warp = t >> 5, lane = t & 31;
  float mx = dev::warpMax(sc);
  if (lane == 0) red[warp] = mx;
  __syncthreads();
  mx = red[0];
#pragma unroll
  for (int w = 1; w < kFewKeys / 32; ++w) mx = fmaxf(mx, red[w]);
  const float e = j < Nk ? dev::expf(dev::add(sc, -mx)) : 0.f;
  p[t] = e;
  const float sum = dev::warpSum(e);
  __syncthreads();  // everyone has read red[] and written p[]
  if (lane == 0) red[warp] = sum;
  const int el = t % D, g = t / D, n = min(kFewKeys, Nk - base);
  float a = 0.f;
  for (int jj = g; jj < n; jj += G) a = dev::add(a, dev::mul(p[jj], v[(base + jj) * ldv + hd * D + el]));
  accs[g][el] = a;
  __syncthreads();
  float* out = part + (static_cast<int64_t>(qh) * splits + split) * (D + 2);
  if (t < D) {
    float o = 0.f;
#pragma unroll
    for (int gg = 0; gg < G; ++gg) o = dev::add(o, accs[gg][t]);
    out[t] = o;
  } else if (t == D) {
    float total = 0.f;
#pragma unroll
    for (int w = 0; w < kFewKeys / 32; ++w) total += red[w];
    out[D] = mx;
    out[D + 1] = total;
  }
}

// out[qi, hd·D + e] = Σ_s acc_s[e]·exp(max_s − M) / Σ_s sum_s·exp(max_s − M), M = max_s max_s.
// One block of D threads per (query, head).
template <int D>
__global__ void fewQueriesCombine(const float* part, int splits, int heads, float* out, int64_t ldo) {
  const int qh = blockIdx.x, qi = qh / heads, hd = qh - qi * heads, e = threadIdx.x;
  const float* pr = part + static_cast<int64_t>(qh) * splits * (D + 2);
  float M = -INFINITY;
  for (int s = 0; s < splits; ++s) M = fmaxf(M, pr[s * (D + 2) + D]);
  float total = 0.f, o = 0.f;
  for (int s = 0; s < splits; ++s) {
    const float* ps = pr + s * (D + 2);
    const float f = dev::expf(dev::add(ps[D], -M));
    total = dev::add(total, dev::mul(ps[D + 1], f));
    o = dev::add(o, dev::mul(ps[e], f));
  }
  out[qi * ldo + hd * D + e] = dev::mul(o, __fdiv_rn(1.f, total));
}

template <int D>
void launchFewQueries(Ctx& ctx, const float* q, int64_t ldq, const float* k, int64_t ldk,
                      const float* v, int64_t ldv, int64_t Nq, int64_t Nk, int64_t heads,
                      float scale, float* out) {
  ArenaScope scope(ctx.arena);
  const int splits = static_cast<int>((Nk + kFewKeys - 1) / kFewKeys);
  float* part = ctx.arena.floats(static_cast<size_t>(Nq * heads * splits * (D + 2)));
  const dim3 grid(static_cast<unsigned>(Nq * heads), static_cast<unsigned>(splits));
  fewQueriesPartial<D><<<grid, kFewKeys, 0, stream(ctx)>>>(q, ldq, k, ldk, v, ldv, static_cast<int>(Nk),
                                                           static_cast<int>(heads), scale, part);
  gpu::checkLaunch("fewQueriesPartial");
  fewQueriesCombine<D><<<static_cast<unsigned>(Nq * heads), D, 0, stream(ctx)>>>(
      part, splits, static_cast<int>(heads), out, heads * D);
  gpu::checkLaunch("fewQueriesCombine");
}

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
  const int nAll = n;
  n = rp.validKeys(row, n);
  for (int j = n + threadIdx.x; j < nAll; j += blockDim.x) s[j] = 0.f;
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
                 int64_t h, int64_t w, int64_t causalNq) {
  OMNISEG_CHECK(rows >= 0 && n > 0 && n <= INT32_MAX, "softmaxRows: bad shape");
  OMNISEG_CHECK(causalNq >= 0 && causalNq <= INT32_MAX, "softmaxRows: bad causal query count");
  if (rows == 0) return;
  RelPos rp{th, tw, static_cast<int>(h), static_cast<int>(w), static_cast<int>(h * w),
            static_cast<int>(causalNq)};
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
               float* out, bool causal) {
  const int64_t C = heads * d;
  OMNISEG_CHECK(Nq >= 0 && Nk > 0 && heads > 0 && d > 0, "attention: bad shape");
  OMNISEG_CHECK(ldq >= C && ldk >= C && ldv >= C, "attention: row stride smaller than heads*d");
  OMNISEG_CHECK(q && k && v && out, "attention: null operand");
  if (Nq == 0) return;
  if (!causal && Nq <= kFewQueries && Nk >= 256 && Nk <= kMaxKeysFused) {
    switch (d) {
      case 16: return launchFewQueries<16>(ctx, q, ldq, k, ldk, v, ldv, Nq, Nk, heads, scale, out);
      case 32: return launchFewQueries<32>(ctx, q, ldq, k, ldk, v, ldv, Nq, Nk, heads, scale, out);
      case 64: return launchFewQueries<64>(ctx, q, ldq, k, ldk, v, ldv, Nq, Nk, heads, scale, out);
      default: break;
    }
  }
  AttentionBatch a;
  a.batch = heads;  // a head is a batch entry d floats further on
  a.Nq = Nq;
  a.Nk = Nk;
  a.d = d;
  a.q = q;
  a.ldq = ldq;
  a.strideQ = d;
  a.k = k;
  a.ldk = ldk;
  a.strideK = d;
  a.v = v;
  a.ldv = ldv;
  a.strideV = d;
  a.out = out;
  a.ldo = C;
  a.strideO = d;
  a.scale = scale;
  a.causal = causal;
  attentionBatched(ctx, a);
}

void attentionBatched(Ctx& ctx, const AttentionBatch& a) {
  ArenaScope scope(ctx.arena);
  const int64_t per = a.Nq * a.Nk;
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(a.batch, kScoreChunkFloats / per));
  float* S = ctx.arena.floats(static_cast<size_t>(chunk * per));
  for (int64_t b0 = 0; b0 < a.batch; b0 += chunk) {
    const int64_t nb = std::min(chunk, a.batch - b0);
    // Row-major S_i[Nq, Nk] = scale·Q_i·K_iᵀ: col-major D[Nk, Nq] = K_cm[d, Nk]ᵀ · Q_cm[d, Nq].
    Gemm s;
    s.transA = true;
    s.m = a.Nk;
    s.n = a.Nq;
    s.k = a.d;
    s.A = a.k + b0 * a.strideK;
    s.lda = a.ldk;
    s.strideA = a.strideK;
    s.B = a.q + b0 * a.strideQ;
    s.ldb = a.ldq;
    s.strideB = a.strideQ;
    s.D = S;
    s.ldd = a.Nk;
    s.strideD = per;
    s.batch = nb;
    s.alpha = a.scale;
    ltGemm(ctx, s);
    const int64_t rows = b0 * a.Nq;  // first bias row of the chunk
    softmaxRows(ctx, S, nb * a.Nq, a.Nk, a.th ? a.th + rows * (2 * a.h - 1) : nullptr,
                a.tw ? a.tw + rows * (2 * a.w - 1) : nullptr, a.h, a.w, a.causal ? a.Nq : 0);
    // Row-major O_i[Nq, d] = P_i[Nq, Nk]·V_i[Nk, d]: col-major D[d, Nq] = V_cm[d, Nk]·P_cm[Nk, Nq].
    Gemm o;
    o.m = a.d;
    o.n = a.Nq;
    o.k = a.Nk;
    o.A = a.v + b0 * a.strideV;
    o.lda = a.ldv;
    o.strideA = a.strideV;
    o.B = S;
    o.ldb = a.Nk;
    o.strideB = per;
    o.D = a.out + b0 * a.strideO;
    o.ldd = a.ldo;
    o.strideD = a.strideO;
    o.batch = nb;
    ltGemm(ctx, o);
  }
}

}  // namespace omniseg::ops::cuda
