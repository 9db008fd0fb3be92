#include "fastscan.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "error.h"
#include "simd.h"

namespace quiver {

namespace {
constexpr size_t kBlock = kFastScanBlock;
// Blocks summed per kernel call and then scored (scan()): 65 536 rows, whose uint16 sums (128 KiB) stay in L2.
constexpr size_t kSegmentBlocks = kMaxSeededBlocks;
}  // namespace

uint32_t fast_scan_sub_code(const uint8_t* blocks, size_t npairs, size_t row, size_t m) {
  const uint8_t byte = blocks[(row / kBlock) * npairs * kBlock + (m / 2) * kBlock + row % kBlock];
  return (m % 2 == 0) ? byte & 15u : byte >> 4;
}

void fast_scan_put(uint8_t* blocks, size_t npairs, size_t m_count, size_t first, size_t count,
                   const uint32_t* sub_codes) {
  for (size_t i = 0; i < count; ++i) {
    const size_t row = first + i;
    uint8_t* block = blocks + (row / kBlock) * npairs * kBlock;
    for (size_t m = 0; m < m_count; ++m) {
      uint8_t& byte = block[(m / 2) * kBlock + row % kBlock];
      byte = (m % 2 == 0) ? uint8_t((byte & 0xF0) | sub_codes[i * m_count + m])
                          : uint8_t((byte & 0x0F) | (sub_codes[i * m_count + m] << 4));
    }
  }
}

bool fast_scan_padding_is_zero(const uint8_t* blocks, size_t npairs, size_t m_count, size_t rows) {
  const size_t block_bytes = npairs * kBlock;
  for (size_t row = rows; row % kBlock != 0; ++row)
    for (size_t pair = 0; pair < npairs; ++pair)
      if (blocks[(row / kBlock) * block_bytes + pair * kBlock + row % kBlock] != 0) return false;
  if (m_count % 2 == 1)
    for (size_t row = 0; row < rows; ++row)
      if ((blocks[(row / kBlock) * block_bytes + (npairs - 1) * kBlock + row % kBlock] >> 4) != 0) return false;
  return true;
}

void FastScanTable::set_sum(const float* a, const float* b) {
  quant_.quantize16(a, b, m_, lut_.data(), qlut_.data(), 127);
}

void FastScanTable::exact_block(const uint8_t* blocks, size_t block, float* out) const {
  kernels().fastscan_exact_u4(blocks + block * pairs_ * kBlock, m_, lut_.data(), out);
}

float FastScanTable::exact(const uint8_t* blocks, size_t row) const {
  const uint8_t* bytes = blocks + (row / kBlock) * pairs_ * kBlock + row % kBlock;
  const float* table = lut_.data();
  float even = 0, odd = 0;
  const size_t full_pairs = m_ / 2;
  for (size_t p = 0; p < full_pairs; ++p, table += 32) {
    const uint8_t byte = bytes[p * kBlock];
    even += table[byte & 15];
    odd += table[16 + (byte >> 4)];
  }
  if (m_ % 2) even += table[bytes[full_pairs * kBlock] & 15];
  return even + odd;
}


FastScanIndex::FastScanIndex(size_t dim, Metric metric, size_t m, bool store_vectors)
    : Index(dim, metric), pq_(dim, m, 4) {
  QV_CHECK(m <= 256, InvalidArgument, "fast-scan supports at most 256 sub-quantizers, got " << m);
  if (store_vectors) set_refine_storage(RefineStorage::Float32);
}

std::string FastScanIndex::spec() const {
  return "PQ" + std::to_string(pq_.m()) + "x4fs" + refine_suffix();
}

uint32_t FastScanIndex::sub_code(size_t row, size_t m) const {
  return fast_scan_sub_code(blocks_.data(), npairs(), row, m);
}

void FastScanIndex::add_impl(size_t n, const float* x, int threads) {
  const size_t m_count = pq_.m(), first = size();
  std::vector<uint8_t> packed(n * pq_.code_size());
  pq_.encode(n, x, packed.data(), threads);
  std::vector<uint32_t> sub(n * m_count);
  for (size_t i = 0; i < n; ++i) pq_.unpack(packed.data() + i * pq_.code_size(), sub.data() + i * m_count);
  blocks_.resize((first + n + kBlock - 1) / kBlock * npairs() * kBlock);
  put_codes(blocks_.mutable_data(), first, n, sub.data());
}

void FastScanIndex::compact_impl(const std::vector<bool>& keep) {
  const size_t m_count = pq_.m();
  std::vector<uint32_t> sub;
  size_t kept = 0;
  for (size_t row = 0; row < keep.size(); ++row) {
    if (!keep[row]) continue;
    for (size_t m = 0; m < m_count; ++m) sub.push_back(sub_code(row, m));
    ++kept;
  }
  std::vector<uint8_t> blocks((kept + kBlock - 1) / kBlock * npairs() * kBlock, 0);
  put_codes(blocks.data(), 0, kept, sub.data());
  blocks_.assign_bytes(blocks.data(), blocks.size());
}

void FastScanIndex::merge_impl(const Index& other) {
  const FastScanIndex& o = static_cast<const FastScanIndex&>(other);
  QV_CHECK(same_codec_state(pq_, o.pq_), InvalidArgument,
           "merge: the indexes hold different codebooks (trained separately?)");
  // Rows are re-packed rather than blocks appended: this index's last block may be partly filled.
  const size_t m_count = pq_.m(), first = size(), n = o.size();
  std::vector<uint32_t> sub(n * m_count);
  for (size_t row = 0; row < n; ++row)
    for (size_t m = 0; m < m_count; ++m) sub[row * m_count + m] = o.sub_code(row, m);
  blocks_.resize((first + n + kBlock - 1) / kBlock * npairs() * kBlock);
  put_codes(blocks_.mutable_data(), first, n, sub.data());
}

void FastScanIndex::reconstruct_row(size_t row, float* out) const {
  for (size_t m = 0; m < pq_.m(); ++m) {
    const size_t ds = pq_.sub_dim(m);
    std::memcpy(out + pq_.sub_offset(m), pq_.centroids(m) + sub_code(row, m) * ds, ds * sizeof(float));
  }
}

namespace {

class FastScanScorer : public RowScorer {
 public:
  FastScanScorer(const FastScanIndex& index, const uint8_t* blocks, const float* query, Metric metric)
      : blocks_(blocks), pairs_(index.npairs()), table_(index.pq().m()) {
    index.pq().compute_lut(query, metric, table_.lut());
    table_.set(table_.lut());
  }

