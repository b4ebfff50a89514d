// Reading a checkpoint's config.json: typed fields with range checks and error messages that name
// the file and the key. Absent or null keys keep the caller's default.
#pragma once
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"

namespace omniseg::config {

using nlohmann::json;

// Largest config file read (checkpoints' configs are a few KiB).
constexpr int64_t kMaxJsonBytes = 16 << 20;

// The JSON object in path; `found` tells whether the file exists (a missing optional file is {}).
// Only a regular file is read (O_NONBLOCK: a FIFO cannot hang the load; /dev/zero is refused).
inline json readJson(const std::string& path, bool required, bool* found = nullptr) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (found) *found = fd >= 0;
  if (fd < 0) {
    if (required) throw Error("cannot read " + path + ": no such file or not readable");
    return json::object();
  }
  std::string text;
  struct stat st;
  const bool stated = ::fstat(fd, &st) == 0;
  const bool regular = stated && S_ISREG(st.st_mode);
  if (regular && st.st_size <= kMaxJsonBytes) {
    text.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < text.size()) {
      const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    text.resize(got);
  }
  ::close(fd);
  if (!regular) throw Error("cannot read " + path + ": not a regular file");
  if (st.st_size > kMaxJsonBytes)
    throw Error(path + ": " + std::to_string(st.st_size) + " bytes, more than a config file's " +
                std::to_string(kMaxJsonBytes) + "-byte limit");
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw Error(path + ": not a valid JSON object");
  return j;
}

// Integer within [lo, hi].
inline void readInt(const json& j, const char* key, int& out, const std::string& where, int lo = 1,
                    int hi = 1 << 20) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if (!it->is_number_integer()) throw Error(where + ": \"" + key + "\" must be an integer");
  const auto v = it->get<int64_t>();
  if (v < lo || v > hi)
    throw Error(where + ": \"" + key + "\" = " + std::to_string(v) + " is out of range [" +
                std::to_string(lo) + ", " + std::to_string(hi) + "]");
  out = static_cast<int>(v);
}

inline void readDouble(const json& j, const char* key, double& out, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if (!it->is_number()) throw Error(where + ": \"" + key + "\" must be a number");
  out = it->get<double>();
}

// A finite number above 0 (an epsilon under a square root, a divisor).
inline void readPositive(const json& j, const char* key, double& out, const std::string& where) {
  double v = out;
  readDouble(j, key, v, where);
  if (!(v > 0) || !std::isfinite(v)) throw Error(where + ": \"" + key + "\" must be a finite number above 0");
  out = v;
}

inline void readBool(const json& j, const char* key, bool& out, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if (!it->is_boolean()) throw Error(where + ": \"" + key + "\" must be true or false");
  out = it->get<bool>();
}

inline void readString(const json& j, const char* key, std::string& out, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if (!it->is_string()) throw Error(where + ": \"" + key + "\" must be a string");
  out = it->get<std::string>();
}

// List of integers within [lo, hi].
inline void readIntList(const json& j, const char* key, std::vector<int>& out,
                        const std::string& where, int lo = 0, int hi = 1 << 20) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  const std::string msg = where + ": \"" + key + "\" must be a list of integers in [" +
                          std::to_string(lo) + ", " + std::to_string(hi) + "]";
  if (!it->is_array()) throw Error(msg);
  out.clear();
  for (const auto& e : *it) {
    if (!e.is_number_integer() || e.get<int64_t>() < lo || e.get<int64_t>() > hi) throw Error(msg);
    out.push_back(e.get<int>());
  }
}

// A nested object (absent → {}).
inline const json& section(const json& root, const char* key, const std::string& where) {
  static const json empty = json::object();
  auto it = root.find(key);
  if (it == root.end() || it->is_null()) return empty;
  if (!it->is_object()) throw Error(where + ": \"" + key + "\" must be an object");
  return *it;
}

}  // namespace omniseg::config
