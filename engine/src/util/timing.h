// Zero-cost-when-off phase timing for the forward passes (diffgemma/profile.h).
//
//   PhaseClock clk(prof);          // prof == nullptr: every call below is a pointer test
//   clk.at(Phase::kAttnProj);      // starts attributing time to a phase (closing the last one)
//   ...
//   clk.stop();                    // or let the destructor close the running phase
#pragma once

#include <chrono>

#include "diffgemma/profile.h"

namespace dg {

class PhaseClock {
 public:
  explicit PhaseClock(PhaseTimes* times) : times_(times) {}
  ~PhaseClock() { stop(); }
  PhaseClock(const PhaseClock&) = delete;
  PhaseClock& operator=(const PhaseClock&) = delete;

  void at(Phase p) {
    if (!times_) return;
    const auto now = std::chrono::steady_clock::now();
    close(now);
    phase_ = p;
    start_ = now;
    running_ = true;
  }
  void stop() {
    if (times_ && running_) close(std::chrono::steady_clock::now());
  }

 private:
  void close(std::chrono::steady_clock::time_point now) {
    if (!running_) return;
    times_->seconds[static_cast<int>(phase_)] += std::chrono::duration<double>(now - start_).count();
    times_->calls[static_cast<int>(phase_)] += 1;
    running_ = false;
  }

  PhaseTimes* times_;
  Phase phase_ = Phase::kEmbed;
  std::chrono::steady_clock::time_point start_{};
  bool running_ = false;
};

}  // namespace dg
