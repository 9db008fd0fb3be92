// Product quantizer: the d dimensions are cut into M contiguous sub-spaces, each quantised by its own
// codebook of ksub = 2^nbits centroids learnt by k-means.
//
// Uneven sub-spaces: when M does not divide d, the first (d mod M) sub-spaces get ⌈d/M⌉ dimensions and the
// rest ⌊d/M⌋, so every dimension is covered and sub-space sizes differ by at most one.
//
// Code layout: nbits = 8 → one byte per sub-quantizer (code_size = M). Other widths are bit-packed
// little-endian, sub-quantizer 0 in the lowest bits: code_size = ⌈M·nbits / 8⌉.
// Centroid layout: for sub-space m, ksub × sub_dim(m) floats, starting at sub_offset(m)·ksub (a transposed
// copy, sub_dim(m) × ksub, serves the look-up tables).
// ADC table layout: M × ksub floats (sub-space m's row starts at m·ksub).
#pragma once

#include <vector>

#include "quantizer.h"

namespace quiver {

class ProductQuantizer : public Quantizer {
 public:
  ProductQuantizer(size_t dim, size_t m, size_t nbits);

  std::string spec() const override;
  size_t code_size() const override { return code_size_; }
  bool is_trained() const override { return trained_; }
  void train(size_t n, const float* x, const TrainContext& ctx) override;
  void encode(size_t n, const float* x, uint8_t* codes, int threads) const override;
  void decode(size_t n, const uint8_t* codes, float* x, int threads) const override;
  std::unique_ptr<DistanceTable> distance_table(const float* query, Metric metric) const override;
  void save_state(ByteWriter& out) const override;  // defined in serialize.cpp
  void load_state(ByteReader& in) override;

  size_t m() const { return m_; }
  size_t nbits() const { return nbits_; }
  size_t ksub() const { return ksub_; }
  size_t sub_dim(size_t sub) const { return sub_dims_[sub]; }
  size_t sub_offset(size_t sub) const { return sub_offsets_[sub]; }
  const float* centroids(size_t sub) const { return centroids_.data() + sub_offsets_[sub] * ksub_; }
  const std::vector<float>& all_centroids() const { return centroids_; }
  // Installs trained centroids (layout above; size ksub × dim). Used by loaders and composite codecs.
  void set_centroids(std::vector<float> centroids);

  // lut: M × ksub floats; entry (m, j) = ‖q_m − c_mj‖² for L2, −⟨q_m, c_mj⟩ for inner product.
  void compute_lut(const float* query, Metric metric, float* lut) const;
  // out[i] = Σ_m lut[m·ksub + code_i(m)] for n consecutive codes (lut: M × ksub floats, e.g. from compute_lut or
  // an IVF list's precomputed table).
  void scan_lut(const float* lut, const uint8_t* codes, size_t n, float* out) const;
  // Sub-codes of one vector: out[m] ∈ [0, ksub).
  void unpack(const uint8_t* code, uint32_t* out) const;
  void pack(const uint32_t* sub_codes, uint8_t* code) const;

 private:
  size_t m_, nbits_, ksub_, code_size_;
  std::vector<size_t> sub_dims_, sub_offsets_;
  std::vector<float> centroids_;
  std::vector<float> centroids_t_;  // per sub-space m: sub_dim(m) × ksub, i.e. centroids(m) transposed
  bool trained_ = false;
};

}  // namespace quiver
