// uint8 quantisation of ADC look-up tables, shared by the 4-bit fast-scan (16-entry tables) and the pruned 8-bit
// scan (256-entry tables).
//
// m_count tables of ksub floats (smaller is better) become uint8 with one common scale s and a per-table
// offset lo_m: q_m(j) = round((lut_m(j) − lo_m) · s), with s = top / (the widest table's range) and top = 255,
// or 127 for the 4-bit fast-scan kernels (which add two looked-up bytes as a byte). A code's
// uint8 sum Q therefore estimates its float score as Q / s + Σ_m lo_m within m_count / 2 steps, so
// Q > bound(threshold) proves the float score is above the threshold: scans skip such codes and score the
// others exactly, which keeps their results those of float ADC.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>  // SSE2: part of every x86-64
#endif

namespace quiver {

class LutQuantization {
 public:
  // lut: m_count × ksub floats; q: m_count rows of q_stride ≥ ksub bytes (entries past ksub are left alone);
  // every entry ends up in [0, top]. Runs once per query and table: SSE2 (every x86-64) does 4 entries a step.
  void quantize(const float* lut, size_t m_count, size_t ksub, uint8_t* q, size_t q_stride, float top = 255);

  // The same for 16-entry tables (the 4-bit fast-scan), with the float tables summed on the way: lut = a + b
  // (b null: lut = a; lut may be a), then q as above with q_stride 16. Runs once per query and probed list, so
  // it goes through the SIMD kernels (simd.h lut16_*). a, b, lut: m_count × 16 floats; q: m_count × 16 bytes.
  void quantize16(const float* a, const float* b, size_t m_count, float* lut, uint8_t* q, float top);

  // Largest uint8-table sum that may still score ≤ threshold: the rounding bound (m_count / 2 steps) plus one
  // step for the float error of the scores themselves.
  uint32_t bound(double threshold) const {
    if (exact_only_ || !std::isfinite(threshold)) return std::numeric_limits<uint32_t>::max();
    const double b = (threshold - bias_) * scale_ + 0.5 * double(m_) + 1.0;
    if (b < 0) return 0;
    return b > 1e9 ? std::numeric_limits<uint32_t>::max() : uint32_t(b);
  }

 private:
  // Smallest and largest of row[0 … ksub).
  static void row_range(const float* row, size_t ksub, float* lo, float* hi);

  // Sets scale_, bias_ and exact_only_ from the tables' ranges (lows_ filled, highs: m_count).
  void set_scale(size_t m_count, const float* highs, float top);

  std::vector<float> lows_;  // lo_m of each table, from the range pass (capacity kept across calls)
  std::vector<float> highs_;  // quantize16's per-table maxima
  size_t m_ = 0;
  bool exact_only_ = false;
  double bias_ = 0;
  float scale_ = 1;
};

// True when `bits` has three or more bits set (without a popcount call: x86-64's baseline has no popcnt).
inline bool at_least_three_bits(uint64_t bits) {
  bits &= bits - 1;
  bits &= bits - 1;
  return bits != 0;
}

// Bit j set when sums[j] ≤ limit, for j < count ≤ 64: the rows of a block that survive pruning, so callers
// visit only those (typically a few of a block's 32 or 64) instead of testing every row. SSE2 (part of every
// x86-64) tests 16 sums per step: sums ≤ cap exactly when the saturating difference sums − cap is 0.
inline uint64_t rows_within(const uint16_t* sums, size_t count, uint32_t limit) {
  const uint16_t cap = uint16_t(std::min<uint32_t>(limit, 0xFFFF));
  uint64_t mask = 0;
  size_t j = 0;
#if defined(__SSE2__)
  const __m128i caps = _mm_set1_epi16(short(cap)), zero = _mm_setzero_si128();
  for (; j + 16 <= count; j += 16) {
    const __m128i a = _mm_subs_epu16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sums + j)), caps);
    const __m128i b = _mm_subs_epu16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sums + j + 8)), caps);
    const __m128i within = _mm_packs_epi16(_mm_cmpeq_epi16(a, zero), _mm_cmpeq_epi16(b, zero));
    mask |= uint64_t(uint32_t(_mm_movemask_epi8(within))) << j;
  }
#endif
  for (; j < count; ++j) mask |= uint64_t(sums[j] <= cap) << j;
  return mask;
}

