// AVX2+FMA and AVX-512 kernels. Each function carries its own target attribute, so this file compiles with
// the project's generic flags and is only ever called after simd.cpp has checked the CPU (runtime dispatch).
#include "simd.h"

#ifdef QUIVER_HAVE_X86_KERNELS

// GCC 12 warns about an uninitialised variable inside its own avx512fintrin.h (_mm512_reduce_add_ps).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
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

// 8-bit ADC is a chain of table look-ups; gathers do not speed them up on current x86 cores (they are
// micro-coded), so this kernel keeps scalar loads but scores 4 codes at once with 8 independent partial sums:
// the float additions no longer wait on each other and the load ports stay busy.
QV_AVX2 void adc_scan_u8_avx2(const uint8_t* codes, size_t n, size_t m_count, const float* lut, float* out) {
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

// P vectors × 16 centroids per step: 2P accumulators of 8 lanes, each lane a chain of FMAs over i exactly as in
// dot_transposed_avx2 (whose 32- and 8-wide blocks compute every lane the same way); the columns past the last
// multiple of 8 take the same scalar expression as there.
template <size_t P>
QV_AVX2 inline void dot_transposed_rows_avx2(const float* x, size_t ldx, const float* ct, size_t d, size_t k,
                                             size_t ldc, float* out, size_t ldo) {
  size_t j = 0;
  for (; j + 16 <= k; j += 16) {
    __m256 acc[P][2];
    for (size_t p = 0; p < P; ++p) acc[p][0] = acc[p][1] = _mm256_setzero_ps();
    const float* col = ct + j;
    for (size_t i = 0; i < d; ++i, col += ldc) {
      const __m256 c0 = _mm256_loadu_ps(col), c1 = _mm256_loadu_ps(col + 8);
      for (size_t p = 0; p < P; ++p) {
        const __m256 xi = _mm256_broadcast_ss(x + p * ldx + i);
        acc[p][0] = _mm256_fmadd_ps(xi, c0, acc[p][0]);
        acc[p][1] = _mm256_fmadd_ps(xi, c1, acc[p][1]);
      }
    }
    for (size_t p = 0; p < P; ++p) {
      _mm256_storeu_ps(out + p * ldo + j, acc[p][0]);
      _mm256_storeu_ps(out + p * ldo + j + 8, acc[p][1]);
    }
  }
  for (; j + 8 <= k; j += 8) {
    __m256 acc[P];
    for (size_t p = 0; p < P; ++p) acc[p] = _mm256_setzero_ps();
    const float* col = ct + j;
    for (size_t i = 0; i < d; ++i, col += ldc) {
      const __m256 c0 = _mm256_loadu_ps(col);
      for (size_t p = 0; p < P; ++p) acc[p] = _mm256_fmadd_ps(_mm256_broadcast_ss(x + p * ldx + i), c0, acc[p]);
    }
    for (size_t p = 0; p < P; ++p) _mm256_storeu_ps(out + p * ldo + j, acc[p]);
  }
  for (; j < k; ++j)
    for (size_t p = 0; p < P; ++p) {
      float sum = 0;
      for (size_t i = 0; i < d; ++i) sum += x[p * ldx + i] * ct[i * ldc + j];
      out[p * ldo + j] = sum;
    }
}

QV_AVX2 void dot_transposed_batch_avx2(const float* x, size_t nx, size_t ldx, const float* ct, size_t d, size_t k,
                                       size_t ldc, float* out, size_t ldo) {
  size_t p = 0;
  for (; p + 4 <= nx; p += 4) dot_transposed_rows_avx2<4>(x + p * ldx, ldx, ct, d, k, ldc, out + p * ldo, ldo);
  switch (nx - p) {
    case 3: dot_transposed_rows_avx2<3>(x + p * ldx, ldx, ct, d, k, ldc, out + p * ldo, ldo); break;
    case 2: dot_transposed_rows_avx2<2>(x + p * ldx, ldx, ct, d, k, ldc, out + p * ldo, ldo); break;
    case 1: dot_transposed_rows_avx2<1>(x + p * ldx, ldx, ct, d, k, ldc, out + p * ldo, ldo); break;
    default: break;
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

// 4-bit fast-scan: the 16-entry uint8 tables of two sub-quantizers sit in registers; vpshufb looks up 32 codes
// at once. Sums are kept in uint16 without unpacking bytes: adding the 32 looked-up bytes as 16 uint16 words
// accumulates even bytes (plus 256 × odd bytes, which wraps harmlessly) in `mixed`, and adding them shifted
// right by 8 accumulates the odd bytes alone in `odd`; even = mixed − (odd << 8) (mod 2^16) at the end, exact
// while every true sum stays below 2^16 (M ≤ 256 sub-quantizers of at most 255 each).
// Stores the 32 sums of a block in row order and its minimum. even/odd hold the sums of the even/odd rows of
// each 128-bit lane (rows 0–15 in lane 0, 16–31 in lane 1).
QV_AVX2 inline void store_block_sums(__m256i even, __m256i odd, uint16_t* sums, uint16_t* block_min) {
  const __m256i first = _mm256_unpacklo_epi16(even, odd);   // lane0: rows 0..7,  lane1: rows 16..23
  const __m256i second = _mm256_unpackhi_epi16(even, odd);  // lane0: rows 8..15, lane1: rows 24..31
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums), _mm256_permute2x128_si256(first, second, 0x20));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + 16), _mm256_permute2x128_si256(first, second, 0x31));
  const __m256i m = _mm256_min_epu16(even, odd);
  const __m128i m128 = _mm_min_epu16(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
  *block_min = uint16_t(_mm_cvtsi128_si32(_mm_minpos_epu16(m128)));
}

