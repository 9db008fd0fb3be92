#include "rq.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "bitpack.h"
#include "error.h"
#include "gpu.h"
#include "io.h"
#include "random.h"
#include "simd.h"
#include "thread_pool.h"

namespace quiver {

NormStorage parse_norm_storage(const std::string& value) {
  if (value == "f32") return NormStorage::Float32;
  if (value == "u8") return NormStorage::Uint8;
  QV_THROW(InvalidArgument, "norm storage must be f32 (4 bytes) or u8 (1 byte), got \"" << value << "\"");
}

// ---------------------------------------------------------------------------------------------- NormCodec

void NormCodec::set_range(float lo, float hi) {
  QV_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, InvalidArgument,
           "norm range must be finite with lo <= hi, got [" << lo << ", " << hi << "]");
  lo_ = lo;
  hi_ = hi;
}

void NormCodec::write(float value, uint8_t* out) const {
  if (storage_ == NormStorage::Float32) {
    std::memcpy(out, &value, sizeof(float));
    return;
  }
  const float span = hi_ - lo_;
  float t = span > 0 ? (value - lo_) / span * 255.0f : 0.0f;
  if (!(t >= 0)) t = 0;  // also catches NaN
  if (t > 255) t = 255;
  *out = uint8_t(t + 0.5f);
}

float NormCodec::read(const uint8_t* in) const {
  if (storage_ == NormStorage::Float32) {
    float value;
    std::memcpy(&value, in, sizeof(float));
    return value;
  }
  return lo_ + (hi_ - lo_) * (float(*in) * (1.0f / 255.0f));
}

namespace {

// Four floats in a register: GCC's and Clang's vector extension, which compiles to SSE on x86-64 and NEON on
// AArch64 without a kernel per SIMD level. (a < b ? a : b on it is one min instruction.)
typedef float Float4 __attribute__((vector_size(16)));

Float4 load4(const float* p) {
  Float4 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// The smallest of scores[0 … 16), NaNs skipped (+infinity when all are NaN). Each compare keeps the
// running minimum unless the new value is below it, so a NaN never replaces it; the lanes are folded last.
float minimum_of_16(const float* scores) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  const Float4 none = {inf, inf, inf, inf};
  const Float4 v0 = load4(scores), v1 = load4(scores + 4), v2 = load4(scores + 8), v3 = load4(scores + 12);
  Float4 a = v0 < none ? v0 : none, b = v2 < none ? v2 : none;
  a = v1 < a ? v1 : a;
  b = v3 < b ? v3 : b;
  a = b < a ? b : a;
  Float4 swapped = __builtin_shufflevector(a, a, 2, 3, 0, 1);
  a = swapped < a ? swapped : a;
  swapped = __builtin_shufflevector(a, a, 1, 0, 3, 2);
  a = swapped < a ? swapped : a;
  return a[0];
}

// Kernels::kth_smallest (simd.h) for short inputs: its passes cost n/lanes vector operations each and up to kth
// run, so long inputs (n·kth past kMaxLevels) take an insertion into the kth smallest so far (scratch: kth
// floats), whose compares mispredict but which reads the values once.
float kth_smallest_below_infinity(const float* values, size_t n, size_t kth, std::vector<float>& scratch) {
  constexpr size_t kMaxLevels = 2048;
  if (n * kth <= kMaxLevels) return kernels().kth_smallest(values, n, kth);
  constexpr float inf = std::numeric_limits<float>::infinity();
  scratch.resize(kth);
  size_t filled = 0;
  for (size_t i = 0; i < n; ++i) {
    const float m = values[i];
    if (!(m < (filled == kth ? scratch[kth - 1] : inf))) continue;
    size_t at = filled < kth ? filled++ : kth - 1;
    for (; at > 0 && scratch[at - 1] > m; --at) scratch[at] = scratch[at - 1];
    scratch[at] = m;
  }
  return filled == kth ? scratch[kth - 1] : inf;
}

}  // namespace

// ------------------------------------------------------------------------------------------- RQBeamSearch

RQBeamSearch::RQBeamSearch(const ResidualQuantizer& rq) : rq_(rq), dim_(rq.dim()), stages_(rq.stages()) {}

void RQBeamSearch::reset(size_t count, const float* residuals, const float* sq_norms, const uint32_t* tags,
                         const uint32_t* paths) {
  count_ = count;
  residual_entries_ = count;
  residuals_.assign(residuals, residuals + count * dim_);
  dists_.assign(sq_norms, sq_norms + count);
  tags_.resize(count);
  for (size_t e = 0; e < count; ++e) tags_[e] = tags ? tags[e] : 0;
  if (paths)
    paths_.assign(paths, paths + count * stages_);
  else
    paths_.assign(count * stages_, 0);
}

