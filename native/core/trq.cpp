#include "trq.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>

#include "bitpack.h"
#include "error.h"
#include "gpu.h"
#include "io.h"
#include "linalg.h"
#include "opq.h"
#include "simd.h"
#include "thread_pool.h"

namespace quiver {

namespace {

// K1·d²·4 bytes of transforms is what a TRQ may need when every cluster earns one; refuse specs beyond this.
constexpr size_t kMaxTransformBytes = size_t(4) << 30;
// Largest K1·L·K·4-byte table of first-level centroid × fine codeword products kept for beam encoding.
constexpr size_t kMaxSeedTableBytes = size_t(64) << 20;

// Orders the principal directions of one cluster (eigenvalues decreasing) into PQ sub-spaces so that every
// sub-space gets a similar product of variances (Ge et al.'s eigenvalue allocation): each next direction goes
// to the unfilled sub-space with the smallest Σ log λ so far. Returns, for each output row, the eigenvector
// index placed there.
std::vector<size_t> balanced_allocation(const ProductQuantizer& pq, const std::vector<double>& eigenvalues) {
  const size_t d = eigenvalues.size(), m = pq.m();
  std::vector<size_t> fill(m, 0), rows(d);
  std::vector<double> log_sum(m, 0.0);
  const double floor = std::max(eigenvalues[0], 1e-30) * 1e-12;
  for (size_t j = 0; j < d; ++j) {
    size_t best = m;
    for (size_t s = 0; s < m; ++s)
      if (fill[s] < pq.sub_dim(s) && (best == m || log_sum[s] < log_sum[best])) best = s;
    rows[pq.sub_offset(best) + fill[best]++] = j;
    log_sum[best] += std::log(std::max(eigenvalues[j], floor));
  }
  return rows;
}

}  // namespace

std::string format_number(double value) {
  // Shortest decimal that reads back to the same double ("2", "0.5", "0.1").
  char buf[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  return buf;
}

struct TransformedResidualQuantizer::Scratch {
  explicit Scratch(const TransformedResidualQuantizer& q)
      : first_scores(ResidualQuantizer::kEncodeBlock * q.k1_), candidates(q.options_.beam),
        tags(q.options_.beam), ys(q.options_.beam * q.dim()), norms(q.options_.beam), residual(q.dim()) {
    if (q.fine_rq_) search = std::make_unique<RQBeamSearch>(*q.fine_rq_);
    if (q.has_seed_tables()) {
      const size_t words = q.fine_count_ * q.fine_rq_->ksub();
      seed_dots.resize(q.options_.beam * words);
      word_terms.resize(q.options_.beam * q.fine_rq_->ksub());
      back.resize(q.options_.beam * q.dim());
      projected.resize(q.tdim_);
      delta.resize(q.options_.beam * q.tdim_);
      live_delta.resize(q.options_.beam * q.tdim_);
      rotated_slot.resize(q.options_.beam);
      seed_live.resize(q.options_.beam);
    }
    if (q.fine_pq_) {
      sub_scores.resize(q.fine_pq_->ksub());
      pq_codes.resize(q.fine_pq_->m());
    }
  }
  std::vector<float> first_scores;  // kEncodeBlock rows × K1: first-level scores of a group of rows
  std::vector<uint32_t> candidates, tags;
  SelectionScratch selection;  // select_candidates()
  std::vector<float> ys, norms, residual, sub_scores;
  // Seed-table route (build_seed_tables): each candidate's codeword products (seed_dots, beam × L·K, filled a
  // stage at a time) and, per candidate with a transform (rotated_slot[b]: its row in delta and back, or −1):
  // δ_b (delta), Pᵀδ_b (back); for one stage, the δ_b of the candidates still in the beam (live_delta, seed_live)
  // and their ⟨δ_b, P w⟩ over the stage's K codewords (word_terms).
  std::vector<float> seed_dots, word_terms, back, projected, delta, live_delta;
  std::vector<int32_t> rotated_slot;
  std::vector<uint8_t> seed_live;
  std::vector<uint32_t> pq_codes;
  std::unique_ptr<RQBeamSearch> search;
};

TransformedResidualQuantizer::TransformedResidualQuantizer(size_t dim, size_t first_bits, FineQuantizerKind fine,
                                                           size_t fine_count, size_t fine_bits, TRQOptions options)
    : Quantizer(dim), first_bits_(first_bits), k1_(0), fine_count_(fine_count), fine_bits_(fine_bits),
      code_bytes_(0), options_(options), norm_(options.norm), tdim_(options.subspace ? options.subspace : dim) {
  QV_CHECK(dim >= 1, InvalidArgument, "TRQ needs dim >= 1");
  QV_CHECK(first_bits >= 1 && first_bits <= 16, InvalidArgument,
           "the first level needs 1 <= bits <= 16, got " << first_bits);
  QV_CHECK(options.beam >= 1 && options.beam <= 256, InvalidArgument,
           "TRQ beam width must be 1 … 256, got " << options.beam);
  QV_CHECK(options.iterations >= 1 && options.iterations <= 50, InvalidArgument,
           "TRQ iterations must be 1 … 50, got " << options.iterations);
  QV_CHECK(options.prior >= 0 && options.prior <= 1e6, InvalidArgument,
           "TRQ prior weight (reg) must be 0 … 1e6, got " << options.prior);
  QV_CHECK(options.progressive_steps <= 64, InvalidArgument,
           "TRQ progressive-dimension steps (pd) must be 0 … 64, got " << options.progressive_steps);
  k1_ = size_t(1) << first_bits;
  if (options.transforms) {
    QV_CHECK(options.subspace <= dim, InvalidArgument,
             "TRQ subspace (sub) must be 1 … dim = " << dim << ", got " << options.subspace);
    QV_CHECK(!(options.subspace && options.pca_init), InvalidArgument,
             "pca=1 starts full transforms from per-cluster PCA; subspace transforms (sub) start from the identity");
    const double bytes = (double(k1_) * double(tdim_) + double(options.subspace ? dim : 0)) * double(tdim_) *
                         sizeof(float);
    QV_CHECK(bytes <= double(kMaxTransformBytes), InvalidArgument,
             "TRQ with " << k1_ << " first-level clusters at dim " << dim << " may need "
                         << uint64_t(bytes / (1 << 20)) << " MiB of transforms (K1·t²·4 bytes, t = "
                         << (options.subspace ? "sub" : "d") << " = " << tdim_ << "); the limit is "
                         << (kMaxTransformBytes >> 20) << " MiB: use fewer first-level bits or a subspace (sub=p)");
  } else {
    QV_CHECK(!options.pca_init, InvalidArgument, "pca=1 initialises transforms: it needs TRQ");
    QV_CHECK(options.subspace == 0, InvalidArgument, "sub=p shapes transforms: it needs TRQ");
  }
  if (fine == FineQuantizerKind::Residual) {
    QV_CHECK(options.transforms, InvalidArgument,
             "a first RQ level followed by more RQ stages without transforms is plain RQ: write RQ<L>x<b>");
    QV_CHECK(options.train_beam <= 256 && options.refit_rounds <= 20, InvalidArgument,
             "TRQ trainbeam must be 1 … 256 and refit 0 … 20, got " << options.train_beam << " and "
                                                                      << options.refit_rounds);
    RQOptions fine_options;
    fine_options.beam = options.beam;
    fine_options.train_beam = options.train_beam;
    fine_options.refit_rounds = 0;
    fine_options.progressive_steps = options.progressive_steps;
    // The fine RQ's own refit runs once, after the alternation (train() below), not at each fine retraining.
    fine_rq_ = std::make_unique<ResidualQuantizer>(dim, fine_count, fine_bits, fine_options);
  } else {
    QV_CHECK(options.norm == NormStorage::Float32, InvalidArgument,
             "norm=u8 applies to RQ fine quantizers; a PQ fine quantizer stores no norm");
    QV_CHECK(options.train_beam == 0, InvalidArgument,
             "trainbeam applies to RQ fine quantizers; a PQ fine quantizer has no beam training");
    fine_pq_ = std::make_unique<ProductQuantizer>(dim, fine_count, fine_bits);
  }
  code_bytes_ = (first_bits + fine_count * fine_bits + 7) / 8;
}

std::string TransformedResidualQuantizer::spec() const {
  const std::string b1 = std::to_string(first_bits_), fb = std::to_string(fine_bits_), fc = std::to_string(fine_count_);
  std::string s;
  if (fine_rq_)
    s = first_bits_ == fine_bits_ ? "TRQ" + std::to_string(fine_count_ + 1) + "x" + fb
                                  : "TRQ1x" + b1 + ",RQ" + fc + "x" + fb;
  else
    s = std::string(options_.transforms ? "TRQ1x" : "RQ1x") + b1 + ",PQ" + fc + "x" + fb;
  if (options_.beam != 1) s += ",beam=" + std::to_string(options_.beam);
  if (options_.train_beam != 0 && options_.train_beam != options_.beam)
    s += ",trainbeam=" + std::to_string(options_.train_beam);
  if (fine_rq_ && options_.refit_rounds != kDefaultRefitRounds) s += ",refit=" + std::to_string(options_.refit_rounds);
  if (options_.iterations != kDefaultIterations) s += ",iters=" + std::to_string(options_.iterations);
  if (norm_.storage() != NormStorage::Float32) s += std::string(",norm=") + norm_.name();
  if (options_.pca_init) s += ",pca=1";
  if (options_.prior != kDefaultPrior) s += ",reg=" + format_number(options_.prior);
  if (options_.subspace) s += ",sub=" + std::to_string(options_.subspace);
  if (options_.progressive_steps) s += ",pd=" + std::to_string(options_.progressive_steps);
  return s;
}

// ----------------------------------------------------------------------------------------------- transforms

void TransformedResidualQuantizer::rotate(size_t k, size_t count, const float* r, float* y) const {
  const size_t d = dim(), p = tdim_;
  const float* rot = transform(k);
  if (!rot) {
    std::memcpy(y, r, count * d * sizeof(float));
    return;
  }
  if (!subspace_transforms()) {
    matvec_many(d, d, rot, count, r, d, y, d);
    return;
  }
  // y = r + Pᵀ(A t − t) with t = P r: two passes over P (p × d) and one over A (p × p).
  std::vector<float> t(count * p), u(count * p);
  matvec_many(p, d, basis_.data(), count, r, d, t.data(), p);
  matvec_many(p, p, rot, count, t.data(), p, u.data(), p);
  for (size_t i = 0; i < count * p; ++i) u[i] -= t[i];
  kernels().dot_transposed_batch(u.data(), count, p, basis_.data(), p, d, d, y, d);
  for (size_t i = 0; i < count * d; ++i) y[i] += r[i];
}

void TransformedResidualQuantizer::rotate_back(size_t k, const float* y, float* r) const {
  const size_t d = dim(), p = tdim_;
  const float* rot = transform(k);
  if (!rot) {
    std::memcpy(r, y, d * sizeof(float));
    return;
  }
  if (!subspace_transforms()) {
    matvec_transposed(d, d, rot, y, r);
    return;
  }
  // R_kᵀ = I + Pᵀ(A_kᵀ − I)P.
  std::vector<float> t(p), u(p);
  matvec(p, d, basis_.data(), y, t.data());
  matvec_transposed(p, p, rot, t.data(), u.data());
  for (size_t i = 0; i < p; ++i) u[i] -= t[i];
  kernels().dot_transposed(u.data(), basis_.data(), p, d, d, r);
  for (size_t i = 0; i < d; ++i) r[i] += y[i];
}

// ----------------------------------------------------------------------------------------------- encoding

void TransformedResidualQuantizer::select_candidates(const float* scores, Scratch& s, uint32_t* candidates) const {
  // The `beam` nearest first-level centroids, nearest first (ties to the lower id).
  const size_t count = std::min(options_.beam, k1_);
  if (count == 1) {
    candidates[0] = uint32_t(first_minimum(0.0f, scores, k1_));
    return;
  }
  smallest_ids(scores, k1_, count, candidates, s.selection);
}

void TransformedResidualQuantizer::encode_range(
    const float* x, size_t begin, size_t end, bool want_y_hat,
    const std::function<void(size_t, uint32_t, const uint32_t*, const float*, float)>& emit) const {
  const size_t d = dim(), rows = end - begin, count = std::min(options_.beam, k1_);
  Scratch s(*this);
  std::vector<uint32_t> candidates(rows * count), order(rows), fine_codes(fine_count_);
  std::vector<float> y_hat(d);
  // First-level scores for a group of rows from one pass over the centroid table (as with the fine stages,
  // a pass per row would stream the whole table from L2 for one row).
  constexpr size_t kGroup = ResidualQuantizer::kEncodeBlock;
  for (size_t g = 0; g < rows; g += kGroup) {
    const size_t group = std::min(kGroup, rows - g);
    first_table_->scores_batch(x + (begin + g) * d, group, d, s.first_scores.data(), k1_);
    for (size_t t = 0; t < group; ++t)
      select_candidates(&s.first_scores[t * k1_], s, &candidates[(g + t) * count]);
  }
  // Visit the rows grouped by their nearest first-level cluster: a transform (d² floats, 64 KiB at d = 128)
  // then comes from memory once per group instead of once per vector, which otherwise dominates encoding.
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return candidates[a * count] < candidates[b * count]; });
  if (fine_rq_ && count == 1) {
    encode_greedy_rows(x + begin * d, order, candidates, want_y_hat,
                       [&](size_t t, uint32_t cluster, const uint32_t* fine, const float* y, float error) {
                         emit(begin + t, cluster, fine, y, error);
                       });
    return;
  }
  // Seed-table route: ⟨x, w⟩ for a block of rows from one pass over each fine stage's codebook.
  const bool seeded = has_seed_tables() && count > 1;
  const size_t words = seeded ? fine_count_ * fine_rq_->ksub() : 0;
  std::vector<float> block_rows(seeded ? kGroup * d : 0), block_dots(kGroup * words);
  std::vector<float> block_projected(seeded ? kGroup * tdim_ : 0);
  for (size_t o = 0; o < rows; o += kGroup) {
    const size_t group = std::min(kGroup, rows - o);
    if (seeded) {
      for (size_t v = 0; v < group; ++v)
        std::memcpy(&block_rows[v * d], x + (begin + order[o + v]) * d, d * sizeof(float));
      for (size_t l = 0; l < fine_count_; ++l)
        fine_rq_->table(l).dots_batch(block_rows.data(), group, d, &block_dots[l * fine_rq_->ksub()], words);
      // P x of the block's rows in one transposed product (row by row, p dot products of length d each cost
      // a horizontal sum apiece: 6 % of encoding at d = 784, p = 64).
      kernels().dot_transposed_batch(block_rows.data(), group, d, basis_transposed_.data(), d, tdim_, tdim_,
                                     block_projected.data(), tdim_);
    }
    for (size_t v = 0; v < group; ++v) {
      const uint32_t t = order[o + v];
      uint32_t cluster;
      float error;
      std::copy(&candidates[t * count], &candidates[t * count] + count, s.candidates.begin());
      encode_candidates(x + (begin + t) * d, seeded ? &block_dots[v * words] : nullptr,
                        seeded ? &block_projected[v * tdim_] : nullptr, s, &cluster,
                        fine_codes.data(), want_y_hat ? y_hat.data() : nullptr, &error);
      emit(begin + t, cluster, fine_codes.data(), want_y_hat ? y_hat.data() : nullptr, error);
    }
  }
}