QV_AVX2 void fastscan_u4_avx2(const uint8_t* blocks, size_t nblocks, size_t npairs, const uint8_t* lut,
                              uint16_t* out, uint16_t* block_min) {
  const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* block = blocks + b * npairs * 32;
    __m256i mixed = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
    for (size_t p = 0; p < npairs; ++p) {
      const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + p * 32));
      const __m256i lo_table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 32 * p)));
      const __m256i hi_table =
          _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 32 * p + 16)));
      const __m256i lo = _mm256_and_si256(codes, low_nibbles);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(codes, 4), low_nibbles);
      const __m256i sum_lo = _mm256_shuffle_epi8(lo_table, lo);
      const __m256i sum_hi = _mm256_shuffle_epi8(hi_table, hi);
      mixed = _mm256_add_epi16(mixed, _mm256_add_epi16(sum_lo, sum_hi));
      odd = _mm256_add_epi16(odd, _mm256_add_epi16(_mm256_srli_epi16(sum_lo, 8), _mm256_srli_epi16(sum_hi, 8)));
    }
    store_block_sums(_mm256_sub_epi16(mixed, _mm256_slli_epi16(odd, 8)), odd, out + b * 32, block_min + b);
  }
}

// AVX-512: two sub-quantizer pairs per 512-bit step (lanes 0–1 one pair, lanes 2–3 the next), folded at the end.
QV_AVX512 void fastscan_u4_avx512(const uint8_t* blocks, size_t nblocks, size_t npairs, const uint8_t* lut,
                                  uint16_t* out, uint16_t* block_min) {
  const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
  const size_t pairs2 = npairs & ~size_t(1);
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* block = blocks + b * npairs * 32;
    __m512i mixed = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
    for (size_t p = 0; p < pairs2; p += 2) {
      const __m512i codes = _mm512_loadu_si512(block + p * 32);
      // Tables: lanes 0,1 ← pair p's lo/hi tables broadcast per 256-bit half, lanes 2,3 ← pair p+1's.
      const __m512i lo_table = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 32 * p)))),
          _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 32 * (p + 1)))), 1);
      const __m512i hi_table = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 32 * p + 16)))),
          _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 32 * (p + 1) + 16))), 1);
      const __m512i lo = _mm512_and_si512(codes, low_nibbles);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(codes, 4), low_nibbles);
      const __m512i sum_lo = _mm512_shuffle_epi8(lo_table, lo);
      const __m512i sum_hi = _mm512_shuffle_epi8(hi_table, hi);
      mixed = _mm512_add_epi16(mixed, _mm512_add_epi16(sum_lo, sum_hi));
      odd = _mm512_add_epi16(odd, _mm512_add_epi16(_mm512_srli_epi16(sum_lo, 8), _mm512_srli_epi16(sum_hi, 8)));
    }
    __m256i mixed256 = _mm256_add_epi16(_mm512_castsi512_si256(mixed), _mm512_extracti64x4_epi64(mixed, 1));
    __m256i odd256 = _mm256_add_epi16(_mm512_castsi512_si256(odd), _mm512_extracti64x4_epi64(odd, 1));
    if (pairs2 < npairs) {  // an odd pair count leaves one pair for 256-bit code
      const size_t p = pairs2;
      const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + p * 32));
      const __m256i lo_table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 32 * p)));
      const __m256i hi_table =
          _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 32 * p + 16)));
      const __m256i nib = _mm256_set1_epi8(0x0F);
      const __m256i sum_lo = _mm256_shuffle_epi8(lo_table, _mm256_and_si256(codes, nib));
      const __m256i sum_hi = _mm256_shuffle_epi8(hi_table, _mm256_and_si256(_mm256_srli_epi16(codes, 4), nib));
      mixed256 = _mm256_add_epi16(mixed256, _mm256_add_epi16(sum_lo, sum_hi));
      odd256 = _mm256_add_epi16(odd256, _mm256_add_epi16(_mm256_srli_epi16(sum_lo, 8), _mm256_srli_epi16(sum_hi, 8)));
    }
    store_block_sums(_mm256_sub_epi16(mixed256, _mm256_slli_epi16(odd256, 8)), odd256, out + b * 32,
                     block_min + b);
  }
}

