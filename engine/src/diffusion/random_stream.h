// The shared counter-based random stream, version 1 (model-spec §10.2). Every random draw of the
// generation loop is a pure function of (seed, stream, canvas, step, position), so results do not
// depend on the thread count or on the order draws are made in, and a patched transformers can
// compute the same draws (tests/generation_support.py holds the Python twin of this file).
#pragma once

#include <cstdint>

namespace dg::rng {

enum Stream : uint64_t {
  INIT_CANVAS = 0,  // token[pos] = draw(seed, 0, canvas, 0, pos) % V
  SAMPLE = 1,       // u = uniform(seed, 1, canvas, step, pos) for the categorical sample
  RENOISE = 2,      // token[pos] = draw(seed, 2, canvas, step, pos) % V
};

inline uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// canvas counts the canvases of one generate call from 0, step the denoising steps of that canvas
// from 0 (the first decoder pass is step 0), pos the canvas position.
inline uint64_t draw(uint64_t seed, uint64_t stream, uint64_t canvas, uint64_t step, uint64_t pos) {
  return splitmix64(seed ^ splitmix64((stream << 60) ^ (canvas << 40) ^ (step << 20) ^ pos));
}

// A double in [0, 1) with 53 random bits.
inline double uniform(uint64_t seed, uint64_t stream, uint64_t canvas, uint64_t step, uint64_t pos) {
  return static_cast<double>(draw(seed, stream, canvas, step, pos) >> 11) * 0x1.0p-53;
}

}  // namespace dg::rng
