// Scalar reference kernels: the definition of correct for every SIMD variant.
#include <cstring>

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

void adc_scan_u8_scalar(const uint8_t* codes, size_t n, size_t m_count, const float* lut, float* out) {
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* code = codes + i * m_count;
    float sum = 0;
    for (size_t m = 0; m < m_count; ++m) sum += lut[m * 256 + code[m]];
    out[i] = sum;
  }
}

}  // namespace

const Kernels kScalarKernels = {l2sqr_scalar, dot_scalar, dot_transposed_scalar, adc_scan_u8_scalar};

}  // namespace quiver
