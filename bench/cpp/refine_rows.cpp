// Re-scoring rows of a refine store at random, as a search with refine does after its candidate list: how the
// order in which rows are requested from memory changes the time per query. One thread; the store is larger
// than the caches (default 60 000 × 784 int8 rows = 47 MB, Fashion-MNIST's size), the candidates are random rows.
//
//   L1 ahead 4       : each row prefetched into L1 four candidates before it is scored (the earlier loop)
//   L2 wave + L1 4   : every candidate row (up to 256 KiB) requested into L2 first, then L1 four ahead
//                      (Index::finish_query's loop)
//   none             : no prefetch
// A 64 MiB buffer is swept between rounds so that each round starts with cold caches.
//
// Build (after the CMake build of the core):
//   g++ -O3 -std=c++17 -Inative/core bench/cpp/refine_rows.cpp build/cpp/libquiver_core.a -lpthread
//       -o build/cpp/bench_refine_rows
// Run: ./build/cpp/bench_refine_rows [--rows N] [--dim D] [--candidates C] [--store int8|fp16|f32]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "random.h"
#include "refine.h"
#include "simd.h"

using namespace quiver;

int main(int argc, char** argv) {
  size_t rows = 60000, dim = 784, candidates = 100, queries = 2000;
  std::string store_name = "int8";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--rows") rows = std::strtoul(argv[i + 1], nullptr, 10);
    else if (a == "--dim") dim = std::strtoul(argv[i + 1], nullptr, 10);
    else if (a == "--candidates") candidates = std::strtoul(argv[i + 1], nullptr, 10);
    else if (a == "--store") store_name = argv[i + 1];
  }
  RefineStorage storage;
  if (!parse_refine_storage(store_name, &storage) || storage == RefineStorage::None) {
    std::fprintf(stderr, "--store: expected int8, fp16 or f32, got %s\n", store_name.c_str());
    return 2;
  }
  Rng rng(7);
  RefineStore store;
  store.configure(dim, storage);
  {
    std::vector<float> x(size_t(4096) * dim);
    for (auto& v : x) v = float(rng.below(256));
    store.train(4096, x.data());
    for (size_t done = 0; done < rows; done += 4096) {
      for (auto& v : x) v = float(rng.below(256));
      store.append(std::min<size_t>(4096, rows - done), x.data());
    }
  }
  std::vector<float> query(dim);
  for (auto& v : query) v = float(rng.below(256));
  const RefineStore::Query prepared = store.prepare(query.data(), Metric::L2);
  std::vector<size_t> picks(queries * candidates);
  for (auto& r : picks) r = rng.below(uint32_t(rows));
  std::vector<uint8_t> sweep(size_t(64) << 20, 1);

  const size_t l2_ahead = std::max<size_t>(4, (size_t(256) << 10) / store.row_bytes());
  const char* names[] = {"none", "L1 ahead 4", "L2 wave + L1 4"};
  double best[3] = {1e30, 1e30, 1e30};
  float sink = 0;
  for (int round = 0; round < 4; ++round) {
    for (int strategy = 0; strategy < 3; ++strategy) {
      for (size_t i = 0; i < sweep.size(); i += 64) sweep[i]++;
      const auto start = std::chrono::steady_clock::now();
      for (size_t q = 0; q < queries; ++q) {
        const size_t* rs = &picks[q * candidates];
        if (strategy == 2)
          for (size_t i = 0; i < std::min(l2_ahead, candidates); ++i) store.prefetch(rs[i], RefineStore::Level::L2);
        if (strategy >= 1)
          for (size_t i = 0; i < std::min<size_t>(4, candidates); ++i) store.prefetch(rs[i]);
        for (size_t i = 0; i < candidates; ++i) {
          if (strategy == 2 && i + l2_ahead < candidates) store.prefetch(rs[i + l2_ahead], RefineStore::Level::L2);
          if (strategy >= 1 && i + 4 < candidates) store.prefetch(rs[i + 4]);
          sink += store.distance(prepared, rs[i]);
        }
      }
      const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
      best[strategy] = std::min(best[strategy], us / double(queries));
    }
  }
  std::printf("refine rows: %zu × %zu %s (%.1f MB), %zu random candidates per query, SIMD %s (checksum %g)\n", rows,
              dim, store_name.c_str(), double(rows) * double(store.row_bytes()) / 1e6, candidates,
              simd_level_name(simd_level()), double(sink));
  std::printf("| prefetch | µs per query (best of 4) | vs L1 ahead 4 |\n|---|---:|---:|\n");
  for (int s = 0; s < 3; ++s) std::printf("| %s | %.2f | %.2f× |\n", names[s], best[s], best[1] / best[s]);
}
