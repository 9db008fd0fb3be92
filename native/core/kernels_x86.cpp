// AVX2+FMA and AVX-512 kernels. Each function carries its own target attribute, so this file compiles with
// the project's generic flags and is only ever called after simd.cpp has checked the CPU (runtime dispatch).
#include "simd.h"

#ifdef QUIVER_HAVE_X86_KERNELS

// GCC 12 warns about an uninitialised variable inside its own avx512fintrin.h (_mm512_reduce_add_ps).
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>

#define QV_AVX2 __attribute__((target("avx2,fma")))
#define QV_AVX512 __attribute__((target("avx512f,avx512bw,avx2,fma")))

namespace quiver {
namespace {

QV_AVX2 inline float hsum256(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  __m128 shuf = _mm_movehdup_ps(lo);
  __m128 sums = _mm_add_ps(lo, shuf);
  shuf = _mm_movehl_ps(shuf, sums);
  sums = _mm_add_ss(sums, shuf);
  return _mm_cvtss_f32(sums);
}

QV_AVX2 float l2sqr_avx2(const float* a, const float* b, size_t d) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    acc0 = _mm256_fmadd_ps(d0, d0, acc0);
    acc1 = _mm256_fmadd_ps(d1, d1, acc1);
  }
  for (; i + 8 <= d; i += 8) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    acc0 = _mm256_fmadd_ps(d0, d0, acc0);
  }
  float sum = hsum256(_mm256_add_ps(acc0, acc1));
  for (; i < d; ++i) {
    const float diff = a[i] - b[i];
    sum += diff * diff;
  }
  return sum;
}

QV_AVX2 float dot_avx2(const float* a, const float* b, size_t d) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= d; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  float sum = hsum256(_mm256_add_ps(acc0, acc1));
  for (; i < d; ++i) sum += a[i] * b[i];
  return sum;
}

QV_AVX2 void dot_transposed_avx2(const float* x, const float* ct, size_t d, size_t k, size_t ldc, float* out) {
  size_t j = 0;
  for (; j + 32 <= k; j += 32) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps();
    const float* col = ct + j;
    for (size_t i = 0; i < d; ++i, col += ldc) {
      const __m256 xi = _mm256_broadcast_ss(x + i);
      a0 = _mm256_fmadd_ps(xi, _mm256_loadu_ps(col), a0);
      a1 = _mm256_fmadd_ps(xi, _mm256_loadu_ps(col + 8), a1);
      a2 = _mm256_fmadd_ps(xi, _mm256_loadu_ps(col + 16), a2);
      a3 = _mm256_fmadd_ps(xi, _mm256_loadu_ps(col + 24), a3);
    }
    _mm256_storeu_ps(out + j, a0);
    _mm256_storeu_ps(out + j + 8, a1);
    _mm256_storeu_ps(out + j + 16, a2);
    _mm256_storeu_ps(out + j + 24, a3);
  }
  for (; j + 8 <= k; j += 8) {
    __m256 a0 = _mm256_setzero_ps();
    const float* col = ct + j;
    for (size_t i = 0; i < d; ++i, col += ldc) a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + i), _mm256_loadu_ps(col), a0);
    _mm256_storeu_ps(out + j, a0);
  }
  for (; j < k; ++j) {
    float sum = 0;
    for (size_t i = 0; i < d; ++i) sum += x[i] * ct[i * ldc + j];
    out[j] = sum;
  }
}

