// ThreadPool construction when the OS cannot start every thread: the constructor must join the
// threads it did start and throw (std::system_error), not std::terminate (a joinable std::thread
// destroyed during unwinding) or hang. The failure is provoked in a child process whose address
// space is capped just above what it already uses, so that the 8 MiB thread stacks run out after
// a thread or two; the parent checks that the child caught the error and exited normally.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <system_error>
#include <utility>
#include <vector>

#include "check.h"
#include "thread_pool.h"

namespace {

// What the child reports through its exit status.
enum ChildResult { kThrew = 0, kDidNotThrow = 2, kNoLimit = 3 };

int child() {
  long pages = 0;
  std::ifstream("/proc/self/statm") >> pages;
  const rlim_t used = static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGESIZE));
  const rlimit cap{used + (24u << 20), used + (24u << 20)};
  if (pages <= 0 || setrlimit(RLIMIT_AS, &cap) != 0) return kNoLimit;
  try {
    omniseg::ThreadPool pool(256);  // 255 worker stacks cannot fit in 24 MiB
    return kDidNotThrow;
  } catch (const std::system_error&) {
    return kThrew;  // (and the started workers were joined: no std::terminate on the way)
  }
}

}  // namespace

int main() {
  {
    omniseg::ThreadPool pool(4);  // the ordinary case still works
    CHECK(pool.size() == 4);
  }
  // parallelFor hands out chunks of `grain` items on every pool size: a one-thread pool used to
  // call fn once over the whole range, past the working set callers size by the grain
  for (int threads : {1, 3}) {
    omniseg::ThreadPool pool(threads);
    std::mutex mu;
    std::vector<std::pair<int64_t, int64_t>> calls;
    pool.parallelFor(10, 4, [&](int64_t b, int64_t e) {
      std::lock_guard<std::mutex> lock(mu);
      calls.emplace_back(b, e);
    });
    std::sort(calls.begin(), calls.end());
    CHECK((calls == std::vector<std::pair<int64_t, int64_t>>{{0, 4}, {4, 8}, {8, 10}}));
  }
  const pid_t pid = fork();
  if (pid == 0) _exit(child());
  int status = 0;
  CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));  // not killed by SIGABRT (std::terminate)
  if (WIFEXITED(status)) {
    const int code = WEXITSTATUS(status);
    if (code == kNoLimit) std::printf("thread_pool_test: could not cap the address space; skipped\n");
    CHECK(code == kThrew || code == kNoLimit);
  } else if (WIFSIGNALED(status)) {
    std::fprintf(stderr, "child killed by signal %d\n", WTERMSIG(status));
  }
  std::printf("thread_pool_test: %s\n", nativetest::failures == 0 ? "PASS" : "FAIL");
  return nativetest::failures == 0 ? 0 : 1;
}