void RQBeamSearch::select(size_t width, bool minima_ready) {
  const size_t k = rq_.ksub();
  // Heap order: the worst candidate on top. Worse = larger distance, then later entry, then later word, so
  // that ties resolve to the same codes whatever the thread or platform.
  const auto better = [](const Candidate& a, const Candidate& b) {
    if (a.dist != b.dist) return a.dist < b.dist;
    if (a.entry != b.entry) return a.entry < b.entry;
    return a.word < b.word;
  };
  const size_t keep = std::min(width, count_ * k);
  heap_.clear();
  if (keep == 1 && count_ == 1) {
    // Greedy from one entry (every beam-1 search): the first of equal minima, as the heap would keep.
    const size_t best = first_minimum(dists_[0], scores_.data(), k);
    heap_.push_back(Candidate{dists_[0] + scores_[best], 0, uint32_t(best)});
    return;
  }
  if (keep == 1) {
    // Greedy over several entries: one scan in (entry, word) order, so that a NaN first distance stops every
    // later entry as in the one-entry case above.
    size_t best = 0;
    float best_dist = dists_[0] + scores_[0];
    for (size_t e = 0; e < count_; ++e) {
      const float base = dists_[e];
      const float* sc = &scores_[e * k];
      for (size_t j = 0; j < k; ++j)
        if (base + sc[j] < best_dist) {
          best_dist = base + sc[j];
          best = e * k + j;
        }
    }
    heap_.push_back(Candidate{best_dist, uint32_t(best / k), uint32_t(best % k)});
    return;
  }
  const size_t chunks_per_entry = k % 16 == 0 ? k / 16 : 0, chunks = count_ * chunks_per_entry;
  if (chunks >= keep) {
    // A bound first: the minimum of each chunk of sixteen candidates is a candidate, so `keep` chunk minima at
    // or below some value mean that `keep` candidates are, and no candidate above the keep-th smallest chunk
    // minimum can be kept. That bound is tight (few of count·K candidates make the beam, and they sit in
    // few chunks), so only the candidates at or below it are collected, chunks whose minimum is above it
    // skipped whole; sorted in the heap's order, the first `keep` of them are what a full pass through the
    // heap keeps.
    // The minima of the scores (from step()'s kernel, or computed here) become those of the distances by
    // adding the entry's distance: rounding is monotonic, so fl(d + min s) = min fl(d + s).
    if (!minima_ready) {
      minima_.resize(chunks);
      for (size_t c = 0; c < chunks; ++c) minima_[c] = minimum_of_16(&scores_[c * 16]);
    }
    for (size_t e = 0, c = 0; e < count_; ++e)
      for (size_t j = 0; j < chunks_per_entry; ++j, ++c) minima_[c] += dists_[e];
    // Only minima below +infinity count (a chunk of NaNs reports +infinity, and NaN distances give NaN).
    const float limit = kth_smallest_below_infinity(minima_.data(), chunks, keep, bound_scratch_);
    if (limit < std::numeric_limits<float>::infinity()) {
      // Whether a chunk or a candidate passes is a coin toss to the branch predictor: both filters write
      // every index and advance only past those that pass.
      passing_chunks_.resize(chunks);
      size_t passing = 0;
      for (size_t c = 0; c < chunks; ++c) {
        passing_chunks_[passing] = uint32_t(c);
        passing += minima_[c] <= limit;
      }
      pool_.resize(count_ * k);
      size_t pooled = 0;
      for (size_t i = 0; i < passing; ++i) {
        const size_t c = passing_chunks_[i], e = c / chunks_per_entry, first = (c % chunks_per_entry) * 16;
        const float base = dists_[e];
        const float* sc = &scores_[e * k + first];
        for (size_t t = 0; t < 16; ++t) {
          const float dist = base + sc[t];
          pool_[pooled] = Candidate{dist, uint32_t(e), uint32_t(first + t)};
          pooled += dist <= limit;
        }
      }
      // At least `keep` candidates passed, one per counted chunk minimum (the check only guards that
      // reasoning); the best come out in order.
      if (pooled >= keep) {
        std::partial_sort(pool_.begin(), pool_.begin() + keep, pool_.begin() + pooled, better);
        heap_.assign(pool_.begin(), pool_.begin() + keep);
        return;
      }
    }
  }
  // Few candidates (K < 16, fewer chunks than the beam, or too few finite distances for a bound): every one
  // goes through the heap.
  for (size_t e = 0; e < count_; ++e)
    for (size_t j = 0; j < k; ++j) {
      const float dist = dists_[e] + scores_[e * k + j];
      if (heap_.size() < keep) {
        heap_.push_back(Candidate{dist, uint32_t(e), uint32_t(j)});
        std::push_heap(heap_.begin(), heap_.end(), better);
      } else if (dist < heap_.front().dist) {  // equal distance: the earlier candidate stays
        std::pop_heap(heap_.begin(), heap_.end(), better);
        heap_.back() = Candidate{dist, uint32_t(e), uint32_t(j)};
        std::push_heap(heap_.begin(), heap_.end(), better);
      }
    }
  std::sort_heap(heap_.begin(), heap_.end(), better);
}

void RQBeamSearch::advance(size_t stage, bool with_residuals) {
  const size_t keep = heap_.size(), d = dim_;
  const float* book = rq_.codebook(stage);
  if (with_residuals) next_residuals_.resize(keep * d);
  next_dists_.resize(keep);
  next_paths_.resize(keep * stages_);
  next_tags_.resize(keep);
  for (size_t t = 0; t < keep; ++t) {
    const Candidate& c = heap_[t];
    if (with_residuals) {
      const float* r = &residuals_[size_t(c.entry) * d];
      const float* word = book + size_t(c.word) * d;
      float* out = &next_residuals_[t * d];
      for (size_t i = 0; i < d; ++i) out[i] = r[i] - word[i];
    }
    next_dists_[t] = c.dist;
    std::memcpy(&next_paths_[t * stages_], &paths_[size_t(c.entry) * stages_], stages_ * sizeof(uint32_t));
    next_paths_[t * stages_ + stage] = c.word;
    next_tags_[t] = tags_[c.entry];
  }
  if (with_residuals) residuals_.swap(next_residuals_);
  dists_.swap(next_dists_);
  paths_.swap(next_paths_);
  tags_.swap(next_tags_);
  count_ = keep;
  residual_entries_ = with_residuals ? keep : 0;
}

