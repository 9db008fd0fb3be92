// Why the 4-bit fast-scan kernel runs at about 2.5 G codes/s per core on Zen 4, and what would change that:
// one thread, L2-resident codes (8 000 rows of PQ32x4, 16 bytes each), variants of the inner step timed side by
// side, plus the throughput of single AVX-512 instructions. Self-contained (it does not link the core): the
// variants are stripped copies of the kernel's step (kernels_x86.cpp, fastscan_u4_avx512), some deliberately
// computing wrong sums, because the point is which instructions bound the loop, not the results.
//
// Build: g++ -O2 -std=c++17 -mavx512f -mavx512bw -mavx512vl -mavx512vbmi -mavx512vnni -mgfni
//            bench/cpp/fastscan_ports.cpp -o build/bench_fastscan_ports
// Run:   ./build/bench_fastscan_ports [rows]      (needs AVX-512 BW, VBMI, VNNI and GFNI)
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

namespace {

constexpr double kGhzForCycles = 3.7;  // the development machine's clock (calibrated by the add256 line below)

template <class F>
double best_seconds(int reps, F&& run) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    run();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

// The kernel's step: 64 bytes of codes = 32 rows × 2 pairs of sub-quantizers; look-ups with vpshufb, the pair
// sums added as bytes, then accumulated as uint16 (even rows in `mixed`, odd rows via vpmaddubsw).
enum class Step {
  AsShipped,        // and, srli, and, 2 × vpshufb, add8, add16, vpmaddubsw, add16
  NoNibbleShift,    // the high nibble's shift left out (wrong sums): what the shift costs
  NibbleByGfni,     // the high nibble by one gf2p8affineqb instead of srli + and
  NibbleByMulhi,    // the high nibble by vpmulhuw (× 2^12, high half) + and: a multiply instead of a shift
  OddByShift,       // odd rows by srli 8 + add16 instead of vpmaddubsw
  OneLookup,        // one vpshufb per step (wrong sums): the floor with half the look-ups
};

template <Step S>
__attribute__((noinline)) void pair_step_kernel(const uint8_t* blocks, size_t nblocks, const uint8_t* tables,
                                                uint16_t* out) {
  __m512i lo[8], hi[8];
  for (int s = 0; s < 8; ++s) {
    lo[s] = _mm512_loadu_si512(tables + 64 * s);
    hi[s] = _mm512_loadu_si512(tables + 512 + 64 * s);
  }
  const __m512i low_nibbles = _mm512_set1_epi8(0x0F), odd_bytes = _mm512_set1_epi16(0x0100);
  const __m512i shift4 = _mm512_set1_epi16(0x1000), high_nibble_matrix = _mm512_set1_epi64(0x0102040800000000LL);
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* block = blocks + b * 512;
    __m512i mixed = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
    for (int s = 0; s < 8; ++s) {
      const __m512i c = _mm512_loadu_si512(block + 64 * s);
      __m512i high;
      if (S == Step::NoNibbleShift) high = _mm512_andnot_si512(c, low_nibbles);
      else if (S == Step::NibbleByGfni) high = _mm512_gf2p8affine_epi64_epi8(c, high_nibble_matrix, 0);
      else if (S == Step::NibbleByMulhi) high = _mm512_and_si512(_mm512_mulhi_epu16(c, shift4), low_nibbles);
      else high = _mm512_and_si512(_mm512_srli_epi16(c, 4), low_nibbles);
      const __m512i first = _mm512_shuffle_epi8(lo[s], _mm512_and_si512(c, low_nibbles));
      const __m512i pair = S == Step::OneLookup ? first : _mm512_add_epi8(first, _mm512_shuffle_epi8(hi[s], high));
      mixed = _mm512_add_epi16(mixed, pair);
      odd = S == Step::OddByShift ? _mm512_add_epi16(odd, _mm512_srli_epi16(pair, 8))
                                  : _mm512_add_epi16(odd, _mm512_maddubs_epi16(pair, odd_bytes));
    }
    _mm512_storeu_si512(out + b * 32, _mm512_sub_epi16(mixed, _mm512_slli_epi16(odd, 8)));
  }
}

