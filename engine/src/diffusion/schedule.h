// Linear temperature schedule (LinearTemperatureScheduleLogitsProcessor). cur_step counts the steps
// remaining, N down to 1; transformers computes it in fp32 because cur_step is an int32 tensor:
//   t = f32(t_min) + f32(t_max - t_min) * (f32(cur_step) / f32(N))
// so t(N) = t_max and t(1) = t_min + (t_max - t_min) / N; t_min itself is never reached.
#pragma once

#include <cstdint>

namespace dg::diffusion {

inline float temperature(double t_min, double t_max, int32_t cur_step, int32_t n_steps) {
  const float frac = static_cast<float>(cur_step) / static_cast<float>(n_steps);
  return static_cast<float>(t_min) + static_cast<float>(t_max - t_min) * frac;
}

}  // namespace dg::diffusion