void TransformedResidualQuantizer::encode_greedy_rows(
    const float* x, const std::vector<uint32_t>& order, const std::vector<uint32_t>& clusters, bool want_y_hat,
    const std::function<void(size_t, uint32_t, const uint32_t*, const float*, float)>& emit) const {
  const size_t d = dim(), L = fine_count_, B = ResidualQuantizer::kEncodeBlock;
  const Kernels& kern = kernels();
  std::vector<float> ys(B * d), residuals(B * d), sq_errors(B), scores(B * fine_rq_->ksub()), y_hat(d);
  std::vector<uint32_t> fine_codes(B * L);
  for (size_t o = 0; o < order.size(); o += B) {
    const size_t count = std::min(B, order.size() - o);
    // y = R_k (x − c_k), as encode_candidates() computes it; rows are in cluster order, so each run of rows
    // of one cluster shares a pass over R_k.
    for (size_t v = 0; v < count; ++v) {
      const uint32_t t = order[o + v];
      const float* c = first_centroid(clusters[t]);
      for (size_t i = 0; i < d; ++i) residuals[v * d + i] = x[size_t(t) * d + i] - c[i];
    }
    for (size_t v = 0, run_end; v < count; v = run_end) {
      const uint32_t k = clusters[order[o + v]];
      for (run_end = v + 1; run_end < count && clusters[order[o + run_end]] == k;) ++run_end;
      rotate(k, run_end - v, &residuals[v * d], &ys[v * d]);
    }
    for (size_t v = 0; v < count; ++v) sq_errors[v] = kern.dot(&ys[v * d], &ys[v * d], d);
    std::memcpy(residuals.data(), ys.data(), count * d * sizeof(float));
    fine_rq_->greedy_block(count, residuals.data(), sq_errors.data(), fine_codes.data(), 0, L, scores.data());
    for (size_t v = 0; v < count; ++v) {
      const float* r = &residuals[v * d];
      if (want_y_hat)
        for (size_t i = 0; i < d; ++i) y_hat[i] = ys[v * d + i] - r[i];
      const uint32_t t = order[o + v];
      emit(t, clusters[t], &fine_codes[v * L], want_y_hat ? y_hat.data() : nullptr, kern.dot(r, r, d));
    }
  }
}

