// A fixed set of worker threads that run one parallel loop at a time.
//
// Determinism contract: parallel_for splits [0, n) into contiguous ranges, one per thread, and
// callers make every output element depend on its own item only. Each element is then computed
// by exactly one thread in a fixed order, so results are bit-identical for any thread count.
// parallel_for_dynamic hands the items out in claims of `grain` as threads become free (a core
// the host slows down takes fewer); the same contract makes its results bit-identical too.
#pragma once

#include <atomic>
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

  // As parallel_for, but fn gets the items in ranges of at most `grain` (>= 1), in increasing
  // order, each range to whichever thread asks next.
  void parallel_for_dynamic(int64_t n, int64_t grain, const RangeFn& fn);

 private:
  void worker(int index);
  void run_share(int index);
  void run(int64_t n, int64_t grain, const RangeFn& fn);

  int n_threads_ = 1;
  int spins_ = 0;  // polls before sleeping
  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one parallel_for at a time (contexts may share a model's pool)
  // Workers (and the caller, for completion) poll briefly before sleeping on the condition
  // variables: waking a sleeping thread cost 65-85 us on the VM of BENCHMARKS.md, and a step runs
  // more than a thousand loops.
  std::mutex mutex_;
  std::condition_variable start_cv_, done_cv_;
  std::atomic<uint64_t> generation_{0};  // bumped per job (under mutex_); workers wait for a new value
  std::atomic<int> pending_{0};          // workers still running the current job
  std::atomic<bool> stop_{false};
  // The current job, written before generation_ is bumped.
  const RangeFn* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t grain_ = 0;             // 0: static shares; else dynamic claims of grain_ items
  std::atomic<int64_t> next_{0};  // the next unclaimed item (dynamic)
};

}  // namespace dg
