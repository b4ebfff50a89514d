// Errors thrown by the native core. Native code never aborts: every failure is an
// exception derived from omniseg::Error, turned into a JS Error by the addon layer.
#pragma once
#include <stdexcept>
#include <string>

namespace omniseg {

// kind tells the addon which JS error class to raise.
enum class ErrorKind { Generic, Type, Range };

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg, ErrorKind kind = ErrorKind::Generic)
      : std::runtime_error(msg), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

#define OMNISEG_CHECK(cond, msg)                 \
  do {                                           \
    if (!(cond)) throw ::omniseg::Error(msg);    \
  } while (0)

}  // namespace omniseg
