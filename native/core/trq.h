// Transformed residual quantization (TRQ, Yuan & Liu 2015) and the first-level + fine-quantizer hybrids.
//
// Model: a first-level codebook C1 of K1 = 2^first_bits centroids (the first RQ stage, also the coarse
// quantizer of an IVF index) and, per first-level cluster k, a learnt orthogonal d × d transform R_k. A vector
// x in cluster k has the residual r = x − c_k, which is rotated, y = R_k r, and encoded by one fine quantizer
// shared by all clusters: RQ (L stages, beam search) or PQ (M sub-quantizers). Reconstruction:
// x̂ = c_k + R_kᵀ ŷ. The rotations align the residual distributions of the clusters so that one fine
// codebook fits all of them; since they are orthogonal, ‖x − x̂‖ = ‖y − ŷ‖.
//
// Training minimises Σ‖R_k r − ŷ‖² by alternation: k-means for C1; R_k = R⁰_k = I (or per-cluster PCA, pca=1,
// for clusters of at least d members); then `iters` rounds of { train (first round) or refresh (warm Lloyd
// passes) the fine quantizer on the transformed residuals; encode the training set; per cluster, orthogonal
// Procrustes gives the R_k with R_k r ≈ ŷ }, and a last refresh of the fine quantizer for the final
// transforms.
//
// Deviation from the plain method, measured: Procrustes here minimises Σ‖R r − ŷ‖² + λ‖R − R⁰‖² with
// λ = reg · (mean ‖r‖² of the cluster), i.e. it solves Procrustes on A_k + λ R⁰ᵀ (A_k = Σ r ŷᵀ). Without
// that prior, a cluster with fewer members than d has a rank-deficient A_k: its rotation fits those members
// and turns every direction they do not span arbitrarily, which on the SIFT slice (256 clusters of ~39
// vectors, d = 128) drove the training MSE from 24.1 k to 6.3 k while held-out MSE rose from 36.6 k to 50.2 k —
// memorisation, not compression. The usual cure, giving clusters under d members no transform, leaves every
// cluster of that slice without one. With the prior (default reg=2) the unspanned directions stay at R⁰,
// held-out error improves slightly over no transforms and training error drops by a fifth; clusters need
// only kMinTransformPoints members. reg=0 gives plain Procrustes and the "at least d members" rule.
// With transforms disabled the same class is the plain hybrid "RQ1x<b>,PQ<M>x<b>" (C1, then PQ on x − c_k).
//
// Subspace transforms (sub=p): at d = 784 (Fashion-MNIST) a full transform is 2.4 MB and its Procrustes an
// O(d³) decomposition per cluster and round, and a cluster of a few dozen training vectors cannot pin down
// d² parameters. With sub=p every transform rotates only inside one shared p-dimensional subspace, the span of
// the leading principal directions of the first-level residuals (where most of their energy lies), and is
// the identity on its orthogonal complement: R_k = I + Pᵀ(A_k − I)P is orthogonal whenever A_k is. Since
// ‖R r − ŷ‖² = ‖A_k P r − P ŷ‖² + ‖(I − PᵀP)(r − ŷ)‖² and the second term does not depend on A_k, the
// Procrustes step is exact on the projected pairs (P r, P ŷ): a p × p problem. Applying a transform costs
// 2·d·p + p² multiply-adds instead of d², and storage is K1·p² + p·d floats.
//
// Encoding: the `beam` nearest first-level centroids are tried, each with its own transform; for an RQ fine
// quantizer they seed one joint beam search over the fine stages, for PQ the candidate with the smallest
// fine error wins. beam = 1 is the greedy encoder.
//
// Code layout (code_size() bytes): first-level id (first_bits bits) then the fine codes (L or M values of
// fine_bits bits), bit-packed LSB first (bitpack.h) in ⌈(first_bits + count·fine_bits)/8⌉ bytes; for an RQ
// fine quantizer then ‖ŷ‖² as float32 (4 bytes) or u8 (1 byte; see rq.h). ‖ŷ‖² rather than ‖x̂‖²: L2 ADC
// computes q_k = R_k(q − c_k) per cluster anyway and scores ‖q_k‖² − 2⟨q_k, ŷ⟩ + ‖ŷ‖², and the residual
// norms span a much smaller range, which matters for the u8 form.
// Transform storage: one slot index per first-level cluster (−1 = identity, no matrix) and the slots' t × t
// row-major float matrices (t = transform_dim(): d, or p with sub=p; y = R r for full transforms, the A_k of
// R_k = I + Pᵀ(A_k − I)P for subspace ones); transform(k) returns cluster k's matrix or null; basis() is P
// (p × d row-major, empty for full transforms). rotate() / rotate_back() apply R_k / R_kᵀ either way.
// ADC: per query, each first-level cluster's look-up table is built the first time a code of that cluster is
// scanned (q_k and the fine LUT), then cached in the table object; a DistanceTable is used from one thread.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "kmeans.h"
#include "pq.h"
#include "quantizer.h"
#include "rq.h"