void RQBeamSearch::run(size_t first, size_t last, size_t width) {
  const size_t k = rq_.ksub(), d = dim_;
  for (size_t l = first; l < last; ++l) {
    const CentroidTable& table = rq_.table(l);
    scores_.resize(count_ * k);
    // ‖r − c‖² = ‖r‖² + (‖c‖² − 2⟨r, c⟩): the table gives the bracket for all codewords and entries in one
    // SIMD pass.
    table.scores_batch(residuals_.data(), count_, d, scores_.data(), k);
    select(width);
    advance(l, true);
  }
}

void RQBeamSearch::start(const float* x, const float* x_dots) {
  x_ = x;
  x_dots_ = x_dots;
  seed_stride_ = 0;
  const float norm = kernels().dot(x, x, dim_);
  reset(1, x, &norm, nullptr);
}

void RQBeamSearch::start_seeds(size_t count, const float* seeds, const float* sq_norms, const float* seed_dots) {
  QV_CHECK(rq_.uses_cross_tables(), Internal, "start_seeds needs the RQ cross-product tables");
  x_ = seeds;
  x_dots_ = seed_dots;
  seed_stride_ = stages_ * rq_.ksub();
  seed_tags_.resize(count);
  for (size_t s = 0; s < count; ++s) seed_tags_[s] = uint32_t(s);
  reset(count, seeds, sq_norms, seed_tags_.data());
}

void RQBeamSearch::step(size_t l, size_t width) {
  if (!x_dots_) {
    run(l, l + 1, width);
    return;
  }
  const size_t k = rq_.ksub();
  const CentroidTable& table = rq_.table(l);
  scores_.resize(count_ * k);
  rows_.resize(l);
  const bool chunked = k % 16 == 0;
  if (chunked) minima_.resize(count_ * (k / 16));
  const float* norms = table.norms();
  const Kernels& kern = kernels();
  for (size_t e = 0; e < count_; ++e) {
    float* sc = &scores_[e * k];
    const float* dots = x_dots_ + tags_[e] * seed_stride_ + l * k;
    const uint32_t* path = &paths_[e * stages_];
    for (size_t m = 0; m < l; ++m) rows_[m] = rq_.cross_table(m, l) + size_t(path[m]) * k;
    // ‖c_lj‖² − 2 (⟨x, c_lj⟩ − Σ_m row_m[j]), and the minima of its chunks of 16 for select()
    kern.beam_scores(dots, rows_.data(), l, norms, k, sc, chunked ? &minima_[e * (k / 16)] : nullptr);
  }
  select(width, chunked);
  advance(l, false);
  // The next step reads l + 1 rows of K floats per entry from cross tables of megabytes, mostly past the L2
  // cache, and its sums wait on those loads: asking for them now overlaps them with whatever the caller does
  // between steps (TRQ fills the next stage's codeword products) and with each other.
  if (l + 1 < stages_)
    for (size_t e = 0; e < count_; ++e) {
      const uint32_t* path = &paths_[e * stages_];
      for (size_t m = 0; m <= l; ++m) {
        const float* row = rq_.cross_table(m, l + 1) + size_t(path[m]) * k;
        for (size_t j = 0; j < k; j += 16) __builtin_prefetch(row + j);
      }
    }
}

void RQBeamSearch::finish() {
  if (!x_dots_) return;  // the direct route kept the residuals up to date
  // Cross-table steps track only codes and distances: rebuild the best entry's residual, the one encoders keep.
  const size_t d = dim_;
  residuals_.resize(d);
  std::vector<float>& rec = next_residuals_;
  rec.resize(d);
  if (count_ > 0) {
    rq_.reconstruct(&paths_[0], rec.data());
    const float* x = x_ + (seed_stride_ ? tags_[0] * d : 0);
    for (size_t i = 0; i < d; ++i) residuals_[i] = x[i] - rec[i];
  }
  residual_entries_ = std::min<size_t>(count_, 1);
  x_dots_ = nullptr;
  seed_stride_ = 0;
}

// -------------------------------------------------------------------------------------- ResidualQuantizer

ResidualQuantizer::ResidualQuantizer(size_t dim, size_t stages, size_t nbits, RQOptions options)
    : Quantizer(dim), stages_(stages), nbits_(nbits), ksub_(0), code_bytes_(0), options_(options),
      norm_(options.norm) {
  QV_CHECK(dim >= 1, InvalidArgument, "RQ needs dim >= 1");
  QV_CHECK(stages >= 1 && stages <= 64, InvalidArgument, "RQ needs 1 <= stages <= 64, got " << stages);
  QV_CHECK(nbits >= 1 && nbits <= 12, InvalidArgument, "RQ needs 1 <= nbits <= 12, got " << nbits);
  QV_CHECK(options.beam >= 1 && options.beam <= 256, InvalidArgument,
           "RQ beam width must be 1 … 256, got " << options.beam);
  QV_CHECK(options.train_beam <= 256, InvalidArgument,
           "RQ training beam width must be 1 … 256, got " << options.train_beam);
  QV_CHECK(options.refit_rounds <= 20, InvalidArgument,
           "RQ refit rounds must be 0 … 20, got " << options.refit_rounds);
  QV_CHECK(options.progressive_steps <= 64, InvalidArgument,
           "RQ progressive-dimension steps (pd) must be 0 … 64, got " << options.progressive_steps);
  ksub_ = size_t(1) << nbits;
  code_bytes_ = packed_bytes(stages, nbits);
}