  float exact(size_t row) const { return table_.exact(blocks_, row); }
  uint32_t bound(float threshold) const { return table_.bound(threshold); }

  void score(size_t begin, size_t count, float* out) const override {
    for (size_t i = 0; i < count; ++i) out[i] = exact(begin + i);
  }

  // Two passes per segment of up to kSegmentBlocks blocks: the kernel sums the whole segment (sums and block
  // minima stay in L2), then its blocks are scored in the seeded order of visit_seeded_blocks (lut_quant.h), so
  // the top-k holds good candidates and the pruning limit is tight before most rows are looked at. In file order
  // a PQ32x4fs query on Fashion-MNIST's 60 000 codes re-scored 188 rows and pushed 97 times (k = 10); seeded,
  // 108 and 46.
  bool scan(size_t begin, size_t end, TopK& out, const RowFilter& filter) const override {
    if (begin >= end) return true;
    const Kernels& kern = kernels();
    uint32_t limit = bound(out.threshold());
    const size_t block_bytes = pairs_ * kBlock;
    const size_t first_block = begin / kBlock, end_block = (end + kBlock - 1) / kBlock;
    // One segment's uint16 sums (kSegmentBlocks × 32) and block minima. Per thread, not per scorer: threads
    // scan ranges of one scorer at once, and a 132 KiB allocation per query would be an mmap and page faults.
    thread_local std::vector<uint16_t> sums_buffer, min_buffer;
    const size_t seg_blocks = std::min(kSegmentBlocks, end_block - first_block);
    if (min_buffer.size() < seg_blocks) {
      sums_buffer.resize(seg_blocks * kBlock);
      min_buffer.resize(seg_blocks);
    }
    uint16_t* const sums = sums_buffer.data();
    uint16_t* const block_min = min_buffer.data();
    for (size_t seg = first_block; seg < end_block; seg += kSegmentBlocks) {
      const size_t nblocks = std::min(kSegmentBlocks, end_block - seg);
      kern.fastscan_u4(blocks_ + seg * block_bytes, nblocks, pairs_, table_.qlut(), sums, block_min);
      // Scores the rows of segment block `blk` whose sums are within the limit.
      auto visit = [&](size_t blk) {
        const size_t row0 = (seg + blk) * kBlock;
        const size_t from = std::max(begin, row0), to = std::min(end, row0 + kBlock);
        const uint16_t* block_sums = sums + blk * kBlock;
        uint64_t rows = rows_within(block_sums + (from - row0), to - from, limit);
        // Several candidates: score the whole block at once (in-register look-ups), else row by row.
        float block_scores[kBlock];
        const bool whole_block = at_least_three_bits(rows);
        if (whole_block) table_.exact_block(blocks_, seg + blk, block_scores);
        for (; rows; rows &= rows - 1) {
          const size_t row = from + size_t(__builtin_ctzll(rows));
          if (block_sums[row - row0] > limit || !filter.allows(row)) continue;
          const float s = whole_block ? block_scores[row - row0] : exact(row);
          if (s <= out.threshold()) {
            out.push(s, int64_t(row));
            limit = bound(out.threshold());
          }
        }
      };
      visit_seeded_blocks(block_min, nblocks, [&] { return limit; }, visit);
    }
    return true;
  }

