// Validating safetensors reader: mmap + strict header checks (see safetensors.h).
#include "safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "error.h"

namespace omniseg {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100ull * 1024 * 1024;

struct DTypeEntry {
  DType dtype;
  const char* name;
  size_t size;
};

constexpr DTypeEntry kDTypes[] = {
    {DType::F64, "F64", 8},  {DType::F32, "F32", 4},   {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8},  {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},  {DType::I8, "I8", 1},     {DType::U64, "U64", 8},
    {DType::U32, "U32", 4},  {DType::U16, "U16", 2},   {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1}, {DType::F8_E4M3, "F8_E4M3", 1},
    {DType::F8_E5M2, "F8_E5M2", 1},
};

const DTypeEntry& entryFor(DType d) {
  for (const auto& e : kDTypes)
    if (e.dtype == d) return e;
  throw Error("invalid DType value");
}

std::string quote(const std::string& s) { return "\"" + s + "\""; }

[[noreturn]] void failAt(const std::string& path, const std::string& msg) {
  throw Error(path + ": " + msg);
}
[[noreturn]] void failTensorAt(const std::string& path, const std::string& name,
                               const std::string& msg) {
  throw Error(path + ": tensor " + quote(name) + ": " + msg);
}

// Reads a JSON value as a non-negative integer that fits in `max`.
bool asUnsigned(const json& v, uint64_t max, uint64_t* out) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > max) return false;
    *out = u;
    return true;
  }
  if (v.is_number_integer()) {  // signed: only reached for negative values
    int64_t i = v.get<int64_t>();
    if (i < 0 || static_cast<uint64_t>(i) > max) return false;
    *out = static_cast<uint64_t>(i);
    return true;
  }
  return false;
}

// Tracks keys per open object while nlohmann parses, to catch duplicates
// (nlohmann itself silently keeps the last value for a repeated key).
struct DuplicateKeyFinder {
  std::vector<std::unordered_set<std::string>> stack;
  std::string topKey;     // most recent key at the top level
  std::string duplicate;  // first duplicate key found
  std::string owner;      // top-level key whose entry holds the duplicate
  bool found = false;

  bool operator()(int depth, json::parse_event_t ev, json& parsed) {
    switch (ev) {
      case json::parse_event_t::object_start:
        stack.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!stack.empty()) stack.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string& k = parsed.get_ref<const std::string&>();
        if (depth == 1) topKey = k;
        if (!found && !stack.empty() && !stack.back().insert(k).second) {
          found = true;
          duplicate = k;
          owner = depth == 1 ? std::string() : topKey;
        }
        break;
      }
      default:
        break;
    }
    return true;
  }
};

}  // namespace

const char* SafeTensors::dtypeName(DType d) { return entryFor(d).name; }
size_t SafeTensors::dtypeSize(DType d) { return entryFor(d).size; }

bool SafeTensors::parseDType(const std::string& s, DType* out) {
  for (const auto& e : kDTypes) {
    if (s == e.name) {
      *out = e.dtype;
      return true;
    }
  }
  return false;
}

std::string SafeTensors::shapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

SafeTensors::SafeTensors(std::string path, const uint8_t* base, size_t size, bool mapped)
    : path_(std::move(path)), base_(base), size_(size), mapped_(mapped) {}

SafeTensors::~SafeTensors() {
  if (mapped_ && base_ != nullptr) {
    ::munmap(const_cast<uint8_t*>(base_), size_);
  }
}

std::unique_ptr<SafeTensors> SafeTensors::open(const std::string& path) {
  // O_NONBLOCK so a FIFO path cannot hang us; it has no effect on regular files.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw Error("cannot open " + path + ": " + std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw Error("cannot open " + path + ": " + std::strerror(EISDIR));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error("cannot open " + path + ": not a regular file");
  }
  size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    throw Error(path + ": file is " + std::to_string(size) +
                " bytes, too short to be a safetensors file (needs at least the "
                "8-byte header length)");
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  ::close(fd);  // the mapping stays valid after close
  if (p == MAP_FAILED) throw Error("cannot mmap " + path + ": " + std::strerror(e));
  std::unique_ptr<SafeTensors> st_ptr(
      new SafeTensors(path, static_cast<const uint8_t*>(p), size, true));
  st_ptr->parse();  // on throw, the unique_ptr unmaps
  return st_ptr;
}

