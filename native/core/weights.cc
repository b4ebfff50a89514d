// WeightStore implementation: key/shape/dtype checks and F16/BF16 -> F32 conversion.
#include "weights.h"

#include <cstring>

#include "error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; zero-copy F32 needs a little-endian host");

namespace omniseg {
namespace {

float bitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

std::string quote(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

float WeightStore::halfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24 is exact in float (normal range there).
    float mag = static_cast<float>(mant) * 0x1p-24f;
    uint32_t bits;
    std::memcpy(&bits, &mag, sizeof bits);
    return bitsToFloat(bits | sign);
  }
  if (exp == 31) {  // inf or NaN; NaN payload (and quiet bit) shifted into place
    return bitsToFloat(sign | 0x7f800000u | (mant << 13));
  }
  return bitsToFloat(sign | ((exp + (127 - 15)) << 23) | (mant << 13));
}

float WeightStore::bf16ToFloat(uint16_t h) { return bitsToFloat(static_cast<uint32_t>(h) << 16); }

WeightStore::WeightStore(std::unique_ptr<SafeTensors> file) : file_(std::move(file)) {
  if (!file_) throw Error("WeightStore: null SafeTensors");
}

const float* WeightStore::get(const std::string& key,
                              std::initializer_list<int64_t> expectedShape) {
  return get(key, std::vector<int64_t>(expectedShape));
}

const SafeTensors::TensorInfo& WeightStore::checked(const std::string& key,
                                                    const std::vector<int64_t>& expectedShape) const {
  const SafeTensors::TensorInfo* t = file_->find(key);
  if (t == nullptr) throw Error("missing tensor " + quote(key) + " in " + path());
  if (t->shape != expectedShape)
    throw Error(path() + ": tensor " + quote(key) + " has shape " +
                SafeTensors::shapeString(t->shape) +
                " but the model configuration expects " +
                SafeTensors::shapeString(expectedShape));
  if (t->dtype != DType::F32 && t->dtype != DType::F16 && t->dtype != DType::BF16)
    throw Error(path() + ": tensor " + quote(key) + " has dtype " +
                SafeTensors::dtypeName(t->dtype) +
                "; only F32, F16 and BF16 can be loaded as float weights");
  return *t;
}

// Validation guarantees end - begin == numel * dtypeSize without overflow.
size_t WeightStore::numel(const SafeTensors::TensorInfo& t) {
  return static_cast<size_t>(t.end - t.begin) / SafeTensors::dtypeSize(t.dtype);
}

void WeightStore::convert(const SafeTensors::TensorInfo& t, float* dst) const {
  const uint8_t* src = file_->bytes(t);
  const size_t n = numel(t);
  switch (t.dtype) {
    case DType::F32:
      if (n) std::memcpy(dst, src, n * sizeof(float));
      break;
    case DType::F16:
      for (size_t i = 0; i < n; ++i)
        dst[i] = halfToFloat(static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8)));
      break;
    default:  // BF16
      for (size_t i = 0; i < n; ++i)
        dst[i] = bf16ToFloat(static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8)));
      break;
  }
}

float* WeightStore::keep(const std::string& key, size_t count) {
  if (count > SIZE_MAX / sizeof(float) - 64)
    throw Error(path() + ": tensor " + quote(key) + " is too large to convert");
  const size_t bytes = count * sizeof(float);
  const size_t allocBytes = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
  Buffer buf(static_cast<float*>(std::aligned_alloc(64, allocBytes)));
  if (!buf)
    throw Error(path() + ": out of memory converting tensor " + quote(key) + " (" +
                std::to_string(bytes) + " bytes)");
  bytesConverted_ += bytes;
  handedOut_.push_back({buf.get(), count});
  return converted_.emplace(key, std::move(buf)).first->second.get();
}

const float* WeightStore::get(const std::string& key,
                              const std::vector<int64_t>& expectedShape) {
  const SafeTensors::TensorInfo& t = checked(key, expectedShape);
  const bool first = used_.insert(key).second;
  const uint8_t* src = file_->bytes(t);
  if (t.dtype == DType::F32 && reinterpret_cast<uintptr_t>(src) % alignof(float) == 0) {
    const float* p = reinterpret_cast<const float*>(src);  // zero copy
    if (first) handedOut_.push_back({p, numel(t)});
    return p;
  }
  auto cached = converted_.find(key);
  if (cached != converted_.end()) return cached->second.get();
  float* dst = keep(key, numel(t));
  convert(t, dst);
  file_->release(t);  // (the converted copy is what is read from now on)
  return dst;
}

const float* WeightStore::getStacked(const std::vector<std::string>& keys,
                                     const std::vector<int64_t>& expectedShape) {
  if (keys.empty()) throw Error("getStacked: no tensors");
  std::string id;  // the stacked buffer's own key in converted_ (no tensor name holds a '\n')
  for (const auto& k : keys) id += k + "\n";
  auto cached = converted_.find(id);
  if (cached != converted_.end()) return cached->second.get();
  std::vector<const SafeTensors::TensorInfo*> parts;
  for (const auto& k : keys) parts.push_back(&checked(k, expectedShape));
  const size_t each = numel(*parts.front());
  if (each != 0 && keys.size() > (SIZE_MAX / sizeof(float) - 64) / each)
    throw Error(path() + ": tensors " + quote(keys.front()) + ", ... are too large to stack");
  float* dst = keep(id, each * keys.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    convert(*parts[i], dst + i * each);
    file_->release(*parts[i]);
    used_.insert(keys[i]);
  }
  return dst;
}

bool WeightStore::has(const std::string& key) const { return file_->find(key) != nullptr; }

void WeightStore::markUsed(const std::string& key) {
  if (has(key)) used_.insert(key);
}

void WeightStore::checkAllUsed() const {
  std::vector<const std::string*> unused;
  for (const auto& t : file_->tensors())
    if (used_.count(t.name) == 0) unused.push_back(&t.name);
  if (unused.empty()) return;
  std::string msg = "unexpected tensor(s) in " + path() + ": ";
  const size_t shown = unused.size() < 5 ? unused.size() : 5;
  for (size_t i = 0; i < shown; ++i) {
    if (i) msg += ", ";
    msg += quote(*unused[i]);
  }
  if (unused.size() > shown) msg += " (+" + std::to_string(unused.size() - shown) + " more)";
  msg += " \xE2\x80\x94 is this the right model type?";
  throw Error(msg);
}

}  // namespace omniseg