std::string ResidualQuantizer::spec() const {
  std::string s = "RQ" + std::to_string(stages_) + "x" + std::to_string(nbits_);
  if (options_.beam != RQOptions::kDefaultBeam) s += ",beam=" + std::to_string(options_.beam);
  if (options_.training_beam() != options_.beam) s += ",trainbeam=" + std::to_string(options_.training_beam());
  if (norm_.storage() != NormStorage::Float32) s += std::string(",norm=") + norm_.name();
  if (options_.refit_rounds != RQOptions::kDefaultRefitRounds) s += ",refit=" + std::to_string(options_.refit_rounds);
  if (options_.progressive_steps) s += ",pd=" + std::to_string(options_.progressive_steps);
  return s;
}

void ResidualQuantizer::build_tables() {
  tables_.clear();
  tables_.reserve(stages_);
  for (size_t l = 0; l < stages_; ++l) tables_.emplace_back(ksub_, dim(), codebook(l));
  build_cross_tables();
}

void ResidualQuantizer::build_cross_tables() {
  cross_.clear();
  const size_t L = stages_, K = ksub_, d = dim();
  const size_t pairs = L * (L - 1) / 2;
  if (pairs == 0 || pairs * K * K * sizeof(float) > kMaxCrossTableBytes) return;
  cross_.resize(pairs * K * K);
  // Block (m, l) = C_m · C_lᵀ: for each codeword a of stage m, its dot products with all of stage l.
  default_pool().parallel_for(pairs * K, 64, [&](size_t begin, size_t end) {
    for (size_t row = begin; row < end; ++row) {
      const size_t pair = row / K, a = row % K;
      size_t l = 1;
      while ((l + 1) * l / 2 <= pair) ++l;
      const size_t m = pair - l * (l - 1) / 2;
      tables_[l].dots(codebook(m) + a * d, &cross_[pair * K * K + a * K]);
    }
  });
}

void ResidualQuantizer::set_codebooks(std::vector<float> codebooks, float norm_lo, float norm_hi) {
  QV_CHECK(codebooks.size() == stages_ * ksub_ * dim(), InvalidArgument,
           "RQ codebooks: expected " << stages_ * ksub_ * dim() << " floats, got " << codebooks.size());
  norm_.set_range(norm_lo, norm_hi);
  codebooks_ = std::move(codebooks);
  build_tables();
  trained_ = true;
}

void ResidualQuantizer::fit_norm_range(size_t n, const float* norms) {
  float lo = norms[0], hi = norms[0];
  for (size_t i = 1; i < n; ++i) {
    lo = std::min(lo, norms[i]);
    hi = std::max(hi, norms[i]);
  }
  norm_.set_range(lo, hi);
}

void ResidualQuantizer::train(size_t n, const float* x, const TrainContext& ctx) {
  QV_CHECK(n >= ksub_, InvalidArgument,
           spec() << " needs at least " << ksub_ << " training vectors (2^nbits), got " << n);
  const size_t d = dim();
  // Beyond max_points_per_centroid points per codeword more data barely moves the codebooks, and the beam
  // state of every training vector is kept between stages: bound both.
  const std::vector<float> sample = subsample_rows(n, d, x, ksub_ * ctx.max_points_per_centroid, ctx.seed + 17);
  if (!sample.empty()) {
    x = sample.data();
    n = sample.size() / d;
  }
  trained_ = false;
  std::vector<uint32_t> codes(n * stages_);
  train_stages(n, x, ctx, false, codes.data());
  if (options_.refit_rounds > 0) refit(n, x, codes.data(), options_.refit_rounds, ctx);
  std::vector<float> norms(n);
  default_pool().parallel_for(
      n, 256,
      [&](size_t begin, size_t end) {
        std::vector<float> rec(d);
        for (size_t i = begin; i < end; ++i) {
          reconstruct(&codes[i * stages_], rec.data());
          norms[i] = kernels().dot(rec.data(), rec.data(), d);
        }
      },
      effective_threads(ctx.threads));
  fit_norm_range(n, norms.data());
  trained_ = true;
}

