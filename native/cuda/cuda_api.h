// Host-side interface of quiver's CUDA kernels (native/cuda/*.cu). Plain C++ types only, so that the core
// (native/core/gpu.cpp) can call it without CUDA headers. Every function takes and returns HOST memory unless a
// type says otherwise; device memory is allocated with plain cudaMalloc (no managed memory) and freed before
// return, except inside the resident stores below. Every CUDA call and kernel launch is checked: a failure
// throws quiver::Error (code Unsupported for "no device", Internal otherwise) naming the call and CUDA's message,
// and never leaves the process in a state where the next call fails for that reason.
//
// Scores follow the core's convention: smaller is better (squared L2, or −⟨q, x⟩ for inner product).
// Ties are broken by the lower index everywhere (centroid, beam entry then codeword, row), as on the CPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace quiver {
namespace cuda {

struct DeviceInfo {
  bool available = false;     // a CUDA device is usable
  std::string name;           // e.g. "NVIDIA H100 80GB HBM3"
  uint64_t total_memory = 0;  // bytes
  uint64_t free_memory = 0;   // bytes, when queried
  int major = 0, minor = 0;   // compute capability
  int multiprocessors = 0;
  int runtime_version = 0;    // CUDA runtime, e.g. 13000
  int driver_version = 0;
  std::string reason;         // why not available
};
// Never throws.
DeviceInfo device_info();

// Nearest centroid of each row: x is n rows of d floats with row stride ldx (floats), centroids k × d row-major.
// labels[i] ∈ [0, k); dists[i] = ‖x_i − c‖² (clamped at 0) when dists is not null.
void assign_nearest(size_t n, size_t d, const float* x, size_t ldx, size_t k, const float* centroids,
                    int32_t* labels, float* dists);

// One Lloyd update on the device for data already labelled: centroids[c] = mean of its members (in double),
// counts[c] = members. Centroids of empty clusters are left as they were (the caller repairs them).
void update_centroids(size_t n, size_t d, const float* x, const int32_t* labels, size_t k, float* centroids,
                      double* counts);

// PQ encoding: sub-space m covers dims [offsets[m], offsets[m] + dims[m]) of each d-float row; its ksub
// centroids (ksub × dims[m]) start at centroids + offsets[m]·ksub (the ProductQuantizer layout).
// sub_codes: n × M values.
void pq_encode(size_t n, size_t d, const float* x, size_t M, const size_t* offsets, const size_t* dims, size_t ksub,
               const float* centroids, uint32_t* sub_codes);

// RQ beam-search encoding: L stages of K codewords (codebooks L × K × d). Keeps the `beam` best partial sums per
// stage, ties to the lower (entry, codeword). paths: n × L stage codes of the best final entry;
// xhat_sq_norms: ‖x̂‖² (n floats, may be null); sq_errors: ‖x − x̂‖² (n floats, may be null).
void rq_encode(size_t n, size_t d, const float* x, size_t L, size_t K, const float* codebooks, size_t beam,
               uint32_t* paths, float* xhat_sq_norms, float* sq_errors);

// TRQ front half (greedy first level): clusters[i] = nearest of the k1 first-level centroids, and
// y_i = R_{clusters[i]} (x_i − c_{clusters[i]}) (n × d), with R_k = transforms + slots[k]·d·d (row-major, y = R r)
// or the identity when slots[k] < 0.
void trq_transform(size_t n, size_t d, const float* x, size_t k1, const float* first_centroids,
                   const int32_t* slots, size_t slot_count, const float* transforms, uint32_t* clusters, float* y);

// Exact k-nearest rows of `base` (nb × d) for each query (nq × d), squared L2 or −inner product:
// out_rows/out_scores nq × k, best first (rows −1 / +inf when nb < k). k ≤ kMaxK.
void exact_knn(size_t nq, const float* queries, size_t nb, const float* base, size_t d, bool inner_product,
               size_t k, int64_t* out_rows, float* out_scores);

constexpr size_t kMaxK = 1024;

// Codes resident on the device for ADC scans of byte-per-subcode codecs (PQ…x8, RQ…x8 with a float32 norm):
// row i = `m` code bytes, then, when has_norm, a float32 added to the score (RQ's ‖x̂‖² for L2). On the device
// each row is padded to a multiple of 4 bytes; uploaded once, reused by every search until freed.
class ResidentCodes {
 public:
  ResidentCodes(const uint8_t* codes, size_t n, size_t code_size, size_t m, bool has_norm);
  ~ResidentCodes();
  ResidentCodes(const ResidentCodes&) = delete;
  ResidentCodes& operator=(const ResidentCodes&) = delete;
  size_t size() const { return n_; }
  size_t m() const { return m_; }
  bool has_norm() const { return has_norm_; }
  size_t device_bytes() const;
  struct Impl;
  Impl* impl() const { return impl_.get(); }

