#include "util/thread_pool.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace dg {

int physical_core_count() {
  // Linux: count distinct (package, core) pairs; elsewhere fall back to logical CPUs.
  std::set<std::pair<int, int>> cores;
  const unsigned logical = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned cpu = 0; cpu < logical; ++cpu) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream core_f(base + "core_id"), pkg_f(base + "physical_package_id");
    int core = -1, pkg = -1;
    if (!(core_f >> core) || !(pkg_f >> pkg)) return static_cast<int>(logical);
    cores.emplace(pkg, core);
  }
  return std::max(1, static_cast<int>(cores.size()));
}

namespace {

// Polls before a thread sleeps (about 110 us of `pause` on the Zen 5 machine of BENCHMARKS.md),
// when every thread has a CPU of its own (oversubscribed, a polling thread would keep a waiting
// one off the CPU).
constexpr int kSpins = 4096;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  n_threads_ = n_threads > 0 ? n_threads : physical_core_count();
  spins_ = n_threads_ <= static_cast<int>(std::thread::hardware_concurrency()) ? kSpins : 0;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_share(int index) {
  if (grain_ > 0) {
    for (;;) {
      const int64_t b = next_.fetch_add(grain_, std::memory_order_relaxed);
      if (b >= n_) return;
      (*fn_)(b, std::min(n_, b + grain_), index);
    }
  }
  // Contiguous, balanced ranges: thread i gets [n*i/T, n*(i+1)/T).
  const int64_t t = n_threads_;
  const int64_t begin = n_ * index / t;
  const int64_t end = n_ * (index + 1) / t;
  if (begin < end) (*fn_)(begin, end, index);
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    bool ready = false;
    for (int i = 0; i < spins_ && !ready; ++i) {
      ready = stop_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen;
      if (!ready) cpu_relax();
    }
    if (!ready) {
      std::unique_lock<std::mutex> lock(mutex_);
      start_cv_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = generation_.load(std::memory_order_acquire);
    run_share(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mutex_);  // the caller may be asleep on done_cv_
      done_cv_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t n, const RangeFn& fn) { run(n, 0, fn); }

void ThreadPool::parallel_for_dynamic(int64_t n, int64_t grain, const RangeFn& fn) {
  run(n, std::max<int64_t>(1, grain), fn);
}

void ThreadPool::run(int64_t n, int64_t grain, const RangeFn& fn) {
  if (n <= 0) return;
  std::lock_guard<std::mutex> call_lock(call_mutex_);
  if (n_threads_ == 1 || n == 1 || (grain > 0 && grain >= n)) {
    if (grain > 0) {
      for (int64_t b = 0; b < n; b += grain) fn(b, std::min(n, b + grain), 0);
    } else {
      fn(0, n, 0);
    }
    return;
  }
  fn_ = &fn;
  n_ = n;
  grain_ = grain;
  next_.store(0, std::memory_order_relaxed);
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mutex_);  // (sleeping workers check generation_ under it)
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  run_share(0);
  for (int i = 0; i < spins_ && pending_.load(std::memory_order_acquire) != 0; ++i) cpu_relax();
  if (pending_.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  }
  fn_ = nullptr;
}

}  // namespace dg
