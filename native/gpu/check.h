// CUDA error handling. No CUDA error aborts the process: every failing call throws
// omniseg::Error naming the call and the error. Out-of-memory is recoverable (the caller's
// buffers are freed by unwinding and the next request may succeed); a sticky error (illegal
// address, launch failure, ...) leaves the CUDA context unusable, so it marks the backend
// failed: every later GPU call throws at once and readiness checks report it.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <string>

namespace omniseg::gpu {

// Throws for err != cudaSuccess; `what` names the call or kernel.
void check(cudaError_t err, const char* what);
void check(cublasStatus_t status, const char* what);
// After a kernel launch: the launch's own error (bad configuration) and sticky errors.
void checkLaunch(const char* kernel);
// Throws if an earlier sticky error made the backend unusable.
void ensureUsable();
// Empty while usable; otherwise the error that made the backend unusable.
std::string failure();

}  // namespace omniseg::gpu

#define OMNISEG_CUDA_CHECK(call) ::omniseg::gpu::check((call), #call)
