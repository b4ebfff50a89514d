// Linked only into the prebuilds (binding.gyp's omniseg_static_runtime and CMake's
// OMNISEG_STATIC_RUNTIME, set by scripts/prebuild.sh and scripts/prebuild-cuda.sh), which carry
// libstdc++ statically so that they load on glibc >= 2.34 systems whose libstdc++ is older than
// the build machine's (RHEL 9 and Amazon Linux 2023 ship GCC 11's; the build machine's GCC 12
// headers need GLIBCXX_3.4.30 for condition_variable::wait).
//
// The static libstdc++ brings std::random_device's "arc4random" source along (random.o, pulled in
// by its COW-string constructor), which would bind to glibc 2.36's arc4random and raise the
// prebuild's glibc floor from 2.34 to 2.36. omniseg never makes a random_device; this hidden
// definition satisfies the reference with getrandom (glibc 2.25) instead.
#include <sys/random.h>

#include <cerrno>
#include <cstdint>

extern "C" __attribute__((visibility("hidden"))) uint32_t arc4random(void) {
  uint32_t value = 0;
  while (getrandom(&value, sizeof value, 0) < 0 && errno == EINTR) {
  }
  return value;
}
