// A fixed set of worker threads that run one parallel loop at a time.
//
// Determinism contract: parallel_for splits [0, n) into contiguous ranges, one per thread, and
// callers make every output element depend on its own item only. Each element is then computed
// by exactly one thread in a fixed order, so results are bit-identical for any thread count.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dg {

// Physical cores of this machine (hyper-threads not counted); at least 1.
int physical_core_count();

class ThreadPool {
 public:
  // fn(begin, end, thread_index): handle items [begin, end); thread_index < n_threads().
  using RangeFn = std::function<void(int64_t, int64_t, int)>;

  explicit ThreadPool(int n_threads);  // n_threads <= 0: physical_core_count()
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }

  // Runs fn over [0, n) on all threads (the caller is thread 0) and returns when all are done.
  // Not reentrant: fn must not call parallel_for. Calls from several threads are serialised.
  void parallel_for(int64_t n, const RangeFn& fn);

 private:
  void worker(int index);
  void run_share(int index);

  int n_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one parallel_for at a time (contexts may share a model's pool)
  std::mutex mutex_;
  std::condition_variable start_cv_, done_cv_;
  uint64_t generation_ = 0;  // bumped per job; workers wait for a new value
  int pending_ = 0;          // workers still running the current job
  bool stop_ = false;
  const RangeFn* fn_ = nullptr;
  int64_t n_ = 0;
};

}  // namespace dg
