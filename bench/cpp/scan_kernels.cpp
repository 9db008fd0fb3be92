// The scan kernels alone, one thread, codes/s by SIMD level: the 4-bit fast-scan kernel (fastscan_u4, blocks
// of 32 codes, as PQ<M>x4fs stores them) and the 8-bit kernels (adc_scan_u8 on float tables, adc_sums_u8 on
// uint8 tables, which AVX-512 VBMI scans use to prune). No top-k, no tables built: what the inner loops
// sustain, to set beside the end-to-end q/s of the suite (bench/run-suite.js), which adds per-query work.
//
// Build (after the CMake build of the core, e.g. cmake -S . -B build/cpp && cmake --build build/cpp):
//   g++ -O3 -std=c++17 -Inative/core bench/cpp/scan_kernels.cpp build/cpp/libquiver_core.a -lpthread
//       -o build/cpp/bench_scan_kernels
// Run: ./build/cpp/bench_scan_kernels [--codes N] [--rounds R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "random.h"
#include "simd.h"

using namespace quiver;

namespace {

template <class F>
double best_seconds(int rounds, F&& run) {
  double best = 1e30;
  for (int r = 0; r < rounds; ++r) {
    const auto start = std::chrono::steady_clock::now();
    run();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

std::string first_line(const char* path, const char* prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
  size_t codes = 65536;  // 1 MiB of 4-bit PQ32 codes: the size of Fashion-MNIST's 60 000
  int rounds = 50;
  for (int a = 1; a + 1 < argc; a += 2) {
    if (std::strcmp(argv[a], "--codes") == 0) codes = std::max<size_t>(64, std::strtoul(argv[a + 1], nullptr, 10));
    if (std::strcmp(argv[a], "--rounds") == 0) rounds = std::max(1, std::atoi(argv[a + 1]));
  }
  codes = (codes + 63) / 64 * 64;
  std::printf("scan kernels alone, one thread: %s, %zu codes, best of %d rounds\n",
              first_line("/proc/cpuinfo", "model name").c_str(), codes, rounds);
  Rng rng(7);
  for (SimdLevel level : supported_simd_levels()) {
    const Kernels& k = kernels_for(level);
    for (size_t m : {16, 32, 56, 64}) {  // 4-bit: PQ<m>x4fs
      const size_t pairs = (m + 1) / 2, blocks = codes / 32;
      std::vector<uint8_t> data(blocks * pairs * 32), lut(pairs * 32);
      for (auto& b : data) b = uint8_t(rng.below(256));
      for (auto& v : lut) v = uint8_t(rng.below(128));
      std::vector<uint16_t> sums(32 * 32), block_min(32);
      const double s = best_seconds(rounds, [&] {
        for (size_t b = 0; b < blocks; b += 32)
          k.fastscan_u4(data.data() + b * pairs * 32, std::min<size_t>(32, blocks - b), pairs, lut.data(), sums.data(),
                        block_min.data());
      });
      std::printf("  %-7s fastscan_u4   PQ%zux4fs  %6.2f G codes/s\n", simd_level_name(level), m, codes / s / 1e9);
    }
    for (size_t m : {8, 16, 32, 64}) {  // 8-bit: PQ<m>x8
      std::vector<uint8_t> data(codes * m), qlut(m * 256);
      for (auto& b : data) b = uint8_t(rng.below(256));
      for (auto& v : qlut) v = uint8_t(rng.below(256));
      std::vector<float> lut(m * 256), out(1024);
      for (auto& v : lut) v = float(rng.below(1000));
      std::vector<uint16_t> sums(1024), block_min(16);
      const double f = best_seconds(rounds, [&] {
        for (size_t i = 0; i < codes; i += 1024) k.adc_scan_u8(data.data() + i * m, 1024, m, lut.data(), out.data());
      });
      const double u = best_seconds(rounds, [&] {
        for (size_t i = 0; i < codes; i += 1024)
          k.adc_sums_u8(data.data() + i * m, 1024, m, qlut.data(), sums.data(), block_min.data());
      });
      std::printf("  %-7s adc_scan_u8   PQ%zux8    %6.2f G codes/s   adc_sums_u8 %6.2f G codes/s%s\n",
                  simd_level_name(level), m, codes / f / 1e9, codes / u / 1e9,
                  k.adc_sums_u8_fast ? " (pruning scans use it)" : "");
    }
  }
}
