// CHECK(cond) for the standalone native tests: prints where a condition failed and counts it
// (nativetest::failures) without stopping the test; main() returns non-zero when any failed.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

namespace nativetest {
inline int failures = 0;

// The larger error of two, NaN when either is (std::max drops a NaN in its second argument).
inline double worst(double a, double b) {
  return std::isnan(a) || std::isnan(b) ? std::numeric_limits<double>::quiet_NaN() : std::max(a, b);
}

// max |got[i] - want[i]| / max |want[i]| over want's size; NaN when any got[i] is NaN (a value
// never written into a NaN-filled output, or 0/0).
template <class Got>
double maxRelErr(const Got& got, const std::vector<double>& want) {
  double err = 0, mag = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err = worst(err, std::abs(double(got[i]) - want[i]));
    mag = std::max(mag, std::abs(want[i]));
  }
  return err / std::max(mag, 1e-30);
}
}  // namespace nativetest

#define CHECK(cond)                                                                    \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);    \
      ++nativetest::failures;                                                          \
    }                                                                                  \
  } while (0)
