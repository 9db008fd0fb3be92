// What every training routine receives: the seed, the thread budget and a progress sink.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "gpu.h"

namespace quiver {

struct Progress {
  std::string phase;   // e.g. "kmeans", "pq", "coarse"
  int stage = 0;       // which sub-problem (PQ sub-quantizer, RQ stage, ...), 0-based
  int stages = 1;      // how many sub-problems this phase has
  int iteration = 0;   // 1-based iteration within the stage
  int iterations = 0;  // planned iterations for the stage
  double error = 0;    // mean squared error per training vector after this iteration
};

struct TrainContext {
  uint64_t seed = 1234;
  int threads = 0;        // 0 = every hardware thread
  int iterations = 25;    // Lloyd iterations per k-means run
  size_t max_points_per_centroid = 256;  // larger training sets are subsampled to k × this
  Device device = Device::Cpu;  // Device::Cuda: k-means and encoding passes on the GPU where gpu.h covers them
  // Called on the thread that runs train(), never from pool workers; may throw to abort training.
  std::function<void(const Progress&)> progress;

  void report(const Progress& p) const {
    if (progress) progress(p);
  }
};

}  // namespace quiver
