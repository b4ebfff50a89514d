// A fixed-size pool of worker threads with a blocking parallel-for. Several callers (e.g. an
// encode and a decode running on different libuv threads) may use one pool at the same time:
// each call is a job in a queue; workers and the calling thread take chunks of it.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace omniseg {

class ThreadPool {
 public:
  // threads: total parallelism including the calling thread (threads - 1 workers are spawned).
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }

  // Calls fn(begin, end) over [0, n) in chunks of `grain` items (the last one shorter), on the
  // workers and the calling thread, whatever the pool's size; returns when all chunks are done.
  // The first exception thrown by fn is rethrown here.
  void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // Splits [0, n) into at most size() contiguous ranges, one per thread (for work such as GEMMs
  // that prefer one large call per thread).
  void parallelRanges(int64_t n, int64_t align, const std::function<void(int64_t, int64_t)>& fn);

 private:
  struct Job;
  void workerLoop();
  void stopWorkers();  // tells every worker to stop and joins it
  static bool runChunk(Job& job);

  int size_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stop_ = false;
};

}  // namespace omniseg
