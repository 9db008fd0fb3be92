// The GPU seam of the core. Builds with CUDA (CMake -DQUIVER_CUDA=ON; QUIVER_WITH_CUDA defined for gpu.cpp only)
// route the work listed below to native/cuda; CPU-only builds (the node-gyp default) compile the same file to
// "not available" answers, so the rest of the core never sees CUDA.
//
// What runs on the device when a call asks for it (Device::Cuda) and a GPU is usable:
//   training  — k-means assignment and centroid update (every k-means: PQ sub-quantizers, RQ stages, IVF
//               coarse quantizer, TRQ first level), and every encoding pass below run during training;
//   encoding  — PQ (any nbits ≤ 8), RQ with beam search (any beam ≤ 256), TRQ with beam 1 (first level and the
//               local transforms on the device, then its RQ or PQ fine stage on the device);
//   search    — exhaustive ADC over PQ…x8 and RQ…x8 (float32 norm) codes, and IVF…,PQ…x8 without TRQ, for
//               k·refine ≤ 1024, nprobe ≤ 1024; refine and id mapping stay on the CPU.
// Anything else (fast-scan layouts, OPQ's rotation, PRQ, per-category search, TRQ with beam > 1) runs on the
// CPU: the device is a speed-up, never a different answer. Results match the CPU path up to float rounding of
// the sums (ties and near-ties at the rounding level may order differently).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace quiver {

class Quantizer;

enum class Device { Cpu, Cuda };

struct GpuStatus {
  bool compiled = false;   // this build has the CUDA kernels
  bool available = false;  // compiled and a usable device is present
  std::string name;
  uint64_t total_memory = 0, free_memory = 0;
  int major = 0, minor = 0, multiprocessors = 0;
  int runtime_version = 0, driver_version = 0;
  std::string reason;  // why not available
};
GpuStatus gpu_status();  // never throws; the device is probed once per process

// The device the calling thread's training and encoding use (set for the duration of one API call).
class DeviceScope {
 public:
  explicit DeviceScope(Device device);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  Device previous_;
};
Device current_device();
// True when `device` is Cuda and a GPU is usable.
bool gpu_usable(Device device);

// Hooks the core calls; each returns false when the work is not for the GPU (CPU asked for, no GPU, or a case
// the kernels do not cover) and the caller runs its CPU code. Errors from the device propagate as quiver::Error.
bool gpu_assign_nearest(size_t n, size_t d, const float* x, size_t k, const float* centroids, int32_t* labels,
                        float* dists);
// Lloyd update: sums of members in double on the device; counts[c] = members of c. Centroids of empty clusters
// are left unchanged.
bool gpu_update_centroids(size_t n, size_t d, const float* x, const int32_t* labels, size_t k, float* centroids,
                          double* counts);
bool gpu_encode(const Quantizer& codec, size_t n, const float* x, uint8_t* codes);
// Searches the GPU has served in this process (tests check that the device path really ran).
uint64_t gpu_search_count();

// Device-resident copy of an index's codes, cached by the index between searches and dropped on mutation.
struct GpuResident;
struct GpuResidentDeleter {
  void operator()(GpuResident* p) const;
};
using GpuResidentPtr = std::unique_ptr<GpuResident, GpuResidentDeleter>;

}  // namespace quiver

#include <functional>
#include <mutex>
#include <vector>

#include "metric.h"

namespace quiver {

struct Candidate;
struct RowFilter;
class ProductQuantizer;

// Exhaustive ADC candidates on the GPU: found[q] = the best `shortlist` (score, row) of query q, best first.
// codes: n × code_size bytes of `codec`. cache/lock: the index's resident copy (rebuilt when empty).
bool gpu_codec_search(const Quantizer& codec, Metric metric, const uint8_t* codes, size_t n, GpuResidentPtr& cache,
                      std::mutex& lock, size_t nq, const float* queries, size_t shortlist, const RowFilter& filter,
                      std::vector<std::vector<Candidate>>& found);

// What an IVF-PQ index shows the GPU path: its coarse centroids (nlist × d), its fine PQ, and a way to gather
// every list's codes and rows back to back (offsets: nlist + 1 entries).
struct IvfGpuView {
  size_t nlist = 0, dim = 0;
  const float* centroids = nullptr;
  const ProductQuantizer* pq = nullptr;
  std::function<void(std::vector<uint64_t>& offsets, std::vector<uint8_t>& codes, std::vector<uint32_t>& rows)>
      gather;
};
bool gpu_ivf_search(const IvfGpuView& view, Metric metric, GpuResidentPtr& cache, std::mutex& lock, size_t nq,
                    const float* queries, size_t nprobe, size_t shortlist, const RowFilter& filter,
                    std::vector<std::vector<Candidate>>& found);

}  // namespace quiver