void TransformedResidualQuantizer::encode_candidates(const float* x, const float* x_dots, const float* x_projected,
                                                     Scratch& s,
                                                     uint32_t* cluster, uint32_t* fine_codes, float* y_hat,
                                                     float* sq_error) const {
  const size_t d = dim();
  const Kernels& kern = kernels();
  const size_t count = std::min(options_.beam, k1_);
  // RQ fine: the best entry of the finished joint beam search (its tag is the candidate's index in ys).
  const auto take_search_result = [&] {
    const size_t b = s.search->tag(0);
    *cluster = s.candidates[b];
    std::memcpy(fine_codes, s.search->path(0), fine_count_ * sizeof(uint32_t));
    const float* r = s.search->residual(0);
    *sq_error = kern.dot(r, r, d);
    if (y_hat)
      for (size_t t = 0; t < d; ++t) y_hat[t] = s.ys[b * d + t] - r[t];
  };
  if (x_dots) {
    // Seed-table route (build_seed_tables): y_b = r_b + Pᵀδ_b with δ_b = (A_b − I)P r_b, and the seeds'
    // codeword products ⟨x, w⟩ − ⟨c_b, w⟩ + ⟨δ_b, P w⟩; then the beam search in cross-table mode.
    const size_t p = tdim_, ksub = fine_rq_->ksub(), words = fine_count_ * ksub;
    // P r_b = P x − P c_b: P x once per row, P c_k from the table. The products over p (Pᵀδ_b here, ⟨δ_b, P w⟩
    // below) run for all transformed candidates together as transposed products, SIMD lanes over the d or K
    // outputs and each pass over the table shared by the candidates.
    size_t rotated = 0;
    for (size_t b = 0; b < count; ++b) {
      const uint32_t k = s.candidates[b];
      const float* c = first_centroid(k);
      float* y = &s.ys[b * d];
      for (size_t t = 0; t < d; ++t) y[t] = x[t] - c[t];
      s.rotated_slot[b] = -1;
      const float* rot = transform(k);
      if (!rot) continue;
      const float* pc = &projected_centroids_[size_t(k) * p];
      for (size_t i = 0; i < p; ++i) s.projected[i] = x_projected[i] - pc[i];
      float* delta = &s.delta[rotated * p];
      matvec(p, p, rot, s.projected.data(), delta);
      for (size_t i = 0; i < p; ++i) delta[i] -= s.projected[i];
      s.rotated_slot[b] = int32_t(rotated++);
    }
    if (rotated > 0) kern.dot_transposed_batch(s.delta.data(), rotated, p, basis_.data(), p, d, d, s.back.data(), d);
    for (size_t b = 0; b < count; ++b) {
      float* y = &s.ys[b * d];
      if (s.rotated_slot[b] >= 0) {
        const float* back = &s.back[size_t(s.rotated_slot[b]) * d];
        for (size_t t = 0; t < d; ++t) y[t] += back[t];
      }
      s.norms[b] = kern.dot(y, y, d);
    }
    // A seed's products with stage l's codewords are needed only while some entry of the beam descends from
    // it, and after the first stage the beam usually holds the descendants of one or two candidates: each
    // stage's K products are filled just before the step, for the seeds that are still in the beam.
    s.search->start_seeds(count, s.ys.data(), s.norms.data(), s.seed_dots.data());
    for (size_t l = 0; l < fine_count_; ++l) {
      std::fill(s.seed_live.begin(), s.seed_live.begin() + count, uint8_t(0));
      for (size_t e = 0; e < s.search->size(); ++e) s.seed_live[s.search->tag(e)] = 1;
      size_t live_rotated = 0;
      for (size_t b = 0; b < count; ++b)
        if (s.seed_live[b] && s.rotated_slot[b] >= 0) {
          std::memcpy(&s.live_delta[live_rotated * p], &s.delta[size_t(s.rotated_slot[b]) * p], p * sizeof(float));
          ++live_rotated;
        }
      if (live_rotated > 0)
        kern.dot_transposed_batch(s.live_delta.data(), live_rotated, p, projected_words_.data() + l * ksub, p, ksub,
                                  words, s.word_terms.data(), ksub);
      const float* word_dots = x_dots + l * ksub;
      for (size_t b = 0, m = 0; b < count; ++b) {
        if (!s.seed_live[b]) continue;
        const float* centroid_dots = &centroid_word_dots_[size_t(s.candidates[b]) * words + l * ksub];
        float* dots = &s.seed_dots[b * words + l * ksub];
        if (s.rotated_slot[b] >= 0) {
          const float* terms = &s.word_terms[m++ * ksub];
          for (size_t j = 0; j < ksub; ++j) dots[j] = word_dots[j] - centroid_dots[j] + terms[j];
        } else {
          for (size_t j = 0; j < ksub; ++j) dots[j] = word_dots[j] - centroid_dots[j];
        }
      }
      s.search->step(l, options_.beam);
    }
    s.search->finish();
    take_search_result();
    return;
  }
  // y_b = R_k (x − c_k) for every candidate; ‖y_b‖² is the error before the fine quantizer.
  for (size_t b = 0; b < count; ++b) {
    const uint32_t k = s.candidates[b];
    const float* c = first_centroid(k);
    float* y = &s.ys[b * d];
    if (transform(k)) {
      for (size_t t = 0; t < d; ++t) s.residual[t] = x[t] - c[t];
      rotate(k, 1, s.residual.data(), y);
    } else {
      for (size_t t = 0; t < d; ++t) y[t] = x[t] - c[t];
    }
    s.norms[b] = kern.dot(y, y, d);
    s.tags[b] = uint32_t(b);
  }
  if (fine_rq_) {
    // One joint beam over the fine stages, seeded with every candidate (each in its own rotated frame: the
    // errors are comparable because the transforms are orthogonal).
    s.search->reset(count, s.ys.data(), s.norms.data(), s.tags.data());
    s.search->run(0, fine_count_, options_.beam);
    take_search_result();
    return;
  }
  // PQ fine quantizer: encode each candidate, keep the smallest error ‖y‖² + Σ_m (‖c‖² − 2⟨y_m, c⟩).
  const ProductQuantizer& pq = *fine_pq_;
  float best_error = std::numeric_limits<float>::infinity();
  size_t best = 0;
  for (size_t b = 0; b < count; ++b) {
    const float* y = &s.ys[b * d];
    float error = s.norms[b];
    for (size_t m = 0; m < pq.m(); ++m) {
      const size_t j = fine_pq_tables_[m].nearest(y + pq.sub_offset(m), s.sub_scores.data());
      s.pq_codes[m] = uint32_t(j);
      error += s.sub_scores[j];
    }
    if (error < best_error) {
      best_error = error;
      best = b;
      std::copy(s.pq_codes.begin(), s.pq_codes.end(), fine_codes);
    }
  }
  *cluster = s.candidates[best];
  *sq_error = std::max(0.0f, best_error);
  if (y_hat) reconstruct_fine(fine_codes, y_hat);
}