namespace quiver {

enum class FineQuantizerKind { Residual, Product };

// Shortest decimal form of a double that parses back to it (canonical spec strings).
std::string format_number(double value);

struct TRQOptions {
  size_t beam = 1;          // first-level candidates per vector, and the beam width of an RQ fine (1 … 256)
  bool transforms = true;   // false: identity transforms (the plain "RQ1x<b>,PQ<M>x<b>" hybrid)
  bool pca_init = false;    // start the transforms from per-cluster PCA instead of the identity
  size_t iterations = 4;    // alternations (fine refresh, encode, Procrustes): 1 … 50
  double prior = 2.0;       // weight of the pull towards the initial transform (0 = plain Procrustes), see above
  NormStorage norm = NormStorage::Float32;  // ‖ŷ‖² storage, RQ fine quantizer only
  size_t train_beam = 0;    // RQ fine only: beam of the training set's encoding between stages (0 = beam)
  size_t refit_rounds = 3;  // RQ fine only (ignored for PQ): refit rounds after the alternation (0 … 20, rq.h)
  // 0: full d × d transforms. p > 0: subspace transforms R_k = I + Pᵀ(A_k − I)P, with P (p × d, orthonormal
  // rows) the top-p principal directions of the first-level residuals, shared by all clusters, and A_k a
  // p × p rotation per cluster (see the header comment).
  size_t subspace = 0;
  size_t progressive_steps = 0;  // > 0: progressive-dimension k-means for the first level and RQ stages (rq.h)
};

class TransformedResidualQuantizer : public Quantizer {
 public:
  static constexpr size_t kDefaultIterations = 4;
  // Refit rounds of an RQ fine quantizer in the spec's default (SIFT slice, TRQ8x8: MSE 15.0 k → 14.4 k,
  // 10-recall@10 0.656 → 0.673).
  static constexpr size_t kDefaultRefitRounds = 3;
  static constexpr double kDefaultPrior = 2.0;
  // Members a cluster needs for a transform when the prior is on (without it: d).
  static constexpr size_t kMinTransformPoints = 16;

  // fine_count: RQ stages or PQ sub-quantizers; fine_bits: their bits per code.
  TransformedResidualQuantizer(size_t dim, size_t first_bits, FineQuantizerKind fine, size_t fine_count,
                               size_t fine_bits, TRQOptions options = {});