double ResidualQuantizer::train_stages(size_t n, const float* x, const TrainContext& ctx, bool warm,
                                       uint32_t* codes_out) {
  QV_CHECK(n >= ksub_, InvalidArgument,
           spec() << " needs at least " << ksub_ << " training vectors (2^nbits), got " << n);
  const size_t d = dim(), L = stages_, K = ksub_, beam = options_.training_beam();
  if (warm) {
    QV_CHECK(codebooks_.size() == L * K * d, State, "RQ warm training needs existing codebooks");
  } else {
    codebooks_.assign(L * K * d, 0.0f);
    tables_.clear();
  }
  cross_.clear();  // stale until every stage is trained again
  // Beam state of every training vector between stages: up to `beam` entries of stage codes and squared
  // errors (best first). Residuals are recomputed from the codes when needed (l·d operations per entry,
  // small next to the K·d of scoring), which keeps the state at n·beam·L integers.
  std::vector<uint32_t> paths(n * beam * L, 0), counts(n, 1);
  std::vector<float> dists(n * beam, 0.0f), residual, exact(n);
  const Kernels& kern = kernels();
  for (size_t i = 0; i < n; ++i) dists[i * beam] = kern.dot(x + i * d, x + i * d, d);
  const size_t threads = effective_threads(ctx.threads);

  // residual of path `p` after stages [0, l): x − Σ c.
  const auto residual_of = [&](const float* xi, const uint32_t* p, size_t l, float* out) {
    std::memcpy(out, xi, d * sizeof(float));
    for (size_t m = 0; m < l; ++m) {
      const float* word = codebook(m) + size_t(p[m]) * d;
      for (size_t t = 0; t < d; ++t) out[t] -= word[t];
    }
  };

  Rng seed_rng(ctx.seed + 7919);
  const std::vector<size_t> seeds = sample_indices(n, K, seed_rng);  // see the cold start below
  double mse = 0;
  for (size_t l = 0; l < L; ++l) {
    // Stage l learns from the residuals of every entry of every beam, not only the best ones: the paths that
    // win in the end often pass through an entry that was not the best at stage l, so the codebook must fit
    // those residuals too (as faiss does). With beam 8 on SIFT this lowers the final error by about 10 %.
    // k-means subsamples the n·beam rows to K·max_points_per_centroid.
    std::vector<size_t> offsets(n + 1, 0);
    for (size_t i = 0; i < n; ++i) offsets[i + 1] = offsets[i] + counts[i];
    const size_t rows = offsets[n];
    residual.resize(rows * d);
    default_pool().parallel_for(
        n, 256,
        [&](size_t begin, size_t end) {
          for (size_t i = begin; i < end; ++i)
            for (size_t e = 0; e < counts[i]; ++e)
              residual_of(x + i * d, &paths[(i * beam + e) * L], l, &residual[(offsets[i] + e) * d]);
        },
        threads);
    TrainContext sub = ctx;
    sub.seed = ctx.seed + 104729 * (l + 1);  // independent, reproducible stream per stage
    KMeansResult km;
    if (warm) {
      km = kmeans_from(rows, d, residual.data(), K, codebook(l), sub, "rq", int(l), int(L));
    } else {
      // Cold start: the initial codewords of every stage are the current residuals of the same K training
      // vectors (drawn once). Their codewords then line up across stages — the sum of codeword j of every stage
      // starts as (about) training vector j — instead of each stage drawing unrelated seeds (k-means++ or a
      // fresh sample). faiss gets the same effect from reusing one seed at every stage. On the SIFT slice this
      // alone takes greedy RQ8x8 from an MSE of 24.1 k to 19.4 k, and RQ8x8 with beam 5 from 20.2 k to 19.1 k.
      std::vector<float> init(K * d);
      for (size_t j = 0; j < K; ++j)
        std::memcpy(&init[j * d], &residual[offsets[seeds[j]] * d], d * sizeof(float));
      if (options_.progressive_steps > 0)
        // k-means++ rather than the coherent seeds: measured on Fashion-MNIST, greedy RQ8x8 reaches an MSE of
        // 675 k / 10-recall@10 0.502 this way against 683 k / 0.469 from the coherent seeds (704 k / 0.464
        // without progressive dimensions).
        km = kmeans_progressive(rows, d, residual.data(), K, nullptr, options_.progressive_steps, sub, "rq", int(l),
                                int(L));
      else
        km = kmeans_from(rows, d, residual.data(), K, init.data(), sub, "rq", int(l), int(L));
    }
    std::memcpy(codebooks_.data() + l * K * d, km.centroids.data(), K * d * sizeof(float));
    if (tables_.size() > l)
      tables_[l] = CentroidTable(K, d, codebook(l));
    else
      tables_.emplace_back(K, d, codebook(l));

    default_pool().parallel_for(
        n, 64,
        [&](size_t begin, size_t end) {
          RQBeamSearch search(*this);
          std::vector<float> starts(beam * d);
          for (size_t i = begin; i < end; ++i) {
            const size_t count = counts[i];
            uint32_t* p = &paths[i * beam * L];
            for (size_t e = 0; e < count; ++e) residual_of(x + i * d, p + e * L, l, &starts[e * d]);
            search.reset(count, starts.data(), &dists[i * beam], nullptr, p);
            search.run(l, l + 1, beam);
            counts[i] = uint32_t(search.size());
            for (size_t e = 0; e < search.size(); ++e) {
              dists[i * beam + e] = search.distance(e);
              std::memcpy(p + e * L, search.path(e), L * sizeof(uint32_t));
            }
            const float* r = search.residual(0);
            exact[i] = kern.dot(r, r, d);
          }
        },
        threads);
    double total = 0;
    for (size_t i = 0; i < n; ++i) total += exact[i];
    mse = total / double(n);
  }
  build_cross_tables();
  if (codes_out)
    for (size_t i = 0; i < n; ++i) std::memcpy(codes_out + i * L, &paths[i * beam * L], L * sizeof(uint32_t));
  return mse;
}

