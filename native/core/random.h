// Deterministic random numbers: std::mt19937_64 is specified bit-for-bit by the standard, but the std
// distributions are not, so results would differ between standard libraries. We map raw draws ourselves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace quiver {

class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  uint64_t next() { return engine_(); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(engine_() >> 11) * (1.0 / 9007199254740992.0); }
  // Uniform integer in [0, n), n > 0 (multiply-shift; bias below 2^-32 for the sizes we draw).
  size_t below(size_t n) { return size_t((unsigned __int128)(engine_()) * n >> 64); }

 private:
  std::mt19937_64 engine_;
};

// k distinct indices drawn uniformly from [0, n), returned in increasing order (k ≤ n).
std::vector<size_t> sample_indices(size_t n, size_t k, Rng& rng);

}  // namespace quiver
