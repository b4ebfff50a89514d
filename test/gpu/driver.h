// Shared bits of the GPU check drivers (sam_gpu, clipseg_gpu): argument parsing into a map,
// raw little-endian file I/O and min/median timing after a warm-up.
#pragma once
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <utility>
#include <string>
#include <vector>

#include "core/error.h"

namespace omniseg {
namespace gpucheck {

// --key value pairs into opts (defaults kept); every --repeat value is appended to repeated.
inline void parseArgs(int argc, char** argv, std::map<std::string, std::string>& opts,
                      const std::string& repeat, std::vector<std::string>& repeated) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--", 0) != 0 || i + 1 >= argc) throw Error("bad argument: " + a);
    if (a.substr(2) == repeat)
      repeated.push_back(argv[++i]);
    else
      opts[a.substr(2)] = argv[++i];
  }
}

// "NAME=SPEC" → (NAME, SPEC's ';'-separated items).
inline std::pair<std::string, std::vector<std::string>> splitCase(const std::string& arg) {
  const size_t eq = arg.find('=');
  if (eq == std::string::npos) throw Error("--case needs NAME=SPEC: " + arg);
  std::vector<std::string> items;
  std::stringstream in(arg.substr(eq + 1));
  std::string item;
  while (std::getline(in, item, ';')) items.push_back(item);
  return {arg.substr(0, eq), items};
}

template <class T>
void writeFile(const std::string& path, const T* data, size_t count) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count * sizeof(T)));
  if (!f) throw Error("cannot write " + path);
}

template <class T>
std::vector<T> readFile(const std::string& path, size_t count) {
  std::vector<T> v(count);
  std::ifstream f(path, std::ios::binary);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(count * sizeof(T)));
  if (!f) throw Error("cannot read " + std::to_string(count * sizeof(T)) + " bytes from " + path);
  return v;
}

struct Stats {
  double min = 0, median = 0;
};

template <class Fn>
Stats timeIt(int iters, Fn&& fn) {
  fn();  // warm-up
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms.front(), ms[ms.size() / 2]};
}

inline std::string statsJson(const Stats& s) {
  return "{\"min\":" + std::to_string(s.min) + ",\"median\":" + std::to_string(s.median) + "}";
}

// main() of a driver: run(argc, argv), any exception printed as "name: what" with exit status 1.
template <class Run>
int runMain(const char* name, int argc, char** argv, Run&& run) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << name << ": " << e.what() << std::endl;
    return 1;
  }
}

}  // namespace gpucheck
}  // namespace omniseg