double ResidualQuantizer::refit(size_t n, const float* x, uint32_t* codes, size_t rounds,
                                const TrainContext& ctx) {
  const size_t d = dim(), L = stages_, K = ksub_;
  const size_t threads = effective_threads(ctx.threads);
  const Kernels& kern = kernels();
  std::vector<float> x_hat(n * d), err(n), new_err(n);
  std::vector<uint32_t> new_codes(n * L);
  const auto rebuild = [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      reconstruct(codes + i * L, &x_hat[i * d]);
      err[i] = kern.l2sqr(x + i * d, &x_hat[i * d], d);
    }
  };
  default_pool().parallel_for(n, 256, rebuild, threads);
  std::vector<uint32_t> order(n), start(K + 1);
  std::vector<float> old_book(K * d);
  double mse = 0;
  for (size_t round = 0; round < rounds; ++round) {
    for (size_t l = 0; l < L; ++l) {
      // Members of every codeword (counting sort by stage-l code), so each codeword's mean is computed by
      // one thread in a fixed order: deterministic whatever the thread count.
      std::fill(start.begin(), start.end(), 0);
      for (size_t i = 0; i < n; ++i) ++start[codes[i * L + l] + 1];
      for (size_t j = 0; j < K; ++j) start[j + 1] += start[j];
      std::vector<uint32_t> fill(start.begin(), start.end() - 1);
      for (size_t i = 0; i < n; ++i) order[fill[codes[i * L + l]]++] = uint32_t(i);
      float* book = codebooks_.data() + l * K * d;
      std::memcpy(old_book.data(), book, K * d * sizeof(float));
      default_pool().parallel_for(
          K, 8,
          [&](size_t begin, size_t end) {
            std::vector<double> sum(d);
            for (size_t j = begin; j < end; ++j) {
              if (start[j + 1] == start[j]) continue;  // unused codeword: keep it
              std::fill(sum.begin(), sum.end(), 0.0);
              for (size_t t = start[j]; t < start[j + 1]; ++t) {
                const size_t i = order[t];
                // Target of stage l: x − Σ_{m≠l} c_m = (x − x̂) + c_l,old.
                for (size_t c = 0; c < d; ++c) sum[c] += double(x[i * d + c]) - x_hat[i * d + c] + old_book[j * d + c];
              }
              const double inv = 1.0 / double(start[j + 1] - start[j]);
              for (size_t c = 0; c < d; ++c) book[j * d + c] = float(sum[c] * inv);
            }
          },
          threads);
      default_pool().parallel_for(
          n, 256,
          [&](size_t begin, size_t end) {
            for (size_t i = begin; i < end; ++i) {
              const size_t j = codes[i * L + l];
              for (size_t c = 0; c < d; ++c) x_hat[i * d + c] += book[j * d + c] - old_book[j * d + c];
            }
          },
          threads);
      tables_[l] = CentroidTable(K, d, book);
    }
    build_cross_tables();
    // Re-encode under the new codebooks, keeping a vector's previous codes when the beam search does not
    // find better ones: the training error then never increases from one round to the next.
    encode_stages(n, x, new_codes.data(), new_err.data(), ctx.threads);
    default_pool().parallel_for(
        n, 256,
        [&](size_t begin, size_t end) {
          for (size_t i = begin; i < end; ++i) {
            err[i] = kern.l2sqr(x + i * d, &x_hat[i * d], d);
            if (new_err[i] < err[i]) {
              std::memcpy(codes + i * L, &new_codes[i * L], L * sizeof(uint32_t));
              reconstruct(codes + i * L, &x_hat[i * d]);
              err[i] = new_err[i];
            }
          }
        },
        threads);
    double total = 0;
    for (size_t i = 0; i < n; ++i) total += err[i];
    mse = total / double(n);
    ctx.report(Progress{"rq-refit", int(round), int(rounds), int(round) + 1, int(rounds), mse});
  }
  return mse;
}

// The scan's chain of k dependent compares costs as much as a stage's dot products at d = 128. Here four
// registers of running minima find the value, then a pass over groups of sixteen finds the first group, and in
// it the first index, that holds it: the scan's choice, NaNs skipped alike.
void smallest_ids(const float* values, size_t n, size_t count, uint32_t* ids, SelectionScratch& scratch) {
  const auto before = [values](uint32_t a, uint32_t b) {
    return values[a] < values[b] || (values[a] == values[b] && a < b);
  };
  std::vector<uint32_t>& found = scratch.ids;
  found.resize(n);
  const size_t chunks = n % 16 == 0 ? n / 16 : 0;
  if (chunks >= count) {
    scratch.minima.resize(chunks);
    for (size_t c = 0; c < chunks; ++c) scratch.minima[c] = minimum_of_16(values + c * 16);
    const float limit = kth_smallest_below_infinity(scratch.minima.data(), chunks, count, scratch.bound);
    if (limit < std::numeric_limits<float>::infinity()) {
      size_t passed = 0;
      for (size_t c = 0; c < chunks; ++c) {
        if (!(scratch.minima[c] <= limit)) continue;
        for (size_t t = c * 16; t < c * 16 + 16; ++t) {
          found[passed] = uint32_t(t);
          passed += values[t] <= limit;
        }
      }
      if (passed >= count) {  // always (one per counted chunk minimum); the check only guards that reasoning
        std::partial_sort(found.begin(), found.begin() + count, found.begin() + passed, before);
        std::copy(found.begin(), found.begin() + count, ids);
        return;
      }
    }
  }
  std::iota(found.begin(), found.end(), 0u);
  std::partial_sort(found.begin(), found.begin() + count, found.end(), before);
  std::copy(found.begin(), found.begin() + count, ids);
}

size_t first_minimum(float base, const float* scores, size_t k) {
  const float first = base + scores[0];
  const Float4 bias = {base, base, base, base};
  Float4 m0 = {first, first, first, first}, m1 = m0, m2 = m0, m3 = m0;
  size_t j = 0;
  for (; j + 16 <= k; j += 16) {
    const Float4 v0 = bias + load4(scores + j), v1 = bias + load4(scores + j + 4),
                 v2 = bias + load4(scores + j + 8), v3 = bias + load4(scores + j + 12);
    m0 = v0 < m0 ? v0 : m0;
    m1 = v1 < m1 ? v1 : m1;
    m2 = v2 < m2 ? v2 : m2;
    m3 = v3 < m3 ? v3 : m3;
  }
  m0 = m1 < m0 ? m1 : m0;
  m2 = m3 < m2 ? m3 : m2;
  m0 = m2 < m0 ? m2 : m0;
  float minimum = first;
  for (int i = 0; i < 4; ++i) minimum = m0[i] < minimum ? m0[i] : minimum;
  for (; j < k; ++j) {
    const float value = base + scores[j];
    minimum = value < minimum ? value : minimum;
  }
  const Float4 target = {minimum, minimum, minimum, minimum};
  for (j = 0; j + 16 <= k; j += 16) {
    const auto hits = (bias + load4(scores + j) == target) | (bias + load4(scores + j + 4) == target) |
                      (bias + load4(scores + j + 8) == target) | (bias + load4(scores + j + 12) == target);
    if (hits[0] | hits[1] | hits[2] | hits[3]) break;
  }
  for (; j < k; ++j)
    if (base + scores[j] == minimum) return j;
  return 0;  // minimum is NaN: base + scores[0] was
}

