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
// Few blocks (queries × heads), so many threads each, as far as the registers of acc[D] allow.
template <int D>
constexpr int kFewThreads = D <= 32 ? 1024 : 256;

// One block per (query, head): scores of the query against every key in shared memory, softmax
// (the CPU's exp), then out = Σ p·v with each thread's keys summed in registers and reduced
// across the block. D = d (16, 32, 64 or 128).
template <int D>
__global__ void __launch_bounds__(kFewThreads<D>) fewQueriesKernel(const float* q, int64_t ldq, const float* k, int64_t ldk,
                                 const float* v, int64_t ldv, int Nk, int heads, float scale,
                                 float* out, int64_t ldo) {
  extern __shared__ float sh[];  // scores [Nk] | q [D] | reduction [warps * (D + 1)]
  float* s = sh;
  float* qs = s + Nk;
  float* red = qs + D;
  const int qi = blockIdx.x / heads, hd = blockIdx.x - qi * heads;
  const float* qrow = q + qi * ldq + hd * D;
  for (int e = threadIdx.x; e < D; e += blockDim.x) qs[e] = qrow[e];
  __syncthreads();
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < Nk; j += blockDim.x) {
    const float* kr = k + j * ldk + hd * D;
    float dot = 0.f;
#pragma unroll
    for (int e = 0; e < D; ++e) dot = dev::add(dot, dev::mul(qs[e], kr[e]));
    const float sc = dev::mul(dot, scale);
    s[j] = sc;
    mx = fmaxf(mx, sc);
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  mx = dev::warpMax(mx);
  if (lane == 0) red[warp] = mx;
  __syncthreads();
  mx = red[0];
  for (int w = 1; w < warps; ++w) mx = fmaxf(mx, red[w]);
  __syncthreads();
  float sum = 0.f, acc[D];
#pragma unroll
  for (int e = 0; e < D; ++e) acc[e] = 0.f;
  for (int j = threadIdx.x; j < Nk; j += blockDim.x) {
    const float p = dev::expf(dev::add(s[j], -mx));
    sum += p;
    const float* vr = v + j * ldv + hd * D;
#pragma unroll
    for (int e = 0; e < D; ++e) acc[e] = dev::add(acc[e], dev::mul(p, vr[e]));
  }
  sum = dev::warpSum(sum);
#pragma unroll
  for (int e = 0; e < D; ++e) acc[e] = dev::warpSum(acc[e]);
  if (lane == 0) {
    red[warp] = sum;
    for (int e = 0; e < D; ++e) red[warps + warp * D + e] = acc[e];
  }
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < warps; ++w) total += red[w];
  const float inv = __fdiv_rn(1.f, total);
  for (int e = threadIdx.x; e < D; e += blockDim.x) {
    float o = 0.f;
    for (int w = 0; w < warps; ++w) o = dev::add(o, red[warps + w * D + e]);
    out[qi * ldo + hd * D + e] = dev::mul(o, inv);
  }
}

template <int D>
void launchFewQueries(Ctx& ctx, const float* q, int64_t ldq, const float* k, int64_t ldk,
                      const float* v, int64_t ldv, int64_t Nq, int64_t Nk, int64_t heads,
                      float scale, float* out) {
  const size_t shared = (Nk + D + (kFewThreads<D> / 32) * (D + 1)) * sizeof(float);
  fewQueriesKernel<D><<<static_cast<unsigned>(Nq * heads), kFewThreads<D>, shared, stream(ctx)>>>(
      q, ldq, k, ldk, v, ldv, static_cast<int>(Nk), static_cast<int>(heads), scale, out, heads * D);
  gpu::checkLaunch("fewQueriesKernel");
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
