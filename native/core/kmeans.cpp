#include "kmeans.h"

#include "gpu.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "error.h"
#include "linalg.h"
#include "random.h"
#include "simd.h"
#include "thread_pool.h"

namespace quiver {

std::vector<size_t> sample_indices(size_t n, size_t k, Rng& rng) {
  std::vector<size_t> perm(n);
  for (size_t i = 0; i < n; ++i) perm[i] = i;
  for (size_t i = 0; i < k; ++i) std::swap(perm[i], perm[i + rng.below(n - i)]);
  perm.resize(k);
  std::sort(perm.begin(), perm.end());
  return perm;
}

CentroidTable::CentroidTable(size_t k, size_t d, const float* centroids)
    : k_(k), d_(d), ldc_((k + 15) & ~size_t(15)), transposed_(d * ldc_, 0.0f), norms_(k) {
  for (size_t j = 0; j < k; ++j) {
    const float* c = centroids + j * d;
    double norm = 0;
    for (size_t i = 0; i < d; ++i) {
      transposed_[i * ldc_ + j] = c[i];
      norm += double(c[i]) * c[i];
    }
    norms_[j] = float(norm);
    max_norm_root_ = std::max(max_norm_root_, std::sqrt(norm));
  }
}

void CentroidTable::scores(const float* x, float* out) const {
  kernels().dot_transposed(x, transposed_.data(), d_, k_, ldc_, out);
  for (size_t j = 0; j < k_; ++j) out[j] = norms_[j] - 2 * out[j];
}

void CentroidTable::dots(const float* x, float* out) const {
  kernels().dot_transposed(x, transposed_.data(), d_, k_, ldc_, out);
}

std::vector<float> subsample_rows(size_t n, size_t d, const float* x, size_t max_rows, uint64_t seed) {
  std::vector<float> out;
  if (max_rows == 0 || n <= max_rows) return out;
  Rng rng(seed);
  const std::vector<size_t> picked = sample_indices(n, max_rows, rng);
  out.resize(max_rows * d);
  for (size_t i = 0; i < max_rows; ++i) std::memcpy(&out[i * d], x + picked[i] * d, d * sizeof(float));
  return out;
}

void CentroidTable::dots_batch(const float* x, size_t nx, size_t ldx, float* out, size_t ldo) const {
  kernels().dot_transposed_batch(x, nx, ldx, transposed_.data(), d_, k_, ldc_, out, ldo);
}

void CentroidTable::scores_batch(const float* x, size_t nx, size_t ldx, float* out, size_t ldo) const {
  dots_batch(x, nx, ldx, out, ldo);
  for (size_t p = 0; p < nx; ++p) {
    float* row = out + p * ldo;
    for (size_t j = 0; j < k_; ++j) row[j] = norms_[j] - 2 * row[j];
  }
}

size_t CentroidTable::nearest(const float* x, float* scratch) const {
  scores(x, scratch);
  return nearest_in_scores(x, scratch);
}

size_t CentroidTable::nearest_in_scores(const float* x, const float* score_row) const {
  size_t best = 0;
  float second = std::numeric_limits<float>::infinity();  // the runner-up's score
  for (size_t j = 1; j < k_; ++j) {
    if (score_row[j] < score_row[best]) {
      second = score_row[best];
      best = j;
    } else if (score_row[j] < second) {
      second = score_row[j];
    }
  }
  return k_ > 1 ? break_near_ties(x, score_row, best, second) : best;
}

// Why: the SIMD levels sum the dot products in different orders, with or without FMA, so two centroids whose
// scores differ by less than the rounding error can swap places between levels, and the same vector would get
// different codes on different machines. Any float evaluation of s_j = ‖c_j‖² − 2⟨x, c_j⟩ (d products summed in
// any order, the norm rounded once, one subtraction) is within γ·(‖c_j‖² + 2‖x‖‖c_j‖) of the exact value, with
// γ ≈ (d + 2)·2⁻²⁴; we use twice that and the largest ‖c_j‖. Every centroid whose float score is within two such
// bounds of the best may be the exact minimum, and the exact minimum always is among them at every level; the
// candidates are re-scored in double by this scalar loop, the same code at every level, lowest score (then lowest
// index) wins. So all levels agree. Usually the runner-up is outside the window and this costs O(d).
size_t CentroidTable::break_near_ties(const float* x, const float* scores, size_t best, float second) const {
  double x_norm = 0;
  for (size_t i = 0; i < d_; ++i) x_norm += double(x[i]) * x[i];
  const double gamma = double(d_ + 4) * std::ldexp(1.0, -23);
  const double bound = gamma * (max_norm_root_ * max_norm_root_ + 2 * std::sqrt(x_norm) * max_norm_root_);
  const double cut = double(scores[best]) + 2 * bound;
  if (double(second) > cut) return best;
  size_t winner = best;
  double winner_score = std::numeric_limits<double>::infinity();
  for (size_t j = 0; j < k_; ++j) {
    if (!(double(scores[j]) <= cut)) continue;
    double norm = 0, dot = 0;
    for (size_t i = 0; i < d_; ++i) {
      const double c = transposed_[i * ldc_ + j];
      norm += c * c;
      dot += double(x[i]) * c;
    }
    const double s = norm - 2 * dot;
    if (s < winner_score) {  // strict: equal exact scores keep the lower index (j runs upwards)
      winner_score = s;
      winner = j;
    }
  }
  return winner;
}

void assign_nearest(size_t n, size_t d, const float* x, size_t k, const float* centroids, int32_t* labels,
                    float* dists, int threads) {
  if (gpu_assign_nearest(n, d, x, k, centroids, labels, dists)) return;
  const CentroidTable table(k, d, centroids);
  const Kernels& kern = kernels();
  // Points go through the table in groups that share its loads; the scores are the same as one point at a
  // time, and so is the choice (nearest_in_scores), about twice as fast at K = 256, d = 128.
  constexpr size_t kGroup = 8;
  default_pool().parallel_for(
      n, 256,
      [&](size_t begin, size_t end) {
        std::vector<float> scratch(kGroup * k);
        for (size_t g = begin; g < end; g += kGroup) {
          const size_t count = std::min(kGroup, end - g);
          table.scores_batch(x + g * d, count, d, scratch.data(), k);
          for (size_t p = 0; p < count; ++p) {
            const float* xi = x + (g + p) * d;
            const float* s = &scratch[p * k];
            const size_t best = table.nearest_in_scores(xi, s);
            labels[g + p] = int32_t(best);
            if (dists) dists[g + p] = std::max(0.0f, s[best] + kern.dot(xi, xi, d));
          }
        }
      },
      effective_threads(threads));
}

namespace {

// k-means++: each next centroid is drawn with probability proportional to its squared distance to the
// nearest centroid chosen so far.
std::vector<float> plus_plus_init(size_t n, size_t d, const float* x, size_t k, Rng& rng, int threads) {
  std::vector<float> centroids(k * d);
  std::vector<float> min_dist(n, std::numeric_limits<float>::infinity());
  const Kernels& kern = kernels();
  size_t chosen = rng.below(n);
  for (size_t c = 0; c < k; ++c) {
    std::memcpy(&centroids[c * d], x + chosen * d, d * sizeof(float));
    if (c + 1 == k) break;
    const float* center = &centroids[c * d];
    default_pool().parallel_for(
        n, 1024,
        [&](size_t begin, size_t end) {
          for (size_t i = begin; i < end; ++i)
            min_dist[i] = std::min(min_dist[i], kern.l2sqr(x + i * d, center, d));
        },
        effective_threads(threads));
    double total = 0;
    for (size_t i = 0; i < n; ++i) total += min_dist[i];
    if (total <= 0) {
      // Every point coincides with a centroid already: the rest are duplicates, drawn uniformly.
      chosen = rng.below(n);
      continue;
    }
    const double target = rng.uniform() * total;
    double acc = 0;
    chosen = n - 1;
    for (size_t i = 0; i < n; ++i) {
      acc += min_dist[i];
      if (acc > target) {
        chosen = i;
        break;
      }
    }
  }
  return centroids;
}

// Gives every empty cluster half of a populated one (chosen with probability ∝ its size) by splitting that
// centroid into two slightly perturbed copies, as faiss does. Returns how many clusters were repaired.
size_t repair_empty_clusters(size_t d, size_t k, std::vector<float>& centroids,
                             std::vector<double>& counts, Rng& rng) {
  constexpr float kEps = 1.0f / 1024;
  size_t repaired = 0;
  for (size_t ci = 0; ci < k; ++ci) {
    if (counts[ci] > 0) continue;
    // Draw a donor with probability proportional to the points it can spare (count − 1). Since n > k and a
    // cluster is empty, some cluster holds at least two points, so the total is positive.
    double spare = 0;
    for (size_t c = 0; c < k; ++c) spare += counts[c] > 1 ? counts[c] - 1 : 0;
    QV_CHECK(spare > 0, Internal, "k-means repair found no cluster to split");
    const double r = rng.uniform() * spare;
    double acc = 0;
    size_t cj = k;
    for (size_t c = 0; c < k; ++c) {
      if (counts[c] <= 1) continue;
      cj = c;  // the last eligible donor also catches rounding at the top of the range
      acc += counts[c] - 1;
      if (acc > r) break;
    }
    std::memcpy(&centroids[ci * d], &centroids[cj * d], d * sizeof(float));
    for (size_t i = 0; i < d; ++i) {
      const float sign = (i % 2 == 0) ? 1.0f : -1.0f;
      centroids[ci * d + i] *= 1 + sign * kEps;
      centroids[cj * d + i] *= 1 - sign * kEps;
    }
    counts[ci] = counts[cj] / 2;
    counts[cj] -= counts[ci];
    ++repaired;
  }
  return repaired;
}

}  // namespace

namespace {

// Shared body of kmeans() and kmeans_from(): subsampling, initialisation (k-means++ unless `initial` is
// given), then Lloyd iterations.
KMeansResult run_kmeans(size_t n, size_t d, const float* x, size_t k, const float* initial,
                        const TrainContext& ctx, const char* phase, int stage, int stages) {
  QV_CHECK(k >= 1, InvalidArgument, "k-means needs at least one centroid");
  // The context's device reaches k-means run on pool workers too (sub-quantizers trained in parallel).
  const DeviceScope device_scope(ctx.device == Device::Cuda ? Device::Cuda : current_device());
  QV_CHECK(d >= 1, InvalidArgument, "k-means needs dimension >= 1");
  QV_CHECK(n >= k, InvalidArgument,
           "training needs at least " << k << " vectors for " << k << " centroids, got " << n);
  Rng rng(ctx.seed);

  // Subsample: beyond max_points_per_centroid points per centroid, more data barely moves the centroids.
  std::vector<float> sample;
  const size_t max_points = ctx.max_points_per_centroid > 0 ? k * ctx.max_points_per_centroid : n;
  if (n > max_points) {
    const std::vector<size_t> picked = sample_indices(n, max_points, rng);
    sample.resize(max_points * d);
    for (size_t i = 0; i < max_points; ++i)
      std::memcpy(&sample[i * d], x + picked[i] * d, d * sizeof(float));
    x = sample.data();
    n = max_points;
  }

  KMeansResult result;
  if (initial) {
    result.centroids.assign(initial, initial + k * d);
  } else {
    result.centroids = plus_plus_init(n, d, x, k, rng, ctx.threads);
    if (k == n) {
      // Every point is its own centroid: nothing to iterate.
      result.mse = 0;
      return result;
    }
  }

  std::vector<int32_t> labels(n, -1), previous(n, -1);
  std::vector<float> dists(n);
  std::vector<double> sums(k * d), counts(k);
  const int iterations = std::max(ctx.iterations, 1);
  for (int it = 1; it <= iterations; ++it) {
    assign_nearest(n, d, x, k, result.centroids.data(), labels.data(), dists.data(), ctx.threads);
    double total = 0;
    for (size_t i = 0; i < n; ++i) total += dists[i];
    result.mse = total / double(n);
    result.iterations_run = it;
    const bool converged = labels == previous;
    ctx.report(Progress{phase, stage, stages, it, iterations, result.mse});
    if (converged || it == iterations) break;
    previous = labels;

    if (!gpu_update_centroids(n, d, x, labels.data(), k, result.centroids.data(), counts.data())) {
      std::fill(sums.begin(), sums.end(), 0.0);
      std::fill(counts.begin(), counts.end(), 0.0);
      for (size_t i = 0; i < n; ++i) {
        const size_t c = size_t(labels[i]);
        counts[c] += 1;
        const float* xi = x + i * d;
        double* s = &sums[c * d];
        for (size_t j = 0; j < d; ++j) s[j] += xi[j];
      }
      for (size_t c = 0; c < k; ++c) {
        if (counts[c] == 0) continue;
        const double inv = 1.0 / counts[c];
        for (size_t j = 0; j < d; ++j) result.centroids[c * d + j] = float(sums[c * d + j] * inv);
      }
    }
    repair_empty_clusters(d, k, result.centroids, counts, rng);
  }
  return result;
}

}  // namespace

KMeansResult kmeans(size_t n, size_t d, const float* x, size_t k, const TrainContext& ctx, const char* phase,
                    int stage, int stages) {
  return run_kmeans(n, d, x, k, nullptr, ctx, phase, stage, stages);
}

KMeansResult kmeans_from(size_t n, size_t d, const float* x, size_t k, const float* initial,
                         const TrainContext& ctx, const char* phase, int stage, int stages) {
  return run_kmeans(n, d, x, k, initial, ctx, phase, stage, stages);
}

KMeansResult kmeans_progressive(size_t n, size_t d, const float* x, size_t k, const float* initial, size_t steps,
                                const TrainContext& ctx, const char* phase, int stage, int stages) {
  QV_CHECK(steps >= 1, InvalidArgument, "progressive k-means needs at least one step");
  QV_CHECK(n >= k, InvalidArgument, "k-means needs at least k = " << k << " points, got " << n);
  const int threads = ctx.threads;
  const PcaResult p = pca(n, d, x, threads);
  // y = C (x − mean) for the rows of x and of the initial centroids (rows of C: components, largest first).
  const auto rotate = [&](size_t rows, const float* in, float* out) {
    std::vector<float> centered(rows * d);
    for (size_t i = 0; i < rows; ++i)
      for (size_t j = 0; j < d; ++j) centered[i * d + j] = in[i * d + j] - p.mean[j];
    transform_rows(rows, d, d, p.components.data(), centered.data(), out, threads);
  };
  std::vector<float> y(n * d), current(k * d, 0.0f);
  rotate(n, x, y.data());
  if (initial) rotate(k, initial, current.data());
  KMeansResult km;
  std::vector<float> sub, init;
  size_t previous = 0;
  for (size_t s = 1; s <= steps; ++s) {
    const size_t di = s == steps ? d
                                 : std::min(d, size_t(std::lround(std::pow(double(d), double(s) / double(steps)))));
    if (di <= previous) continue;
    sub.resize(n * di);
    for (size_t i = 0; i < n; ++i) std::memcpy(&sub[i * di], &y[i * d], di * sizeof(float));
    // Only the last, full-dimensional run reports progress: the earlier runs' errors are of fewer components,
    // and their iteration counts would restart the stage's progress several times.
    TrainContext run_ctx = ctx;
    if (di < d) run_ctx.progress = nullptr;
    if (previous == 0 && !initial) {
      km = kmeans(n, di, sub.data(), k, run_ctx, phase, stage, stages);
    } else {
      init.resize(k * di);
      for (size_t c = 0; c < k; ++c) std::memcpy(&init[c * di], &current[c * d], di * sizeof(float));
      km = kmeans_from(n, di, sub.data(), k, init.data(), run_ctx, phase, stage, stages);
    }
    for (size_t c = 0; c < k; ++c) std::memcpy(&current[c * d], &km.centroids[c * di], di * sizeof(float));
    previous = di;
  }
  // Back to the input space: x = Cᵀ y + mean.
  std::vector<float> components_t(d * d);
  transpose(d, d, p.components.data(), components_t.data());
  km.centroids.assign(k * d, 0.0f);
  transform_rows(k, d, d, components_t.data(), current.data(), km.centroids.data(), threads);
  for (size_t c = 0; c < k; ++c)
    for (size_t j = 0; j < d; ++j) km.centroids[c * d + j] += p.mean[j];
  return km;
}

}  // namespace quiver
