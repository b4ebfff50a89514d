#include "core/thread_pool.h"

#include <algorithm>

#include "core/denormals.h"

namespace omniseg {

struct ThreadPool::Job {
  const std::function<void(int64_t, int64_t)>* fn;
  int64_t n = 0, grain = 1, chunks = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mu;
  std::condition_variable cv;
  std::exception_ptr error;
};

ThreadPool::ThreadPool(int threads) : size_(std::max(1, threads)) {
  try {
    for (int i = 1; i < size_; ++i) workers_.emplace_back([this] { workerLoop(); });
  } catch (...) {
    // A thread could not be started (std::system_error): stop and join the ones that were, or
    // their destructors would std::terminate, then let the error reach the caller.
    stopWorkers();
    throw;
  }
}

ThreadPool::~ThreadPool() { stopWorkers(); }

void ThreadPool::stopWorkers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

// Runs one chunk of job; returns false when no chunk was left to take.
bool ThreadPool::runChunk(Job& job) {
  const int64_t c = job.next.fetch_add(1);
  if (c >= job.chunks) return false;
  const int64_t begin = c * job.grain, end = std::min(job.n, begin + job.grain);
  try {
    (*job.fn)(begin, end);
  } catch (...) {
    std::lock_guard<std::mutex> lock(job.mu);
    if (!job.error) job.error = std::current_exception();
  }
  if (job.done.fetch_add(1) + 1 == job.chunks) {
    std::lock_guard<std::mutex> lock(job.mu);
    job.cv.notify_all();
  }
  return true;
}

void ThreadPool::workerLoop() {
  FlushDenormals ftz;  // the pool's own threads run kernels only (see core/denormals.h)
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = queue_.front();
      // A job whose chunks are all taken leaves the queue; its owner waits for completion.
      if (job->next.load() >= job->chunks) {
        queue_.pop_front();
        continue;
      }
    }
    while (runChunk(*job)) {
    }
  }
}

void ThreadPool::parallelFor(int64_t n, int64_t grain,
                             const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t chunks = (n + grain - 1) / grain;
  if (size_ == 1 || chunks == 1) {
    // the calling thread alone, still chunk by chunk: callers size a chunk's scratch and working
    // set by the grain (a 1-thread pool handing the whole range to one call made the AMX linear
    // layers stream every row's tiles from memory, 1.5x slower)
    for (int64_t begin = 0; begin < n; begin += grain) fn(begin, std::min(n, begin + grain));
    return;
  }
  auto job = std::make_shared<Job>();
  job->fn = &fn;
  job->n = n;
  job->grain = grain;
  job->chunks = chunks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(job);
  }
  cv_.notify_all();
  while (runChunk(*job)) {
  }
  {
    std::unique_lock<std::mutex> lock(job->mu);
    job->cv.wait(lock, [&] { return job->done.load() == job->chunks; });
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find(queue_.begin(), queue_.end(), job);
    if (it != queue_.end()) queue_.erase(it);
  }
  if (job->error) std::rethrow_exception(job->error);
}

void ThreadPool::parallelRanges(int64_t n, int64_t align,
                                const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  align = std::max<int64_t>(1, align);
  const int64_t units = (n + align - 1) / align;
  const int64_t parts = std::min<int64_t>(size_, units);
  const int64_t perPart = (units + parts - 1) / parts;
  parallelFor(parts, 1, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      const int64_t begin = p * perPart * align, end = std::min(n, (p + 1) * perPart * align);
      if (begin < end) fn(begin, end);
    }
  });
}

}  // namespace omniseg
