#pragma once

namespace omniseg {

// Where a model runs. Cuda needs a build with the CUDA backend (OMNISEG_CUDA).
enum class Device { Cpu, Cuda };

// Arithmetic of the GEMMs and attention of a GPU pass. Fp32: fp32 everywhere (no TF32), the
// parity path. Fp16 / Bf16: operands rounded to half precision (weights once at load,
// activations as they enter a GEMM or attention), tensor-core products accumulated in fp32;
// everything between (layer norms, softmax statistics, residuals, activations) stays fp32.
// The CPU backend is always fp32.
enum class Precision { Fp32, Fp16, Bf16 };

// Arithmetic of the image encoder's matrix products on CPU: its linear layers (GEMMs with model
// weights) and the two products of its attention. Fp32: OpenBLAS sgemm and the AVX-512 attention
// kernels. Bf16x3: on CPUs with AMX, each fp32 operand split into a pair of bf16 numbers and three
// products of those summed in fp32 on the tiles (torch's "high" float32 matmul precision: ~4e-6
// relative error per GEMM against ~4e-7, at 2.2-3.3× the speed); on other CPUs the same as Fp32.
enum class CpuMatmul { Fp32, Bf16x3 };

}  // namespace omniseg