// P vectors × 64 centroids per step (4P accumulators, 16 lanes each), then masked 16-wide tails: every lane is
// the chain of FMAs over i of dot_transposed_avx512.
template <size_t P>
QV_AVX512 inline void dot_transposed_rows_avx512(const float* x, size_t ldx, const float* ct, size_t d, size_t k,
                                                 size_t ldc, float* out, size_t ldo) {
  size_t j = 0;
  for (; j + 64 <= k; j += 64) {
    __m512 acc[P][4];
    for (size_t p = 0; p < P; ++p) acc[p][0] = acc[p][1] = acc[p][2] = acc[p][3] = _mm512_setzero_ps();
    const float* col = ct + j;
    for (size_t i = 0; i < d; ++i, col += ldc) {
      const __m512 c0 = _mm512_loadu_ps(col), c1 = _mm512_loadu_ps(col + 16), c2 = _mm512_loadu_ps(col + 32),
                   c3 = _mm512_loadu_ps(col + 48);
      for (size_t p = 0; p < P; ++p) {
        const __m512 xi = _mm512_set1_ps(x[p * ldx + i]);
        acc[p][0] = _mm512_fmadd_ps(xi, c0, acc[p][0]);
        acc[p][1] = _mm512_fmadd_ps(xi, c1, acc[p][1]);
        acc[p][2] = _mm512_fmadd_ps(xi, c2, acc[p][2]);
        acc[p][3] = _mm512_fmadd_ps(xi, c3, acc[p][3]);
      }
    }
    for (size_t p = 0; p < P; ++p)
      for (size_t q = 0; q < 4; ++q) _mm512_storeu_ps(out + p * ldo + j + 16 * q, acc[p][q]);
  }
  for (; j < k; j += 16) {
    const size_t left = k - j;
    const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
    __m512 acc[P];
    for (size_t p = 0; p < P; ++p) acc[p] = _mm512_setzero_ps();
    const float* col = ct + j;
    for (size_t i = 0; i < d; ++i, col += ldc) {
      const __m512 c0 = _mm512_maskz_loadu_ps(mask, col);
      for (size_t p = 0; p < P; ++p) acc[p] = _mm512_fmadd_ps(_mm512_set1_ps(x[p * ldx + i]), c0, acc[p]);
    }
    for (size_t p = 0; p < P; ++p) _mm512_mask_storeu_ps(out + p * ldo + j, mask, acc[p]);
  }
}

QV_AVX512 void dot_transposed_batch_avx512(const float* x, size_t nx, size_t ldx, const float* ct, size_t d,
                                           size_t k, size_t ldc, float* out, size_t ldo) {
  size_t p = 0;
  for (; p + 4 <= nx; p += 4) dot_transposed_rows_avx512<4>(x + p * ldx, ldx, ct, d, k, ldc, out + p * ldo, ldo);
  switch (nx - p) {
    case 3: dot_transposed_rows_avx512<3>(x + p * ldx, ldx, ct, d, k, ldc, out + p * ldo, ldo); break;
    case 2: dot_transposed_rows_avx512<2>(x + p * ldx, ldx, ct, d, k, ldc, out + p * ldo, ldo); break;
    case 1: dot_transposed_rows_avx512<1>(x + p * ldx, ldx, ct, d, k, ldc, out + p * ldo, ldo); break;
    default: break;
  }
}

