// Read-only, validating reader for the safetensors format.
//
// Layout: u64 little-endian N, then N bytes of UTF-8 JSON header
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"k": "v"}}
// then the data section; offsets are relative to the data section start.
//
// open() mmaps the file (MAP_PRIVATE, read-only); fromMemory() borrows a caller
// buffer (no copy) and exists mainly so fuzzers/tests can drive the parser.
// Every malformed input is rejected with omniseg::Error whose message starts with
// the path (or "<memory>") and names the offending tensor where there is one.
// Validation follows the spec strictly: known dtypes, non-negative integer shapes,
// size(shape)*size(dtype) == end-begin (overflow-checked), byte ranges contiguous
// from 0 covering the whole data section (no gaps, overlaps or trailing bytes),
// __metadata__ string->string, and no duplicate keys at any level.
// Instances are immutable after construction and safe to read from many threads.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace omniseg {

enum class DType {
  F64, F32, F16, BF16,
  I64, I32, I16, I8,
  U64, U32, U16, U8,
  BOOL, F8_E4M3, F8_E5M2,
};

class SafeTensors {
 public:
  struct TensorInfo {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t begin;  // byte offsets relative to the data section
    uint64_t end;
  };

  // Throws omniseg::Error ("cannot open <path>: <strerror>", or a format error).
  static std::unique_ptr<SafeTensors> open(const std::string& path);
  // Borrows [data, data+size); the caller keeps it alive for the object's life.
  static std::unique_ptr<SafeTensors> fromMemory(const uint8_t* data, size_t size);

  ~SafeTensors();
  SafeTensors(const SafeTensors&) = delete;
  SafeTensors& operator=(const SafeTensors&) = delete;

  const TensorInfo* find(const std::string& name) const;  // nullptr if absent
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // by offset
  const uint8_t* bytes(const TensorInfo& t) const { return dataSection_ + t.begin; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }

  // The tensor's bytes are no longer needed in memory (the caller converted them): the whole
  // pages inside its range leave the process's resident set (MADV_DONTNEED; a later read faults
  // them in again from the file, unchanged). No-op for a borrowed buffer.
  void release(const TensorInfo& t) const;
  // The same for any bytes [p, p + n): the whole pages of it that lie inside the mapping. No-op
  // for bytes elsewhere (owned buffers) and for a borrowed buffer.
  void release(const void* p, size_t n) const;

  const uint8_t* mappingBegin() const { return base_; }
  size_t mappingSize() const { return size_; }
  // Bytes of the mapping release() has dropped so far, each page once (pages read again
  // afterwards come back uncounted). Thread-safe.
  size_t releasedBytes() const { return released_.load(std::memory_order_relaxed); }
  bool isMapped() const { return mapped_; }

  static const char* dtypeName(DType d);
  static size_t dtypeSize(DType d);  // bytes per element
  static bool parseDType(const std::string& s, DType* out);
  static std::string shapeString(const std::vector<int64_t>& shape);  // "[2, 3]"

 private:
  SafeTensors(std::string path, const uint8_t* base, size_t size, bool mapped);
  void parse();  // validates; throws omniseg::Error

  std::string path_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;  // true: we own an mmap of size_ bytes at base_
  // The pages release() dropped (one bit each) and their bytes; release() runs on calls' threads
  // (weight packing).
  mutable std::mutex releaseMu_;
  mutable std::vector<bool> releasedPages_;
  mutable std::atomic<size_t> released_{0};
  const uint8_t* dataSection_ = nullptr;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace omniseg
