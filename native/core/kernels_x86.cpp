// AVX2+FMA and AVX-512 kernels. Each function carries its own target attribute, so this file compiles with
// the project's generic flags and is only ever called after simd.cpp has checked the CPU (runtime dispatch).
#include "kernels_common.h"
#include "simd.h"

#ifdef QUIVER_HAVE_X86_KERNELS

// GCC 12 warns about an uninitialised variable inside its own avx512fintrin.h (_mm512_reduce_add_ps).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <limits>
#include <cstring>

#define QV_AVX2 __attribute__((target("avx2,fma")))
#define QV_AVX512 __attribute__((target("avx512f,avx512bw,avx2,fma")))
#define QV_AVX512_VBMI __attribute__((target("avx512f,avx512bw,avx512vbmi,avx2,fma")))

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

// Lanes over vectors: out[j] = Σ_i x[i]·ct[i·ldc + j] (kL2 false) or Σ_i (x[i] − ct[i·ldc + j])² (kL2 true).
template <bool kL2>
QV_AVX2 inline __m256 transposed_step_avx2(__m256 xi, __m256 c, __m256 acc) {
  if (kL2) {
    const __m256 diff = _mm256_sub_ps(xi, c);
    return _mm256_fmadd_ps(diff, diff, acc);
  }
  return _mm256_fmadd_ps(xi, c, acc);
}

template <bool kL2>
QV_AVX2 void transposed_avx2(const float* x, const float* ct, size_t d, size_t k, size_t ldc, float* out) {
  size_t j = 0;
  for (; j + 32 <= k; j += 32) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps();
    const float* col = ct + j;
    for (size_t i = 0; i < d; ++i, col += ldc) {
      const __m256 xi = _mm256_broadcast_ss(x + i);
      a0 = transposed_step_avx2<kL2>(xi, _mm256_loadu_ps(col), a0);
      a1 = transposed_step_avx2<kL2>(xi, _mm256_loadu_ps(col + 8), a1);
      a2 = transposed_step_avx2<kL2>(xi, _mm256_loadu_ps(col + 16), a2);
      a3 = transposed_step_avx2<kL2>(xi, _mm256_loadu_ps(col + 24), a3);
    }
    _mm256_storeu_ps(out + j, a0);
    _mm256_storeu_ps(out + j + 8, a1);
    _mm256_storeu_ps(out + j + 16, a2);
    _mm256_storeu_ps(out + j + 24, a3);
  }
  for (; j + 8 <= k; j += 8) {
    __m256 a0 = _mm256_setzero_ps();
    const float* col = ct + j;
    for (size_t i = 0; i < d; ++i, col += ldc) a0 = transposed_step_avx2<kL2>(_mm256_broadcast_ss(x + i), _mm256_loadu_ps(col), a0);
    _mm256_storeu_ps(out + j, a0);
  }
  for (; j < k; ++j) {
    float sum = 0;
    for (size_t i = 0; i < d; ++i) {
      const float c = ct[i * ldc + j];
      sum += kL2 ? (x[i] - c) * (x[i] - c) : x[i] * c;
    }
    out[j] = sum;
  }
}

QV_AVX2 void dot_transposed_avx2(const float* x, const float* ct, size_t d, size_t k, size_t ldc, float* out) {
  transposed_avx2<false>(x, ct, d, k, ldc, out);
}
QV_AVX2 void l2sqr_transposed_avx2(const float* x, const float* ct, size_t d, size_t k, size_t ldc, float* out) {
  transposed_avx2<true>(x, ct, d, k, ldc, out);
}

// 8-bit ADC is a chain of table look-ups; gathers do not speed them up on current x86 cores (they are
// micro-coded): the interleaved scalar kernel of kernels_common.h, compiled for this level.
QV_AVX2 void adc_scan_u8_avx2(const uint8_t* codes, size_t n, size_t m_count, const float* lut, float* out) {
  adc_scan_u8_interleaved(codes, n, m_count, lut, out);
}

// fastscan_exact_u4 where the level has no 16-float register permute (AVX2): the scalar reference.
void fastscan_exact_u4_portable(const uint8_t* block, size_t m_count, const float* lut, float* out) {
  kScalarKernels.fastscan_exact_u4(block, m_count, lut, out);
}

// A sub-quantizer's 16 float table entries fill one register: vpermps looks up 16 rows at once, so a block's
// 32 exact scores cost 2·M permutes instead of 32·M scalar loads. Per row the additions are those of the
// scalar reference (even and odd sub-quantizers apart, then added), so the bits are the same.
QV_AVX512 void fastscan_exact_u4_avx512(const uint8_t* block, size_t m_count, const float* lut, float* out) {
  const size_t full_pairs = m_count / 2;
  const __m512i low_nibble = _mm512_set1_epi32(15);
  for (size_t half = 0; half < 2; ++half) {
    __m512 even = _mm512_setzero_ps(), odd = _mm512_setzero_ps();
    for (size_t p = 0; p < full_pairs; ++p) {
      const __m512i bytes =
          _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + p * 32 + half * 16)));
      even = _mm512_add_ps(even, _mm512_permutexvar_ps(_mm512_and_si512(bytes, low_nibble), _mm512_loadu_ps(lut + 32 * p)));
      odd = _mm512_add_ps(odd, _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), _mm512_loadu_ps(lut + 32 * p + 16)));
    }
    if (m_count % 2) {
      const __m512i bytes = _mm512_cvtepu8_epi32(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + full_pairs * 32 + half * 16)));
      even = _mm512_add_ps(even,
                           _mm512_permutexvar_ps(_mm512_and_si512(bytes, low_nibble), _mm512_loadu_ps(lut + 32 * full_pairs)));
    }
    _mm512_storeu_ps(out + 16 * half, _mm512_add_ps(even, odd));
  }
}

// adc_sums_u8 where no 256-entry table fits in registers (and for the tails of the VBMI kernel): the scalar
// reference. Callers do not prune with it (adc_sums_u8_fast is false there).
void adc_sums_u8_portable(const uint8_t* codes, size_t n, size_t m_count, const uint8_t* qlut, uint16_t* sums,
                          uint16_t* block_min) {
  kScalarKernels.adc_sums_u8(codes, n, m_count, qlut, sums, block_min);
}

// In-register transpose of an 8 × 8 matrix of 64-bit words: afterwards word b of r[a] is what word a of r[b]
// was. Three stages; stage s swaps bit s of the row index with bit s of the word index, pairing rows a and
// a | 2^s with two vpermt2q each (index i < 8 picks word i of the first row, 8 + i word i of the second).
QV_AVX512_VBMI inline void transpose_stage_epi64(__m512i r[8], size_t bit, __m512i first, __m512i second) {
  for (size_t a = 0; a < 8; ++a) {
    if (a & bit) continue;
    const __m512i x = r[a], y = r[a | bit];
    r[a] = _mm512_permutex2var_epi64(x, first, y);
    r[a | bit] = _mm512_permutex2var_epi64(x, second, y);
  }
}