// Another layout: blocks of 16 rows whose 4-byte groups (8 sub-quantizers) sit side by side, so vpermb looks up
// 4 sub-quantizers' 16-entry tables at once (the byte's position picks the table) and vpdpbusd adds a row's
// 4 bytes into an int32: 7 instructions per 64 bytes instead of 9.
__attribute__((noinline)) void row_group_kernel(const uint8_t* codes, size_t nblocks, const uint8_t* tables,
                                                uint32_t* out) {
  __m512i tlo[4], thi[4];
  for (int g = 0; g < 4; ++g) {
    tlo[g] = _mm512_loadu_si512(tables + g * 128);
    thi[g] = _mm512_loadu_si512(tables + g * 128 + 64);
  }
  const __m512i mask = _mm512_set1_epi8(0x0F), ones = _mm512_set1_epi8(1);
  const __m512i position = _mm512_set1_epi32(0x30201000);  // bits 4–5: the byte's place in its group
  for (size_t b = 0; b < nblocks; ++b) {
    __m512i acc = _mm512_setzero_si512();
    for (int g = 0; g < 4; ++g) {
      const __m512i v = _mm512_loadu_si512(codes + b * 256 + g * 64);
      const __m512i low_index = _mm512_ternarylogic_epi32(v, mask, position, 0xEA);  // (v & mask) | position
      const __m512i high_index = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v, 4), mask, position, 0xEA);
      const __m512i sum = _mm512_add_epi8(_mm512_permutexvar_epi8(low_index, tlo[g]),
                                          _mm512_permutexvar_epi8(high_index, thi[g]));
      acc = _mm512_dpbusd_epi32(acc, sum, ones);
    }
    _mm512_storeu_si512(out + b * 16, acc);
  }
}

// Another: joint 256-entry tables per pair (the code byte itself is the index), 64-row blocks, two vpermi2b and
// a blend per 64 bytes, no nibble split.
__attribute__((noinline)) void joint_table_kernel(const uint8_t* blocks, size_t nblocks, const uint8_t* joint,
                                                  uint16_t* out) {
  const __m512i odd_bytes = _mm512_set1_epi16(0x0100);
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* block = blocks + b * 1024;
    __m512i mixed = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
    for (int p = 0; p < 16; p += 2) {
      __m512i sum = _mm512_setzero_si512();
      for (int q = 0; q < 2; ++q) {
        const uint8_t* t = joint + (p + q) * 256;
        const __m512i index = _mm512_loadu_si512(block + 64 * (p + q));
        const __m512i low_half = _mm512_permutex2var_epi8(_mm512_loadu_si512(t), index, _mm512_loadu_si512(t + 64));
        const __m512i high_half =
            _mm512_permutex2var_epi8(_mm512_loadu_si512(t + 128), index, _mm512_loadu_si512(t + 192));
        sum = _mm512_add_epi8(sum, _mm512_mask_blend_epi8(_mm512_movepi8_mask(index), low_half, high_half));
      }
      mixed = _mm512_add_epi16(mixed, sum);
      odd = _mm512_add_epi16(odd, _mm512_maddubs_epi16(sum, odd_bytes));
    }
    _mm512_storeu_si512(out + b * 64, _mm512_sub_epi16(mixed, _mm512_slli_epi16(odd, 8)));
  }
}