struct ResidualQuantizer::EncodeScratch {
  explicit EncodeScratch(const ResidualQuantizer& rq)
      : searchers(rq.options_.beam == 1 ? 0 : kEncodeBlock, RQBeamSearch(rq)) {
    const size_t B = kEncodeBlock, L = rq.stages_, K = rq.ksub_;
    if (rq.options_.beam == 1) {
      scores.resize(B * K);
      sq_errors.resize(B);
    } else {
      dots.resize(B * L * K);
    }
  }
  std::vector<RQBeamSearch> searchers;  // beam route
  std::vector<float> dots;              // beam route with cross tables: ⟨x, c_lj⟩ per row
  std::vector<float> scores, sq_errors; // greedy route
};

void ResidualQuantizer::greedy_block(size_t count, float* residuals, float* sq_errors, uint32_t* codes, size_t first,
                                     size_t last, float* scores) const {
  const size_t d = dim(), K = ksub_, L = stages_;
  for (size_t l = first; l < last; ++l) {
    tables_[l].scores_batch(residuals, count, d, scores, K);
    const float* book = codebook(l);
    for (size_t v = 0; v < count; ++v) {
      // RQBeamSearch::select's greedy argmin, term for term: the distance is ‖r‖² + score in float, and the
      // first of equal minima wins.
      const float base = sq_errors[v];
      const size_t best = first_minimum(base, scores + v * K, K);
      sq_errors[v] = base + scores[v * K + best];
      codes[v * L + l] = uint32_t(best);
      // The chosen rows of the codebook (not the transposed table the scores came from) are seldom in L1 or
      // even L2 once a block cycles through many stages: request them all before the subtractions below.
      const char* word = reinterpret_cast<const char*>(book + best * d);
      for (size_t byte = 0; byte < d * sizeof(float); byte += 64) __builtin_prefetch(word + byte);
    }
    for (size_t v = 0; v < count; ++v) {
      float* r = residuals + v * d;
      const float* word = book + size_t(codes[v * L + l]) * d;
      for (size_t t = 0; t < d; ++t) r[t] -= word[t];
    }
  }
}

void ResidualQuantizer::encode_block(const float* x, size_t count, EncodeScratch& s, uint32_t* codes,
                                     float* residuals) const {
  const size_t d = dim(), L = stages_;
  if (options_.beam == 1) {
    const Kernels& kern = kernels();
    std::memcpy(residuals, x, count * d * sizeof(float));
    for (size_t v = 0; v < count; ++v) s.sq_errors[v] = kern.dot(x + v * d, x + v * d, d);  // as start() does
    greedy_block(count, residuals, s.sq_errors.data(), codes, 0, L, s.scores.data());
    return;
  }
  search_block(x, count, s.searchers.data(), s.dots.data());
  for (size_t v = 0; v < count; ++v) {
    std::memcpy(codes + v * L, s.searchers[v].path(0), L * sizeof(uint32_t));
    std::memcpy(residuals + v * d, s.searchers[v].residual(0), d * sizeof(float));
  }
}

void ResidualQuantizer::encode_stages(size_t n, const float* x, uint32_t* codes, float* sq_errors,
                                      int threads) const {
  const size_t d = dim(), L = stages_;
  const Kernels& kern = kernels();
  default_pool().parallel_for(
      n, 4 * kEncodeBlock,
      [&](size_t begin, size_t end) {
        EncodeScratch scratch(*this);
        std::vector<float> residuals(kEncodeBlock * d);
        for (size_t b = begin; b < end; b += kEncodeBlock) {
          const size_t count = std::min(kEncodeBlock, end - b);
          encode_block(x + b * d, count, scratch, codes + b * L, residuals.data());
          if (sq_errors)
            for (size_t v = 0; v < count; ++v) {
              const float* r = &residuals[v * d];
              sq_errors[b + v] = kern.dot(r, r, d);
            }
        }
      },
      effective_threads(threads));
}

void ResidualQuantizer::search_block(const float* x, size_t count, RQBeamSearch* searchers, float* dots) const {
  const size_t d = dim(), L = stages_, K = ksub_;
  const bool cross = uses_cross_tables();
  if (cross)
    for (size_t l = 0; l < L; ++l) tables_[l].dots_batch(x, count, d, dots + l * K, L * K);
  for (size_t v = 0; v < count; ++v) searchers[v].start(x + v * d, cross ? dots + v * L * K : nullptr);
  for (size_t l = 0; l < L; ++l)
    for (size_t v = 0; v < count; ++v) searchers[v].step(l, options_.beam);
  for (size_t v = 0; v < count; ++v) searchers[v].finish();
}

void ResidualQuantizer::reconstruct(const uint32_t* codes, float* out) const {
  const size_t d = dim();
  std::memcpy(out, codebook(0) + size_t(codes[0]) * d, d * sizeof(float));
  for (size_t l = 1; l < stages_; ++l) {
    const float* word = codebook(l) + size_t(codes[l]) * d;
    for (size_t t = 0; t < d; ++t) out[t] += word[t];
  }
}

void ResidualQuantizer::inner_product_tables(const float* query, float* lut) const {
  for (size_t l = 0; l < stages_; ++l) tables_[l].dots(query, lut + l * ksub_);
}

void ResidualQuantizer::pack(const uint32_t* stage_codes, float sq_norm, uint8_t* code) const {
  pack_bits(stage_codes, stages_, unsigned(nbits_), code);
  norm_.write(sq_norm, code + code_bytes_);
}

