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

}  // namespace omniseg
