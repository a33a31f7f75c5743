// ThreadPool under load (tests/test_thread_pool.py builds it with ThreadSanitizer): static and
// dynamic loops of many sizes and grains on 1-4 threads, with pauses long enough that workers go
// through both their polling and their sleeping waits. Every item must be handed out exactly once,
// to a valid thread, in ranges that respect the grain. Exit 0 when all hold; prints what failed.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "util/thread_pool.h"

int main(int argc, char** argv) {
  const int iters = argc > 1 ? std::atoi(argv[1]) : 4000;
  long failures = 0, calls = 0;
  for (int nt = 1; nt <= 4; ++nt) {
    dg::ThreadPool pool(nt);
    std::vector<std::atomic<int>> hits(4096);
    for (int it = 0; it < iters; ++it) {
      const int64_t n = 1 + (it * 7919) % 4095;
      const int64_t grain = it % 3 == 0 ? 0 : 1 + it % 37;  // 0: static shares
      for (int64_t i = 0; i < n; ++i) hits[i].store(0, std::memory_order_relaxed);
      std::atomic<long> bad{0};
      auto fn = [&](int64_t b, int64_t e, int th) {
        if (th < 0 || th >= nt || b < 0 || e > n || b >= e || (grain > 0 && e - b > grain)) bad.fetch_add(1);
        for (int64_t i = b; i < e && i < n; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
      };
      if (grain == 0) pool.parallel_for(n, fn);
      else pool.parallel_for_dynamic(n, grain, fn);
      for (int64_t i = 0; i < n; ++i) bad += hits[i].load(std::memory_order_relaxed) != 1;
      if (bad.load() != 0) {
        if (failures < 10) std::printf("threads %d, n %lld, grain %lld: %ld bad items or ranges\n", nt,
                                       static_cast<long long>(n), static_cast<long long>(grain), bad.load());
        ++failures;
      }
      ++calls;
      if (it % 500 == 499) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // workers fall asleep
    }
  }
  std::printf("%ld loops, %ld failed\n", calls, failures);
  return failures == 0 ? 0 : 1;
}