void ResidualQuantizer::unpack(const uint8_t* code, uint32_t* stage_codes) const {
  unpack_bits(code, stages_, unsigned(nbits_), stage_codes);
}

void ResidualQuantizer::encode(size_t n, const float* x, uint8_t* codes, int threads) const {
  require_trained("encode");
  if (gpu_encode(*this, n, x, codes)) return;  // Device::Cuda in scope and a GPU present
  const size_t d = dim(), L = stages_, cs = code_size();
  const Kernels& kern = kernels();
  default_pool().parallel_for(
      n, 4 * kEncodeBlock,
      [&](size_t begin, size_t end) {
        EncodeScratch scratch(*this);
        std::vector<uint32_t> stage_codes(kEncodeBlock * L);
        std::vector<float> residuals(kEncodeBlock * d), x_hat(d);
        for (size_t b = begin; b < end; b += kEncodeBlock) {
          const size_t count = std::min(kEncodeBlock, end - b);
          encode_block(x + b * d, count, scratch, stage_codes.data(), residuals.data());
          for (size_t v = 0; v < count; ++v) {
            // x̂ = x − (final residual): no need to sum the codewords again.
            const float* xi = x + (b + v) * d;
            const float* r = &residuals[v * d];
            for (size_t t = 0; t < d; ++t) x_hat[t] = xi[t] - r[t];
            pack(&stage_codes[v * L], kern.dot(x_hat.data(), x_hat.data(), d), codes + (b + v) * cs);
          }
        }
      },
      effective_threads(threads));
}

void ResidualQuantizer::decode(size_t n, const uint8_t* codes, float* x, int threads) const {
  require_trained("decode");
  const size_t cs = code_size();
  default_pool().parallel_for(
      n, 256,
      [&](size_t begin, size_t end) {
        std::vector<uint32_t> stage_codes(stages_);
        for (size_t i = begin; i < end; ++i) {
          unpack(codes + i * cs, stage_codes.data());
          reconstruct(stage_codes.data(), x + i * dim());
        }
      },
      effective_threads(threads));
}

// State: u32 stages, u32 nbits, f32 norm range lo, hi, then the codebooks (u64 count = L·K·dim, floats).
void ResidualQuantizer::save_state(ByteWriter& out) const {
  require_trained("save");
  out.u32(uint32_t(stages_));
  out.u32(uint32_t(nbits_));
  out.f32(norm_.lo());
  out.f32(norm_.hi());
  out.array(codebooks_);
}

void ResidualQuantizer::load_state(ByteReader& in) {
  const uint32_t stages = in.u32(), nbits = in.u32();
  QV_CHECK(stages == stages_ && nbits == nbits_, Corrupt,
           "RQ state for " << stages << " stages of " << nbits << " bits does not match the spec " << spec());
  const float lo = in.f32(), hi = in.f32();
  QV_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, Corrupt, "RQ norm range is invalid");
  const size_t expected = stages_ * ksub_ * dim();
  std::vector<float> codebooks = in.array<float>(expected, "RQ codebooks");
  QV_CHECK(codebooks.size() == expected, Corrupt,
           "RQ codebooks: expected " << expected << " floats, found " << codebooks.size());
  for (float v : codebooks) QV_CHECK(std::isfinite(v), Corrupt, "RQ codebooks hold a non-finite value");
  set_codebooks(std::move(codebooks), lo, hi);
}

namespace {

class RQDistanceTable : public DistanceTable {
 public:
  RQDistanceTable(const ResidualQuantizer& rq, const float* query, Metric metric)
      : rq_(rq), l2_(metric == Metric::L2), lut_(rq.stages() * rq.ksub()) {
    rq.inner_product_tables(query, lut_.data());
    const float factor = l2_ ? -2.0f : -1.0f;
    for (float& v : lut_) v *= factor;
    base_ = l2_ ? kernels().dot(query, query, rq.dim()) : 0.0f;
  }

  void scan(const uint8_t* codes, size_t n, float* out) const override {
    const size_t cs = rq_.code_size(), L = rq_.stages(), K = rq_.ksub(), cb = rq_.stage_code_bytes();
    if (rq_.nbits() == 8) {
      // Stage codes are whole bytes: gather them into a dense block for the SIMD 8-bit scan kernel.
      constexpr size_t kBlock = 256;
      std::vector<uint8_t> block(kBlock * L);
      for (size_t b = 0; b < n; b += kBlock) {
        const size_t count = std::min(kBlock, n - b);
        for (size_t i = 0; i < count; ++i) std::memcpy(&block[i * L], codes + (b + i) * cs, L);
        kernels().adc_scan_u8(block.data(), count, L, lut_.data(), out + b);
      }
    } else {
      std::vector<uint32_t> stage_codes(L);
      for (size_t i = 0; i < n; ++i) {
        rq_.unpack(codes + i * cs, stage_codes.data());
        float sum = 0;
        for (size_t l = 0; l < L; ++l) sum += lut_[l * K + stage_codes[l]];
        out[i] = sum;
      }
    }
    if (l2_) {
      const NormCodec& norm = rq_.norm_codec();
      for (size_t i = 0; i < n; ++i) out[i] += base_ + norm.read(codes + i * cs + cb);
    }
  }

 private:
  const ResidualQuantizer& rq_;
  bool l2_;
  std::vector<float> lut_;
  float base_;
};

}  // namespace

std::unique_ptr<DistanceTable> ResidualQuantizer::distance_table(const float* query, Metric metric) const {
  require_trained("search");
  QV_CHECK(metric != Metric::Cosine, Internal, "cosine must be resolved to inner product before ADC");
  return std::make_unique<RQDistanceTable>(*this, query, metric);
}

}  // namespace quiver