void TransformedResidualQuantizer::reconstruct_fine(const uint32_t* fine_codes, float* y_hat) const {
  if (fine_rq_) {
    fine_rq_->reconstruct(fine_codes, y_hat);
    return;
  }
  const ProductQuantizer& pq = *fine_pq_;
  for (size_t m = 0; m < pq.m(); ++m) {
    const size_t ds = pq.sub_dim(m);
    std::memcpy(y_hat + pq.sub_offset(m), pq.centroids(m) + size_t(fine_codes[m]) * ds, ds * sizeof(float));
  }
}

void TransformedResidualQuantizer::unpack(const uint8_t* code, uint32_t* cluster, uint32_t* fine_codes) const {
  BitReader reader(code);
  *cluster = reader.get(unsigned(first_bits_));
  for (size_t c = 0; c < fine_count_; ++c) fine_codes[c] = reader.get(unsigned(fine_bits_));
}

void TransformedResidualQuantizer::encode(size_t n, const float* x, uint8_t* codes, int threads) const {
  require_trained("encode");
  if (gpu_encode(*this, n, x, codes)) return;  // Device::Cuda in scope and a GPU present
  const size_t d = dim(), cs = code_size();
  const Kernels& kern = kernels();
  default_pool().parallel_for(
      n, kEncodeChunk,
      [&](size_t begin, size_t end) {
        encode_range(x, begin, end, fine_rq_ != nullptr,
                     [&](size_t i, uint32_t cluster, const uint32_t* fine_codes, const float* y_hat, float) {
                       pack(cluster, fine_codes, fine_rq_ ? kern.dot(y_hat, y_hat, d) : 0.f, codes + i * cs);
                     });
      },
      effective_threads(threads));
}

