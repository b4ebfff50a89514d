// CHECK(cond) for the standalone native tests: prints where a condition failed and counts it
// (nativetest::failures) without stopping the test; main() returns non-zero when any failed.
#pragma once
#include <cstdio>

namespace nativetest {
inline int failures = 0;
}  // namespace nativetest

#define CHECK(cond)                                                                    \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);    \
      ++nativetest::failures;                                                          \
    }                                                                                  \
  } while (0)