  // "TRQ<1+L>x<b>" (RQ fine with first_bits = b), "TRQ1x<b1>,RQ<L>x<b>", "TRQ1x<b1>,PQ<M>x<b>" or, without
  // transforms, "RQ1x<b1>,PQ<M>x<b>"; then ",beam=B", ",iters=N", ",norm=u8", ",pca=1", ",reg=W", ",sub=p",
  // ",pd=S" when not default.
  std::string spec() const override;
  size_t code_size() const override { return code_bytes_ + (fine_rq_ ? norm_.bytes() : 0); }
  bool is_trained() const override { return trained_; }
  void train(size_t n, const float* x, const TrainContext& ctx) override;
  void encode(size_t n, const float* x, uint8_t* codes, int threads) const override;
  void decode(size_t n, const uint8_t* codes, float* x, int threads) const override;
  std::unique_ptr<DistanceTable> distance_table(const float* query, Metric metric) const override;
  void save_state(ByteWriter& out) const override;  // layout: see the .cpp
  void load_state(ByteReader& in) override;

  size_t first_bits() const { return first_bits_; }
  size_t first_count() const { return k1_; }  // K1
  const float* first_centroid(size_t k) const { return first_.data() + k * dim(); }
  const TRQOptions& options() const { return options_; }
  FineQuantizerKind fine_kind() const { return fine_rq_ ? FineQuantizerKind::Residual : FineQuantizerKind::Product; }
  size_t fine_count() const { return fine_count_; }
  size_t fine_bits() const { return fine_bits_; }
  const ResidualQuantizer* fine_rq() const { return fine_rq_.get(); }
  const ProductQuantizer* fine_pq() const { return fine_pq_.get(); }
  const NormCodec& norm_codec() const { return norm_; }
  size_t packed_code_bytes() const { return code_bytes_; }  // id + fine codes, without the norm
  // Cluster k's transform matrix (transform_dim()² floats, row-major; see the header comment), or null for
  // the identity.
  const float* transform(size_t k) const {
    return slots_[k] < 0 ? nullptr : transforms_.data() + size_t(slots_[k]) * tdim_ * tdim_;
  }
  size_t transform_count() const { return transforms_.size() / (tdim_ * tdim_); }
  size_t transform_dim() const { return tdim_; }  // d, or p for subspace transforms
  bool subspace_transforms() const { return options_.subspace > 0; }
  const std::vector<float>& basis() const { return basis_; }  // P: p × d, rows orthonormal (subspace only)
  // y = R_k r for `count` rows (r and y: count × dim, row stride dim; y must not alias r). Identity: a copy.
  void rotate(size_t k, size_t count, const float* r, float* y) const;
  // r = R_kᵀ y for one vector (dim floats each; r must not alias y).
  void rotate_back(size_t k, const float* y, float* r) const;

  // One code's first-level id and fine codes (fine_count values).
  void unpack(const uint8_t* code, uint32_t* cluster, uint32_t* fine_codes) const;
  // Writes one code (code_size() bytes) from its parts; fine_sq_norm = ‖ŷ‖² (RQ fine only, else ignored).
  void pack(uint32_t cluster, const uint32_t* fine_codes, float fine_sq_norm, uint8_t* code) const;
  // ŷ from fine codes (dim floats, in the transformed space of its cluster).
  void reconstruct_fine(const uint32_t* fine_codes, float* y_hat) const;