// 8 codes per step. One 32-bit gather fetches bytes m..m+3 of 8 codes at once; each byte then indexes its
// sub-table by a float gather. Sub-quantizers past the last multiple of 4 are added in scalar code.
QV_AVX2 void adc_scan_u8_avx2(const uint8_t* codes, size_t n, size_t m_count, const float* lut, float* out) {
  const size_t m4 = m_count & ~size_t(3);
  const __m256i byte_mask = _mm256_set1_epi32(0xFF);
  const __m256i row_offsets =
      _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(int(m_count)));
  size_t i = 0;
  // Gathering from codes + (i + 7)·m_count + m reads 4 bytes; m + 3 < m4 ≤ m_count keeps them in bounds.
  if (m_count <= (size_t(1) << 24)) {
    for (; i + 8 <= n; i += 8) {
      const uint8_t* block = codes + i * m_count;
      __m256 acc = _mm256_setzero_ps();
      for (size_t m = 0; m < m4; m += 4) {
        const __m256i words = _mm256_i32gather_epi32(reinterpret_cast<const int*>(block + m), row_offsets, 1);
        const float* table = lut + m * 256;
        const __m256i i0 = _mm256_and_si256(words, byte_mask);
        const __m256i i1 = _mm256_and_si256(_mm256_srli_epi32(words, 8), byte_mask);
        const __m256i i2 = _mm256_and_si256(_mm256_srli_epi32(words, 16), byte_mask);
        const __m256i i3 = _mm256_srli_epi32(words, 24);
        acc = _mm256_add_ps(acc, _mm256_i32gather_ps(table, i0, 4));
        acc = _mm256_add_ps(acc, _mm256_i32gather_ps(table + 256, i1, 4));
        acc = _mm256_add_ps(acc, _mm256_i32gather_ps(table + 512, i2, 4));
        acc = _mm256_add_ps(acc, _mm256_i32gather_ps(table + 768, i3, 4));
      }
      alignas(32) float partial[8];
      _mm256_store_ps(partial, acc);
      for (size_t v = 0; v < 8; ++v) {
        const uint8_t* code = block + v * m_count;
        float sum = partial[v];
        for (size_t m = m4; m < m_count; ++m) sum += lut[m * 256 + code[m]];
        out[i + v] = sum;
      }
    }
  }
  for (; i < n; ++i) {
    const uint8_t* code = codes + i * m_count;
    float sum = 0;
    for (size_t m = 0; m < m_count; ++m) sum += lut[m * 256 + code[m]];
    out[i] = sum;
  }
}

QV_AVX512 float l2sqr_avx512(const float* a, const float* b, size_t d) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
    acc0 = _mm512_fmadd_ps(d0, d0, acc0);
    acc1 = _mm512_fmadd_ps(d1, d1, acc1);
  }
  if (i < d) {
    // Masked tail: lanes past d load zeros from both inputs and add nothing.
    for (; i < d; i += 16) {
      const size_t left = d - i;
      const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
      const __m512 d0 = _mm512_sub_ps(_mm512_maskz_loadu_ps(mask, a + i), _mm512_maskz_loadu_ps(mask, b + i));
      acc0 = _mm512_fmadd_ps(d0, d0, acc0);
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

QV_AVX512 float dot_avx512(const float* a, const float* b, size_t d) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i < d; i += 16) {
    const size_t left = d - i;
    const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
    acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, a + i), _mm512_maskz_loadu_ps(mask, b + i), acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

QV_AVX512 void dot_transposed_avx512(const float* x, const float* ct, size_t d, size_t k, size_t ldc,
                                     float* out) {
  size_t j = 0;
  for (; j + 64 <= k; j += 64) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),
           a3 = _mm512_setzero_ps();
    const float* col = ct + j;
    for (size_t i = 0; i < d; ++i, col += ldc) {
      const __m512 xi = _mm512_set1_ps(x[i]);
      a0 = _mm512_fmadd_ps(xi, _mm512_loadu_ps(col), a0);
      a1 = _mm512_fmadd_ps(xi, _mm512_loadu_ps(col + 16), a1);
      a2 = _mm512_fmadd_ps(xi, _mm512_loadu_ps(col + 32), a2);
      a3 = _mm512_fmadd_ps(xi, _mm512_loadu_ps(col + 48), a3);
    }
    _mm512_storeu_ps(out + j, a0);
    _mm512_storeu_ps(out + j + 16, a1);
    _mm512_storeu_ps(out + j + 32, a2);
    _mm512_storeu_ps(out + j + 48, a3);
  }
  for (; j < k; j += 16) {
    const size_t left = k - j;
    const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
    __m512 a0 = _mm512_setzero_ps();
    const float* col = ct + j;
    for (size_t i = 0; i < d; ++i, col += ldc)
      a0 = _mm512_fmadd_ps(_mm512_set1_ps(x[i]), _mm512_maskz_loadu_ps(mask, col), a0);
    _mm512_mask_storeu_ps(out + j, mask, a0);
  }
}

}  // namespace

const Kernels kAvx2Kernels = {l2sqr_avx2, dot_avx2, dot_transposed_avx2, adc_scan_u8_avx2};
// The 8-bit ADC scan is bound by gathers, which AVX-512 does not make faster: it shares the AVX2 kernel.
const Kernels kAvx512Kernels = {l2sqr_avx512, dot_avx512, dot_transposed_avx512, adc_scan_u8_avx2};

}  // namespace quiver

#endif  // QUIVER_HAVE_X86_KERNELS