// Index of the smallest of values[0 … count) (the first, on ties). SSE2 (every x86-64) takes 32 values at a
// time in four loads and a few shuffles, where a scalar loop is a chain of dependent compares; its 16-bit min is
// signed, so values are biased by 0x8000 to order them as unsigned.
inline size_t group_argmin(const uint16_t* values, size_t count) {
  size_t best = 0, i = 0;
#if defined(__SSE2__)
  const __m128i bias = _mm_set1_epi16(short(0x8000));
  for (; i + 32 <= count; i += 32) {
    const __m128i* v = reinterpret_cast<const __m128i*>(values + i);
    const __m128i a = _mm_xor_si128(_mm_loadu_si128(v), bias), b = _mm_xor_si128(_mm_loadu_si128(v + 1), bias),
                  c = _mm_xor_si128(_mm_loadu_si128(v + 2), bias), d = _mm_xor_si128(_mm_loadu_si128(v + 3), bias);
    __m128i m = _mm_min_epi16(_mm_min_epi16(a, b), _mm_min_epi16(c, d));
    m = _mm_min_epi16(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm_min_epi16(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(2, 3, 0, 1)));
    m = _mm_min_epi16(m, _mm_shufflelo_epi16(_mm_shufflehi_epi16(m, _MM_SHUFFLE(2, 3, 0, 1)), _MM_SHUFFLE(2, 3, 0, 1)));
    const uint32_t low = uint32_t(_mm_movemask_epi8(_mm_packs_epi16(_mm_cmpeq_epi16(a, m), _mm_cmpeq_epi16(b, m))));
    const uint32_t high = uint32_t(_mm_movemask_epi8(_mm_packs_epi16(_mm_cmpeq_epi16(c, m), _mm_cmpeq_epi16(d, m))));
    const size_t at = i + size_t(__builtin_ctzll(uint64_t(high) << 16 | low));
    if (i == 0 || values[at] < values[best]) best = at;
  }
#endif
  for (; i < count; ++i)
    if (values[i] < values[best]) best = i;
  return best;
}

// Most blocks per call of visit_seeded_blocks.
constexpr size_t kMaxSeededBlocks = 2048;

// Visits the blocks of a scanned segment whose minimum uint8-table sum is within the pruning limit, in an order
// that fills a top-k fast: first the best block (smallest minimum) of each group of 64, best first, then every
// other block in order. Scanning in file order from an empty top-k instead scores and pushes every row that
// beats the rows before it (about k·(1 + ln(n/k)) pushes). The order does not change a search's results: TopK
// breaks ties by id, and pruning only drops rows that cannot enter.
// block_min: nblocks ≤ kMaxSeededBlocks values; limit(): the current limit (it drops as the top-k fills);
// visit(b): scores block b's rows (and may lower the limit). Each block is visited at most once.
template <class Limit, class Visit>
void visit_seeded_blocks(const uint16_t* block_min, size_t nblocks, Limit limit, Visit visit) {
  constexpr size_t kGroup = 64;
  uint64_t done[kMaxSeededBlocks / 64] = {};
  if (nblocks >= 2 * kGroup) {
    // Seeds: (block minimum << 16 | block) of each group's best block, insertion-sorted (a few dozen).
    uint32_t seeds[kMaxSeededBlocks / kGroup];
    size_t nseeds = 0;
    for (size_t g = 0; g < nblocks; g += kGroup) {
      const size_t best = g + group_argmin(block_min + g, std::min(kGroup, nblocks - g));
      const uint32_t key = uint32_t(block_min[best]) << 16 | uint32_t(best);
      size_t at = nseeds++;
      for (; at > 0 && seeds[at - 1] > key; --at) seeds[at] = seeds[at - 1];
      seeds[at] = key;
    }
    for (size_t i = 0; i < nseeds; ++i) {
      const size_t block = seeds[i] & 0xFFFF;
      if (block_min[block] > limit()) break;  // sorted: no later seed can pass either
      visit(block);
      done[block / 64] |= uint64_t(1) << (block % 64);
    }
  }
  // The rest in order, 64 blocks per mask of those within the limit (most are not).
  for (size_t word = 0; word * 64 < nblocks; ++word) {
    const size_t first = word * 64;
    uint64_t pending = rows_within(block_min + first, std::min<size_t>(64, nblocks - first), limit()) & ~done[word];
    for (; pending; pending &= pending - 1) {
      const size_t block = first + size_t(__builtin_ctzll(pending));
      if (block_min[block] <= limit()) visit(block);  // the limit may have dropped since the mask was taken
    }
  }
}

}  // namespace quiver
