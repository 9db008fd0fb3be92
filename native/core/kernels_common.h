// Kernel code shared by several SIMD levels' files (kernels_scalar.cpp, kernels_x86.cpp, kernels_neon.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace quiver {

// The query-group form of a pairwise distance (simd.h l2sqr_queries / dot_queries) for levels without a blocked
// kernel: the same function per pair, so the same bits as calling it query by query.
template <float (*Pair)(const float*, const float*, size_t)>
void queries_by_pairs(const float* queries, size_t nq, size_t ldq, const float* x, size_t d, float* out) {
  for (size_t q = 0; q < nq; ++q) out[q] = Pair(queries + q * ldq, x, d);
}

// beam_scores (simd.h) for codewords [first, last), one at a time: the scalar definition, and the tail of the
// SIMD levels (same bits: element-wise, and 2·acc is exact).
inline void beam_scores_range(const float* dots, const float* const* rows, size_t nrows, const float* norms,
                              size_t first, size_t last, float* out) {
  for (size_t j = first; j < last; ++j) {
    float acc = dots[j];
    for (size_t m = 0; m < nrows; ++m) acc -= rows[m][j];
    out[j] = norms[j] - 2 * acc;
  }
}

// The one-value-at-a-time part of a kth_smallest pass, over values[first … n) (the kernels' tails): adds the
// copies of level to count and lowers next to the smallest value above level. NaNs fail both compares.
inline void kth_smallest_tail(const float* values, size_t first, size_t n, float level, size_t& count, float& next) {
  for (size_t i = first; i < n; ++i) {
    const float x = values[i];
    count += x == level;
    next = x > level && x < next ? x : next;
  }
}

// kth_smallest (simd.h) with four-float vectors of the compiler's vector extension (SSE on x86-64, NEON on
// AArch64) and four independent accumulators, so that the passes are not one chain of dependent minima; the
// tail one value at a time. NaNs fail every compare used here, so they are never counted nor taken as a level.
inline float kth_smallest_lanes4(const float* values, size_t n, size_t kth) {
  typedef float Lanes __attribute__((vector_size(16)));
  typedef int32_t Mask __attribute__((vector_size(16)));
  const float inf = __builtin_inff();
  const Lanes none = {inf, inf, inf, inf};
  const size_t body = n & ~size_t(15);
  const auto load = [values](size_t i) {
    Lanes v;
    __builtin_memcpy(&v, values + i, sizeof(v));
    return v;
  };
  const auto fold = [](Lanes a, Lanes b, Lanes c, Lanes d) {
    a = b < a ? b : a;
    c = d < c ? d : c;
    a = c < a ? c : a;
    float m = a[0];
    for (int i = 1; i < 4; ++i) m = a[i] < m ? a[i] : m;
    return m;
  };
  Lanes m0 = none, m1 = none, m2 = none, m3 = none;
  for (size_t i = 0; i < body; i += 16) {
    const Lanes v0 = load(i), v1 = load(i + 4), v2 = load(i + 8), v3 = load(i + 12);
    m0 = v0 < m0 ? v0 : m0;
    m1 = v1 < m1 ? v1 : m1;
    m2 = v2 < m2 ? v2 : m2;
    m3 = v3 < m3 ? v3 : m3;
  }
  float level = fold(m0, m1, m2, m3);
  for (size_t i = body; i < n; ++i) level = values[i] < level ? values[i] : level;
  for (size_t remaining = kth;;) {
    if (!(level < inf)) return inf;
    const Lanes target = {level, level, level, level};
    Mask copies = {0, 0, 0, 0};
    m0 = m1 = m2 = m3 = none;
    // Per lane: −1 where it holds the level (counted), and the smallest value above it.
    const auto visit = [&](const Lanes x, Lanes& next) {
      copies -= x == target;
      next = (x > target) & (x < next) ? x : next;
    };
    for (size_t i = 0; i < body; i += 16) {
      visit(load(i), m0);
      visit(load(i + 4), m1);
      visit(load(i + 8), m2);
      visit(load(i + 12), m3);
    }
    size_t count = size_t(copies[0] + copies[1] + copies[2] + copies[3]);
    float next = fold(m0, m1, m2, m3);
    kth_smallest_tail(values, body, n, level, count, next);
    if (count >= remaining) return level;
    remaining -= count;
    level = next;
  }
}

// 8-bit ADC, out[i] = Σ_m lut[m·256 + codes[i·m_count + m]]: table look-ups have no fast vector form on x86
// (gathers are micro-coded) nor on NEON, so this scores 4 codes at once with 8 independent partial sums (even and
// odd sub-quantizers apart): the float additions no longer wait on each other and the load ports stay busy. Every
// level that uses it gives the same bits, which the pruned scans rely on when they re-score single codes.
inline void adc_scan_u8_interleaved(const uint8_t* codes, size_t n, size_t m_count, const float* lut, float* out) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint8_t* c0 = codes + i * m_count;
    const uint8_t* c1 = c0 + m_count;
    const uint8_t* c2 = c1 + m_count;
    const uint8_t* c3 = c2 + m_count;
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    const float* t = lut;
    size_t m = 0;
    for (; m + 2 <= m_count; m += 2, t += 512) {
      a0 += t[c0[m]];
      a1 += t[c1[m]];
      a2 += t[c2[m]];
      a3 += t[c3[m]];
      b0 += t[256 + c0[m + 1]];
      b1 += t[256 + c1[m + 1]];
      b2 += t[256 + c2[m + 1]];
      b3 += t[256 + c3[m + 1]];
    }
    if (m < m_count) {
      a0 += t[c0[m]];
      a1 += t[c1[m]];
      a2 += t[c2[m]];
      a3 += t[c3[m]];
    }
    out[i] = a0 + b0;
    out[i + 1] = a1 + b1;
    out[i + 2] = a2 + b2;
    out[i + 3] = a3 + b3;
  }
  // The last n mod 4 codes are summed in the same order as above (even and odd sub-quantizers apart, then
  // added), so a code's score does not depend on its position in the batch: an index merged from shards, or
  // compacted by remove(), scores every code bit for bit as before.
  for (; i < n; ++i) {
    const uint8_t* code = codes + i * m_count;
    float a = 0, b = 0;
    size_t m = 0;
    for (; m + 2 <= m_count; m += 2) {
      a += lut[m * 256 + code[m]];
      b += lut[(m + 1) * 256 + code[m + 1]];
    }
    if (m < m_count) a += lut[m * 256 + code[m]];
    out[i] = a + b;
  }
}

}  // namespace quiver