void TransformedResidualQuantizer::pack(uint32_t cluster, const uint32_t* fine_codes, float fine_sq_norm,
                                        uint8_t* code) const {
  BitWriter writer(code);
  writer.put(cluster, unsigned(first_bits_));
  for (size_t c = 0; c < fine_count_; ++c) writer.put(fine_codes[c], unsigned(fine_bits_));
  writer.flush();
  if (fine_rq_) norm_.write(fine_sq_norm, code + code_bytes_);
}

void TransformedResidualQuantizer::decode(size_t n, const uint8_t* codes, float* x, int threads) const {
  require_trained("decode");
  const size_t d = dim(), cs = code_size();
  default_pool().parallel_for(
      n, 256,
      [&](size_t begin, size_t end) {
        std::vector<uint32_t> fine_codes(fine_count_);
        std::vector<float> y_hat(d), back(d);
        for (size_t i = begin; i < end; ++i) {
          uint32_t cluster;
          unpack(codes + i * cs, &cluster, fine_codes.data());
          reconstruct_fine(fine_codes.data(), y_hat.data());
          // x̂ = c_k + R_kᵀ ŷ.
          const bool rotated = transform(cluster) != nullptr;
          if (rotated) rotate_back(cluster, y_hat.data(), back.data());
          const float* src = rotated ? back.data() : y_hat.data();
          const float* c = first_centroid(cluster);
          float* out = x + i * d;
          for (size_t t = 0; t < d; ++t) out[t] = c[t] + src[t];
        }
      },
      effective_threads(threads));
}

void TransformedResidualQuantizer::clear_seed_tables() {
  centroid_word_dots_.clear();
  projected_words_.clear();
  projected_centroids_.clear();
  basis_transposed_.clear();
}

void TransformedResidualQuantizer::build_seed_tables() {
  clear_seed_tables();
  if (!fine_rq_ || !subspace_transforms() || basis_.empty() || !fine_rq_->uses_cross_tables()) return;
  const size_t d = dim(), p = tdim_, K = fine_rq_->ksub(), words = fine_count_ * K;
  if (double(k1_) * double(words) * sizeof(float) > double(kMaxSeedTableBytes)) return;
  std::vector<float> centroid_dots(k1_ * words), projected(words * p), projected_words(p * words);
  for (size_t l = 0; l < fine_count_; ++l) {
    fine_rq_->table(l).dots_batch(first_.data(), k1_, d, &centroid_dots[l * K], words);
    transform_rows(K, d, p, basis_.data(), fine_rq_->codebook(l), &projected[l * K * p], 0);
  }
  transpose(words, p, projected.data(), projected_words.data());
  projected_centroids_.resize(k1_ * p);
  transform_rows(k1_, d, p, basis_.data(), first_.data(), projected_centroids_.data(), 0);
  basis_transposed_.resize(d * p);
  transpose(p, d, basis_.data(), basis_transposed_.data());
  centroid_word_dots_ = std::move(centroid_dots);
  projected_words_ = std::move(projected_words);
}

// ----------------------------------------------------------------------------------------------- training

void TransformedResidualQuantizer::build_fine_tables() {
  fine_pq_tables_.clear();
  if (!fine_pq_) return;
  for (size_t m = 0; m < fine_pq_->m(); ++m)
    fine_pq_tables_.emplace_back(fine_pq_->ksub(), fine_pq_->sub_dim(m), fine_pq_->centroids(m));
}

void TransformedResidualQuantizer::train_fine(size_t n, const float* y, const TrainContext& ctx, bool warm) {
  if (fine_rq_) {
    if (warm)
      fine_rq_->train_stages(n, y, ctx, true, nullptr);
    else
      fine_rq_->train(n, y, ctx);
    build_seed_tables();
  } else {
    if (warm)
      retrain_product_quantizer(*fine_pq_, n, y, ctx, "pq");
    else
      fine_pq_->train(n, y, ctx);
    build_fine_tables();
  }
}

