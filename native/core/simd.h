// Runtime-dispatched numeric kernels. Every kernel has a portable scalar reference; x86-64 builds add AVX2+FMA
// and AVX-512 variants compiled with function-level target attributes (so one binary, built without -march,
// runs everywhere and picks the best level the CPU has at start-up); AArch64 builds add NEON. The level can be
// forced with the environment variable QUIVER_SIMD=scalar|avx2|avx512|neon or set_simd_level(); tests compare
// every level the CPU supports against the scalar reference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace quiver {

enum class SimdLevel { Scalar = 0, AVX2 = 1, AVX512 = 2, Neon = 3 };

const char* simd_level_name(SimdLevel level);
bool parse_simd_level(const char* name, SimdLevel* out);

struct Kernels {
  // Σ (a[i] − b[i])² over i < d.
  float (*l2sqr)(const float* a, const float* b, size_t d);
  // Σ a[i]·b[i] over i < d.
  float (*dot)(const float* a, const float* b, size_t d);
  // out[j] = Σ_i x[i] · ct[i·ldc + j] for j < k: dot products of x (d floats) with k vectors stored transposed
  // (ct is d rows of ldc ≥ k floats). This layout lets SIMD lanes run over vectors, with no horizontal sums.
  void (*dot_transposed)(const float* x, const float* ct, size_t d, size_t k, size_t ldc, float* out);
  // out[j] = Σ_i (x[i] − ct[i·ldc + j])² for j < k: squared L2 distances to k vectors stored as above (PQ's
  // look-up tables: one call per sub-space instead of ksub horizontal sums).
  void (*l2sqr_transposed)(const float* x, const float* ct, size_t d, size_t k, size_t ldc, float* out);
  // ADC scan of 8-bit codes: out[i] = Σ_m lut[m·256 + codes[i·m_count + m]] for i < n.
  // codes: n × m_count bytes; lut: m_count × 256 floats.
  void (*adc_scan_u8)(const uint8_t* codes, size_t n, size_t m_count, const float* lut, float* out);
  // 4-bit fast-scan over blocks of 32 codes (layout in fastscan.h): out[b·32 + j] = Σ_m lut[m·16 + c_m(j)]
  // for every block b < nblocks, as uint16 sums, and block_min[b] = the smallest of block b's 32 out values
  // (so callers skip whole blocks). The sums are lower bounds, which is all pruning needs: a SIMD kernel may
  // add the bytes of two pairs (four sub-quantizers) with saturation, so a part over 255 counts as 255; out is
  // then either exact or ≥ 255, and exact whenever no four looked-up entries pass 255 (entries ≤ 63). The
  // scalar reference is exact. lut: 2·npairs rows of 16 uint8, each entry ≤ 127 (the SIMD kernels add a
  // pair's two looked-up bytes as bytes); out: nblocks × 32; block_min: nblocks.
  void (*fastscan_u4)(const uint8_t* blocks, size_t nblocks, size_t npairs, const uint8_t* lut, uint16_t* out,
                      uint16_t* block_min);
  // Exact float 4-bit ADC of one fast-scan block (layout in fastscan.h): out[j] = Σ_m lut[m·16 + c_m(j)] for its
  // 32 rows, summed as FastScanTable::exact does (even sub-quantizers, odd ones, then their sum), so every level
  // gives the same bits. lut: m_count × 16 floats; block: ⌈m_count/2⌉ × 32 bytes; out: 32 floats.
  void (*fastscan_exact_u4)(const uint8_t* block, size_t m_count, const float* lut, float* out);
  // 8-bit ADC with uint8 tables, for pruning before exact scoring: sums[i] = Σ_m qlut[m·256 + codes[i·m_count + m]]
  // for i < n, exact in uint16 (callers keep m_count ≤ 256, so no sum exceeds 255·256), and block_min[b] = the
  // smallest of sums[64b … min(64b + 63, n − 1)]. codes: n × m_count bytes (row-major, as stored);
  // qlut: m_count × 256 bytes; sums: n; block_min: ⌈n / 64⌉.
  void (*adc_sums_u8)(const uint8_t* codes, size_t n, size_t m_count, const uint8_t* qlut, uint16_t* sums,
                      uint16_t* block_min);
  // True when adc_sums_u8 is several times faster than adc_scan_u8 for m_count a multiple of 8 (AVX-512 VBMI
  // holds a whole 256-entry uint8 table in four registers and looks up 64 codes per vpermi2b pair), so 8-bit
  // ADC scans prune with it; elsewhere it costs as much as the float scan and scans do not use it.
  bool adc_sums_u8_fast;
  // dot_transposed for nx vectors at once: out[p·ldo + j] = Σ_i x[p·ldx + i] · ct[i·ldc + j] for p < nx, j < k.
  // Several vectors share every load of the table, which a one-vector call streams whole from cache each
  // time (k-means assignment and beam search are bound by that). Every output is computed with exactly the
  // operations of dot_transposed, so both give bit-identical results.
  void (*dot_transposed_batch)(const float* x, size_t nx, size_t ldx, const float* ct, size_t d, size_t k,
                               size_t ldc, float* out, size_t ldo);
  // Refine against IEEE binary16 vectors (refine.h): Σ (q[i] − h(v[i]))² and Σ q[i]·h(v[i]) over i < d, where
  // h converts half to float exactly. q: d floats; v: d halves.
  float (*l2sqr_f16)(const float* q, const uint16_t* v, size_t d);
  float (*dot_f16)(const float* q, const uint16_t* v, size_t d);
  // Refine against 8-bit scalar-quantised vectors: Σ (a[i] − s[i]·c[i])² and Σ w[i]·c[i] over i < d
  // (a, s, w: d floats; c: d uint8 codes).
  float (*l2sqr_sq8)(const float* a, const float* s, const uint8_t* c, size_t d);
  float (*dot_sq8)(const float* w, const uint8_t* c, size_t d);
  // The 4-bit fast-scan's tables, built once per query and probed list (lut_quant.h). lut16_sum_range:
  // lut[i] = a[i] + b[i] (b null: a[i]; lut may be a) for i < 16·m_count, and lows[m] / highs[m] = the smallest
  // and largest entry of table m (lut + 16m). lut16_quantize: q[i] = (uint8) min(top, (lut[i] − lows[m])·scale
  // + ½), truncated, for table m of entry i (0 ≤ q ≤ top ≤ 255; levels may round the product-sum once or twice,
  // so bytes may differ by one between levels: the scans' pruning bound allows a step of float error).
  // a, b, lut: m_count × 16 floats; lows, highs: m_count; q: m_count × 16 bytes.
  void (*lut16_sum_range)(const float* a, const float* b, size_t m_count, float* lut, float* lows, float* highs);
  void (*lut16_quantize)(const float* lut, size_t m_count, const float* lows, float scale, float top, uint8_t* q);
  // One stored vector x (d floats) against a group of nq ≤ kMaxQueryGroup queries (rows of ldq floats):
  // out[q] = l2sqr(query q, x) / dot(query q, x), bit for bit what this level's l2sqr / dot return (Flat
  // searches score query groups so that each stored vector is read once per group).
  void (*l2sqr_queries)(const float* queries, size_t nq, size_t ldq, const float* x, size_t d, float* out);
  void (*dot_queries)(const float* queries, size_t nq, size_t ldq, const float* x, size_t d, float* out);
  // One beam-search entry's scores for the next RQ stage from cross tables (rq.h): out[j] = norms[j] −
  // 2·(dots[j] − rows[0][j] − rows[1][j] − … − rows[nrows − 1][j]), subtracted in that order, for j < k —
  // element-wise, so every level gives the scalar values bit for bit. dots, norms, out and each row: k floats.
  // minima: null, or (k a multiple of 16) k/16 floats that get the smallest non-NaN value of each chunk
  // out[16c … 16c + 15] (+infinity when all are NaN), which the beam's selection bounds itself with.
  void (*beam_scores)(const float* dots, const float* const* rows, size_t nrows, const float* norms, size_t k,
                      float* out, float* minima);
  // The kth smallest (kth ≥ 1, repeats counted) of the values below +infinity in values[0 … n) — NaNs and
  // +infinity do not count — or +infinity when fewer than kth are: the bound of the beam search's selection
  // (rq.cpp). Level by level: from the smallest value, each pass counts the copies of the current level and
  // finds the next larger value, with no data-dependent branch but the loop's end; up to kth passes over the n
  // values. An exact order statistic, so every level gives the same value.
  float (*kth_smallest)(const float* values, size_t n, size_t kth);
};

// Largest query group l2sqr_queries / dot_queries take.
constexpr size_t kMaxQueryGroup = 8;

// Kernels of the active level.
const Kernels& kernels();
// Kernels of a given level; throws Unsupported when this CPU or build lacks it.
const Kernels& kernels_for(SimdLevel level);

SimdLevel simd_level();                 // the active level
SimdLevel best_supported_simd_level();  // what this CPU and build can run
bool simd_level_supported(SimdLevel level);
std::vector<SimdLevel> supported_simd_levels();
void set_simd_level(SimdLevel level);   // throws Unsupported when not supported

// Per-level tables, defined in kernels_*.cpp.
extern const Kernels kScalarKernels;
#if defined(__x86_64__) || defined(_M_X64)
#define QUIVER_HAVE_X86_KERNELS 1
extern const Kernels kAvx2Kernels;
extern const Kernels kAvx512Kernels;
extern const Kernels kAvx512VbmiKernels;  // the AVX-512 level on CPUs with AVX512_VBMI (kernels_for picks it)
#endif
#if defined(__aarch64__)
#define QUIVER_HAVE_NEON_KERNELS 1
extern const Kernels kNeonKernels;  // AArch64: NEON is part of the base ISA
#endif

}  // namespace quiver
