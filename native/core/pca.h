// PCA dimension reduction in front of any codec (spec "PCA<p>,<codec>", e.g. "PCA128,TRQ8x8,beam=3"): vectors
// are centred and projected onto the p leading principal components of the training set, y = E (x − μ), and
// the inner codec (built for p dimensions) encodes y. Decoding gives x̂ = μ + Eᵀ ŷ.
//
// Why: additive codecs (RQ, TRQ) score every codeword over every dimension when encoding, so at high d
// (d = 784 images) encoding costs L · 2^b · d multiply-adds per vector. Their codewords lie mostly in the
// leading principal subspace anyway; projecting first makes encoding about d/p times cheaper and keeps the
// codewords' capacity off the noisy trailing directions (on Fashion-MNIST at 64 bits, PCA128,RQ8x8 has lower
// error than RQ8x8 over all 784 dimensions).
//
// ADC stays exact for the reconstruction x̂: ‖q − x̂‖² = ‖q − μ − Eᵀy_q‖² + ‖y_q − ŷ‖² with y_q = E(q − μ) (the
// first term is one constant per query), and ⟨q, x̂⟩ = ⟨q, μ⟩ + ⟨E q, ŷ⟩.
//
// Layouts: codes are exactly the inner codec's (PCA adds no bytes). mean_: d floats; projection_: p × d floats,
// row-major, row j = principal component j (orthonormal rows); back_: its transpose, d × p.
#pragma once

#include <memory>
#include <vector>

#include "quantizer.h"

namespace quiver {

class PCAQuantizer : public Quantizer {
 public:
  // Rows of the training set used to estimate the mean and covariance (a covariance costs n · d² work).
  static constexpr size_t kMaxPcaRows = 65536;

  // inner: an untrained codec for out_dim dimensions; 1 ≤ out_dim ≤ dim.
  PCAQuantizer(size_t dim, size_t out_dim, std::unique_ptr<Quantizer> inner);

  std::string spec() const override;  // "PCA<p>," + the inner codec's spec
  size_t code_size() const override { return inner_->code_size(); }
  bool is_trained() const override { return trained_ && inner_->is_trained(); }
  void train(size_t n, const float* x, const TrainContext& ctx) override;
  void encode(size_t n, const float* x, uint8_t* codes, int threads) const override;
  void decode(size_t n, const uint8_t* codes, float* x, int threads) const override;
  std::unique_ptr<DistanceTable> distance_table(const float* query, Metric metric) const override;
  void save_state(ByteWriter& out) const override;  // layout: see the .cpp
  void load_state(ByteReader& in) override;

  size_t out_dim() const { return out_dim_; }
  const Quantizer& inner() const { return *inner_; }
  const std::vector<float>& mean() const { return mean_; }              // d
  const std::vector<float>& projection() const { return projection_; }  // p × d
  // y (n × p) = E (x − μ) for x: n × d.
  void project(size_t n, const float* x, float* y, int threads) const;

 private:
  // Calls body(first, count, buffer) for consecutive row ranges of at most 4 096 rows, with a buffer of
  // count × p floats for their projected vectors (bounds encode's and decode's temporary memory).
  template <typename F>
  void in_chunks(size_t n, F&& body) const;
  // Installs mean and projection and derives back_ and projected_mean_.
  void set_projection(std::vector<float> mean, std::vector<float> projection);

  size_t out_dim_;
  std::unique_ptr<Quantizer> inner_;
  std::vector<float> mean_, projection_, back_;
  std::vector<float> projected_mean_;  // E μ (p floats): y = E x − E μ
  bool trained_ = false;
};

}  // namespace quiver