std::unique_ptr<SafeTensors> SafeTensors::fromMemory(const uint8_t* data, size_t size) {
  if (data == nullptr && size != 0) throw Error("<memory>: null buffer");
  std::unique_ptr<SafeTensors> st(new SafeTensors("<memory>", data, size, false));
  st->parse();
  return st;
}

void SafeTensors::release(const TensorInfo& t) const { release(bytes(t), static_cast<size_t>(t.end - t.begin)); }

void SafeTensors::release(const void* p, size_t n) const {
  if (!mapped_) return;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t base = reinterpret_cast<uintptr_t>(base_);
  const uintptr_t begin = std::max(reinterpret_cast<uintptr_t>(p), base);
  const uintptr_t end = std::min(reinterpret_cast<uintptr_t>(p) + n, base + size_);
  const uintptr_t first = (begin + page - 1) / page * page;
  const uintptr_t last = end / page * page;
  if (last <= first || ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) != 0)
    return;
  // (base_ is page-aligned: mmap's)
  std::lock_guard<std::mutex> lock(releaseMu_);
  releasedPages_.resize((size_ + page - 1) / page);
  size_t fresh = 0;
  for (uintptr_t p = (first - base) / page; p < (last - base) / page; ++p) {
    if (releasedPages_[p]) continue;
    releasedPages_[p] = true;
    ++fresh;
  }
  released_.fetch_add(fresh * page, std::memory_order_relaxed);
}

