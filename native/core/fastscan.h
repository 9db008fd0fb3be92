// 4-bit PQ "fast-scan" index (spec PQ<M>x4fs): exhaustive search whose inner loop looks codes up in 16-entry
// uint8 tables held in SIMD registers (vpshufb), 32 codes per instruction.
//
// Code layout (blocks of 32 vectors): block b covers rows 32b … 32b+31 and holds npairs = ⌈M/2⌉ groups of
// 32 bytes; byte p·32 + j packs sub-quantizer 2p of row 32b+j in its low nibble and 2p+1 in its high nibble
// (0 when 2p+1 = M). Rows past size() in the last block are zero. Memory: 32·npairs bytes per block, i.e.
// ⌈M/2⌉ bytes per vector.
//
// Search is exact for 4-bit PQ ADC: the uint8 tables give a lower-precision estimate with a known error bound
// (M/2 table steps; the SIMD kernels' sums may be clipped lower still, simd.h), used only to skip rows that
// cannot enter the top-k; rows that might are scored with the float tables. So results equal those of a plain
// PQ<M>x4 index over the same codes.
#pragma once

#include <memory>
#include <vector>

#include "index.h"
#include "lut_quant.h"
#include "pq.h"

namespace quiver {

constexpr size_t kFastScanBlock = 32;  // rows per block

// Block-layout helpers shared by FastScanIndex and IVF lists in the fast-scan layout (IVF<n>,PQ<M>x4fs):
// `blocks` holds ⌈rows/32⌉ blocks of npairs × 32 bytes, laid out as above.
inline size_t fast_scan_bytes(size_t rows, size_t npairs) {
  return (rows + kFastScanBlock - 1) / kFastScanBlock * npairs * kFastScanBlock;
}
// Sub-code m of `row`.
uint32_t fast_scan_sub_code(const uint8_t* blocks, size_t npairs, size_t row, size_t m);
// Writes the sub-codes of `count` rows (count × m_count values) at rows first … first+count−1 (the bytes must
// exist; nibbles not written keep their value).
void fast_scan_put(uint8_t* blocks, size_t npairs, size_t m_count, size_t first, size_t count,
                   const uint32_t* sub_codes);
// True when every nibble that belongs to no row (rows ≥ `rows` in the last block, the phantom sub-quantizer of
// an odd M) is zero, as the writers leave them; loaders insist on it because the kernels scan them.
bool fast_scan_padding_is_zero(const uint8_t* blocks, size_t npairs, size_t m_count, size_t rows);

// One query's tables for fast-scan: the float ADC table (M × 16, smaller is better) and its 7-bit quantisation
// (lut_quant.h: one common scale, entries 0…127 so the kernels can add a pair's two look-ups as a byte), whose
// sums are within M/2 steps of the float scores. Scanning keeps a row only when its uint16 sum is within that
// bound of the current threshold, then scores it exactly from the float table: the results are those of exact
// 4-bit ADC.
class FastScanTable {
 public:
  explicit FastScanTable(size_t m_count) : m_(m_count), pairs_((m_count + 1) / 2), lut_(m_count * 16), qlut_(pairs_ * 32) {}
  // lut: M × 16 floats (may be lut() itself, filled in place). Recomputes the quantised tables.
  void set(const float* lut) { set_sum(lut, nullptr); }
  // The table a + b (M × 16 floats each; b may be null), e.g. an IVF list's precomputed terms plus the query's:
  // summed in the same pass that finds each table's range for quantisation.
  void set_sum(const float* a, const float* b);
  float* lut() { return lut_.data(); }
  // Exact score of a row from the float table.
  float exact(const uint8_t* blocks, size_t row) const;
  // Exact scores of the 32 rows of block `block` (out: 32 floats), bit for bit those of exact().
  void exact_block(const uint8_t* blocks, size_t block, float* out) const;
  // Largest uint16 sum that may still score ≤ threshold (the sums' quantisation error included).
  uint32_t bound(double threshold) const { return quant_.bound(threshold); }
  const uint8_t* qlut() const { return qlut_.data(); }
  size_t npairs() const { return pairs_; }

 private:
  size_t m_, pairs_;
  std::vector<float> lut_;     // M × 16
  std::vector<uint8_t> qlut_;  // 2·npairs × 16 (zeros for the phantom sub-quantizer)
  LutQuantization quant_;
};

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

 protected:
  void train_impl(size_t n, const float* x, const TrainContext& ctx) override { pq_.train(n, x, ctx); }
  void add_impl(size_t n, const float* x, int threads) override;
  void compact_impl(const std::vector<bool>& keep) override;
  std::unique_ptr<RowScorer> make_scorer(const float* query) const override;
  void reconstruct_row(size_t row, float* out) const override;
  void save_impl(ContainerWriter& out) const override;
  void load_impl(const std::vector<Section>& sections, const std::shared_ptr<ByteSource>& source,
                 bool borrow) override;
  void merge_impl(const Index& other) override;

 private:
  void put_codes(uint8_t* blocks, size_t first, size_t count, const uint32_t* sub_codes) const {
    fast_scan_put(blocks, npairs(), pq_.m(), first, count, sub_codes);
  }

  ProductQuantizer pq_;
  RowStore<uint8_t> blocks_;  // ⌈size/32⌉ blocks × npairs × 32 bytes
};

}  // namespace quiver