QV_AVX512_VBMI inline void transpose_8x8_epi64(__m512i r[8]) {
  transpose_stage_epi64(r, 1, _mm512_setr_epi64(0, 8, 2, 10, 4, 12, 6, 14), _mm512_setr_epi64(1, 9, 3, 11, 5, 13, 7, 15));
  transpose_stage_epi64(r, 2, _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15));
  transpose_stage_epi64(r, 4, _mm512_setr_epi64(0, 1, 2, 3, 8, 9, 10, 11), _mm512_setr_epi64(4, 5, 6, 7, 12, 13, 14, 15));
}

// vpermb pattern: result byte 8j + i = source byte 8i + j, so word j
// of the result holds byte j of each of the source's 8 words.
struct BytePattern8x8 {
  alignas(64) uint8_t bytes[64];
  BytePattern8x8() {
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 8; ++j) bytes[8 * j + i] = uint8_t(8 * i + j);
  }
};
const BytePattern8x8 kBytePattern8x8;

// 8-bit ADC on uint8 tables with AVX-512 VBMI, 64 codes per step. Codes are stored row-major (m_count bytes per
// code), so each step first turns 64 codes × 8 sub-quantizers into 8 registers of 64 bytes, one per
// sub-quantizer and one byte per code: 8 word tiles (8 codes × 8 bytes: one load for m_count = 8, contiguous
// loads and qword permutes for 16 and 32, a staged 8 × 8 qword transpose for multiples of 64, a gather of 8
// strided words otherwise — gathers cost M = 16 half its speed), a byte transpose inside every word (vpermb)
// and an 8 × 8 word transpose across the tiles. A sub-quantizer's 256-entry table is four 64-byte registers:
// vpermi2b looks up entries 0–127 from the first two and 128–255 from the last two by the code's low 7 bits, and
// the code's top bit picks one of the two (vpmovb2m + blend). Sums accumulate in uint16 words as in the 4-bit
// fast-scan kernels (`mixed` adds byte pairs as words, `odd` the odd bytes alone; even = mixed − 256·odd at the
// end). m_count must be a multiple of 8 (others take the portable path).
QV_AVX512_VBMI void adc_sums_u8_vbmi(const uint8_t* codes, size_t n, size_t m_count, const uint8_t* qlut,
                                     uint16_t* sums, uint16_t* block_min) {
  if (m_count % 8 != 0) return adc_sums_u8_portable(codes, n, m_count, qlut, sums, block_min);
  const size_t groups = m_count / 8;
  const long long stride = static_cast<long long>(m_count);
  const __m512i word_offsets = _mm512_setr_epi64(0, stride, 2 * stride, 3 * stride, 4 * stride, 5 * stride,
                                                 6 * stride, 7 * stride);
  const __m512i byte_transpose = _mm512_load_si512(kBytePattern8x8.bytes);
  // Word c of the output ← even sum c/2 (from the first source) for even c, odd sum c/2 (second source) else.
  alignas(64) uint16_t order_first[32], order_second[32];
  for (int c = 0; c < 32; ++c) {
    order_first[c] = uint16_t(c / 2 + (c % 2) * 32);
    order_second[c] = uint16_t(16 + c / 2 + (c % 2) * 32);
  }
  const __m512i first_half = _mm512_load_si512(order_first), second_half = _mm512_load_si512(order_second);
  const __m512i even_words = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14),
                odd_words = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15),
                quad_words = _mm512_setr_epi64(0, 4, 8, 12, 0, 4, 8, 12);
  // For M a multiple of 64 each code is groups / 8 whole registers: an 8 × 8 qword transpose of eight codes'
  // register q gives the words of groups 8q … 8q + 7 for those codes at once. They are byte-transposed and
  // staged here (words of group g, tile t at staged[g·8 + t]) before the sub-quantizer loop, in place of a
  // gather per group and tile.
  constexpr size_t kMaxStagedGroups = 32;  // M ≤ 256
  const bool staged_tiles = groups % 8 == 0 && groups <= kMaxStagedGroups;
  alignas(64) __m512i staged[kMaxStagedGroups * 8];  // 16 KiB of stack, left uninitialised when unused
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const uint8_t* block = codes + i * m_count;
    if (staged_tiles) {
      for (size_t tile = 0; tile < 8; ++tile)
        for (size_t q = 0; q < groups / 8; ++q) {
          __m512i r[8];
          for (size_t c = 0; c < 8; ++c) r[c] = _mm512_loadu_si512(block + (tile * 8 + c) * m_count + q * 64);
          transpose_8x8_epi64(r);
          for (size_t j = 0; j < 8; ++j)
            staged[(q * 8 + j) * 8 + tile] = _mm512_permutexvar_epi8(byte_transpose, r[j]);
        }
    }
    __m512i mixed = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
    for (size_t g = 0; g < groups; ++g) {
      __m512i r[8];
      for (size_t tile = 0; tile < 8; ++tile) {
        if (staged_tiles) {
          r[tile] = staged[g * 8 + tile];
          continue;
        }
        const uint8_t* at = block + tile * 8 * m_count + g * 8;
        __m512i words;
        if (groups == 1) {
          words = _mm512_loadu_si512(at);
        } else if (groups == 2) {
          // The tile's 8 codes are 128 contiguous bytes: word 2c + g of them is code c's group g.
          const uint8_t* tile_start = block + tile * 8 * m_count;
          words = _mm512_permutex2var_epi64(_mm512_loadu_si512(tile_start), g ? odd_words : even_words,
                                            _mm512_loadu_si512(tile_start + 64));
        } else if (groups == 4) {
          // 256 contiguous bytes, two codes per register: word 4c + g is code c's group g. Each pair of registers
          // gives its four codes' words in the low half, and the two halves are joined.
          const uint8_t* tile_start = block + tile * 8 * m_count;
          const __m512i pick = _mm512_add_epi64(quad_words, _mm512_set1_epi64(static_cast<long long>(g)));
          const __m512i front = _mm512_permutex2var_epi64(_mm512_loadu_si512(tile_start), pick,
                                                          _mm512_loadu_si512(tile_start + 64));
          const __m512i back = _mm512_permutex2var_epi64(_mm512_loadu_si512(tile_start + 128), pick,
                                                         _mm512_loadu_si512(tile_start + 192));
          words = _mm512_shuffle_i64x2(front, back, _MM_SHUFFLE(1, 0, 1, 0));
        } else {
          words = _mm512_i64gather_epi64(word_offsets, at, 1);
        }
        r[tile] = _mm512_permutexvar_epi8(byte_transpose, words);
      }
      transpose_8x8_epi64(r);
      for (size_t j = 0; j < 8; ++j) {
        const uint8_t* table = qlut + (g * 8 + j) * 256;
        const __m512i low = _mm512_permutex2var_epi8(_mm512_loadu_si512(table), r[j], _mm512_loadu_si512(table + 64));
        const __m512i high =
            _mm512_permutex2var_epi8(_mm512_loadu_si512(table + 128), r[j], _mm512_loadu_si512(table + 192));
        const __m512i v = _mm512_mask_blend_epi8(_mm512_movepi8_mask(r[j]), low, high);
        mixed = _mm512_add_epi16(mixed, v);
        odd = _mm512_add_epi16(odd, _mm512_srli_epi16(v, 8));
      }
    }
    const __m512i even = _mm512_sub_epi16(mixed, _mm512_slli_epi16(odd, 8));
    _mm512_storeu_si512(sums + i, _mm512_permutex2var_epi16(even, first_half, odd));
    _mm512_storeu_si512(sums + i + 32, _mm512_permutex2var_epi16(even, second_half, odd));
    const __m512i least = _mm512_min_epu16(even, odd);
    const __m256i least256 = _mm256_min_epu16(_mm512_castsi512_si256(least), _mm512_extracti64x4_epi64(least, 1));
    const __m128i least128 = _mm_min_epu16(_mm256_castsi256_si128(least256), _mm256_extracti128_si256(least256, 1));
    block_min[i / 64] = uint16_t(_mm_cvtsi128_si32(_mm_minpos_epu16(least128)));
  }
  if (i < n) adc_sums_u8_portable(codes + i * m_count, n - i, m_count, qlut, sums + i, block_min + i / 64);
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

