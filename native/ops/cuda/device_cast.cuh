// dev::to<T>: a float as the types the CUDA kernels store (launch.h; split_heads.cuh, which the
// CPU emulator also compiles, so nothing here needs the CUDA runtime).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace omniseg::ops::cuda::dev {

// v as T: itself for float, rounded to nearest even for __half / __nv_bfloat16.
template <class T>
__device__ __forceinline__ T to(float v);
template <>
__device__ __forceinline__ float to<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half to<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 to<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

}  // namespace omniseg::ops::cuda::dev
