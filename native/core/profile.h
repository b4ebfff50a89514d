// Opt-in section timings for performance work: with OMNISEG_PROFILE=1 in the environment,
// ProfileScope accumulates wall time per named section and Profile::report() prints the totals
// to stderr. Off (one branch per scope) otherwise.
#pragma once
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace omniseg {

class Profile {
 public:
  static bool enabled() {
    static const bool on = [] {
      const char* v = std::getenv("OMNISEG_PROFILE");
      return v && v[0] == '1';
    }();
    return on;
  }
  static void add(const char* name, double ms) {
    std::lock_guard<std::mutex> lock(mu());
    totals()[name] += ms;
  }
  static void report(const char* title) {
    if (!enabled()) return;
    std::lock_guard<std::mutex> lock(mu());
    double sum = 0;
    for (auto& [k, v] : totals()) sum += v;
    std::fprintf(stderr, "[omniseg profile] %s: %.1f ms\n", title, sum);
    for (auto& [k, v] : totals()) std::fprintf(stderr, "  %-24s %9.1f ms %5.1f%%\n", k.c_str(), v, 100.0 * v / sum);
    totals().clear();
  }

 private:
  static std::mutex& mu() {
    static std::mutex m;
    return m;
  }
  static std::map<std::string, double>& totals() {
    static std::map<std::string, double> t;
    return t;
  }
};

class ProfileScope {
 public:
  explicit ProfileScope(const char* name) : name_(Profile::enabled() ? name : nullptr) {
    if (name_) t0_ = std::chrono::steady_clock::now();
  }
  ~ProfileScope() {
    if (name_)
      Profile::add(name_, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0_).count());
  }

 private:
  const char* name_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace omniseg