// One vector against a wide table, Width columns per pass (see dot_transposed_one_wide_avx512): lanes compute
// exactly as dot_transposed_rows_avx2<1>, bit-identical results.
template <size_t Width>
QV_AVX2 void dot_transposed_one_wide_avx2(const float* x, const float* ct, size_t d, size_t k, size_t ldc,
                                          float* out) {
  constexpr size_t kRegs = Width / 8;
  size_t j = 0;
  for (; j + Width <= k; j += Width) {
    __m256 acc[kRegs];
    for (size_t q = 0; q < kRegs; ++q) acc[q] = _mm256_setzero_ps();
    const float* col = ct + j;
    for (size_t i = 0; i < d; ++i, col += ldc) {
      const __m256 xi = _mm256_broadcast_ss(x + i);
      for (size_t q = 0; q < kRegs; ++q) acc[q] = _mm256_fmadd_ps(xi, _mm256_loadu_ps(col + 8 * q), acc[q]);
    }
    for (size_t q = 0; q < kRegs; ++q) _mm256_storeu_ps(out + j + 8 * q, acc[q]);
  }
  if (j < k) dot_transposed_rows_avx2<1>(x, 0, ct + j, d, k - j, ldc, out + j, 0);
}

QV_AVX2 void dot_transposed_batch_avx2(const float* x, size_t nx, size_t ldx, const float* ct, size_t d, size_t k,
                                       size_t ldc, float* out, size_t ldo) {
  if (nx == 1 && k >= 128) return dot_transposed_one_wide_avx2<128>(x, ct, d, k, ldc, out);
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

template <bool kL2>
QV_AVX512 inline __m512 transposed_step_avx512(__m512 xi, __m512 c, __m512 acc) {
  if (kL2) {
    const __m512 diff = _mm512_sub_ps(xi, c);
    return _mm512_fmadd_ps(diff, diff, acc);
  }
  return _mm512_fmadd_ps(xi, c, acc);
}

template <bool kL2>
QV_AVX512 void transposed_avx512(const float* x, const float* ct, size_t d, size_t k, size_t ldc, float* out) {
  size_t j = 0;
  for (; j + 64 <= k; j += 64) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),
           a3 = _mm512_setzero_ps();
    const float* col = ct + j;
    for (size_t i = 0; i < d; ++i, col += ldc) {
      const __m512 xi = _mm512_set1_ps(x[i]);
      a0 = transposed_step_avx512<kL2>(xi, _mm512_loadu_ps(col), a0);
      a1 = transposed_step_avx512<kL2>(xi, _mm512_loadu_ps(col + 16), a1);
      a2 = transposed_step_avx512<kL2>(xi, _mm512_loadu_ps(col + 32), a2);
      a3 = transposed_step_avx512<kL2>(xi, _mm512_loadu_ps(col + 48), a3);
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
      a0 = transposed_step_avx512<kL2>(_mm512_set1_ps(x[i]), _mm512_maskz_loadu_ps(mask, col), a0);
    _mm512_mask_storeu_ps(out + j, mask, a0);
  }
}

QV_AVX512 void dot_transposed_avx512(const float* x, const float* ct, size_t d, size_t k, size_t ldc,
                                     float* out) {
  transposed_avx512<false>(x, ct, d, k, ldc, out);
}
QV_AVX512 void l2sqr_transposed_avx512(const float* x, const float* ct, size_t d, size_t k, size_t ldc,
                                       float* out) {
  transposed_avx512<true>(x, ct, d, k, ldc, out);
}

// 4-bit fast-scan: the 16-entry tables of two sub-quantizers sit in registers; vpshufb looks up 32 codes at
// once. Table entries are at most 127 (fastscan.h quantises to 7 bits), so the two looked-up bytes of a pair
// add as bytes without overflow (≤ 254). Sums are kept in uint16 without unpacking bytes: adding those bytes
// as 16 uint16 words accumulates even bytes (plus 256 × odd bytes, which wraps harmlessly) in `mixed`, and
// vpmaddubsw with weights (0, 1) adds the odd bytes alone to `odd` (on the multiply pipes, leaving the shuffle
// and shift pipes, the bottleneck, to the look-ups); even = mixed − (odd << 8) (mod 2^16) at the end, exact
// while every true sum stays below 2^16 (≤ 256 sub-quantizers of at most 127 each).
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

// One pair's looked-up bytes (each ≤ 254) of a block's 32 rows: codes and lut_pair at that pair's 32 bytes.
QV_AVX2 inline __m256i fastscan_pair_sum_avx2(const uint8_t* codes, const uint8_t* lut_pair) {
  const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
  const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes));
  const __m256i lo_table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut_pair)));
  const __m256i hi_table =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut_pair + 16)));
  return _mm256_add_epi8(_mm256_shuffle_epi8(lo_table, _mm256_and_si256(c, low_nibbles)),
                         _mm256_shuffle_epi8(hi_table, _mm256_and_si256(_mm256_srli_epi16(c, 4), low_nibbles)));
}

QV_AVX2 void fastscan_u4_avx2(const uint8_t* blocks, size_t nblocks, size_t npairs, const uint8_t* lut,
                              uint16_t* out, uint16_t* block_min) {
  const __m256i odd_bytes = _mm256_set1_epi16(0x0100);
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* block = blocks + b * npairs * 32;
    __m256i mixed = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
    size_t p = 0;
    // Two pairs a step, their bytes added with saturation (simd.h: sums are lower bounds) so that one
    // vpmaddubsw and two word adds serve four sub-quantizers.
    for (; p + 2 <= npairs; p += 2) {
      const __m256i quad = _mm256_adds_epu8(fastscan_pair_sum_avx2(block + p * 32, lut + 32 * p),
                                            fastscan_pair_sum_avx2(block + (p + 1) * 32, lut + 32 * (p + 1)));
      mixed = _mm256_add_epi16(mixed, quad);
      odd = _mm256_add_epi16(odd, _mm256_maddubs_epi16(quad, odd_bytes));
    }
    if (p < npairs) {
      const __m256i pair = fastscan_pair_sum_avx2(block + p * 32, lut + 32 * p);
      mixed = _mm256_add_epi16(mixed, pair);
      odd = _mm256_add_epi16(odd, _mm256_maddubs_epi16(pair, odd_bytes));
    }
    store_block_sums(_mm256_sub_epi16(mixed, _mm256_slli_epi16(odd, 8)), odd, out + b * 32, block_min + b);
  }
}

