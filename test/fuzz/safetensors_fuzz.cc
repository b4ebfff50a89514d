// libFuzzer target for the safetensors parser (native/core/safetensors.*) and the weight store
// that reads tensors out of it (native/core/weights.*).
//
// Contract checked: any byte string is either rejected with omniseg::Error (anything else thrown
// escapes and aborts: a finding) or yields a SafeTensors whose tensors tile the data section
// exactly, in offset order, each findable by name, and whose bytes ASan lets us read; every
// F32/F16/BF16 tensor can then be fetched from a WeightStore at its own shape (other dtypes are
// refused with omniseg::Error), and its floats read.
//
// Build and run: make -C test/fuzz run   (see the Makefile; clang with -fsanitize=fuzzer)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "error.h"
#include "safetensors.h"
#include "weights.h"

using omniseg::DType;
using omniseg::SafeTensors;
using omniseg::WeightStore;

namespace {

// A broken invariant is a finding: abort so that libFuzzer saves the input.
void require(bool ok) {
  if (!ok) std::abort();
}

// Sums the bytes so the compiler cannot drop the reads (ASan checks each one).
volatile uint64_t g_sink = 0;

void checkParsed(const SafeTensors& st, const uint8_t* data, size_t size) {
  const uint8_t* dataSection = data + size;  // the section ends at the end of the input
  uint64_t cursor = 0;
  for (const SafeTensors::TensorInfo& t : st.tensors()) {
    require(t.begin == cursor && t.end >= t.begin);
    require(st.find(t.name) == &t);
    const uint8_t* b = st.bytes(t);
    const uint64_t n = t.end - t.begin;
    if (n > 0) g_sink = g_sink + b[0] + b[n - 1];
    cursor = t.end;
    dataSection = b - t.begin;
  }
  if (!st.tensors().empty()) require(dataSection + cursor == data + size);
  require(st.mappingBegin() == data && st.mappingSize() == size && !st.isMapped());
}

void checkWeights(std::unique_ptr<SafeTensors> st) {
  const std::vector<SafeTensors::TensorInfo> infos = st->tensors();
  WeightStore store(std::move(st));
  for (const SafeTensors::TensorInfo& t : infos) {
    const bool floating = t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16;
    // Keep the conversion work bounded: a fuzzer input cannot hold much data anyway.
    uint64_t count = 1;
    for (int64_t d : t.shape) count *= static_cast<uint64_t>(d);
    try {
      const float* p = store.get(t.name, t.shape);
      require(floating);
      if (count > 0) g_sink = g_sink + static_cast<uint64_t>(p[0] != p[count - 1]);
    } catch (const omniseg::Error&) {
      require(!floating);
    }
  }
  // Every floating tensor was read; the rest were refused and are therefore unused.
  bool anyUnused = false;
  for (const SafeTensors::TensorInfo& t : infos)
    anyUnused |= !(t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16);
  try {
    store.checkAllUsed();
    require(!anyUnused);
  } catch (const omniseg::Error&) {
    require(anyUnused);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<SafeTensors> st;
  try {
    st = SafeTensors::fromMemory(data, size);
  } catch (const omniseg::Error&) {
    return 0;  // rejected: the expected outcome for most inputs
  }
  checkParsed(*st, data, size);
  checkWeights(std::move(st));
  return 0;
}