 private:
  size_t n_, m_;
  bool has_norm_;
  std::unique_ptr<Impl> impl_;
};

// Exhaustive ADC search of nq queries whose look-up tables are given: luts nq × m × 256 floats (entry (m, j) =
// the score contribution of sub-code j at position m), bias nq floats added to every score (‖q‖² for RQ-L2,
// else 0), use_norm adds the stored float (RQ-L2). allow: optional bitset over rows (bit i of word i/64 set =
// row i may be returned), null = every row. Results nq × k best first: rows (−1 and +inf past the end).
void adc_search(const ResidentCodes& codes, size_t nq, const float* luts, const float* bias, bool use_norm,
                const uint64_t* allow, size_t k, int64_t* out_rows, float* out_scores);

// Exhaustive search of 8-bit PQ codes (codes.m() sub-quantizers; sub-space m = dims [offsets[m], + dims[m]) of
// each d-float query, its 256 centroids at centroids + offsets[m]·256, the ProductQuantizer layout): the tables
// (entry (m, j) = ‖q_m − c_mj‖² or −⟨q_m, c_mj⟩) are built on the device, then scanned as adc_search does.
void pq_adc_search(const ResidentCodes& codes, size_t nq, const float* queries, size_t d, const size_t* offsets,
                   const size_t* dims, const float* centroids, bool inner_product, const uint64_t* allow, size_t k,
                   int64_t* out_rows, float* out_scores);

// IVF lists resident on the device: the codes of every list back to back (list l = rows offsets[l] …
// offsets[l+1] of `codes`, each of code_size bytes, m sub-codes of 8 bits, PQ by residual) and each code's row
// number. Uploaded once per index version.
class ResidentLists {
 public:
  ResidentLists(size_t nlist, const uint64_t* offsets, const uint8_t* codes, const uint32_t* rows, size_t code_size,
                size_t m, size_t d, const float* coarse_centroids, const size_t* sub_offsets, const size_t* sub_dims,
                const float* pq_centroids);
  ~ResidentLists();
  ResidentLists(const ResidentLists&) = delete;
  ResidentLists& operator=(const ResidentLists&) = delete;
  size_t nlist() const { return nlist_; }
  size_t total() const { return total_; }
  size_t device_bytes() const;
  struct Impl;
  Impl* impl() const { return impl_.get(); }

 private:
  size_t nlist_, total_;
  std::unique_ptr<Impl> impl_;
};

// IVF-PQ search (L2 by residual, or inner product: ⟨q, c_l⟩ + ⟨q, ŷ⟩): probes the nprobe nearest lists of each
// query, builds each probed list's table in shared memory and scans it; results as adc_search, rows being the
// stored row numbers.
void ivf_search(const ResidentLists& lists, size_t nq, const float* queries, bool inner_product, size_t nprobe,
                const uint64_t* allow, size_t allow_words, size_t k, int64_t* out_rows, float* out_scores);

// Benchmark/test entry: ADC scan over codes generated on the device (n random codes of m bytes, seed), nq
// random tables; returns the kernel time in milliseconds (median of `repeats`, CUDA events) and fills results
// for checking (nq × k).
struct ScanTiming {
  double median_ms = 0, min_ms = 0;
  int queries_per_block = 0, threads = 0;
};
// threads: scan block size (256, 512 or 1024; 0 = what searches choose).
ScanTiming time_adc_scan(const ResidentCodes& codes, size_t nq, const float* luts, size_t k, int repeats,
                         int64_t* out_rows, float* out_scores, int threads = 0);
// Random codes made on the device (for throughput benchmarks over more codes than the host wants to hold).
std::unique_ptr<ResidentCodes> random_resident_codes(size_t n, size_t m, uint64_t seed);

}  // namespace cuda
}  // namespace quiver
