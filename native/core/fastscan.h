// 4-bit PQ "fast-scan" index (spec PQ<M>x4fs): exhaustive search whose inner loop looks codes up in 16-entry
// uint8 tables held in SIMD registers (vpshufb), 32 codes per instruction.
//
// Code layout (blocks of 32 vectors): block b covers rows 32b … 32b+31 and holds npairs = ⌈M/2⌉ groups of
// 32 bytes; byte p·32 + j packs sub-quantizer 2p of row 32b+j in its low nibble and 2p+1 in its high nibble
// (0 when 2p+1 = M). Rows past size() in the last block are zero. Memory: 32·npairs bytes per block, i.e.
// ⌈M/2⌉ bytes per vector.
//
// Search is exact for 4-bit PQ ADC: the uint8 tables give a lower-precision estimate with a known error bound
// (M/2 table steps), used only to skip rows that cannot enter the top-k; rows that might are scored with the
// float tables. So results equal those of a plain PQ<M>x4 index over the same codes.
#pragma once

#include <memory>
#include <vector>

#include "index.h"
#include "pq.h"

namespace quiver {

class FastScanIndex : public Index {
 public:
  FastScanIndex(size_t dim, Metric metric, size_t m, bool store_vectors);
  std::string spec() const override;
  size_t code_size() const override { return (pq_.m() + 1) / 2; }
  bool is_trained() const override { return pq_.is_trained(); }
  const ProductQuantizer& pq() const { return pq_; }
  size_t npairs() const { return (pq_.m() + 1) / 2; }
  // Sub-code m of a stored row.
  uint32_t sub_code(size_t row, size_t m) const;
  bool stores_vectors() const { return store_vectors_; }

 protected:
  void train_impl(size_t n, const float* x, const TrainContext& ctx) override { pq_.train(n, x, ctx); }
  void add_impl(size_t n, const float* x, int threads) override;
  void compact_impl(const std::vector<bool>& keep) override;
  std::unique_ptr<RowScorer> make_scorer(const float* query) const override;
  void reconstruct_row(size_t row, float* out) const override;
  bool has_stored_vectors() const override { return store_vectors_; }
  const float* stored_vector(size_t row) const override { return vectors_.data() + row * dim(); }
  void save_impl(ContainerWriter& out) const override;
  void load_impl(const std::vector<Section>& sections, const std::shared_ptr<ByteSource>& source,
                 bool borrow) override;
  void merge_impl(const Index& other) override;

 private:
  // Writes the sub-codes of `count` rows (count × M values) at rows first … first+count−1 of `blocks`.
  void put_codes(uint8_t* blocks, size_t first, size_t count, const uint32_t* sub_codes) const;

  ProductQuantizer pq_;
  bool store_vectors_;
  RowStore<uint8_t> blocks_;  // ⌈size/32⌉ blocks × npairs × 32 bytes
  RowStore<float> vectors_;   // size() × dim when store_vectors_
};

}  // namespace quiver
