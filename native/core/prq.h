// Product residual quantizer (PRQ): the d dimensions are cut into P contiguous parts as PQ cuts them (when P
// does not divide d, the first d mod P parts get one dimension more), and each part is encoded by its own
// residual quantizer of L stages × 2^nbits codewords (beam search as in rq.h).
//
// Code layout (code_size() bytes): the P·L stage codes bit-packed LSB first — part 0's stages 0 … L−1, then
// part 1's, … (⌈P·L·nbits/8⌉ bytes) — followed by ‖x̂‖² of the whole reconstruction, float32 (4 bytes) or
// u8 (1 byte, uniform between the training min and max; see rq.h for its cost).
// ADC table: P × L × K floats, entry (p, l, j) = −2⟨q_p, c_plj⟩ (L2) or −⟨q_p, c_plj⟩ (inner product).
#pragma once

#include <memory>
#include <vector>

#include "rq.h"

namespace quiver {

class ProductResidualQuantizer : public Quantizer {
 public:
  // options.beam and options.refit_rounds apply to every part; options.norm to the whole code.
  ProductResidualQuantizer(size_t dim, size_t parts, size_t stages, size_t nbits, RQOptions options = {});

  std::string spec() const override;  // "PRQ<P>x<L>x<nbits>" then ",beam=B", ",norm=u8", ",refit=N"
  size_t code_size() const override { return code_bytes_ + norm_.bytes(); }
  bool is_trained() const override { return trained_; }
  void train(size_t n, const float* x, const TrainContext& ctx) override;
  void encode(size_t n, const float* x, uint8_t* codes, int threads) const override;
  void decode(size_t n, const uint8_t* codes, float* x, int threads) const override;
  std::unique_ptr<DistanceTable> distance_table(const float* query, Metric metric) const override;
  void save_state(ByteWriter& out) const override;  // layout: see the .cpp
  void load_state(ByteReader& in) override;

  size_t parts() const { return parts_.size(); }
  size_t stages() const { return stages_; }
  size_t nbits() const { return nbits_; }
  size_t part_dim(size_t p) const { return part_dims_[p]; }
  size_t part_offset(size_t p) const { return part_offsets_[p]; }
  const ResidualQuantizer& part(size_t p) const { return *parts_[p]; }
  const NormCodec& norm_codec() const { return norm_; }
  size_t stage_code_bytes() const { return code_bytes_; }
  // All P·L stage codes of one code (P·L values), and back.
  void unpack(const uint8_t* code, uint32_t* stage_codes) const;

 private:
  // Encodes rows [0, n) of x into stage codes (n × P·L) and ‖x̂‖² (n); single-threaded (callers split).
  void encode_rows(size_t n, const float* x, uint32_t* stage_codes, float* sq_norms) const;

  size_t stages_, nbits_, code_bytes_;
  RQOptions options_;
  NormCodec norm_;
  std::vector<size_t> part_dims_, part_offsets_;
  std::vector<std::unique_ptr<ResidualQuantizer>> parts_;
  bool trained_ = false;
};

}  // namespace quiver
