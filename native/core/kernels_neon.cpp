// NEON kernels for AArch64 (where NEON is part of the base ISA, so no runtime check is needed). The float kernels
// keep several independent accumulators so the FMAs do not wait on each other; the 4-bit fast-scan kernel looks up
// 16 codes per vqtbl1q_u8, as the x86 kernels do 32 or 64 per vpshufb. Kernels with no NEON gain (the uint8-table
// 8-bit sums, the exact fast-scan block scores, the refine conversions) call the scalar reference.
#include "kernels_common.h"
#include "simd.h"

#ifdef QUIVER_HAVE_NEON_KERNELS

#include <arm_neon.h>

#include <cstring>

namespace quiver {
namespace {

float l2sqr_neon(const float* a, const float* b, size_t d) {
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0), acc2 = vdupq_n_f32(0), acc3 = vdupq_n_f32(0);
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const float32x4_t d0 = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
    const float32x4_t d1 = vsubq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    const float32x4_t d2 = vsubq_f32(vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
    const float32x4_t d3 = vsubq_f32(vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    acc0 = vfmaq_f32(acc0, d0, d0);
    acc1 = vfmaq_f32(acc1, d1, d1);
    acc2 = vfmaq_f32(acc2, d2, d2);
    acc3 = vfmaq_f32(acc3, d3, d3);
  }
  for (; i + 4 <= d; i += 4) {
    const float32x4_t d0 = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
    acc0 = vfmaq_f32(acc0, d0, d0);
  }
  float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
  for (; i < d; ++i) sum += (a[i] - b[i]) * (a[i] - b[i]);
  return sum;
}

float dot_neon(const float* a, const float* b, size_t d) {
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0), acc2 = vdupq_n_f32(0), acc3 = vdupq_n_f32(0);
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
    acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    acc2 = vfmaq_f32(acc2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
    acc3 = vfmaq_f32(acc3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
  }
  for (; i + 4 <= d; i += 4) acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
  float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
  for (; i < d; ++i) sum += a[i] * b[i];
  return sum;
}

// Lanes over vectors: out[j] = Σ_i x[i]·ct[i·ldc + j] (kL2 false) or Σ_i (x[i] − ct[i·ldc + j])² (kL2 true);
// 16 columns per pass (four accumulators), then 4, then one at a time.
template <bool kL2>
inline float32x4_t transposed_step_neon(float32x4_t xi, float32x4_t c, float32x4_t acc) {
  if (kL2) {
    const float32x4_t diff = vsubq_f32(xi, c);
    return vfmaq_f32(acc, diff, diff);
  }
  return vfmaq_f32(acc, xi, c);
}

template <bool kL2>
void transposed_neon(const float* x, const float* ct, size_t d, size_t k, size_t ldc, float* out) {
  size_t j = 0;
  for (; j + 16 <= k; j += 16) {
    float32x4_t a0 = vdupq_n_f32(0), a1 = vdupq_n_f32(0), a2 = vdupq_n_f32(0), a3 = vdupq_n_f32(0);
    const float* col = ct + j;
    for (size_t i = 0; i < d; ++i, col += ldc) {
      const float32x4_t xi = vdupq_n_f32(x[i]);
      a0 = transposed_step_neon<kL2>(xi, vld1q_f32(col), a0);
      a1 = transposed_step_neon<kL2>(xi, vld1q_f32(col + 4), a1);
      a2 = transposed_step_neon<kL2>(xi, vld1q_f32(col + 8), a2);
      a3 = transposed_step_neon<kL2>(xi, vld1q_f32(col + 12), a3);
    }
    vst1q_f32(out + j, a0);
    vst1q_f32(out + j + 4, a1);
    vst1q_f32(out + j + 8, a2);
    vst1q_f32(out + j + 12, a3);
  }
  for (; j + 4 <= k; j += 4) {
    float32x4_t a0 = vdupq_n_f32(0);
    const float* col = ct + j;
    for (size_t i = 0; i < d; ++i, col += ldc) a0 = transposed_step_neon<kL2>(vdupq_n_f32(x[i]), vld1q_f32(col), a0);
    vst1q_f32(out + j, a0);
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

void dot_transposed_neon(const float* x, const float* ct, size_t d, size_t k, size_t ldc, float* out) {
  transposed_neon<false>(x, ct, d, k, ldc, out);
}

void l2sqr_transposed_neon(const float* x, const float* ct, size_t d, size_t k, size_t ldc, float* out) {
  transposed_neon<true>(x, ct, d, k, ldc, out);
}

// One vector at a time through dot_transposed_neon: the batch contract asks for the same bits as single calls.
void dot_transposed_batch_neon(const float* x, size_t nx, size_t ldx, const float* ct, size_t d, size_t k,
                               size_t ldc, float* out, size_t ldo) {
  for (size_t p = 0; p < nx; ++p) dot_transposed_neon(x + p * ldx, ct, d, k, ldc, out + p * ldo);
}


// 4-bit fast-scan: per pair, the block's 32 bytes are two 16-byte vectors; vqtbl1q_u8 looks up each nibble in its
// 16-entry table (NEON shifts bytes, so the high nibble needs no mask). Tables hold at most 127, so a pair's two
// look-ups add as bytes; the sums widen into four uint16x8 accumulators (rows 0–7, 8–15, 16–23, 24–31).
// The looked-up bytes of one pair for the block's 32 rows: rows 0–15 in `first`, 16–31 in `second`.
inline void fastscan_pair_neon(const uint8_t* codes, const uint8_t* lut_pair, uint8x16_t& first, uint8x16_t& second) {
  const uint8x16_t low_nibbles = vdupq_n_u8(0x0F);
  const uint8x16_t lo_table = vld1q_u8(lut_pair), hi_table = vld1q_u8(lut_pair + 16);
  const uint8x16_t a = vld1q_u8(codes), b = vld1q_u8(codes + 16);
  first = vaddq_u8(vqtbl1q_u8(lo_table, vandq_u8(a, low_nibbles)), vqtbl1q_u8(hi_table, vshrq_n_u8(a, 4)));
  second = vaddq_u8(vqtbl1q_u8(lo_table, vandq_u8(b, low_nibbles)), vqtbl1q_u8(hi_table, vshrq_n_u8(b, 4)));
}

// Two pairs a step, their bytes added with saturation (simd.h: sums are lower bounds), so that the four widening
// adds serve four sub-quantizers instead of two.
void fastscan_u4_neon(const uint8_t* blocks, size_t nblocks, size_t npairs, const uint8_t* lut, uint16_t* out,
                      uint16_t* block_min) {
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* block = blocks + b * npairs * 32;
    uint16x8_t acc0 = vdupq_n_u16(0), acc1 = vdupq_n_u16(0), acc2 = vdupq_n_u16(0), acc3 = vdupq_n_u16(0);
    const auto accumulate = [&](uint8x16_t first, uint8x16_t second) {
      acc0 = vaddw_u8(acc0, vget_low_u8(first));
      acc1 = vaddw_high_u8(acc1, first);
      acc2 = vaddw_u8(acc2, vget_low_u8(second));
      acc3 = vaddw_high_u8(acc3, second);
    };
    size_t p = 0;
    for (; p + 2 <= npairs; p += 2) {
      uint8x16_t first0, second0, first1, second1;
      fastscan_pair_neon(block + p * 32, lut + 32 * p, first0, second0);
      fastscan_pair_neon(block + (p + 1) * 32, lut + 32 * (p + 1), first1, second1);
      accumulate(vqaddq_u8(first0, first1), vqaddq_u8(second0, second1));
    }
    if (p < npairs) {
      uint8x16_t first, second;
      fastscan_pair_neon(block + p * 32, lut + 32 * p, first, second);
      accumulate(first, second);
    }
    uint16_t* sums = out + b * 32;
    vst1q_u16(sums, acc0);
    vst1q_u16(sums + 8, acc1);
    vst1q_u16(sums + 16, acc2);
    vst1q_u16(sums + 24, acc3);
    block_min[b] = vminvq_u16(vminq_u16(vminq_u16(acc0, acc1), vminq_u16(acc2, acc3)));
  }
}

void fastscan_exact_u4_reference(const uint8_t* block, size_t m_count, const float* lut, float* out) {
  kScalarKernels.fastscan_exact_u4(block, m_count, lut, out);
}

void adc_sums_u8_reference(const uint8_t* codes, size_t n, size_t m_count, const uint8_t* qlut, uint16_t* sums,
                           uint16_t* block_min) {
  kScalarKernels.adc_sums_u8(codes, n, m_count, qlut, sums, block_min);
}

float l2sqr_f16_reference(const float* q, const uint16_t* v, size_t d) { return kScalarKernels.l2sqr_f16(q, v, d); }
float dot_f16_reference(const float* q, const uint16_t* v, size_t d) { return kScalarKernels.dot_f16(q, v, d); }
float l2sqr_sq8_reference(const float* a, const float* s, const uint8_t* c, size_t d) {
  return kScalarKernels.l2sqr_sq8(a, s, c, d);
}
float dot_sq8_reference(const float* w, const uint8_t* c, size_t d) { return kScalarKernels.dot_sq8(w, c, d); }
void lut16_sum_range_reference(const float* a, const float* b, size_t m_count, float* lut, float* lows, float* highs) {
  kScalarKernels.lut16_sum_range(a, b, m_count, lut, lows, highs);
}
void lut16_quantize_reference(const float* lut, size_t m_count, const float* lows, float scale, float top,
                              uint8_t* q) {
  kScalarKernels.lut16_quantize(lut, m_count, lows, scale, top, q);
}

void beam_scores_reference(const float* dots, const float* const* rows, size_t nrows, const float* norms, size_t k,
                           float* out, float* minima) {
  kScalarKernels.beam_scores(dots, rows, nrows, norms, k, out, minima);
}

}  // namespace

const Kernels kNeonKernels = {l2sqr_neon,
                              dot_neon,
                              dot_transposed_neon,
                              l2sqr_transposed_neon,
                              adc_scan_u8_interleaved,
                              fastscan_u4_neon,
                              fastscan_exact_u4_reference,
                              adc_sums_u8_reference,
                              false,
                              dot_transposed_batch_neon,
                              l2sqr_f16_reference,
                              dot_f16_reference,
                              l2sqr_sq8_reference,
                              dot_sq8_reference,
                              lut16_sum_range_reference,
                              lut16_quantize_reference,
                              queries_by_pairs<l2sqr_neon>,
                              queries_by_pairs<dot_neon>,
                              beam_scores_reference,
                              kth_smallest_lanes4};

}  // namespace quiver

#endif  // QUIVER_HAVE_NEON_KERNELS
