// WeightStore: the only way models read weights. Wraps a validated SafeTensors file,
// checks each requested tensor's key, shape and dtype against what the model
// configuration expects, and hands out float pointers:
//   - F32 whose data is 4-byte aligned: pointer straight into the mapping (zero copy);
//   - misaligned F32, F16, BF16: converted once into an owned 64-byte aligned float
//     buffer that lives as long as the store (repeat get() returns the same buffer).
// It records which keys were read so checkAllUsed() can reject files carrying
// tensors the model never consumed (usually: wrong model type for this file).
// Not thread-safe: load a model from one thread; the returned pointers are then
// immutable and may be read concurrently for the store's lifetime.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "safetensors.h"

namespace omniseg {

class WeightStore {
 public:
  explicit WeightStore(std::unique_ptr<SafeTensors> file);

  // Returns the tensor's data as floats (row-major, expectedShape). Throws
  // omniseg::Error if the key is missing, the shape differs, or the dtype is not
  // F32/F16/BF16. Marks the key used. The pointer stays valid for the store's life.
  const float* get(const std::string& key, std::initializer_list<int64_t> expectedShape);
  const float* get(const std::string& key, const std::vector<int64_t>& expectedShape);

  // The tensors of `keys` (each expectedShape, checked as get() does) stacked along a new first
  // dimension into one owned buffer [keys.size(), expectedShape...]: e.g. the q, k and v
  // projections of an attention layer as one [3C, C] weight, for one GEMM. Marks the keys used;
  // the stacked buffer (not the parts) is what handedOut() lists.
  const float* getStacked(const std::vector<std::string>& keys, const std::vector<int64_t>& expectedShape);

  // A tensor get() handed out is no longer read from this copy (a packed copy serves it): the
  // whole pages of it that lie in the file's mapping leave the resident set (SafeTensors::release;
  // a later read faults them in again, unchanged). Owned (converted, stacked) buffers stay.
  void releaseMapped(const float* data, size_t count) const { file_->release(data, count * sizeof(float)); }

  bool has(const std::string& key) const;
  // Marks a tensor as accepted without reading it (tied/duplicate weights).
  // No-op if the key is absent, so optional keys can be marked unconditionally.
  void markUsed(const std::string& key);
  // Throws omniseg::Error naming up to 5 tensors that were never get()/markUsed().
  void checkAllUsed() const;

  // Every tensor get() has handed out (data, element count), once each: what a GPU backend
  // copies to device memory.
  struct Tensor {
    const float* data;
    size_t count;
  };
  const std::vector<Tensor>& handedOut() const { return handedOut_; }

  size_t bytesMapped() const { return file_->mappingSize(); }
  // The mapping less the pages released (stacked tensors, packed weights): what it can keep
  // resident while those are not read again. Thread-safe.
  size_t bytesMappedKept() const { return file_->mappingSize() - file_->releasedBytes(); }
  size_t bytesConverted() const { return bytesConverted_; }
  const SafeTensors& file() const { return *file_; }
  const std::string& path() const { return file_->path(); }

  // Exposed for tests: exact IEEE half -> float and bfloat16 -> float.
  static float halfToFloat(uint16_t h);
  static float bf16ToFloat(uint16_t h);

 private:
  struct FreeDeleter {
    void operator()(float* p) const { std::free(p); }
  };
  using Buffer = std::unique_ptr<float[], FreeDeleter>;

  const SafeTensors::TensorInfo& checked(const std::string& key, const std::vector<int64_t>& expectedShape) const;
  static size_t numel(const SafeTensors::TensorInfo& t);
  void convert(const SafeTensors::TensorInfo& t, float* dst) const;
  float* keep(const std::string& key, size_t count);  // an owned buffer, listed in handedOut_

  std::unique_ptr<SafeTensors> file_;
  std::unordered_set<std::string> used_;
  std::unordered_map<std::string, Buffer> converted_;
  std::vector<Tensor> handedOut_;
  size_t bytesConverted_ = 0;
};

}  // namespace omniseg