void TransformedResidualQuantizer::transform_residuals(size_t n, const float* x, const int32_t* labels, float* y,
                                                       int threads) const {
  const size_t d = dim();
  default_pool().parallel_for(
      n, 256,
      [&](size_t begin, size_t end) {
        std::vector<float> r(d);
        for (size_t i = begin; i < end; ++i) {
          const float* c = first_centroid(size_t(labels[i]));
          const bool rotated = transform(size_t(labels[i])) != nullptr;
          float* out = rotated ? r.data() : y + i * d;
          for (size_t t = 0; t < d; ++t) out[t] = x[i * d + t] - c[t];
          if (rotated) rotate(size_t(labels[i]), 1, r.data(), y + i * d);
        }
      },
      effective_threads(threads));
}

void TransformedResidualQuantizer::encode_training(size_t n, const float* x, int32_t* labels, float* y_hat,
                                                   float* sq_errors, int threads) const {
  const size_t d = dim();
  default_pool().parallel_for(
      n, kEncodeChunk,
      [&](size_t begin, size_t end) {
        encode_range(x, begin, end, true,
                     [&](size_t i, uint32_t cluster, const uint32_t*, const float* y, float error) {
                       std::memcpy(y_hat + i * d, y, d * sizeof(float));
                       sq_errors[i] = error;
                       labels[i] = int32_t(cluster);
                     });
      },
      effective_threads(threads));
}

void TransformedResidualQuantizer::update_transforms(size_t n, const float* x, const int32_t* labels,
                                                     const float* y_hat, bool pca_only, int threads) {
  const size_t d = dim();
  // Members of each cluster, in row order (counting sort).
  std::vector<size_t> start(k1_ + 1, 0), order(n);
  for (size_t i = 0; i < n; ++i) ++start[size_t(labels[i]) + 1];
  for (size_t k = 0; k < k1_; ++k) start[k + 1] += start[k];
  std::vector<size_t> fill(start.begin(), start.end() - 1);
  for (size_t i = 0; i < n; ++i) order[fill[size_t(labels[i])]++] = i;
  // Which clusters get (or keep refining) a transform: with the prior, any cluster of kMinTransformPoints
  // members (the prior holds the directions its members do not span); without it, d members, below which the
  // rotation would be fitted to those few points rather than to the cluster. PCA needs d members too (with
  // fewer, the trailing components are arbitrary). New slots start as the identity.
  const size_t p = tdim_;
  const size_t min_points = (pca_only || options_.prior <= 0) ? std::max<size_t>(p, 2) : kMinTransformPoints;
  std::vector<size_t> eligible;
  for (size_t k = 0; k < k1_; ++k) {
    if (start[k + 1] - start[k] < min_points) continue;
    eligible.push_back(k);
    if (slots_[k] < 0) {
      slots_[k] = int32_t(transform_count());
      const std::vector<float> eye = identity_matrix(p);
      transforms_.insert(transforms_.end(), eye.begin(), eye.end());
      initial_.insert(initial_.end(), eye.begin(), eye.end());
    }
  }
  default_pool().parallel_for(
      eligible.size(), 1,
      [&](size_t begin, size_t end) {
        std::vector<float> r, targets, projected_r, projected_targets;
        std::vector<double> corr(p * p);
        for (size_t e = begin; e < end; ++e) {
          const size_t k = eligible[e], count = start[k + 1] - start[k];
          const float* c = first_centroid(k);
          r.resize(count * d);
          for (size_t t = 0; t < count; ++t) {
            const size_t i = order[start[k] + t];
            for (size_t j = 0; j < d; ++j) r[t * d + j] = x[i * d + j] - c[j];
          }
          float* rot = transforms_.data() + size_t(slots_[k]) * p * p;
          if (pca_only) {
            // Principal axes of the cluster's residuals, largest variance first (for PQ: spread over the
            // sub-spaces by balanced eigenvalue allocation). Full transforms only (p = d).
            const PcaResult pc = pca(count, d, r.data(), 1);
            std::vector<size_t> rows(d);
            if (fine_pq_)
              rows = balanced_allocation(*fine_pq_, pc.eigenvalues);
            else
              std::iota(rows.begin(), rows.end(), size_t(0));
            for (size_t row = 0; row < d; ++row)
              std::memcpy(rot + row * d, &pc.components[rows[row] * d], d * sizeof(float));
            std::memcpy(initial_.data() + size_t(slots_[k]) * d * d, rot, d * d * sizeof(float));
            continue;
          }
          targets.resize(count * d);
          for (size_t t = 0; t < count; ++t)
            std::memcpy(&targets[t * d], y_hat + order[start[k] + t] * d, d * sizeof(float));
          const float* sources = r.data();
          const float* goals = targets.data();
          if (subspace_transforms()) {
            // The exact p × p problem on the projected pairs (P r, P ŷ) (header comment).
            projected_r.resize(count * p);
            projected_targets.resize(count * p);
            transform_rows(count, d, p, basis_.data(), r.data(), projected_r.data(), 1);
            transform_rows(count, d, p, basis_.data(), targets.data(), projected_targets.data(), 1);
            sources = projected_r.data();
            goals = projected_targets.data();
          }
          // R_k = argmin Σ‖R r − ŷ‖²: Procrustes on A_k = Σ r ŷᵀ.
          matmul_at_b(count, p, p, sources, goals, corr.data(), 1);
          if (options_.prior > 0) {
            // Σ‖R r − ŷ‖² + λ‖R − R⁰‖² with λ = prior · (mean ‖r‖² of the cluster, within the rotated space):
            // for orthogonal R this is maximising tr(R (A + λ R⁰ᵀ)), i.e. Procrustes on A + λ R⁰ᵀ.
            double energy = 0;
            for (size_t t = 0; t < count * p; ++t) energy += double(sources[t]) * sources[t];
            const double lambda = options_.prior * energy / double(count);
            const float* r0 = initial_.data() + size_t(slots_[k]) * p * p;
            for (size_t i = 0; i < p; ++i)
              for (size_t j = 0; j < p; ++j) corr[i * p + j] += lambda * double(r0[j * p + i]);
          }
          procrustes_rotation(p, corr.data(), rot);
        }
      },
      effective_threads(threads));
}