// AVX-512: two sub-quantizer pairs per 512-bit step (lanes 0–1 one pair, lanes 2–3 the next), and two steps'
// bytes added with saturation before widening (simd.h: the sums are lower bounds), so that one vpmaddubsw
// serves eight sub-quantizers: the multiply-add issues on the same one-per-cycle pipes as the shuffles and
// shifts that bound this loop, and on Fashion-MNIST PQ32x4fs the clipped sums re-score 0.1 % more rows. The
// tables of up to 16 pairs (8 steps) are loaded into registers once per call and serve every block, so the
// inner loop issues no table loads and each block's sums stay in registers. More pairs than 16 are taken 16 at
// a time in passes over a chunk of blocks, carrying the partial sums in memory between passes; an odd last pair
// is added in 256-bit code.
struct FastScanTables512 {
  __m512i lo[8], hi[8];
};

template <size_t Steps>
QV_AVX512 inline void load_fastscan_tables(const uint8_t* lut, size_t first_pair, FastScanTables512& t) {
  for (size_t s = 0; s < Steps; ++s) {
    const uint8_t* at = lut + 32 * (first_pair + 2 * s);
    t.lo[s] = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at)))),
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at + 32))), 1);
    t.hi[s] = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at + 16)))),
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at + 48))), 1);
  }
}

// One step's looked-up bytes (two pairs, one per 256-bit half) of a block's 32 rows.
QV_AVX512 inline __m512i fastscan_pair_sum_avx512(const uint8_t* codes, __m512i lo, __m512i hi) {
  const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
  const __m512i c = _mm512_loadu_si512(codes);
  return _mm512_add_epi8(_mm512_shuffle_epi8(lo, _mm512_and_si512(c, low_nibbles)),
                         _mm512_shuffle_epi8(hi, _mm512_and_si512(_mm512_srli_epi16(c, 4), low_nibbles)));
}

// Adds `Steps` steps (2·Steps pairs) of one block, starting at `codes`, to mixed/odd.
template <size_t Steps>
QV_AVX512 inline void fastscan_steps_avx512(const uint8_t* codes, const FastScanTables512& t, __m512i& mixed,
                                            __m512i& odd) {
  const __m512i odd_bytes = _mm512_set1_epi16(0x0100);
  size_t s = 0;
  for (; s + 2 <= Steps; s += 2) {
    const __m512i quad = _mm512_adds_epu8(fastscan_pair_sum_avx512(codes + 64 * s, t.lo[s], t.hi[s]),
                                          fastscan_pair_sum_avx512(codes + 64 * (s + 1), t.lo[s + 1], t.hi[s + 1]));
    mixed = _mm512_add_epi16(mixed, quad);
    odd = _mm512_add_epi16(odd, _mm512_maddubs_epi16(quad, odd_bytes));
  }
  if (s < Steps) {
    const __m512i pair = fastscan_pair_sum_avx512(codes + 64 * s, t.lo[s], t.hi[s]);
    mixed = _mm512_add_epi16(mixed, pair);
    odd = _mm512_add_epi16(odd, _mm512_maddubs_epi16(pair, odd_bytes));
  }
}

// Folds a block's 512-bit sums, adds the odd last pair (if any) and stores its 32 sums and minimum.
QV_AVX512 inline void finish_block_avx512(__m512i mixed, __m512i odd, const uint8_t* block, size_t npairs,
                                          const uint8_t* lut, uint16_t* sums, uint16_t* block_min) {
  __m256i mixed256 = _mm256_add_epi16(_mm512_castsi512_si256(mixed), _mm512_extracti64x4_epi64(mixed, 1));
  __m256i odd256 = _mm256_add_epi16(_mm512_castsi512_si256(odd), _mm512_extracti64x4_epi64(odd, 1));
  if (npairs % 2) {
    const size_t p = npairs - 1;
    const __m256i odd_bytes = _mm256_set1_epi16(0x0100);
    const __m256i pair = fastscan_pair_sum_avx2(block + p * 32, lut + 32 * p);
    mixed256 = _mm256_add_epi16(mixed256, pair);
    odd256 = _mm256_add_epi16(odd256, _mm256_maddubs_epi16(pair, odd_bytes));
  }
  store_block_sums(_mm256_sub_epi16(mixed256, _mm256_slli_epi16(odd256, 8)), odd256, sums, block_min);
}

// One call with at most 16 pairs' worth of steps: tables in registers, sums in registers.
template <size_t Steps>
QV_AVX512 void fastscan_small_avx512(const uint8_t* blocks, size_t nblocks, size_t npairs, const uint8_t* lut,
                                     uint16_t* out, uint16_t* block_min) {
  FastScanTables512 t;
  load_fastscan_tables<Steps>(lut, 0, t);
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* block = blocks + b * npairs * 32;
    __m512i mixed = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
    fastscan_steps_avx512<Steps>(block, t, mixed, odd);
    finish_block_avx512(mixed, odd, block, npairs, lut, out + b * 32, block_min + b);
  }
}

// Passes of 8 steps (16 pairs) over chunks of blocks, then the remaining steps, then the finish.
template <size_t LastSteps>
QV_AVX512 void fastscan_large_avx512(const uint8_t* blocks, size_t nblocks, size_t npairs, const uint8_t* lut,
                                     uint16_t* out, uint16_t* block_min) {
  constexpr size_t kChunk = 32;  // blocks whose partial sums stay in L1 between passes (4 KiB)
  __m512i mixed[kChunk], odd[kChunk];
  const size_t full_passes = npairs / 16;
  FastScanTables512 t;
  for (size_t first = 0; first < nblocks; first += kChunk) {
    const size_t count = std::min(kChunk, nblocks - first);
    const uint8_t* chunk = blocks + first * npairs * 32;
    for (size_t b = 0; b < count; ++b) mixed[b] = odd[b] = _mm512_setzero_si512();
    for (size_t pass = 0; pass < full_passes; ++pass) {
      load_fastscan_tables<8>(lut, pass * 16, t);
      for (size_t b = 0; b < count; ++b) fastscan_steps_avx512<8>(chunk + b * npairs * 32 + pass * 512, t, mixed[b], odd[b]);
    }
    if (LastSteps > 0) {
      load_fastscan_tables<LastSteps>(lut, full_passes * 16, t);
      for (size_t b = 0; b < count; ++b)
        fastscan_steps_avx512<LastSteps>(chunk + b * npairs * 32 + full_passes * 512, t, mixed[b], odd[b]);
    }
    for (size_t b = 0; b < count; ++b)
      finish_block_avx512(mixed[b], odd[b], chunk + b * npairs * 32, npairs, lut, out + (first + b) * 32,
                          block_min + first + b);
  }
}

