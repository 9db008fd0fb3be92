// GPU kernels against the CPU path (the reference): k-means assignment and update, PQ / RQ (beam) / TRQ
// encoding, exact k-NN, ADC scans with top-k (exhaustive and IVF) and the index-level search, on random data and
// on the SIFT slice shipped in data/bigann10k. Exact-distance paths must give the same ids; float sums may differ
// in rounding, so code and result agreement is measured and bounded, and every disagreement must be a near tie.
// Without a usable GPU every case says so and passes: CI (no GPU) still compiles and links all of this.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <numeric>

#include "../cuda_api.h"
#include "check.h"
#include "error.h"
#include "gpu.h"
#include "index.h"
#include "kmeans.h"
#include "pq.h"
#include "random.h"
#include "rq.h"
#include "spec.h"
#include "test_data.h"
#include "test_util.h"
#include "trq.h"

namespace {

using namespace quiver;

bool gpu_present() {
  static const bool present = [] {
    const GpuStatus s = gpu_status();
    if (s.available)
      std::cout << "GPU: " << s.name << ", " << (s.total_memory >> 20) << " MiB, compute " << s.major << "." << s.minor
                << ", " << s.multiprocessors << " SMs, runtime " << s.runtime_version << ", driver "
                << s.driver_version << "\n";
    else
      std::cout << "no usable GPU (" << s.reason << "): GPU cases are skipped\n";
    return s.available;
  }();
  return present;
}

// The SIFT slice from the repository's data folder (the tests run from the root or from build/cuda).
bool load_sift(std::vector<float>* base, std::vector<float>* queries, size_t* d) {
  for (const char* dir : {"data/bigann10k", "../../data/bigann10k", "../data/bigann10k"}) {
    size_t n = 0, nq = 0, dq = 0;
    if (qvtest::read_bvecs(std::string(dir) + "/bigann10k_heldout_base.bvecs", base, &n, d) &&
        qvtest::read_bvecs(std::string(dir) + "/bigann10k_heldout_query.bvecs", queries, &nq, &dq))
      return true;
  }
  std::cout << "  (data/bigann10k not found: SIFT cases skipped)\n";
  return false;
}

double l2(const float* a, const float* b, size_t d) {
  double s = 0;
  for (size_t t = 0; t < d; ++t) s += (double(a[t]) - b[t]) * (double(a[t]) - b[t]);
  return s;
}

TEST_CASE("gpu: device info is consistent") {
  const GpuStatus s = gpu_status();
  CHECK(s.compiled);
  if (!gpu_present()) {
    CHECK(!s.reason.empty());
    return;
  }
  CHECK(!s.name.empty());
  CHECK(s.total_memory > 0);
  CHECK(s.major >= 7);
}

TEST_CASE("gpu: k-means assignment equals the CPU's, ties within rounding") {
  if (!gpu_present()) return;
  const size_t n = 5003, d = 37, k = 300;
  const std::vector<float> x = qvtest::random_floats(n * d, 11), c = qvtest::random_floats(k * d, 12);
  std::vector<int32_t> cpu(n), gpu(n);
  std::vector<float> cpu_d(n), gpu_d(n);
  assign_nearest(n, d, x.data(), k, c.data(), cpu.data(), cpu_d.data(), 0);
  cuda::assign_nearest(n, d, x.data(), d, k, c.data(), gpu.data(), gpu_d.data());
  size_t differ = 0;
  for (size_t i = 0; i < n; ++i) {
    CHECK_NEAR(gpu_d[i], cpu_d[i], 1e-4 * (1 + cpu_d[i]));
    if (gpu[i] != cpu[i]) {
      ++differ;
      const double a = l2(&x[i * d], &c[size_t(cpu[i]) * d], d), b = l2(&x[i * d], &c[size_t(gpu[i]) * d], d);
      CHECK_MSG(std::abs(a - b) <= 1e-4 * (1 + a), "row " << i << ": " << a << " vs " << b);
    }
  }
  CHECK_MSG(differ <= n / 1000, differ << " labels differ");
}

TEST_CASE("gpu: k-means update gives the member means") {
  if (!gpu_present()) return;
  const size_t n = 20000, d = 16, k = 64;
  const std::vector<float> x = qvtest::random_floats(n * d, 21);
  std::vector<int32_t> labels(n);
  Rng rng(5);
  for (auto& l : labels) l = int32_t(rng.below(k - 1));  // cluster k−1 stays empty
  std::vector<float> centroids = qvtest::random_floats(k * d, 22), before = centroids;
  std::vector<double> counts(k);
  cuda::update_centroids(n, d, x.data(), labels.data(), k, centroids.data(), counts.data());
  std::vector<double> sums(k * d, 0), ref_counts(k, 0);
  for (size_t i = 0; i < n; ++i) {
    ref_counts[size_t(labels[i])] += 1;
    for (size_t t = 0; t < d; ++t) sums[size_t(labels[i]) * d + t] += x[i * d + t];
  }
  for (size_t c = 0; c < k; ++c) {
    CHECK(counts[c] == ref_counts[c]);
    for (size_t t = 0; t < d; ++t) {
      const float expect = ref_counts[c] > 0 ? float(sums[c * d + t] / ref_counts[c]) : before[c * d + t];
      CHECK_NEAR(centroids[c * d + t], expect, 1e-6);
    }
  }
}

TEST_CASE("gpu: exact k-NN returns the CPU's ids") {
  if (!gpu_present()) return;
  std::vector<float> base, queries;
  size_t d = 0;
  if (!load_sift(&base, &queries, &d)) return;
  const size_t nb = base.size() / d, nq = queries.size() / d, k = 100;
  std::vector<int64_t> rows(nq * k);
  std::vector<float> scores(nq * k);
  cuda::exact_knn(nq, queries.data(), nb, base.data(), d, false, k, rows.data(), scores.data());
  size_t same = 0;
  for (size_t q = 0; q < nq; ++q) {
    std::vector<std::pair<double, int64_t>> ref(nb);
    for (size_t i = 0; i < nb; ++i) ref[i] = {l2(&queries[q * d], &base[i * d], d), int64_t(i)};
    std::partial_sort(ref.begin(), ref.begin() + k, ref.end());
    for (size_t j = 0; j < k; ++j) {
      same += rows[q * k + j] == ref[j].second;
      CHECK_NEAR(scores[q * k + j], ref[j].first, 1e-5 * (1 + ref[j].first));
    }
  }
  // SIFT distances are integers: exact in float, so the ids must be exactly the CPU's (ties to the lower row).
  CHECK_MSG(same == nq * k, same << " of " << nq * k << " ids equal");
}

// Reference top-k of an ADC scan in double: returns sorted (score, row).
std::vector<std::pair<double, int64_t>> adc_reference(const std::vector<uint8_t>& codes, size_t n, size_t m,
                                                      const float* lut, const uint64_t* allow, size_t k) {
  std::vector<std::pair<double, int64_t>> all;
  for (size_t i = 0; i < n; ++i) {
    if (allow && !((allow[i >> 6] >> (i & 63)) & 1)) continue;
    double s = 0;
    for (size_t j = 0; j < m; ++j) s += lut[j * 256 + codes[i * m + j]];
    all.push_back({s, int64_t(i)});
  }
  const size_t kk = std::min(k, all.size());
  std::partial_sort(all.begin(), all.begin() + kk, all.end());
  all.resize(kk);
  return all;
}

TEST_CASE("gpu: ADC scan top-k matches a double-precision reference") {
  if (!gpu_present()) return;
  struct Config {
    size_t n, m, nq, k;
    bool filter;
  };
  for (const Config cfg : {Config{10007, 8, 37, 10, false}, Config{50000, 16, 9, 100, false},
                           Config{3000, 12, 5, 1000, false}, Config{20011, 8, 64, 1, true},
                           Config{777, 4, 3, 1024, true}, Config{30000, 32, 7, 50, false}}) {
    Rng rng(cfg.n + cfg.m);
    std::vector<uint8_t> codes(cfg.n * cfg.m);
    for (auto& c : codes) c = uint8_t(rng.below(256));
    std::vector<float> luts(cfg.nq * cfg.m * 256);
    for (auto& v : luts) v = float(rng.uniform() * 100.0);
    std::vector<uint64_t> allow;
    if (cfg.filter) {
      allow.assign((cfg.n + 63) / 64, 0);
      for (size_t i = 0; i < cfg.n; ++i)
        if (rng.below(3) == 0) allow[i >> 6] |= 1ull << (i & 63);
    }
    cuda::ResidentCodes resident(codes.data(), cfg.n, cfg.m, cfg.m, false);
    std::vector<int64_t> rows(cfg.nq * cfg.k);
    std::vector<float> scores(cfg.nq * cfg.k);
    cuda::adc_search(resident, cfg.nq, luts.data(), nullptr, false, cfg.filter ? allow.data() : nullptr, cfg.k,
                     rows.data(), scores.data());
    size_t mismatched = 0, total = 0;
    for (size_t q = 0; q < cfg.nq; ++q) {
      const auto ref = adc_reference(codes, cfg.n, cfg.m, &luts[q * cfg.m * 256], cfg.filter ? allow.data() : nullptr,
                                     cfg.k);
      for (size_t j = 0; j < cfg.k; ++j) {
        const int64_t row = rows[q * cfg.k + j];
        if (j >= ref.size()) {
          CHECK(row == -1);
          continue;
        }
        ++total;
        REQUIRE(row >= 0 && size_t(row) < cfg.n);
        if (cfg.filter) CHECK((allow[size_t(row) >> 6] >> (size_t(row) & 63)) & 1);
        // The j-th score equals the reference's j-th up to float rounding of a sum of m entries.
        CHECK_NEAR(scores[q * cfg.k + j], ref[j].first, 1e-4 * (1 + std::abs(ref[j].first)));
        if (row != ref[j].second) ++mismatched;  // only near-ties may swap
        if (j > 0) CHECK(scores[q * cfg.k + j] >= scores[q * cfg.k + j - 1]);
      }
    }
    // Other block sizes (tile and pool sizes change) must give the same results.
    if (!cfg.filter)
      for (int threads : {256, 1024}) {
        std::vector<int64_t> rows2(cfg.nq * cfg.k);
        std::vector<float> scores2(cfg.nq * cfg.k);
        cuda::time_adc_scan(resident, cfg.nq, luts.data(), cfg.k, 1, rows2.data(), scores2.data(), threads);
        CHECK_MSG(rows2 == rows, "block size " << threads << " changes the results (n " << cfg.n << ")");
      }
    CHECK_MSG(mismatched <= total / 200 + 2,
              "n " << cfg.n << " m " << cfg.m << " k " << cfg.k << ": " << mismatched << " of " << total << " differ");
  }
}

TEST_CASE("gpu: k beyond the limit is a clear error") {
  if (!gpu_present()) return;
  std::vector<uint8_t> codes(100 * 8, 1);
  std::vector<float> luts(8 * 256, 1.f);
  cuda::ResidentCodes resident(codes.data(), 100, 8, 8, false);
  std::vector<int64_t> rows(2000);
  std::vector<float> scores(2000);
  bool threw = false;
  try {
    cuda::adc_search(resident, 1, luts.data(), nullptr, false, nullptr, 2000, rows.data(), scores.data());
  } catch (const Error& e) {
    threw = e.code() == ErrorCode::InvalidArgument && std::string(e.what()).find("k = 2000") != std::string::npos;
  }
  CHECK(threw);
}

// Codes from the GPU (Device::Cuda in scope) against the CPU's for one codec, on the SIFT slice.
void compare_encoding(const std::string& spec, double min_code_agreement, double max_error_ratio) {
  std::vector<float> base, queries;
  size_t d = 0;
  if (!load_sift(&base, &queries, &d)) return;
  const size_t n = base.size() / d;
  std::unique_ptr<Quantizer> codec = make_codec(spec, d);
  TrainContext ctx;
  ctx.iterations = 10;
  codec->train(n, base.data(), ctx);
  const size_t cs = codec->code_size();
  std::vector<uint8_t> cpu(n * cs), gpu(n * cs);
  codec->encode(n, base.data(), cpu.data(), 0);
  {
    const DeviceScope scope(Device::Cuda);
    codec->encode(n, base.data(), gpu.data(), 0);
  }
  size_t same = 0;
  for (size_t i = 0; i < n; ++i) same += std::memcmp(&cpu[i * cs], &gpu[i * cs], cs) == 0;
  std::vector<float> rc(n * d), rg(n * d);
  codec->decode(n, cpu.data(), rc.data(), 0);
  codec->decode(n, gpu.data(), rg.data(), 0);
  double ec = 0, eg = 0;
  size_t worse = 0;
  for (size_t i = 0; i < n; ++i) {
    const double a = l2(&base[i * d], &rc[i * d], d), b = l2(&base[i * d], &rg[i * d], d);
    ec += a;
    eg += b;
    worse += b > a * (1 + 1e-4) + 1e-3;
  }
  // Beam search keeps several entries whose errors can tie up to rounding (duplicate codewords, equal sums);
  // which of them wins may differ, never by more than rounding: every vector's GPU error matches the CPU's.
  CHECK_MSG(worse <= n / 1000, spec << ": " << worse << " vectors encode worse on the GPU");
  std::cout << "  " << spec << ": " << same << " / " << n << " codes equal, MSE CPU " << ec / n << " GPU " << eg / n
            << "\n";
  CHECK_MSG(double(same) >= min_code_agreement * n, spec << ": " << same << " of " << n << " codes equal");
  CHECK_MSG(eg <= ec * max_error_ratio, spec << ": GPU MSE " << eg / n << " vs CPU " << ec / n);
}

TEST_CASE("gpu: PQ encoding equals the CPU's") {
  if (!gpu_present()) return;
  compare_encoding("PQ16x8", 0.995, 1.0005);
  compare_encoding("PQ12x6", 0.995, 1.0005);
  compare_encoding("PCA64,PQ16x8", 0.995, 1.0005);  // the inner PQ encodes the projected rows on the device
}

TEST_CASE("gpu: RQ beam encoding equals the CPU's") {
  if (!gpu_present()) return;
  compare_encoding("RQ8x8,beam=1", 0.98, 1.002);  // greedy: the same codes
  compare_encoding("RQ8x8,beam=8", 0.5, 1.0005);  // beam: the same errors, ties may swap codes
  compare_encoding("PCA64,RQ8x8,beam=4", 0.5, 1.0005);
}

TEST_CASE("gpu: TRQ encoding equals the CPU's") {
  if (!gpu_present()) return;
  compare_encoding("TRQ1x8,PQ14x4", 0.98, 1.002);
  compare_encoding("TRQ4x8", 0.95, 1.002);
}

// Index-level: ids from a GPU search against a CPU search of the same index.
void compare_search(const std::string& spec, size_t nprobe, size_t k, double min_overlap) {
  std::vector<float> base, queries;
  size_t d = 0;
  if (!load_sift(&base, &queries, &d)) return;
  const size_t n = base.size() / d, nq = queries.size() / d;
  std::unique_ptr<Index> index = make_index(spec, d, Metric::L2);
  TrainContext ctx;
  ctx.iterations = 10;
  ctx.device = Device::Cuda;  // train on the device too
  index->train(n, base.data(), ctx);
  index->add(n, base.data(), nullptr, 0);
  SearchParams cpu_params, gpu_params;
  cpu_params.nprobe = gpu_params.nprobe = nprobe;
  gpu_params.device = Device::Cuda;
  std::vector<int64_t> ci(nq * k), gi(nq * k);
  std::vector<float> cd(nq * k), gd(nq * k);
  index->search(nq, queries.data(), k, cpu_params, ci.data(), cd.data());
  const uint64_t served = gpu_search_count();
  index->search(nq, queries.data(), k, gpu_params, gi.data(), gd.data());
  CHECK_MSG(gpu_search_count() == served + 1, spec << ": the GPU did not serve the search");
  size_t overlap = 0;
  for (size_t q = 0; q < nq; ++q) {
    std::vector<int64_t> a(ci.begin() + q * k, ci.begin() + (q + 1) * k), b(gi.begin() + q * k, gi.begin() + (q + 1) * k);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    std::vector<int64_t> common;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(common));
    overlap += common.size();
    for (size_t j = 0; j < k; ++j) CHECK_NEAR(gd[q * k + j], cd[q * k + j], 1e-3 * (1 + std::abs(cd[q * k + j])));
  }
  std::cout << "  " << spec << " nprobe " << nprobe << " k " << k << ": overlap " << double(overlap) / (nq * k) << "\n";
  CHECK_MSG(double(overlap) >= min_overlap * nq * k, spec << ": overlap " << overlap << " of " << nq * k);
  // Filters reach the device: only even ids may come back.
  std::vector<int64_t> even;
  for (size_t i = 0; i < n; i += 2) even.push_back(int64_t(i));
  gpu_params.allow_ids = even.data();
  gpu_params.allow_count = even.size();
  index->search(nq, queries.data(), k, gpu_params, gi.data(), gd.data());
  for (int64_t id : gi) CHECK(id == -1 || id % 2 == 0);
}

TEST_CASE("gpu: index search equals the CPU's (PQ, RQ, IVF-PQ)") {
  if (!gpu_present()) return;
  compare_search("PQ16x8", 1, 10, 0.995);
  compare_search("PQ8x8,Refine", 1, 100, 0.995);
  compare_search("RQ8x8", 1, 10, 0.99);
  compare_search("IVF64,PQ16x8", 8, 10, 0.99);
  compare_search("IVF64,PQ16x8", 64, 100, 0.99);
}

}  // namespace
