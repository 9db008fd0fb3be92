// Optimized product quantization (OPQ, Ge et al. 2013, non-parametric variant): a learnt global rotation R
// applied before a product quantizer, so that the sub-spaces PQ cuts are the ones it quantises best.
//
// Training alternates (iterations = the iters option): encode the rotated training set with PQ, solve the
// orthogonal Procrustes problem R = argmin Σ‖R x − ŷ‖² for the fixed reconstructions ŷ, rotate, refresh
// the PQ codebooks by a few Lloyd iterations from where they were. It starts from R = I, i.e. from plain PQ,
// and every half-step lowers the training error.
//
// Code layout: exactly the inner PQ's (OPQ adds no bytes). Rotation layout: d × d floats, row-major; y = R x.
// ADC: the query is rotated once (q' = R q) and PQ's look-up table is built for q'.
#pragma once

#include <memory>
#include <vector>

#include "pq.h"
#include "quantizer.h"

namespace quiver {

class OPQQuantizer : public Quantizer {
 public:
  static constexpr size_t kDefaultIterations = 8;

  OPQQuantizer(size_t dim, size_t m, size_t nbits, size_t iterations = kDefaultIterations);

  std::string spec() const override;  // "OPQ<M>,PQ<M>x<nbits>" then ",iters=N" when not the default
  size_t code_size() const override { return pq_.code_size(); }
  bool is_trained() const override { return trained_; }
  void train(size_t n, const float* x, const TrainContext& ctx) override;
  void encode(size_t n, const float* x, uint8_t* codes, int threads) const override;
  void decode(size_t n, const uint8_t* codes, float* x, int threads) const override;
  std::unique_ptr<DistanceTable> distance_table(const float* query, Metric metric) const override;
  void save_state(ByteWriter& out) const override;  // layout: see the .cpp
  void load_state(ByteReader& in) override;

  size_t iterations() const { return iterations_; }
  const ProductQuantizer& pq() const { return pq_; }
  const std::vector<float>& rotation() const { return rotation_; }  // d × d
  // Installs a trained state (rotation d × d, PQ centroids as ProductQuantizer::set_centroids takes them).
  void set_state(std::vector<float> rotation, std::vector<float> centroids);

 private:
  size_t iterations_;
  ProductQuantizer pq_;
  std::vector<float> rotation_, rotation_t_;  // R and Rᵀ (the latter rotates reconstructions back)
  bool trained_ = false;
};

// Lloyd iterations on every sub-space of an already trained product quantizer, started from its current
// centroids (kmeans_from): the cheap refresh that alternating schemes (OPQ, TRQ) need after the data moved.
// x: n × pq.dim(). ctx.iterations counts assignment passes per sub-space.
void retrain_product_quantizer(ProductQuantizer& pq, size_t n, const float* x, const TrainContext& ctx,
                               const char* phase);

}  // namespace quiver