QV_AVX512 void fastscan_u4_avx512(const uint8_t* blocks, size_t nblocks, size_t npairs, const uint8_t* lut,
                                  uint16_t* out, uint16_t* block_min) {
  // Steps are pairs of pairs; templates give the compiler fixed step counts to keep the tables in registers.
  using Kernel = void (*)(const uint8_t*, size_t, size_t, const uint8_t*, uint16_t*, uint16_t*);
  static constexpr Kernel kSmall[9] = {fastscan_small_avx512<0>, fastscan_small_avx512<1>, fastscan_small_avx512<2>,
                                       fastscan_small_avx512<3>, fastscan_small_avx512<4>, fastscan_small_avx512<5>,
                                       fastscan_small_avx512<6>, fastscan_small_avx512<7>, fastscan_small_avx512<8>};
  static constexpr Kernel kLarge[8] = {fastscan_large_avx512<0>, fastscan_large_avx512<1>, fastscan_large_avx512<2>,
                                       fastscan_large_avx512<3>, fastscan_large_avx512<4>, fastscan_large_avx512<5>,
                                       fastscan_large_avx512<6>, fastscan_large_avx512<7>};
  const size_t steps = npairs / 2;
  if (steps <= 8) return kSmall[steps](blocks, nblocks, npairs, lut, out, block_min);
  kLarge[steps % 8](blocks, nblocks, npairs, lut, out, block_min);
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

// One vector against a wide table (an IVF coarse quantizer: nlist columns of d rows, often megabytes read from
// L3 per query): Width columns per pass instead of 64, so each row contributes Width · 4 contiguous bytes and the
// table is streamed in fewer, longer runs. IVF1024,PQ16x8 at d = 784, nprobe 1, one query per call: 8.1 k →
// 11.2 k q/s with 128 columns, 12.3 k with 256, 10.6 k with 384 (registers spill); prefetching rows ahead in
// software made it slower. Each lane is still the chain of FMAs over i of dot_transposed_avx512, so results are
// bit-identical to it.
template <size_t Width>
QV_AVX512 void dot_transposed_one_wide_avx512(const float* x, const float* ct, size_t d, size_t k, size_t ldc,
                                              float* out) {
  constexpr size_t kRegs = Width / 16;
  size_t j = 0;
  for (; j + Width <= k; j += Width) {
    __m512 acc[kRegs];
    for (size_t q = 0; q < kRegs; ++q) acc[q] = _mm512_setzero_ps();
    const float* col = ct + j;
    for (size_t i = 0; i < d; ++i, col += ldc) {
      const __m512 xi = _mm512_set1_ps(x[i]);
      for (size_t q = 0; q < kRegs; ++q) acc[q] = _mm512_fmadd_ps(xi, _mm512_loadu_ps(col + 16 * q), acc[q]);
    }
    for (size_t q = 0; q < kRegs; ++q) _mm512_storeu_ps(out + j + 16 * q, acc[q]);
  }
  if (j < k) dot_transposed_rows_avx512<1>(x, 0, ct + j, d, k - j, ldc, out + j, 0);
}

QV_AVX512 void dot_transposed_batch_avx512(const float* x, size_t nx, size_t ldx, const float* ct, size_t d,
                                           size_t k, size_t ldc, float* out, size_t ldo) {
  if (nx == 1 && k >= 128) return dot_transposed_one_wide_avx512<256>(x, ct, d, k, ldc, out);
  size_t p = 0;
  for (; p + 4 <= nx; p += 4) dot_transposed_rows_avx512<4>(x + p * ldx, ldx, ct, d, k, ldc, out + p * ldo, ldo);
  switch (nx - p) {
    case 3: dot_transposed_rows_avx512<3>(x + p * ldx, ldx, ct, d, k, ldc, out + p * ldo, ldo); break;
    case 2: dot_transposed_rows_avx512<2>(x + p * ldx, ldx, ct, d, k, ldc, out + p * ldo, ldo); break;
    case 1: dot_transposed_rows_avx512<1>(x + p * ldx, ldx, ct, d, k, ldc, out + p * ldo, ldo); break;
    default: break;
  }
}

// Refine kernels (refine.h) of the AVX2 level; the AVX-512 levels have 16-lane ones (below). F16C (vcvtph2ps)
// is present on every AVX2 CPU we dispatch to (simd.cpp checks it).
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

// Refine-store kernels at 16 lanes. The row being re-scored has usually just arrived from memory, so these are
// about hiding the conversion work behind it: one vpmovzxbd (int8) or vcvtph2ps (fp16) per 16 values. The int8
// and fp16 forms share one loop, parameterised by how 16 stored values become floats (Lanes::load) and, for
// L2, whether they are scaled first (int8: a − s·c; fp16: q − h). Tails shorter than 16 values are copied into
// a zeroed buffer (a zero code contributes nothing to either sum, since the matching float lanes are masked).
QV_AVX512 inline __mmask16 tail_mask(size_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
}

struct Uint8Lanes {
  using Stored = uint8_t;
  QV_AVX512 static __m512 load(const uint8_t* c) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c))));
  }
};

struct HalfLanes {
  using Stored = uint16_t;
  QV_AVX512 static __m512 load(const uint16_t* v) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(v)));
  }
};

// The 16 values at v + i as floats, of which only the first `left` are read (zeros past them).
template <class Lanes>
QV_AVX512 inline __m512 load_lanes_tail(const typename Lanes::Stored* v, size_t left) {
  if (left >= 16) return Lanes::load(v);
  typename Lanes::Stored tail[16] = {};
  std::memcpy(tail, v, left * sizeof(typename Lanes::Stored));
  return Lanes::load(tail);
}

// a − s·x (kScaled) or a − x over the 16 lanes at `at` (lanes outside `mask` read as zero).
template <bool kScaled>
QV_AVX512 inline __m512 lanes_diff(const float* a, const float* s, size_t at, __mmask16 mask, __m512 x) {
  const __m512 av = _mm512_maskz_loadu_ps(mask, a + at);
  if constexpr (kScaled) return _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(mask, s + at), x, av);
  return _mm512_sub_ps(av, x);
}

// Σ (a[i] − s[i]·x[i])² (kScaled) or Σ (a[i] − x[i])², x the stored values as floats.
template <class Lanes, bool kScaled>
QV_AVX512 float l2sqr_lanes_avx512(const float* a, const float* s, const typename Lanes::Stored* v, size_t d) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m512 d0 = lanes_diff<kScaled>(a, s, i, 0xFFFF, Lanes::load(v + i));
    const __m512 d1 = lanes_diff<kScaled>(a, s, i + 16, 0xFFFF, Lanes::load(v + i + 16));
    acc0 = _mm512_fmadd_ps(d0, d0, acc0);
    acc1 = _mm512_fmadd_ps(d1, d1, acc1);
  }
  for (; i < d; i += 16) {
    const __m512 d0 = lanes_diff<kScaled>(a, s, i, tail_mask(d - i), load_lanes_tail<Lanes>(v + i, d - i));
    acc0 = _mm512_fmadd_ps(d0, d0, acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

// Σ w[i]·x[i], x the stored values as floats.
template <class Lanes>
QV_AVX512 float dot_lanes_avx512(const float* w, const typename Lanes::Stored* v, size_t d) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), Lanes::load(v + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), Lanes::load(v + i + 16), acc1);
  }
  for (; i < d; i += 16)
    acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail_mask(d - i), w + i), load_lanes_tail<Lanes>(v + i, d - i),
                           acc0);
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