 private:
  const uint8_t* blocks_;
  size_t pairs_;
  FastScanTable table_;
};

}  // namespace

std::unique_ptr<RowScorer> FastScanIndex::make_scorer(const float* query) const {
  return std::make_unique<FastScanScorer>(*this, blocks_.data(), query, internal_metric());
}

// Sections: 'CODC' (the PQ<M>x4 codec), 'FSCN' (the blocks, as a bulk byte section); the base class adds the
// refine store's.
void FastScanIndex::save_impl(ContainerWriter& out) const {
  ByteWriter codec;
  write_codec_section(pq_, codec);
  out.section(fourcc("CODC"), codec);
  write_bulk(out, fourcc("FSCN"), blocks_.data(), blocks_.size());
}

void FastScanIndex::load_impl(const std::vector<Section>& sections, const std::shared_ptr<ByteSource>& source,
                              bool borrow) {
  const Section& c = require_section(sections, fourcc("CODC"), "codec");
  ByteReader cr(c.payload, c.size, "section CODC");
  std::unique_ptr<Quantizer> codec = read_codec_section(cr);
  cr.expect_end();
  auto* pq = dynamic_cast<ProductQuantizer*>(codec.get());
  QV_CHECK(pq && pq->spec() == pq_.spec() && pq->dim() == dim(), Corrupt,
           "codec " << codec->spec() << " does not match the index spec " << spec());
  pq_.set_centroids(pq->all_centroids());
  const size_t block_bytes = npairs() * kBlock;
  read_bulk(sections, fourcc("FSCN"), "fast-scan blocks", (size() + kBlock - 1) / kBlock * block_bytes, source,
            borrow, blocks_);
  // Nibbles that belong to no row (padding rows of the last block, the phantom sub-quantizer of an odd M) are
  // scanned too, so they must be zero for the file to be what save() writes.
  QV_CHECK(fast_scan_padding_is_zero(blocks_.data(), npairs(), pq_.m(), size()), Corrupt,
           "fast-scan padding or phantom sub-code is not zero");
}

}  // namespace quiver