// Refine kernels (refine.h). They run on k·refine candidates per query, not on whole lists, so AVX-512 gains
// nothing measurable over these and shares them. F16C (vcvtph2ps) is present on every AVX2 CPU we dispatch
// to (simd.cpp checks it).
#define QV_AVX2_F16C __attribute__((target("avx2,fma,f16c")))

QV_AVX2_F16C float l2sqr_f16_avx2(const float* q, const uint16_t* v, size_t d) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m256 h0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i)));
    const __m256 h1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i + 8)));
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), h0);
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), h1);
    acc0 = _mm256_fmadd_ps(d0, d0, acc0);
    acc1 = _mm256_fmadd_ps(d1, d1, acc1);
  }
  for (; i + 8 <= d; i += 8) {
    const __m256 h0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i)));
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), h0);
    acc0 = _mm256_fmadd_ps(d0, d0, acc0);
  }
  float sum = hsum256(_mm256_add_ps(acc0, acc1));
  for (; i < d; ++i) {
    const float diff = q[i] - _cvtsh_ss(v[i]);
    sum += diff * diff;
  }
  return sum;
}

QV_AVX2_F16C float dot_f16_avx2(const float* q, const uint16_t* v, size_t d) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m256 h0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i)));
    const __m256 h1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i + 8)));
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), h0, acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), h1, acc1);
  }
  for (; i + 8 <= d; i += 8) {
    const __m256 h0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i)));
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), h0, acc0);
  }
  float sum = hsum256(_mm256_add_ps(acc0, acc1));
  for (; i < d; ++i) sum += q[i] * _cvtsh_ss(v[i]);
  return sum;
}

// 8 uint8 codes → 8 floats (exact).
QV_AVX2 inline __m256 load_u8x8(const uint8_t* c) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c))));
}

QV_AVX2 float l2sqr_sq8_avx2(const float* a, const float* s, const uint8_t* c, size_t d) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m256 d0 = _mm256_fnmadd_ps(_mm256_loadu_ps(s + i), load_u8x8(c + i), _mm256_loadu_ps(a + i));
    const __m256 d1 = _mm256_fnmadd_ps(_mm256_loadu_ps(s + i + 8), load_u8x8(c + i + 8), _mm256_loadu_ps(a + i + 8));
    acc0 = _mm256_fmadd_ps(d0, d0, acc0);
    acc1 = _mm256_fmadd_ps(d1, d1, acc1);
  }
  for (; i + 8 <= d; i += 8) {
    const __m256 d0 = _mm256_fnmadd_ps(_mm256_loadu_ps(s + i), load_u8x8(c + i), _mm256_loadu_ps(a + i));
    acc0 = _mm256_fmadd_ps(d0, d0, acc0);
  }
  float sum = hsum256(_mm256_add_ps(acc0, acc1));
  for (; i < d; ++i) {
    const float diff = a[i] - s[i] * float(c[i]);
    sum += diff * diff;
  }
  return sum;
}

QV_AVX2 float dot_sq8_avx2(const float* w, const uint8_t* c, size_t d) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), load_u8x8(c + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), load_u8x8(c + i + 8), acc1);
  }
  for (; i + 8 <= d; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), load_u8x8(c + i), acc0);
  float sum = hsum256(_mm256_add_ps(acc0, acc1));
  for (; i < d; ++i) sum += w[i] * float(c[i]);
  return sum;
}

}  // namespace

const Kernels kAvx2Kernels = {l2sqr_avx2,       dot_avx2,         dot_transposed_avx2,
                              adc_scan_u8_avx2, fastscan_u4_avx2, dot_transposed_batch_avx2,
                              l2sqr_f16_avx2,   dot_f16_avx2,     l2sqr_sq8_avx2,
                              dot_sq8_avx2};
// The 8-bit ADC scan is bound by table loads, which AVX-512 does not make faster: it shares the AVX2 kernel.
const Kernels kAvx512Kernels = {l2sqr_avx512,     dot_avx512,         dot_transposed_avx512,
                                adc_scan_u8_avx2, fastscan_u4_avx512, dot_transposed_batch_avx512,
                                l2sqr_f16_avx2,   dot_f16_avx2,       l2sqr_sq8_avx2,
                                dot_sq8_avx2};

}  // namespace quiver

#endif  // QUIVER_HAVE_X86_KERNELS