 private:
  struct Scratch;
  // Rows per encoding task: large enough that rows sharing a first-level cluster (and so a transform) meet.
  static constexpr size_t kEncodeChunk = 2048;
  // The first-level candidates of a row (min(beam, K1) ids, nearest first) from its first-level scores
  // (K1 floats, CentroidTable::scores of the first table).
  void select_candidates(const float* scores, Scratch& s, uint32_t* candidates) const;
  // Encodes one vector from its candidates (in s.candidates): first-level id, fine codes (fine_count values),
  // ŷ (dim floats, if not null) and ‖y − ŷ‖². x_dots and x_projected (with seed tables only; else null): ⟨x, w⟩
  // for every fine codeword w (L·K floats, stage-major) and P x (tdim floats).
  void encode_candidates(const float* x, const float* x_dots, const float* x_projected, Scratch& s,
                         uint32_t* cluster, uint32_t* fine_codes, float* y_hat, float* sq_error) const;
  // Seed tables for beam encoding with subspace transforms and an RQ fine quantizer (built when those apply
  // and they fit kMaxSeedTableBytes; else cleared). The beam search's cross-table mode needs ⟨y_b, w⟩ for every
  // candidate's y_b = R_b(x − c_b) and fine codeword w; with R_b = I + Pᵀ(A_b − I)P that is
  // ⟨x, w⟩ − ⟨c_b, w⟩ + ⟨δ_b, P w⟩, δ_b = (A_b − I)P(x − c_b): one pass of L·K·d multiply-adds per vector
  // shared by all candidates, then L·K·p per candidate, instead of L·K·d per candidate.
  void build_seed_tables();
  void clear_seed_tables();
  bool has_seed_tables() const { return !centroid_word_dots_.empty(); }
  // The greedy RQ-fine route of encode_range (beam 1): rows of x visited in `order` (row indices relative to
  // x; clusters: each row's first-level id) in blocks of ResidualQuantizer::kEncodeBlock whose fine stages
  // are scored together by greedy_block. Same codes, ŷ and errors as encode_candidates row by row;
  // emit(row, cluster, fine codes, ŷ or null, error).
  void encode_greedy_rows(const float* x, const std::vector<uint32_t>& order, const std::vector<uint32_t>& clusters,
                          bool want_y_hat,
                          const std::function<void(size_t, uint32_t, const uint32_t*, const float*, float)>& emit) const;
  // Encodes rows [begin, end) of x, grouped by nearest cluster; emit(row, cluster, fine codes, ŷ or null, error).
  void encode_range(const float* x, size_t begin, size_t end, bool want_y_hat,
                    const std::function<void(size_t, uint32_t, const uint32_t*, const float*, float)>& emit) const;
  // Training helpers (n rows of x; labels: first-level id per row).
  void transform_residuals(size_t n, const float* x, const int32_t* labels, float* y, int threads) const;
  void encode_training(size_t n, const float* x, int32_t* labels, float* y_hat, float* sq_errors,
                       int threads) const;
  // Subspace transforms: P from the PCA of the first-level residuals x − c_label (n rows).
  void compute_basis(size_t n, const float* x, const int32_t* labels, int threads);
  void update_transforms(size_t n, const float* x, const int32_t* labels, const float* y_hat,
                         bool pca_only, int threads);
  void train_fine(size_t n, const float* y, const TrainContext& ctx, bool warm);
  void build_fine_tables();

  size_t first_bits_, k1_, fine_count_, fine_bits_, code_bytes_;
  TRQOptions options_;
  NormCodec norm_;
  std::vector<float> first_;                      // K1 × dim
  std::unique_ptr<CentroidTable> first_table_;
  std::vector<int32_t> slots_;                    // K1: transform slot or −1
  size_t tdim_;                                   // transform dimension: dim, or options_.subspace
  std::vector<float> transforms_;                 // slots × tdim × tdim
  std::vector<float> initial_;                    // slots × tdim × tdim: R⁰ of each slot (training only)
  std::vector<float> basis_;                      // subspace only: P, tdim × dim (rows orthonormal)
  std::vector<float> centroid_word_dots_;         // seed tables: K1 × (L·K), ⟨c_k, w⟩, fine codewords stage-major
  std::vector<float> projected_words_;            // seed tables: tdim × (L·K), column j = P w_j
  std::vector<float> projected_centroids_;        // seed tables: K1 × tdim, P c_k
  std::vector<float> basis_transposed_;           // seed tables: dim × tdim, Pᵀ (P x for a block of rows at once)
  std::unique_ptr<ResidualQuantizer> fine_rq_;
  std::unique_ptr<ProductQuantizer> fine_pq_;
  std::vector<CentroidTable> fine_pq_tables_;     // one per PQ sub-space (encoding)
  bool trained_ = false;
};

}  // namespace quiver
