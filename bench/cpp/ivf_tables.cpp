// IVF speed paths on the SIFT slice, one thread, one query per call, at several nprobe:
//   1. IVF<nlist>,PQ16x8 with and without the precomputed tables;
//   2. IVF<nlist>,PQ32x4 against IVF<nlist>,PQ32x4fs (fast-scan lists; both with precomputed tables).
// Each pair is measured in interleaved rounds (A, B, A, B, …) so that both see the same machine load; the
// best round of each, their ratio, the 10-recall@10 of both and the load average before and after are printed.
//
// Build (after the CMake build of the core):
//   g++ -O3 -std=c++17 -Inative/core -Inative/tests bench/cpp/ivf_tables.cpp build/cpp/libquiver_core.a
//       -lpthread -o build/cpp/bench_ivf_tables
// Run from the repository root (QUIVER_DATA_DIR overrides ../shared/data):
//   ./build/cpp/bench_ivf_tables [--rounds N] [--nlist L]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ivf.h"
#include "simd.h"
#include "spec.h"
#include "test_data.h"

using namespace quiver;

namespace {

std::string read_first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
  size_t rounds = 7, nlist = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--rounds") == 0) rounds = size_t(std::atoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--nlist") == 0) nlist = size_t(std::atoi(argv[i + 1]));
  }
  std::vector<float> base, queries;
  size_t n = 0, d = 0, nq = 0, dq = 0;
  if (!qvtest::load_sift_heldout_base(&base, &n, &d)) return 1;
  if (!qvtest::read_bvecs(qvtest::data_dir() + "/bigann10k/bigann10k_heldout_query.bvecs", &queries, &nq, &dq) ||
      dq != d) {
    std::fprintf(stderr, "cannot read the held-out queries\n");
    return 1;
  }
  const size_t k = 10;
  // Exact neighbours for recall.
  std::vector<std::vector<size_t>> truth(nq);
  for (size_t q = 0; q < nq; ++q) {
    std::vector<std::pair<float, size_t>> all(n);
    for (size_t i = 0; i < n; ++i) all[i] = {kScalarKernels.l2sqr(&queries[q * d], &base[i * d], d), i};
    std::partial_sort(all.begin(), all.begin() + k, all.end());
    for (size_t j = 0; j < k; ++j) truth[q].push_back(all[j].second);
  }
  const std::string load_before = read_first_line("/proc/loadavg");
  std::printf("# SIFT slice (%zu base, %zu queries), one thread, one query per call, SIMD %s, best of %zu rounds\n",
              n, nq, simd_level_name(simd_level()), rounds);
  std::printf("# CPU: %s; load average before: %s\n", cpu_model().c_str(), load_before.c_str());
  TrainContext ctx;
  ctx.seed = 1;
  const auto build = [&](const std::string& spec) {
    auto index = make_index(spec, d, Metric::L2);
    index->train(n, base.data(), ctx);
    index->add(n, base.data(), nullptr, 0);
    return index;
  };
  // Runs `a` and `b` (setup(mode) switches between them) in interleaved rounds at every nprobe.
  const auto compare = [&](const char* name_a, const char* name_b, const std::function<const Index&(int)>& setup) {
    std::printf("\n| nprobe | q/s %s | q/s %s | ratio | 10-recall@10 (%s / %s) |\n", name_a, name_b, name_a, name_b);
    std::printf("|---:|---:|---:|---:|---|\n");
    for (const size_t nprobe : {1, 4, 16, 64}) {
      if (nprobe > nlist) continue;
      SearchParams p;
      p.nprobe = nprobe;
      p.threads = 1;
      std::vector<int64_t> labels(nq * k);
      std::vector<float> distances(nq * k);
      double best[2] = {0, 0}, recall[2] = {0, 0};
      for (size_t r = 0; r < rounds; ++r)
        for (int mode = 0; mode < 2; ++mode) {
          const Index& index = setup(mode);
          const auto start = std::chrono::steady_clock::now();
          for (size_t q = 0; q < nq; ++q) index.search(1, &queries[q * d], k, p, &labels[q * k], &distances[q * k]);
          const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          best[mode] = std::max(best[mode], double(nq) / s);
          size_t hits = 0;
          for (size_t q = 0; q < nq; ++q)
            for (size_t j = 0; j < k; ++j)
              hits += std::count(truth[q].begin(), truth[q].end(), size_t(labels[q * k + j])) ? 1 : 0;
          recall[mode] = double(hits) / double(nq * k);
        }
      std::printf("| %zu | %.0f | %.0f | %.2f× | %.3f / %.3f |\n", nprobe, best[0], best[1], best[1] / best[0],
                  recall[0], recall[1]);
      std::fflush(stdout);
    }
  };
  const std::string nl = "IVF" + std::to_string(nlist);
  {
    auto index = build(nl + ",PQ16x8");
    auto* ivf = dynamic_cast<IVFIndex*>(index.get());
    std::printf("\n## %s,PQ16x8: per-list tables (A) vs precomputed tables (B)\n", nl.c_str());
    compare("per-list", "precomputed", [&](int mode) -> const Index& {
      ivf->set_precomputed_tables(mode == 1);
      return *index;
    });
  }
  {
    auto plain = build(nl + ",PQ32x4"), fast = build(nl + ",PQ32x4fs");
    std::printf("\n## %s,PQ32x4 (A) vs %s,PQ32x4fs (B), both with precomputed tables\n", nl.c_str(), nl.c_str());
    compare("PQ32x4", "PQ32x4fs", [&](int mode) -> const Index& { return mode == 0 ? *plain : *fast; });
  }
  std::printf("# load average after: %s\n", read_first_line("/proc/loadavg").c_str());
  return 0;
}
