#pragma once

#include <cstdint>
#include <vector>

#include "random.h"

namespace qvtest {

// Uniform floats in [-1, 1), reproducible.
inline std::vector<float> random_floats(size_t count, uint64_t seed) {
  quiver::Rng rng(seed);
  std::vector<float> out(count);
  for (float& v : out) v = float(rng.uniform() * 2 - 1);
  return out;
}

// n points around `clusters` well-separated centres in d dimensions (centre spacing 10, noise ±0.5).
inline std::vector<float> blobs(size_t n, size_t d, size_t clusters, uint64_t seed, std::vector<float>* centres) {
  quiver::Rng rng(seed);
  centres->assign(clusters * d, 0.0f);
  for (size_t c = 0; c < clusters; ++c)
    for (size_t j = 0; j < d; ++j) (*centres)[c * d + j] = float(rng.below(21)) * 10.0f - 100.0f;
  std::vector<float> out(n * d);
  for (size_t i = 0; i < n; ++i) {
    const size_t c = i % clusters;
    for (size_t j = 0; j < d; ++j) out[i * d + j] = (*centres)[c * d + j] + float(rng.uniform() - 0.5);
  }
  return out;
}

}  // namespace qvtest
