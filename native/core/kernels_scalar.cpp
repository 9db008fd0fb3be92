// Scalar reference kernels: the definition of correct for every SIMD variant.
#include <algorithm>
#include <limits>
#include <cstring>

#include "kernels_common.h"
#include "refine.h"
#include "simd.h"

namespace quiver {
namespace {

float l2sqr_scalar(const float* a, const float* b, size_t d) {
  float sum = 0;
  for (size_t i = 0; i < d; ++i) {
    const float diff = a[i] - b[i];
    sum += diff * diff;
  }
  return sum;
}

float dot_scalar(const float* a, const float* b, size_t d) {
  float sum = 0;
  for (size_t i = 0; i < d; ++i) sum += a[i] * b[i];
  return sum;
}

void dot_transposed_scalar(const float* x, const float* ct, size_t d, size_t k, size_t ldc, float* out) {
  std::memset(out, 0, k * sizeof(float));
  for (size_t i = 0; i < d; ++i) {
    const float xi = x[i];
    const float* row = ct + i * ldc;
    for (size_t j = 0; j < k; ++j) out[j] += xi * row[j];
  }
}

void l2sqr_transposed_scalar(const float* x, const float* ct, size_t d, size_t k, size_t ldc, float* out) {
  std::memset(out, 0, k * sizeof(float));
  for (size_t i = 0; i < d; ++i) {
    const float xi = x[i];
    const float* row = ct + i * ldc;
    for (size_t j = 0; j < k; ++j) out[j] += (xi - row[j]) * (xi - row[j]);
  }
}

void dot_transposed_batch_scalar(const float* x, size_t nx, size_t ldx, const float* ct, size_t d, size_t k,
                                 size_t ldc, float* out, size_t ldo) {
  for (size_t p = 0; p < nx; ++p) dot_transposed_scalar(x + p * ldx, ct, d, k, ldc, out + p * ldo);
}

void adc_scan_u8_scalar(const uint8_t* codes, size_t n, size_t m_count, const float* lut, float* out) {
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* code = codes + i * m_count;
    float sum = 0;
    for (size_t m = 0; m < m_count; ++m) sum += lut[m * 256 + code[m]];
    out[i] = sum;
  }
}

void fastscan_exact_u4_scalar(const uint8_t* block, size_t m_count, const float* lut, float* out) {
  const size_t full_pairs = m_count / 2;
  for (size_t j = 0; j < 32; ++j) {
    float even = 0, odd = 0;
    for (size_t p = 0; p < full_pairs; ++p) {
      const uint8_t byte = block[p * 32 + j];
      even += lut[32 * p + (byte & 15)];
      odd += lut[32 * p + 16 + (byte >> 4)];
    }
    if (m_count % 2) even += lut[32 * full_pairs + (block[full_pairs * 32 + j] & 15)];
    out[j] = even + odd;
  }
}

void adc_sums_u8_scalar(const uint8_t* codes, size_t n, size_t m_count, const uint8_t* qlut, uint16_t* sums,
                        uint16_t* block_min) {
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* code = codes + i * m_count;
    uint32_t sum = 0;
    for (size_t m = 0; m < m_count; ++m) sum += qlut[m * 256 + code[m]];
    sums[i] = uint16_t(sum);
    if (i % 64 == 0) block_min[i / 64] = sums[i];
    else if (sums[i] < block_min[i / 64]) block_min[i / 64] = sums[i];
  }
}

void fastscan_u4_scalar(const uint8_t* blocks, size_t nblocks, size_t npairs, const uint8_t* lut, uint16_t* out,
                        uint16_t* block_min) {
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* block = blocks + b * npairs * 32;
    uint16_t* sums = out + b * 32;
    for (size_t j = 0; j < 32; ++j) sums[j] = 0;
    for (size_t p = 0; p < npairs; ++p) {
      const uint8_t* bytes = block + p * 32;
      const uint8_t* lo_table = lut + (2 * p) * 16;
      const uint8_t* hi_table = lut + (2 * p + 1) * 16;
      for (size_t j = 0; j < 32; ++j)
        sums[j] = uint16_t(sums[j] + lo_table[bytes[j] & 15] + hi_table[bytes[j] >> 4]);
    }
    uint16_t smallest = sums[0];
    for (size_t j = 1; j < 32; ++j) smallest = sums[j] < smallest ? sums[j] : smallest;
    block_min[b] = smallest;
  }
}

float l2sqr_f16_scalar(const float* q, const uint16_t* v, size_t d) {
  float sum = 0;
  for (size_t i = 0; i < d; ++i) {
    const float diff = q[i] - half_to_float(v[i]);
    sum += diff * diff;
  }
  return sum;
}

float dot_f16_scalar(const float* q, const uint16_t* v, size_t d) {
  float sum = 0;
  for (size_t i = 0; i < d; ++i) sum += q[i] * half_to_float(v[i]);
  return sum;
}

float l2sqr_sq8_scalar(const float* a, const float* s, const uint8_t* c, size_t d) {
  float sum = 0;
  for (size_t i = 0; i < d; ++i) {
    const float diff = a[i] - s[i] * float(c[i]);
    sum += diff * diff;
  }
  return sum;
}

float dot_sq8_scalar(const float* w, const uint8_t* c, size_t d) {
  float sum = 0;
  for (size_t i = 0; i < d; ++i) sum += w[i] * float(c[i]);
  return sum;
}

void lut16_sum_range_scalar(const float* a, const float* b, size_t m_count, float* lut, float* lows, float* highs) {
  for (size_t m = 0; m < m_count; ++m) {
    const size_t at = m * 16;
    float lo = b ? a[at] + b[at] : a[at], hi = lo;
    for (size_t j = 0; j < 16; ++j) {
      const float v = b ? a[at + j] + b[at + j] : a[at + j];
      lut[at + j] = v;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    lows[m] = lo;
    highs[m] = hi;
  }
}

void lut16_quantize_scalar(const float* lut, size_t m_count, const float* lows, float scale, float top, uint8_t* q) {
  for (size_t m = 0; m < m_count; ++m)
    for (size_t j = 0; j < 16; ++j) q[m * 16 + j] = uint8_t(std::min(top, (lut[m * 16 + j] - lows[m]) * scale + 0.5f));
}

void beam_scores_scalar(const float* dots, const float* const* rows, size_t nrows, const float* norms, size_t k,
                        float* out, float* minima) {
  beam_scores_range(dots, rows, nrows, norms, 0, k, out);
  if (minima)
    for (size_t c = 0; c < k / 16; ++c) {
      float low = std::numeric_limits<float>::infinity();
      for (size_t j = 16 * c; j < 16 * c + 16; ++j) low = out[j] < low ? out[j] : low;  // a NaN never replaces it
      minima[c] = low;
    }
}

}  // namespace

const Kernels kScalarKernels = {l2sqr_scalar,       dot_scalar,         dot_transposed_scalar,
                                l2sqr_transposed_scalar,
                                adc_scan_u8_scalar, fastscan_u4_scalar, fastscan_exact_u4_scalar,
                                adc_sums_u8_scalar,
                                false,              dot_transposed_batch_scalar,
                                l2sqr_f16_scalar,   dot_f16_scalar,     l2sqr_sq8_scalar,
                                dot_sq8_scalar,     lut16_sum_range_scalar, lut16_quantize_scalar,
                                queries_by_pairs<l2sqr_scalar>, queries_by_pairs<dot_scalar>,
                                beam_scores_scalar, kth_smallest_lanes4};

}  // namespace quiver