void TransformedResidualQuantizer::compute_basis(size_t n, const float* x, const int32_t* labels, int threads) {
  const size_t d = dim(), p = tdim_;
  std::vector<float> residuals(n * d);
  for (size_t i = 0; i < n; ++i) {
    const float* c = first_centroid(size_t(labels[i]));
    for (size_t j = 0; j < d; ++j) residuals[i * d + j] = x[i * d + j] - c[j];
  }
  // Principal directions of the residuals about their mean (which is near zero: each centroid is its
  // members' mean after k-means), largest variance first.
  const PcaResult pc = pca(n, d, residuals.data(), threads);
  basis_.assign(pc.components.begin(), pc.components.begin() + p * d);
}

void TransformedResidualQuantizer::train(size_t n, const float* x, const TrainContext& ctx) {
  const size_t d = dim(), kf = size_t(1) << fine_bits_;
  const size_t needed = std::max(k1_, kf);
  QV_CHECK(n >= needed, InvalidArgument,
           spec() << " needs at least " << needed << " training vectors (2^bits per codebook), got " << n);
  const std::vector<float> sample = subsample_rows(n, d, x, needed * ctx.max_points_per_centroid, ctx.seed + 23);
  if (!sample.empty()) {
    x = sample.data();
    n = sample.size() / d;
  }
  trained_ = false;

  TrainContext first_ctx = ctx;
  first_ctx.seed = ctx.seed + 1;
  KMeansResult km = options_.progressive_steps > 0
                        ? kmeans_progressive(n, d, x, k1_, nullptr, options_.progressive_steps, first_ctx, "trq-coarse")
                        : kmeans(n, d, x, k1_, first_ctx, "trq-coarse");
  first_ = std::move(km.centroids);
  first_table_ = std::make_unique<CentroidTable>(k1_, d, first_.data());
  slots_.assign(k1_, -1);
  transforms_.clear();
  initial_.clear();
  basis_.clear();
  clear_seed_tables();  // derived from the state cleared above; rebuilt once the fine quantizer is trained
  std::vector<int32_t> labels(n);
  assign_nearest(n, d, x, k1_, first_.data(), labels.data(), nullptr, ctx.threads);
  if (options_.transforms && subspace_transforms()) compute_basis(n, x, labels.data(), ctx.threads);
  if (options_.transforms && options_.pca_init) update_transforms(n, x, labels.data(), nullptr, true, ctx.threads);

  std::vector<float> y(n * d), y_hat(n * d), errors(n);
  const size_t rounds = options_.transforms ? options_.iterations : 0;
  TrainContext fine_ctx = ctx;
  fine_ctx.seed = ctx.seed + 2;
  // After the first round the fine codebooks only follow a small move of the data: a few warm Lloyd passes.
  TrainContext warm_ctx = fine_ctx;
  warm_ctx.iterations = std::max(2, ctx.iterations / 3);
  for (size_t it = 0;; ++it) {
    transform_residuals(n, x, labels.data(), y.data(), ctx.threads);
    train_fine(n, y.data(), it == 0 ? fine_ctx : warm_ctx, it > 0);
    encode_training(n, x, labels.data(), y_hat.data(), errors.data(), ctx.threads);
    double total = 0;
    for (float e : errors) total += e;
    ctx.report(Progress{"trq", int(it), int(rounds) + 1, int(it) + 1, int(rounds) + 1, total / double(n)});
    if (it == rounds) break;
    update_transforms(n, x, labels.data(), y_hat.data(), false, ctx.threads);
  }
  if (fine_rq_ && options_.refit_rounds > 0) {
    // Least-squares refit of the fine codebooks on the final transformed residuals (rq.h), then the training
    // set is encoded again so that the norm range below matches the refitted codebooks.
    transform_residuals(n, x, labels.data(), y.data(), ctx.threads);
    std::vector<uint32_t> fine_codes(n * fine_count_);
    fine_rq_->encode_stages(n, y.data(), fine_codes.data(), nullptr, ctx.threads);
    fine_rq_->refit(n, y.data(), fine_codes.data(), options_.refit_rounds, fine_ctx);
    build_seed_tables();
    encode_training(n, x, labels.data(), y_hat.data(), errors.data(), ctx.threads);
  }
  if (fine_rq_) {
    const Kernels& kern = kernels();
    float lo = std::numeric_limits<float>::infinity(), hi = 0;
    for (size_t i = 0; i < n; ++i) {
      const float v = kern.dot(&y_hat[i * d], &y_hat[i * d], d);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    norm_.set_range(lo, std::max(lo, hi));
  }
  trained_ = true;
}

// -------------------------------------------------------------------------------------------- persistence

// State: u32 first_bits, u32 fine kind (0 RQ, 1 PQ), u32 fine_count, u32 fine_bits, f32 norm range lo, hi;
// first-level centroids (u64 count = K1·d, floats); transform slots (u64 count = K1, int32, −1 = identity);
// transforms (u64 count = slots·t², floats, row-major; t = transform_dim()); with sub=p the basis P (u64 count =
// p·d, floats, row-major); then the fine quantizer's state.
void TransformedResidualQuantizer::save_state(ByteWriter& out) const {
  require_trained("save");
  out.u32(uint32_t(first_bits_));
  out.u32(fine_rq_ ? 0u : 1u);
  out.u32(uint32_t(fine_count_));
  out.u32(uint32_t(fine_bits_));
  out.f32(norm_.lo());
  out.f32(norm_.hi());
  out.array(first_);
  out.array(slots_);
  out.array(transforms_);
  if (subspace_transforms()) out.array(basis_);
  if (fine_rq_)
    fine_rq_->save_state(out);
  else
    fine_pq_->save_state(out);
}

void TransformedResidualQuantizer::load_state(ByteReader& in) {
  const size_t d = dim();
  const uint32_t first_bits = in.u32(), kind = in.u32(), count = in.u32(), bits = in.u32();
  QV_CHECK(first_bits == first_bits_ && kind == (fine_rq_ ? 0u : 1u) && count == fine_count_ && bits == fine_bits_,
           Corrupt, "TRQ state does not match the spec " << spec());
  const float lo = in.f32(), hi = in.f32();
  QV_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, Corrupt, "TRQ norm range is invalid");
  std::vector<float> first = in.array<float>(k1_ * d, "TRQ first-level centroids");
  QV_CHECK(first.size() == k1_ * d, Corrupt, "TRQ first level: expected " << k1_ * d << " floats, found " << first.size());
  for (float v : first) QV_CHECK(std::isfinite(v), Corrupt, "TRQ first level holds a non-finite value");
  std::vector<int32_t> slots = in.array<int32_t>(k1_, "TRQ transform slots");
  QV_CHECK(slots.size() == k1_, Corrupt, "TRQ transform slots: expected " << k1_ << ", found " << slots.size());
  size_t used = 0;
  for (int32_t s : slots) used += s >= 0;
  QV_CHECK(used == 0 || options_.transforms, Corrupt, "untransformed hybrid state holds transforms");
  const size_t p = tdim_;
  std::vector<float> transforms = in.array<float>(used * p * p, "TRQ transforms");
  QV_CHECK(transforms.size() == used * p * p, Corrupt,
           "TRQ transforms: expected " << used * p * p << " floats, found " << transforms.size());
  std::vector<bool> seen(used, false);
  for (int32_t s : slots) {
    if (s < 0) continue;
    QV_CHECK(size_t(s) < used && !seen[size_t(s)], Corrupt, "TRQ transform slot " << s << " is out of range or shared");
    seen[size_t(s)] = true;
  }
  for (float v : transforms) QV_CHECK(std::isfinite(v), Corrupt, "TRQ transforms hold a non-finite value");
  for (size_t t = 0; t < used; ++t)
    QV_CHECK(orthogonality_error(p, &transforms[t * p * p]) < 1e-3, Corrupt, "TRQ transform " << t << " is not orthogonal");
  std::vector<float> basis;
  if (subspace_transforms()) {
    basis = in.array<float>(p * d, "TRQ subspace basis");
    QV_CHECK(basis.size() == p * d, Corrupt, "TRQ subspace basis: expected " << p * d << " floats, found " << basis.size());
    for (float v : basis) QV_CHECK(std::isfinite(v), Corrupt, "TRQ subspace basis holds a non-finite value");
    // Rows orthonormal (P Pᵀ = I), else R_k would not be orthogonal and decoding would not invert encoding.
    QV_CHECK(orthonormal_rows_error(p, d, basis.data()) < 1e-3, Corrupt, "TRQ subspace basis rows are not orthonormal");
  }
  if (fine_rq_)
    fine_rq_->load_state(in);
  else {
    fine_pq_->load_state(in);
    build_fine_tables();
  }
  first_ = std::move(first);
  first_table_ = std::make_unique<CentroidTable>(k1_, d, first_.data());
  slots_ = std::move(slots);
  transforms_ = std::move(transforms);
  basis_ = std::move(basis);
  initial_.clear();
  build_seed_tables();
  norm_.set_range(lo, hi);
  trained_ = true;
}

