#include "gpu/check.h"

#include <mutex>

#include "core/error.h"

namespace omniseg::gpu {

namespace {
std::mutex mu;
std::string failed;  // the sticky error, once one happened

bool sticky(cudaError_t err) {
  switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorHardwareStackError:
    case cudaErrorAssert:
    case cudaErrorUnknown:
    case cudaErrorECCUncorrectable:
      return true;
    default:
      return false;
  }
}
}  // namespace

void check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  const std::string msg = std::string("CUDA error in ") + what + ": " + cudaGetErrorName(err) +
                          " (" + cudaGetErrorString(err) + ")";
  if (sticky(err)) {
    std::lock_guard<std::mutex> lock(mu);
    if (failed.empty()) failed = msg;
    throw Error(msg + "; the CUDA backend is unusable until the process restarts");
  }
  // Not sticky: clear the runtime's last error of this thread, which a failed API call sets too,
  // or the next launch check on it would report this error against an unrelated kernel.
  cudaGetLastError();
  if (err == cudaErrorMemoryAllocation) throw Error("CUDA out of memory in " + std::string(what));
  throw Error(msg);
}

void check(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw Error(std::string("cuBLAS error in ") + what + ": " + cublasLtGetStatusName(status) + " (" +
              cublasLtGetStatusString(status) + ")");
}

void checkLaunch(const char* kernel) {
  check(cudaGetLastError(), kernel);
}

void ensureUsable() {
  std::lock_guard<std::mutex> lock(mu);
  if (!failed.empty()) throw Error("the CUDA backend is unusable after an earlier error: " + failed);
}

std::string failure() {
  std::lock_guard<std::mutex> lock(mu);
  return failed;
}

}  // namespace omniseg::gpu
