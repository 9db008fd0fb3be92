// Seeded k-means: k-means++ initialisation, Lloyd iterations with multithreaded assignment, repair of empty
// clusters by splitting large ones, and subsampling of large training sets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "train_context.h"

namespace quiver {

struct KMeansResult {
  std::vector<float> centroids;  // k × d, row-major
  double mse = 0;                // mean squared distance of the (sub)sampled training points to their centroid
  int iterations_run = 0;
};

// Clusters x (n × d, row-major) into k groups. Requires n ≥ k (throws InvalidArgument otherwise, naming
// the numbers). `phase`, `stage` and `stages` label the progress reports.
KMeansResult kmeans(size_t n, size_t d, const float* x, size_t k, const TrainContext& ctx,
                    const char* phase = "kmeans", int stage = 0, int stages = 1);

// Lloyd iterations started from given centroids (initial: k × d) instead of k-means++: the warm start that
// alternating schemes (OPQ, TRQ) use to refresh a codebook after the data moved a little. Same subsampling,
// empty-cluster repair and reports as kmeans(); ctx.iterations counts assignment passes, so 1 returns the
// initial centroids with their MSE.
KMeansResult kmeans_from(size_t n, size_t d, const float* x, size_t k, const float* initial,
                         const TrainContext& ctx, const char* phase = "kmeans", int stage = 0, int stages = 1);

// Progressive-dimension k-means for high d: x is rotated onto its principal components and clustered on the
// leading d_1 < d_2 < … < d_steps = d components, each run started from the previous run's centroids (their
// new components from `initial`, rotated the same way, or zero — the mean — without it); the centroids are
// rotated back at the end. Low-dimensional runs settle the large-variance directions first, which in high
// dimensions gives better optima than clustering all components at once. initial: k × d or null (then the
// first run uses k-means++). d_s = round(d^(s/steps)), repeats skipped; steps ≥ 1. Only the last run reports
// progress.
KMeansResult kmeans_progressive(size_t n, size_t d, const float* x, size_t k, const float* initial, size_t steps,
                                const TrainContext& ctx, const char* phase = "kmeans", int stage = 0,
                                int stages = 1);

// Nearest centroid of each row of x: labels[i] ∈ [0, k) and, if dists is not null, the squared L2 distance.
// centroids: k × d row-major. Ties go to the lower centroid index.
void assign_nearest(size_t n, size_t d, const float* x, size_t k, const float* centroids, int32_t* labels,
                    float* dists, int threads);

// Copies max_rows rows of x (n × d) drawn uniformly without replacement (in increasing row order) when
// n > max_rows, so that training routines can bound their memory and time; returns an empty vector (use x
// as is) when n ≤ max_rows or max_rows is 0.
std::vector<float> subsample_rows(size_t n, size_t d, const float* x, size_t max_rows, uint64_t seed);

// Precomputed form of a centroid table for repeated nearest-centroid queries (layout for dot_transposed).
class CentroidTable {
 public:
  CentroidTable(size_t k, size_t d, const float* centroids);
  size_t k() const { return k_; }
  size_t d() const { return d_; }
  // Writes ‖x − c_j‖² − ‖x‖² for every centroid j into scratch (k floats); returns the index of the smallest.
  // The choice is the same at every SIMD level: when float scores come within their rounding-error bound of
  // the best, those candidates are re-scored in double with scalar code (ties to the lower index), so encoding
  // is bit-reproducible across scalar / AVX2 / AVX-512 and FMA or not.
  size_t nearest(const float* x, float* scratch) const;
  // Same scores for every centroid without the argmin (for beam search and top-k probes).
  void scores(const float* x, float* out) const;
  // out[j] = ⟨x, c_j⟩ for every centroid (k floats): the inner-product look-up tables of additive codecs.
  void dots(const float* x, float* out) const;
  // ‖c_j‖².
  float norm(size_t j) const { return norms_[j]; }
  const float* norms() const { return norms_.data(); }  // k floats: ‖c_j‖²
  // scores() and dots() for nx vectors (row p at x + p·ldx) into out + p·ldo, sharing each pass over the table
  // between the vectors: bit-identical to one call per vector, and faster (a one-vector pass streams the whole
  // table from cache).
  void scores_batch(const float* x, size_t nx, size_t ldx, float* out, size_t ldo) const;
  void dots_batch(const float* x, size_t nx, size_t ldx, float* out, size_t ldo) const;
  // nearest()'s choice, given x's scores as scores() computes them.
  size_t nearest_in_scores(const float* x, const float* scores) const;

 private:
  // The level-independent choice among the candidates whose float score is within the error bound of the best
  // (`second`: the runner-up's float score, which decides whether there is any such candidate).
  size_t break_near_ties(const float* x, const float* scores, size_t best, float second) const;

  size_t k_, d_, ldc_;
  std::vector<float> transposed_;  // d rows × ldc_ floats
  std::vector<float> norms_;       // ‖c_j‖²
  double max_norm_root_ = 0;       // max_j ‖c_j‖
};

}  // namespace quiver