QV_AVX512 float l2sqr_sq8_avx512(const float* a, const float* s, const uint8_t* c, size_t d) {
  return l2sqr_lanes_avx512<Uint8Lanes, true>(a, s, c, d);
}
QV_AVX512 float dot_sq8_avx512(const float* w, const uint8_t* c, size_t d) {
  return dot_lanes_avx512<Uint8Lanes>(w, c, d);
}
QV_AVX512 float l2sqr_f16_avx512(const float* q, const uint16_t* v, size_t d) {
  return l2sqr_lanes_avx512<HalfLanes, false>(q, nullptr, v, d);
}
QV_AVX512 float dot_f16_avx512(const float* q, const uint16_t* v, size_t d) {
  return dot_lanes_avx512<HalfLanes>(q, v, d);
}

// Fast-scan table set-up (simd.h). A 16-entry table is two AVX2 registers or one AVX-512 register, so each
// table's range is one in-register reduction instead of the four-wide passes of the portable code.
QV_AVX2 inline float hmin256(__m256 v) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_min_ss(m, _mm_movehdup_ps(m)));
}

QV_AVX2 inline float hmax256(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

QV_AVX2 void lut16_sum_range_avx2(const float* a, const float* b, size_t m_count, float* lut, float* lows,
                                  float* highs) {
  for (size_t m = 0; m < m_count; ++m) {
    const size_t at = m * 16;
    __m256 v0 = _mm256_loadu_ps(a + at), v1 = _mm256_loadu_ps(a + at + 8);
    if (b) {
      v0 = _mm256_add_ps(v0, _mm256_loadu_ps(b + at));
      v1 = _mm256_add_ps(v1, _mm256_loadu_ps(b + at + 8));
    }
    _mm256_storeu_ps(lut + at, v0);
    _mm256_storeu_ps(lut + at + 8, v1);
    lows[m] = hmin256(_mm256_min_ps(v0, v1));
    highs[m] = hmax256(_mm256_max_ps(v0, v1));
  }
}

QV_AVX2 void lut16_quantize_avx2(const float* lut, size_t m_count, const float* lows, float scale, float top,
                                 uint8_t* q) {
  const __m256 scales = _mm256_set1_ps(scale), half = _mm256_set1_ps(0.5f), tops = _mm256_set1_ps(top);
  for (size_t m = 0; m < m_count; ++m) {
    const __m256 lo = _mm256_set1_ps(lows[m]);
    const __m256 s0 = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(lut + m * 16), lo), scales), half);
    const __m256 s1 = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(lut + m * 16 + 8), lo), scales), half);
    // 16 int32 in [0, 255] → 16 bytes: packs work within 128-bit lanes, so the permute restores the order.
    const __m256i words = _mm256_packs_epi32(_mm256_cvttps_epi32(_mm256_min_ps(s0, tops)),
                                             _mm256_cvttps_epi32(_mm256_min_ps(s1, tops)));
    const __m256i ordered = _mm256_permute4x64_epi64(words, 0xD8);
    const __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(ordered), _mm256_extracti128_si256(ordered, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + m * 16), bytes);
  }
}

QV_AVX512 void lut16_sum_range_avx512(const float* a, const float* b, size_t m_count, float* lut, float* lows,
                                      float* highs) {
  for (size_t m = 0; m < m_count; ++m) {
    __m512 v = _mm512_loadu_ps(a + m * 16);
    if (b) v = _mm512_add_ps(v, _mm512_loadu_ps(b + m * 16));
    _mm512_storeu_ps(lut + m * 16, v);
    lows[m] = _mm512_reduce_min_ps(v);
    highs[m] = _mm512_reduce_max_ps(v);
  }
}

QV_AVX512 void lut16_quantize_avx512(const float* lut, size_t m_count, const float* lows, float scale, float top,
                                     uint8_t* q) {
  const __m512 scales = _mm512_set1_ps(scale), half = _mm512_set1_ps(0.5f), tops = _mm512_set1_ps(top);
  for (size_t m = 0; m < m_count; ++m) {
    const __m512 shifted = _mm512_sub_ps(_mm512_loadu_ps(lut + m * 16), _mm512_set1_ps(lows[m]));
    const __m512 v = _mm512_min_ps(_mm512_add_ps(_mm512_mul_ps(shifted, scales), half), tops);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + m * 16), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(v)));
  }
}

// AVX2 query groups (simd.h l2sqr_queries / dot_queries), four queries at a time (8 accumulators of the 16
// registers): each pair's lanes, 8-wide step, horizontal sum and scalar tail are those of l2sqr_avx2 / dot_avx2,
// so the scores have their bits.
template <size_t P, bool kL2>
QV_AVX2 void queries_avx2(const float* queries, size_t ldq, const float* x, size_t d, float* out) {
  __m256 acc0[P], acc1[P];
  for (size_t p = 0; p < P; ++p) acc0[p] = acc1[p] = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
    for (size_t p = 0; p < P; ++p) {
      const float* q = queries + p * ldq;
      if constexpr (kL2) {
        const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), x0), d1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), x1);
        acc0[p] = _mm256_fmadd_ps(d0, d0, acc0[p]);
        acc1[p] = _mm256_fmadd_ps(d1, d1, acc1[p]);
      } else {
        acc0[p] = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), x0, acc0[p]);
        acc1[p] = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), x1, acc1[p]);
      }
    }
  }
  for (; i + 8 <= d; i += 8) {
    const __m256 x0 = _mm256_loadu_ps(x + i);
    for (size_t p = 0; p < P; ++p) {
      const float* q = queries + p * ldq;
      if constexpr (kL2) {
        const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), x0);
        acc0[p] = _mm256_fmadd_ps(d0, d0, acc0[p]);
      } else {
        acc0[p] = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), x0, acc0[p]);
      }
    }
  }
  for (size_t p = 0; p < P; ++p) {
    const float* q = queries + p * ldq;
    float sum = hsum256(_mm256_add_ps(acc0[p], acc1[p]));
    for (size_t j = i; j < d; ++j) {
      if constexpr (kL2) {
        const float diff = q[j] - x[j];
        sum += diff * diff;
      } else {
        sum += q[j] * x[j];
      }
    }
    out[p] = sum;
  }
}

