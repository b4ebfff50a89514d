// AVX2 + FMA versions of the blocked attention kernels (attention_avx512.h), for CPUs without
// AVX-512 (AMD Zen 2/3, older Intel): the same operands and results (keys packed by
// avx512::packKeys, the same grid bias), with register tiles sized for 16 ymm registers.
// attention.cc takes the AVX-512 kernels where the CPU has them, these where it has AVX2 and FMA,
// OpenBLAS elsewhere.
#pragma once
#include <cstdint>

#include "ops/cpu/attention_avx512.h"

namespace omniseg::ops::cpu::avx2 {

// Whether the CPU runs AVX2 + FMA code (checked once) and the kernels are not switched off
// (setEnabled(false): tests compare the paths).
bool supported();
void setEnabled(bool on);

// As avx512::scores, avx512::expSum and avx512::weightedValues (head size ≤ avx512::kMaxHeadDim).
void scores(const float* q, int64_t ldq, int64_t n, const float* kp, int64_t S, int64_t d,
            float scale, float* s, int64_t lds, float* rowMax = nullptr,
            const avx512::GridBias* bias = nullptr);
float expSum(float* x, int64_t n, float mx);
void weightedValues(const float* p, int64_t ldp, int64_t n, const float* v, int64_t ldv,
                    int64_t S, int64_t d, const float* sums, float* o, int64_t ldo);

}  // namespace omniseg::ops::cpu::avx2
