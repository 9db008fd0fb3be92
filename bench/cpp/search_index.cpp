// Times searches of a saved index without Node in the way: all queries in one call (batch) and one query per
// call (single), one thread unless --threads says otherwise, best of --rounds rounds of --seconds each. Prints
// q/s, 10-recall@10 and a hash of the results (ids and distance bits), so that two builds or SIMD levels
// (QUIVER_SIMD=avx2 …) can be checked to return the same results while their speeds are compared.
//
// Inputs come from bench/save-index.js:
//   node bench/save-index.js --dataset fashion-mnist --spec "IVF1024,PQ16x8" --out /tmp/quiver-bench
// Build (after the CMake build of the core):
//   g++ -O3 -std=c++17 -Inative/core bench/cpp/search_index.cpp build/cpp/libquiver_core.a -lpthread
//       -o build/cpp/bench_search_index
// Run:
//   ./build/cpp/bench_search_index --index /tmp/quiver-bench/IVF1024_PQ16x8.qvr
//       --queries /tmp/quiver-bench/queries.fvecs --gt /tmp/quiver-bench/groundtruth.ivecs [--nprobe 1]
//       [--refine 1] [--mode batch|single|both] [--seconds 2] [--rounds 3] [--threads 1]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "index.h"
#include "io.h"
#include "simd.h"

using namespace quiver;

namespace {

// TEXMEX .fvecs / .ivecs: per row an int32 dim, then dim 4-byte values. Returns rows × dim values.
template <typename T>
std::vector<T> read_vecs(const std::string& path, size_t* rows, size_t* dim) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", path.c_str());
    std::exit(2);
  }
  std::vector<T> values;
  *rows = 0;
  int32_t d = 0;
  while (in.read(reinterpret_cast<char*>(&d), 4)) {
    if (d <= 0 || (*rows > 0 && size_t(d) != *dim)) {
      std::fprintf(stderr, "%s: row %zu has dimension %d\n", path.c_str(), *rows, d);
      std::exit(2);
    }
    *dim = size_t(d);
    values.resize((*rows + 1) * *dim);
    in.read(reinterpret_cast<char*>(&values[*rows * *dim]), std::streamsize(*dim * 4));
    ++*rows;
  }
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  std::string index_path, queries_path, gt_path, mode = "both";
  SearchParams params;
  params.threads = 1;
  double seconds = 2;
  int rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--index") index_path = v;
    else if (a == "--queries") queries_path = v;
    else if (a == "--gt") gt_path = v;
    else if (a == "--nprobe") params.nprobe = std::strtoul(v.c_str(), nullptr, 10);
    else if (a == "--refine") params.refine = std::strtoul(v.c_str(), nullptr, 10);
    else if (a == "--threads") params.threads = std::atoi(v.c_str());
    else if (a == "--mode") mode = v;
    else if (a == "--seconds") seconds = std::atof(v.c_str());
    else if (a == "--rounds") rounds = std::atoi(v.c_str());
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (index_path.empty() || queries_path.empty() || gt_path.empty()) {
    std::fprintf(stderr, "--index, --queries and --gt are required (see the header of bench/cpp/search_index.cpp)\n");
    return 2;
  }
  const auto index = Index::deserialize(read_file(index_path), false);
  size_t nq = 0, d = 0, gt_rows = 0, gt_k = 0;
  const auto queries = read_vecs<float>(queries_path, &nq, &d);
  const auto gt = read_vecs<int32_t>(gt_path, &gt_rows, &gt_k);
  if (d != index->dim() || gt_rows != nq || gt_k < 10) {
    std::fprintf(stderr, "queries (%zu × %zu) or ground truth (%zu × %zu) do not fit the index (dim %zu)\n", nq, d,
                 gt_rows, gt_k, index->dim());
    return 2;
  }
  const size_t k = 10;
  std::vector<int64_t> labels(nq * k);
  std::vector<float> distances(nq * k);
  index->search(nq, queries.data(), k, params, labels.data(), distances.data());
  size_t hits = 0;
  uint64_t hash = 1469598103934665603ull;  // FNV-1a over ids and distance bits
  for (size_t q = 0; q < nq; ++q) {
    const std::set<int64_t> truth(&gt[q * gt_k], &gt[q * gt_k] + k);
    for (size_t j = 0; j < k; ++j) {
      hits += truth.count(labels[q * k + j]);
      uint32_t bits;
      std::memcpy(&bits, &distances[q * k + j], 4);
      hash = (hash ^ uint64_t(labels[q * k + j])) * 1099511628211ull;
      hash = (hash ^ bits) * 1099511628211ull;
    }
  }
  const auto best_rate = [&](auto&& one_round) {
    double best = 0;
    for (int r = 0; r < rounds; ++r) {
      const auto start = std::chrono::steady_clock::now();
      size_t done = 0;
      double elapsed = 0;
      do {
        done += one_round(done);
        elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      } while (elapsed < seconds);
      best = std::max(best, double(done) / elapsed);
    }
    return best;
  };
  std::printf("%s  %s  nprobe %zu refine %zu threads %d  SIMD %s  10-R@10 %.4f  hash %016llx\n",
              index->spec().c_str(), index_path.c_str(), params.nprobe, params.refine, params.threads,
              simd_level_name(simd_level()), double(hits) / double(nq * k), static_cast<unsigned long long>(hash));
  if (mode == "batch" || mode == "both") {
    const double qps = best_rate([&](size_t) {
      index->search(nq, queries.data(), k, params, labels.data(), distances.data());
      return nq;
    });
    std::printf("  batch q/s %.0f\n", qps);
  }
  if (mode == "single" || mode == "both") {
    const double qps = best_rate([&](size_t done) {
      for (size_t i = 0; i < 100; ++i)
        index->search(1, queries.data() + ((done + i) % nq) * d, k, params, labels.data(), distances.data());
      return size_t(100);
    });
    std::printf("  single q/s %.0f\n", qps);
  }
  return 0;
}