template <bool kL2>
QV_AVX2 void queries_dispatch_avx2(const float* queries, size_t nq, size_t ldq, const float* x, size_t d, float* out) {
  for (; nq >= 4; nq -= 4, queries += 4 * ldq, out += 4) queries_avx2<4, kL2>(queries, ldq, x, d, out);
  switch (nq) {
    case 3: return queries_avx2<3, kL2>(queries, ldq, x, d, out);
    case 2: return queries_avx2<2, kL2>(queries, ldq, x, d, out);
    case 1: return queries_avx2<1, kL2>(queries, ldq, x, d, out);
    default: return;
  }
}

QV_AVX2 void l2sqr_queries_avx2(const float* queries, size_t nq, size_t ldq, const float* x, size_t d, float* out) {
  queries_dispatch_avx2<true>(queries, nq, ldq, x, d, out);
}
QV_AVX2 void dot_queries_avx2(const float* queries, size_t nq, size_t ldq, const float* x, size_t d, float* out) {
  queries_dispatch_avx2<false>(queries, nq, ldq, x, d, out);
}

// Query groups against one stored vector (simd.h l2sqr_queries / dot_queries): P queries share every load of
// x, and their 2P accumulator chains are independent, where P calls of l2sqr_avx512 each wait on one chain of
// FMAs. Each pair's lanes, masked tail and final reduction are those of l2sqr_avx512 / dot_avx512, so the
// scores are bit-identical to them.
template <size_t P, bool kL2>
QV_AVX512 void queries_avx512(const float* queries, size_t ldq, const float* x, size_t d, float* out) {
  __m512 acc0[P], acc1[P];
  for (size_t p = 0; p < P; ++p) acc0[p] = acc1[p] = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
    for (size_t p = 0; p < P; ++p) {
      const __m512 q0 = _mm512_loadu_ps(queries + p * ldq + i), q1 = _mm512_loadu_ps(queries + p * ldq + i + 16);
      if constexpr (kL2) {
        const __m512 d0 = _mm512_sub_ps(q0, x0), d1 = _mm512_sub_ps(q1, x1);
        acc0[p] = _mm512_fmadd_ps(d0, d0, acc0[p]);
        acc1[p] = _mm512_fmadd_ps(d1, d1, acc1[p]);
      } else {
        acc0[p] = _mm512_fmadd_ps(q0, x0, acc0[p]);
        acc1[p] = _mm512_fmadd_ps(q1, x1, acc1[p]);
      }
    }
  }
  for (; i < d; i += 16) {
    const __mmask16 mask = tail_mask(d - i);
    const __m512 x0 = _mm512_maskz_loadu_ps(mask, x + i);
    for (size_t p = 0; p < P; ++p) {
      const __m512 q0 = _mm512_maskz_loadu_ps(mask, queries + p * ldq + i);
      if constexpr (kL2) {
        const __m512 d0 = _mm512_sub_ps(q0, x0);
        acc0[p] = _mm512_fmadd_ps(d0, d0, acc0[p]);
      } else {
        acc0[p] = _mm512_fmadd_ps(q0, x0, acc0[p]);
      }
    }
  }
  for (size_t p = 0; p < P; ++p) out[p] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[p], acc1[p]));
}

template <bool kL2>
QV_AVX512 void queries_dispatch_avx512(const float* queries, size_t nq, size_t ldq, const float* x, size_t d,
                                       float* out) {
  switch (nq) {
    case 8: return queries_avx512<8, kL2>(queries, ldq, x, d, out);
    case 7: return queries_avx512<7, kL2>(queries, ldq, x, d, out);
    case 6: return queries_avx512<6, kL2>(queries, ldq, x, d, out);
    case 5: return queries_avx512<5, kL2>(queries, ldq, x, d, out);
    case 4: return queries_avx512<4, kL2>(queries, ldq, x, d, out);
    case 3: return queries_avx512<3, kL2>(queries, ldq, x, d, out);
    case 2: return queries_avx512<2, kL2>(queries, ldq, x, d, out);
    case 1: return queries_avx512<1, kL2>(queries, ldq, x, d, out);
    default: return;
  }
}

QV_AVX512 void l2sqr_queries_avx512(const float* queries, size_t nq, size_t ldq, const float* x, size_t d,
                                    float* out) {
  queries_dispatch_avx512<true>(queries, nq, ldq, x, d, out);
}
QV_AVX512 void dot_queries_avx512(const float* queries, size_t nq, size_t ldq, const float* x, size_t d,
                                  float* out) {
  queries_dispatch_avx512<false>(queries, nq, ldq, x, d, out);
}

// beam_scores (simd.h): lanes over codewords; 2·acc is exact, so norms − 2·acc rounds once as in the scalar.
// Chunk minima: NaN lanes become +infinity first, so that the lane folds (whose NaN handling depends on the
// operand order) see only numbers and give the scalar's value.
QV_AVX2 void beam_scores_avx2(const float* dots, const float* const* rows, size_t nrows, const float* norms, size_t k,
                              float* out, float* minima) {
  const __m256 two = _mm256_set1_ps(2.0f), inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  size_t j = 0;
  for (; j + 16 <= k; j += 16) {
    __m256 a0 = _mm256_loadu_ps(dots + j), a1 = _mm256_loadu_ps(dots + j + 8);
    for (size_t m = 0; m < nrows; ++m) {
      a0 = _mm256_sub_ps(a0, _mm256_loadu_ps(rows[m] + j));
      a1 = _mm256_sub_ps(a1, _mm256_loadu_ps(rows[m] + j + 8));
    }
    const __m256 v0 = _mm256_sub_ps(_mm256_loadu_ps(norms + j), _mm256_mul_ps(two, a0));
    const __m256 v1 = _mm256_sub_ps(_mm256_loadu_ps(norms + j + 8), _mm256_mul_ps(two, a1));
    _mm256_storeu_ps(out + j, v0);
    _mm256_storeu_ps(out + j + 8, v1);
    if (minima) {
      const __m256 n0 = _mm256_blendv_ps(inf, v0, _mm256_cmp_ps(v0, v0, _CMP_ORD_Q));
      const __m256 n1 = _mm256_blendv_ps(inf, v1, _mm256_cmp_ps(v1, v1, _CMP_ORD_Q));
      minima[j / 16] = hmin256(_mm256_min_ps(n0, n1));
    }
  }
  beam_scores_range(dots, rows, nrows, norms, j, k, out);  // k not a multiple of 16: no minima wanted
}

QV_AVX512 void beam_scores_avx512(const float* dots, const float* const* rows, size_t nrows, const float* norms,
                                  size_t k, float* out, float* minima) {
  const __m512 two = _mm512_set1_ps(2.0f), inf = _mm512_set1_ps(std::numeric_limits<float>::infinity());
  size_t j = 0;
  for (; j + 16 <= k; j += 16) {
    __m512 acc = _mm512_loadu_ps(dots + j);
    for (size_t m = 0; m < nrows; ++m) acc = _mm512_sub_ps(acc, _mm512_loadu_ps(rows[m] + j));
    const __m512 v = _mm512_sub_ps(_mm512_loadu_ps(norms + j), _mm512_mul_ps(two, acc));
    _mm512_storeu_ps(out + j, v);
    if (minima) minima[j / 16] = _mm512_reduce_min_ps(_mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), inf, v));
  }
  beam_scores_range(dots, rows, nrows, norms, j, k, out);
}