const SafeTensors::TensorInfo* SafeTensors::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void SafeTensors::parse() {
  auto fail = [this](const std::string& msg) { failAt(path_, msg); };
  auto failTensor = [this](const std::string& name, const std::string& msg) {
    failTensorAt(path_, name, msg);
  };

  // --- 8-byte little-endian header length -------------------------------------
  if (size_ < 8)
    fail("file is " + std::to_string(size_) +
         " bytes, too short to be a safetensors file (needs at least the 8-byte "
         "header length)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | base_[i];
  if (n > kMaxHeaderBytes)
    fail("header length " + std::to_string(n) + " exceeds the limit of " +
         std::to_string(kMaxHeaderBytes) + " bytes (100 MiB)");
  if (n > size_ - 8)
    fail("header length " + std::to_string(n) + " runs past the end of the file (" +
         std::to_string(size_) + " bytes)");
  const uint64_t dataSize = size_ - 8 - n;
  dataSection_ = base_ + 8 + n;

  // --- JSON ---------------------------------------------------------------------
  const char* hb = reinterpret_cast<const char*>(base_ + 8);
  DuplicateKeyFinder dups;
  json header;
  try {
    header = json::parse(hb, hb + n, std::ref(dups), /*allow_exceptions=*/true);
  } catch (const json::exception& e) {
    std::string why = e.what();  // may quote input; keep the message bounded
    if (why.size() > 300) why = why.substr(0, 300) + "...";
    fail("header is not valid JSON: " + why);
  }
  if (!header.is_object())
    fail(std::string("header must be a JSON object, got ") + header.type_name());
  if (dups.found) {
    if (dups.owner.empty()) fail("duplicate key " + quote(dups.duplicate) + " in header");
    failTensor(dups.owner, "duplicate key " + quote(dups.duplicate) + " in its entry");
  }

  // --- entries --------------------------------------------------------------------
  std::vector<TensorInfo> infos;
  infos.reserve(header.size());
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object())
        fail(std::string("__metadata__ must be an object, got ") + v.type_name());
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          fail("__metadata__ value for key " + quote(m.key()) + " must be a string, got " +
               m.value().type_name());
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object())
      failTensor(name, std::string("entry must be an object, got ") + v.type_name());

    TensorInfo t;
    t.name = name;
    // dtype
    auto d = v.find("dtype");
    if (d == v.end()) failTensor(name, "missing \"dtype\"");
    if (!d->is_string())
      failTensor(name, std::string("\"dtype\" must be a string, got ") + d->type_name());
    if (!parseDType(d->get_ref<const std::string&>(), &t.dtype))
      failTensor(name, "unknown dtype " + quote(d->get<std::string>()));
    // shape
    auto s = v.find("shape");
    if (s == v.end()) failTensor(name, "missing \"shape\"");
    if (!s->is_array())
      failTensor(name, std::string("\"shape\" must be an array, got ") + s->type_name());
    for (size_t i = 0; i < s->size(); ++i) {
      uint64_t dim = 0;
      if (!asUnsigned((*s)[i], static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
                      &dim)) {
        const json& e = (*s)[i];
        std::string got = e.is_number() ? e.dump() : std::string(e.type_name());
        failTensor(name, "shape entry " + std::to_string(i) +
                             " must be a non-negative integer, got " + got);
      }
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    // data_offsets
    auto o = v.find("data_offsets");
    if (o == v.end()) failTensor(name, "missing \"data_offsets\"");
    if (!o->is_array() || o->size() != 2)
      failTensor(name, "\"data_offsets\" must be an array of two integers");
    const uint64_t u64max = std::numeric_limits<uint64_t>::max();
    if (!asUnsigned((*o)[0], u64max, &t.begin) || !asUnsigned((*o)[1], u64max, &t.end))
      failTensor(name, "\"data_offsets\" must be two non-negative integers");
    if (t.begin > t.end)
      failTensor(name, "data_offsets [" + std::to_string(t.begin) + ", " +
                           std::to_string(t.end) + "] have begin > end");
    if (t.end > dataSize)
      failTensor(name, "data_offsets [" + std::to_string(t.begin) + ", " +
                           std::to_string(t.end) + "] out of range: data section is " +
                           std::to_string(dataSize) + " bytes");
    // byte count, overflow-checked
    uint64_t count = 1;
    bool overflow = false;
    for (int64_t dim : t.shape)
      overflow |= __builtin_mul_overflow(count, static_cast<uint64_t>(dim), &count);
    uint64_t nbytes = 0;
    overflow |= __builtin_mul_overflow(count, static_cast<uint64_t>(dtypeSize(t.dtype)),
                                       &nbytes);
    const std::string what =
        "shape " + shapeString(t.shape) + " with dtype " + dtypeName(t.dtype);
    if (overflow) failTensor(name, what + " overflows a 64-bit byte count");
    if (nbytes != t.end - t.begin)
      failTensor(name, what + " needs " + std::to_string(nbytes) +
                           " bytes but data_offsets span " + std::to_string(t.end - t.begin));
    infos.push_back(std::move(t));
  }

  // --- byte ranges: contiguous from 0, no overlap, no gap, no trailing bytes --------
  std::sort(infos.begin(), infos.end(), [](const TensorInfo& a, const TensorInfo& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.name < b.name;
  });
  uint64_t cursor = 0;
  const TensorInfo* prev = nullptr;
  auto range = [](const TensorInfo& t) {
    return "[" + std::to_string(t.begin) + ", " + std::to_string(t.end) + ")";
  };
  for (const TensorInfo& t : infos) {
    if (t.begin < cursor)
      failTensor(t.name, "byte range " + range(t) + " overlaps tensor " + quote(prev->name) +
                             " " + range(*prev));
    if (t.begin > cursor)
      failTensor(t.name, "gap of " + std::to_string(t.begin - cursor) +
                             " bytes before its byte range " + range(t) +
                             " (data bytes [" + std::to_string(cursor) + ", " +
                             std::to_string(t.begin) + ") belong to no tensor)");
    cursor = t.end;
    prev = &t;
  }
  if (cursor != dataSize)
    fail(std::to_string(dataSize - cursor) + " trailing bytes after the last tensor " +
         "(data section is " + std::to_string(dataSize) + " bytes, tensors cover " +
         std::to_string(cursor) + ")");

  tensors_ = std::move(infos);
  index_.reserve(tensors_.size());
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

}  // namespace omniseg