// -------------------------------------------------------------------------------------------------- ADC

namespace {

class TRQDistanceTable : public DistanceTable {
 public:
  TRQDistanceTable(const TransformedResidualQuantizer& q, const float* query, Metric metric)
      : q_(q), l2_(metric == Metric::L2), query_(query, query + q.dim()), luts_(q.first_count()),
        bases_(q.first_count(), 0.0f) {
    if (q.fine_rq())
      lut_size_ = q.fine_rq()->stages() * q.fine_rq()->ksub();
    else
      lut_size_ = q.fine_pq()->m() * q.fine_pq()->ksub();
  }

  void scan(const uint8_t* codes, size_t n, float* out) const override {
    const size_t cs = q_.code_size(), cb = q_.packed_code_bytes();
    const unsigned b1 = unsigned(q_.first_bits()), fb = unsigned(q_.fine_bits());
    const size_t count = q_.fine_count(), ksub = size_t(1) << fb;
    const bool add_norm = l2_ && q_.fine_rq();
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* code = codes + i * cs;
      BitReader reader(code);
      const size_t k = reader.get(b1);
      if (luts_[k].empty()) prepare(k);
      const float* lut = luts_[k].data();
      float sum = bases_[k];
      for (size_t c = 0; c < count; ++c) sum += lut[c * ksub + reader.get(fb)];
      if (add_norm) sum += q_.norm_codec().read(code + cb);
      out[i] = sum;
    }
  }

 private:
  // Cluster k's table. L2: q_k = R_k (q − c_k); the fine LUT scores ‖q_k − ŷ‖² (PQ directly; RQ as
  // ‖q_k‖² − 2Σ⟨q_k, c⟩ + ‖ŷ‖²). Inner product: −⟨q, x̂⟩ = −⟨q, c_k⟩ − ⟨R_k q, ŷ⟩.
  void prepare(size_t k) const {
    const size_t d = q_.dim();
    const Kernels& kern = kernels();
    std::vector<float> v(d), w(d);
    const float* c = q_.first_centroid(k);
    for (size_t t = 0; t < d; ++t) v[t] = l2_ ? query_[t] - c[t] : query_[t];
    q_.rotate(k, 1, v.data(), w.data());
    std::vector<float>& lut = luts_[k];
    lut.resize(lut_size_);
    if (q_.fine_rq()) {
      q_.fine_rq()->inner_product_tables(w.data(), lut.data());
      const float factor = l2_ ? -2.0f : -1.0f;
      for (float& e : lut) e *= factor;
      bases_[k] = l2_ ? kern.dot(w.data(), w.data(), d) : -kern.dot(query_.data(), c, d);
    } else {
      q_.fine_pq()->compute_lut(w.data(), l2_ ? Metric::L2 : Metric::InnerProduct, lut.data());
      bases_[k] = l2_ ? 0.0f : -kern.dot(query_.data(), c, d);
    }
  }

  const TransformedResidualQuantizer& q_;
  bool l2_;
  std::vector<float> query_;
  size_t lut_size_ = 0;
  // Filled lazily by the const scan(): the table object belongs to one query on one thread.
  mutable std::vector<std::vector<float>> luts_;
  mutable std::vector<float> bases_;
};

}  // namespace

std::unique_ptr<DistanceTable> TransformedResidualQuantizer::distance_table(const float* query, Metric metric) const {
  require_trained("search");
  QV_CHECK(metric != Metric::Cosine, Internal, "cosine must be resolved to inner product before ADC");
  return std::make_unique<TRQDistanceTable>(*this, query, metric);
}

}  // namespace quiver