// Throughput of one instruction: 8 independent chains, 8 instructions per iteration.
template <class Op>
double instructions_per_ns(Op op) {
  const long iterations = 2000000;
  volatile int sink = 0;
  const double seconds = best_seconds(20, [&] {
    __m512i a0 = _mm512_set1_epi8(1), a1 = _mm512_set1_epi8(2), a2 = a0, a3 = a1, a4 = a0, a5 = a1, a6 = a0, a7 = a1;
    for (long i = 0; i < iterations; ++i) {
      a0 = op(a0); a1 = op(a1); a2 = op(a2); a3 = op(a3); a4 = op(a4); a5 = op(a5); a6 = op(a6); a7 = op(a7);
      __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7));
    }
    const __m512i all = _mm512_add_epi8(_mm512_add_epi8(_mm512_add_epi8(a0, a1), _mm512_add_epi8(a2, a3)),
                                        _mm512_add_epi8(_mm512_add_epi8(a4, a5), _mm512_add_epi8(a6, a7)));
    sink = sink + _mm_cvtsi128_si32(_mm512_castsi512_si128(all));
  });
  return double(iterations) * 8 / seconds / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t rows = argc > 1 ? size_t(std::atol(argv[1])) / 64 * 64 : 8000;
  std::vector<uint8_t> codes(rows * 16 + 4096), tables(8192);
  std::mt19937 rng(1);
  for (uint8_t& c : codes) c = uint8_t(rng());
  for (uint8_t& t : tables) t = uint8_t(rng() % 128);
  std::vector<uint16_t> sums16(rows + 64);
  std::vector<uint32_t> sums32(rows + 64);
  std::printf("## 4-bit fast-scan inner step variants, %zu rows of PQ32x4 (16 bytes each), one thread\n\n", rows);
  std::printf("| variant | G codes/s | cycles per 32 rows at %.1f GHz |\n|---|---:|---:|\n", kGhzForCycles);
  const auto report = [&](const char* name, double seconds) {
    std::printf("| %s | %.2f | %.1f |\n", name, double(rows) / seconds / 1e9, seconds / double(rows / 32) * kGhzForCycles * 1e9);
  };
  const size_t blocks32 = rows / 32;
  for (int round = 0; round < 2; ++round) {
    const bool print = round == 1;  // the first round warms caches and clocks
    const auto time_pair = [&](auto kernel, const char* name) {
      const double s = best_seconds(300, [&] { kernel(codes.data(), blocks32, tables.data(), sums16.data()); });
      if (print) report(name, s);
    };
    time_pair(pair_step_kernel<Step::AsShipped>, "as shipped: and, srli, and, 2 vpshufb, add8, add16, vpmaddubsw, add16");
    time_pair(pair_step_kernel<Step::NoNibbleShift>, "high nibble's srli left out (wrong sums)");
    time_pair(pair_step_kernel<Step::NibbleByGfni>, "high nibble by gf2p8affineqb");
    time_pair(pair_step_kernel<Step::NibbleByMulhi>, "high nibble by vpmulhuw");
    time_pair(pair_step_kernel<Step::OddByShift>, "odd rows by srli 8 instead of vpmaddubsw");
    time_pair(pair_step_kernel<Step::OneLookup>, "one vpshufb per step (wrong sums)");
    const double rg = best_seconds(300, [&] { row_group_kernel(codes.data(), rows / 16, tables.data(), sums32.data()); });
    if (print) report("16-row groups: vpermb look-ups, vpdpbusd sums (7 instructions per 64 bytes)", rg);
    const double jt = best_seconds(300, [&] { joint_table_kernel(codes.data(), rows / 64, tables.data(), sums16.data()); });
    if (print) report("joint 256-entry pair tables: 2 vpermi2b + blend per 64 bytes", jt);
  }
  const __m512i k = _mm512_set1_epi8(3), t = _mm512_set1_epi8(5);
  std::printf("\n## Single-instruction throughput (8 independent chains)\n\n| instruction | per ns | per cycle at %.1f GHz |\n|---|---:|---:|\n", kGhzForCycles);
  const auto line = [&](const char* name, double per_ns) { std::printf("| %s | %.2f | %.2f |\n", name, per_ns, per_ns / kGhzForCycles); };
  line("vpaddw ymm (calibration: 4 per cycle)", instructions_per_ns([&](__m512i a) {
         return _mm512_castsi256_si512(_mm256_add_epi16(_mm512_castsi512_si256(a), _mm512_castsi512_si256(k)));
       }));
  line("vpaddw zmm", instructions_per_ns([&](__m512i a) { return _mm512_add_epi16(a, k); }));
  line("vpternlogd zmm", instructions_per_ns([&](__m512i a) { return _mm512_ternarylogic_epi32(a, k, t, 0xEA); }));
  line("vpsrlw zmm", instructions_per_ns([&](__m512i a) { return _mm512_srli_epi16(a, 1); }));
  line("vpshufb zmm", instructions_per_ns([&](__m512i a) { return _mm512_shuffle_epi8(t, a); }));
  line("vpshufb ymm", instructions_per_ns([&](__m512i a) {
         return _mm512_castsi256_si512(_mm256_shuffle_epi8(_mm512_castsi512_si256(t), _mm512_castsi512_si256(a)));
       }));
  line("vpermb zmm", instructions_per_ns([&](__m512i a) { return _mm512_permutexvar_epi8(a, t); }));
  line("vpmaddubsw zmm", instructions_per_ns([&](__m512i a) { return _mm512_maddubs_epi16(a, k); }));
  line("vpmulhuw zmm", instructions_per_ns([&](__m512i a) { return _mm512_mulhi_epu16(a, k); }));
  line("gf2p8affineqb zmm", instructions_per_ns([&](__m512i a) { return _mm512_gf2p8affine_epi64_epi8(a, k, 0); }));
  line("vpdpbusd zmm", instructions_per_ns([&](__m512i a) { return _mm512_dpbusd_epi32(a, k, t); }));
  return 0;
}
