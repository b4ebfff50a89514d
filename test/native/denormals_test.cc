// FlushDenormals (native/core/denormals.h): denormal results become 0 while it lives, and the
// thread's previous floating-point mode comes back after it.
#include <cstdio>
#include <cstdlib>

#include "check.h"
#include "denormals.h"

// A product whose exact value (5.9e-39) is below FLT_MIN; volatile keeps it from being folded.
static float tinyProduct() {
  volatile float a = 1.17549435e-38f, b = 0.5f;
  return a * b;
}

int main() {
  CHECK(tinyProduct() > 0.f);  // IEEE default: a denormal
  {
    omniseg::FlushDenormals ftz;
#ifdef OMNISEG_HAS_MXCSR
    CHECK(tinyProduct() == 0.f);
    volatile float denormal = 5.9e-39f;  // read as zero (DAZ)
    CHECK(denormal * 1.f == 0.f);
    {
      omniseg::FlushDenormals nested;  // restores to "flushing", not to the IEEE default
    }
    CHECK(tinyProduct() == 0.f);
#endif
  }
  CHECK(tinyProduct() > 0.f);
  if (nativetest::failures == 0) std::printf("denormals_test: ok\n");
  return nativetest::failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
