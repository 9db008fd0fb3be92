// uint8 quantisation of ADC look-up tables (lut_quant.h). Out of line: it runs once per query and table, and
// inlining it into callers with a constant table width only invites loop-bound warnings.
#include "lut_quant.h"

#include <cstring>

#include "simd.h"

namespace quiver {

void LutQuantization::set_scale(size_t m_count, const float* highs, float top) {
  m_ = m_count;
  bias_ = 0;
  float widest = 0;
  for (size_t m = 0; m < m_count; ++m) {
    bias_ += lows_[m];
    widest = std::max(widest, highs[m] - lows_[m]);
  }
  // A non-finite entry (a query far outside float range) leaves nothing to bound with: prune nothing.
  exact_only_ = !std::isfinite(widest) || !std::isfinite(bias_);
  scale_ = widest > 0 && !exact_only_ ? top / widest : 1.0f;
}

void LutQuantization::quantize16(const float* a, const float* b, size_t m_count, float* lut, uint8_t* q, float top) {
  const Kernels& kern = kernels();
  lows_.resize(m_count);
  highs_.resize(m_count);
  kern.lut16_sum_range(a, b, m_count, lut, lows_.data(), highs_.data());
  set_scale(m_count, highs_.data(), top);
  if (exact_only_) {
    std::fill(q, q + m_count * 16, uint8_t(0));
    return;
  }
  kern.lut16_quantize(lut, m_count, lows_.data(), scale_, top, q);
}

void LutQuantization::quantize(const float* lut, size_t m_count, size_t ksub, uint8_t* q, size_t q_stride,
                               float top) {
  lows_.resize(m_count);
  highs_.resize(m_count);
  for (size_t m = 0; m < m_count; ++m) row_range(lut + m * ksub, ksub, &lows_[m], &highs_[m]);
  set_scale(m_count, highs_.data(), top);
  if (exact_only_) {
    for (size_t m = 0; m < m_count; ++m) std::fill(q + m * q_stride, q + m * q_stride + ksub, uint8_t(0));
    return;
  }
  for (size_t m = 0; m < m_count; ++m) {
    const float* row = lut + m * ksub;
    const float lo = lows_[m];
    uint8_t* out = q + m * q_stride;
    // (row − lo)·scale ∈ [0, top]: adding ½ and truncating rounds to nearest (error ≤ ½ step, as the bound
    // assumes) without std::nearbyint's call, which dominated the table set-up of small IVF lists.
    size_t j = 0;
#if defined(__SSE2__)
    const __m128 los = _mm_set1_ps(lo), scales = _mm_set1_ps(scale_), half = _mm_set1_ps(0.5f);
    const __m128 tops = _mm_set1_ps(top);
    for (; j + 4 <= ksub; j += 4) {
      const __m128 scaled = _mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(row + j), los), scales);
      const __m128 v = _mm_min_ps(_mm_add_ps(scaled, half), tops);
      const __m128i words = _mm_packs_epi32(_mm_cvttps_epi32(v), _mm_setzero_si128());
      const int bytes = _mm_cvtsi128_si32(_mm_packus_epi16(words, words));
      std::memcpy(out + j, &bytes, 4);
    }
#endif
    for (; j < ksub; ++j) out[j] = uint8_t(std::min(top, (row[j] - lo) * scale_ + 0.5f));
  }
}

void LutQuantization::row_range(const float* row, size_t ksub, float* lo, float* hi) {
  size_t j = 0;
  float l = row[0], h = row[0];
#if defined(__SSE2__)
  if (ksub >= 4) {
    __m128 l4 = _mm_loadu_ps(row), h4 = l4;
    for (j = 4; j + 4 <= ksub; j += 4) {
      const __m128 v = _mm_loadu_ps(row + j);
      l4 = _mm_min_ps(l4, v);
      h4 = _mm_max_ps(h4, v);
    }
    alignas(16) float ls[4], hs[4];
    _mm_store_ps(ls, l4);
    _mm_store_ps(hs, h4);
    l = std::min(std::min(ls[0], ls[1]), std::min(ls[2], ls[3]));
    h = std::max(std::max(hs[0], hs[1]), std::max(hs[2], hs[3]));
  }
#endif
  for (; j < ksub; ++j) {
    l = std::min(l, row[j]);
    h = std::max(h, row[j]);
  }
  *lo = l;
  *hi = h;
}

}  // namespace quiver
