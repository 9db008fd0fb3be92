#pragma once

#include <algorithm>
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

// n rows of d dimensions cycling through `distinct` blobs (row i = blob i mod distinct): many exact ties spread
// over far-apart rows, for tests of scan orders and splits. Returns n × d floats.
inline std::vector<float> repeated_blobs(size_t n, size_t distinct, size_t d, uint64_t seed) {
  std::vector<float> centres;
  const std::vector<float> base = blobs(distinct, d, 30, seed, &centres);
  std::vector<float> out(n * d);
  for (size_t i = 0; i < n; ++i) std::copy_n(base.data() + (i % distinct) * d, d, out.data() + i * d);
  return out;
}

// Every `step`-th id from `first` below n: an allow-list filter.
inline std::vector<int64_t> every_nth_id(size_t n, int64_t first, int64_t step) {
  std::vector<int64_t> ids;
  for (int64_t i = first; i < int64_t(n); i += step) ids.push_back(i);
  return ids;
}

}  // namespace qvtest