// kth_smallest (simd.h), eight or sixteen lanes with two accumulators. NaN lanes fail the ordered compares and
// min_ps returns its second operand (the accumulator) when the first is NaN, so NaNs are never counted nor taken
// as a level; the AVX-512 tail loads +infinity into its missing lanes, which never count either.
QV_AVX2 float kth_smallest_avx2(const float* values, size_t n, size_t kth) {
  const float inf = std::numeric_limits<float>::infinity();
  const __m256 none = _mm256_set1_ps(inf);
  const size_t body = n & ~size_t(15);
  __m256 m0 = none, m1 = none;
  for (size_t i = 0; i < body; i += 16) {
    m0 = _mm256_min_ps(_mm256_loadu_ps(values + i), m0);
    m1 = _mm256_min_ps(_mm256_loadu_ps(values + i + 8), m1);
  }
  float level = hmin256(_mm256_min_ps(m0, m1));
  for (size_t i = body; i < n; ++i) level = values[i] < level ? values[i] : level;
  for (size_t remaining = kth;;) {
    if (!(level < inf)) return inf;
    const __m256 target = _mm256_set1_ps(level);
    size_t count = 0;
    m0 = m1 = none;
    for (size_t i = 0; i < body; i += 16) {
      const __m256 v0 = _mm256_loadu_ps(values + i), v1 = _mm256_loadu_ps(values + i + 8);
      count += size_t(__builtin_popcount(unsigned(_mm256_movemask_ps(_mm256_cmp_ps(v0, target, _CMP_EQ_OQ))))) +
               size_t(__builtin_popcount(unsigned(_mm256_movemask_ps(_mm256_cmp_ps(v1, target, _CMP_EQ_OQ)))));
      m0 = _mm256_blendv_ps(m0, _mm256_min_ps(v0, m0), _mm256_cmp_ps(v0, target, _CMP_GT_OQ));
      m1 = _mm256_blendv_ps(m1, _mm256_min_ps(v1, m1), _mm256_cmp_ps(v1, target, _CMP_GT_OQ));
    }
    float next = hmin256(_mm256_min_ps(m0, m1));
    kth_smallest_tail(values, body, n, level, count, next);
    if (count >= remaining) return level;
    remaining -= count;
    level = next;
  }
}

QV_AVX512 float kth_smallest_avx512(const float* values, size_t n, size_t kth) {
  const float inf = std::numeric_limits<float>::infinity();
  const __m512 none = _mm512_set1_ps(inf);
  const size_t body = n & ~size_t(31);
  const size_t rest = n - body;  // < 32: up to two masked blocks
  const __mmask16 tail0 = __mmask16(rest >= 16 ? 0xFFFFu : (1u << rest) - 1);
  const __mmask16 tail1 = __mmask16(rest > 16 ? (1u << (rest - 16)) - 1 : 0);
  const __m512 t0 = _mm512_mask_loadu_ps(none, tail0, values + body);
  const __m512 t1 = _mm512_mask_loadu_ps(none, tail1, tail1 ? values + body + 16 : values);
  __m512 m0 = _mm512_min_ps(t0, none), m1 = _mm512_min_ps(t1, none);
  for (size_t i = 0; i < body; i += 32) {
    m0 = _mm512_min_ps(_mm512_loadu_ps(values + i), m0);
    m1 = _mm512_min_ps(_mm512_loadu_ps(values + i + 16), m1);
  }
  float level = _mm512_reduce_min_ps(_mm512_min_ps(m0, m1));
  for (size_t remaining = kth;;) {
    if (!(level < inf)) return inf;
    const __m512 target = _mm512_set1_ps(level);
    const auto visit = [&](const __m512 v, __m512& next) QV_AVX512 {
      next = _mm512_mask_min_ps(next, _mm512_cmp_ps_mask(v, target, _CMP_GT_OQ), v, next);
      return size_t(__builtin_popcount(unsigned(_mm512_cmp_ps_mask(v, target, _CMP_EQ_OQ))));
    };
    m0 = m1 = none;
    size_t count = visit(t0, m0) + visit(t1, m1);
    for (size_t i = 0; i < body; i += 32)
      count += visit(_mm512_loadu_ps(values + i), m0) + visit(_mm512_loadu_ps(values + i + 16), m1);
    if (count >= remaining) return level;
    remaining -= count;
    level = _mm512_reduce_min_ps(_mm512_min_ps(m0, m1));
  }
}

}  // namespace

const Kernels kAvx2Kernels = {l2sqr_avx2,       dot_avx2,         dot_transposed_avx2,
                              l2sqr_transposed_avx2,
                              adc_scan_u8_avx2, fastscan_u4_avx2, fastscan_exact_u4_portable,
                              adc_sums_u8_portable,
                              false,            dot_transposed_batch_avx2,
                              l2sqr_f16_avx2,   dot_f16_avx2,     l2sqr_sq8_avx2,
                              dot_sq8_avx2,     lut16_sum_range_avx2, lut16_quantize_avx2,
                              l2sqr_queries_avx2, dot_queries_avx2, beam_scores_avx2,
                              kth_smallest_avx2};
// The 8-bit float ADC scan is bound by table loads, which AVX-512 does not make faster: it shares the AVX2
// kernel. With VBMI, scans prune on uint8 tables first (adc_sums_u8_vbmi) and score only what may qualify.
const Kernels kAvx512Kernels = {l2sqr_avx512,     dot_avx512,         dot_transposed_avx512,
                                l2sqr_transposed_avx512,
                                adc_scan_u8_avx2, fastscan_u4_avx512, fastscan_exact_u4_avx512,
                                adc_sums_u8_portable,
                                false,            dot_transposed_batch_avx512,
                                l2sqr_f16_avx512, dot_f16_avx512,     l2sqr_sq8_avx512,
                                dot_sq8_avx512,   lut16_sum_range_avx512, lut16_quantize_avx512,
                                l2sqr_queries_avx512, dot_queries_avx512, beam_scores_avx512,
                                kth_smallest_avx512};
const Kernels kAvx512VbmiKernels = {l2sqr_avx512,     dot_avx512,         dot_transposed_avx512,
                                    l2sqr_transposed_avx512,
                                    adc_scan_u8_avx2, fastscan_u4_avx512, fastscan_exact_u4_avx512,
                                    adc_sums_u8_vbmi,
                                    true,             dot_transposed_batch_avx512,
                                    l2sqr_f16_avx512, dot_f16_avx512,     l2sqr_sq8_avx512,
                                    dot_sq8_avx512,   lut16_sum_range_avx512, lut16_quantize_avx512,
                                    l2sqr_queries_avx512, dot_queries_avx512, beam_scores_avx512,
                                kth_smallest_avx512};

}  // namespace quiver

#endif  // QUIVER_HAVE_X86_KERNELS
