// Thread pool, top-k, SIMD kernels (every supported level against the scalar reference), spec parsing.
#include <algorithm>
#include <atomic>
#include <iterator>
#include <numeric>
#include <stdexcept>

#include "check.h"
#include "error.h"
#include "index.h"
#include "simd.h"
#include "spec.h"
#include "test_util.h"
#include "thread_pool.h"
#include "topk.h"

using namespace quiver;

TEST_CASE("thread_pool: parallel_for covers every index once") {
  std::vector<std::atomic<int>> hits(10007);
  default_pool().parallel_for(hits.size(), 13, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) hits[i]++;
  });
  for (auto& h : hits) CHECK(h.load() == 1);
}

TEST_CASE("thread_pool: exceptions reach the caller, nested loops finish") {
  bool caught = false;
  try {
    default_pool().parallel_for(1000, 1, [&](size_t b, size_t) {
      if (b == 500) throw std::runtime_error("boom");
    });
  } catch (const std::runtime_error&) {
    caught = true;
  }
  CHECK(caught);
  std::atomic<long> total{0};
  default_pool().parallel_for(8, 1, [&](size_t, size_t) {
    default_pool().parallel_for(100, 7, [&](size_t b, size_t e) { total += long(e - b); });
  });
  CHECK(total.load() == 800);
  // A pool with workers, driven from several threads at once.
  ThreadPool pool(3);
  std::atomic<long> sum{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&] {
      pool.parallel_for(1000, 10, [&](size_t b, size_t e) { sum += long(e - b); });
    });
  for (auto& c : callers) c.join();
  CHECK(sum.load() == 4000);
}

TEST_CASE("topk: keeps the k smallest, ties by id, sorted") {
  Rng rng(7);
  for (size_t k : {1, 2, 3, 4, 25, 100, 1000}) {
    std::vector<Candidate> all;
    TopK top(k);
    for (int i = 0; i < 1000; ++i) {
      const float s = float(rng.below(100));  // many ties
      const int64_t id = int64_t(rng.below(1000000)) * 1000 + i;  // unique ids, arriving in no particular order
      all.push_back({s, id});
      top.push(s, id);
      std::vector<Candidate> so_far(all);
      if (so_far.size() >= k) {
        std::nth_element(so_far.begin(), so_far.begin() + long(k - 1), so_far.end(), candidate_better);
        CHECK(top.threshold() == so_far[k - 1].score);  // the k-th best score so far
      }
    }
    std::sort(all.begin(), all.end(), candidate_better);
    const auto got = top.take_sorted();
    REQUIRE(got.size() == std::min<size_t>(k, all.size()));
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i].id == all[i].id && got[i].score == all[i].score);
  }
  TopK small(5);
  small.push(1, 1);
  CHECK(small.take_sorted().size() == 1);
}

TEST_CASE("kernels: every supported SIMD level matches the scalar reference") {
  const Kernels& ref = kScalarKernels;
  for (SimdLevel level : supported_simd_levels()) {
    const Kernels& k = kernels_for(level);
    for (size_t d : {1, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100, 128, 784}) {
      const auto a = qvtest::random_floats(d, d), b = qvtest::random_floats(d, d + 1000);
      CHECK_NEAR(k.l2sqr(a.data(), b.data(), d), ref.l2sqr(a.data(), b.data(), d), 1e-4 * d);
      CHECK_NEAR(k.dot(a.data(), b.data(), d), ref.dot(a.data(), b.data(), d), 1e-4 * d);
      for (size_t count : {1, 5, 8, 16, 33, 64, 100, 256}) {
        const size_t ldc = count + 3;
        const auto ct = qvtest::random_floats(d * ldc, count);
        std::vector<float> got(count), want(count);
        k.dot_transposed(a.data(), ct.data(), d, count, ldc, got.data());
        ref.dot_transposed(a.data(), ct.data(), d, count, ldc, want.data());
        for (size_t j = 0; j < count; ++j) CHECK_NEAR(got[j], want[j], 1e-4 * d);
        k.l2sqr_transposed(a.data(), ct.data(), d, count, ldc, got.data());
        ref.l2sqr_transposed(a.data(), ct.data(), d, count, ldc, want.data());
        for (size_t j = 0; j < count; ++j) {
          CHECK_NEAR(got[j], want[j], 1e-4 * d);
          float direct = 0;  // the reference against the definition
          for (size_t i = 0; i < d; ++i) direct += (a[i] - ct[i * ldc + j]) * (a[i] - ct[i * ldc + j]);
          CHECK_NEAR(want[j], direct, 1e-4 * d);
        }
      }
    }
    for (size_t m : {1, 3, 4, 8, 13, 16, 32}) {
      const size_t n = 37;
      Rng rng(m);
      std::vector<uint8_t> codes(n * m);
      for (auto& c : codes) c = uint8_t(rng.below(256));
      const auto lut = qvtest::random_floats(m * 256, m + 5);
      std::vector<float> got(n), want(n);
      k.adc_scan_u8(codes.data(), n, m, lut.data(), got.data());
      ref.adc_scan_u8(codes.data(), n, m, lut.data(), want.data());
      for (size_t i = 0; i < n; ++i) CHECK_NEAR(got[i], want[i], 1e-4 * m);
    }
  }
}

TEST_CASE("kernels: query-group distances give the bits of l2sqr / dot at every level") {
  for (SimdLevel level : supported_simd_levels()) {
    const Kernels& k = kernels_for(level);
    for (size_t d : {1, 7, 16, 17, 31, 32, 33, 100, 128, 784}) {
      const size_t ldq = d + 5;
      const auto x = qvtest::random_floats(d, d + 3), queries = qvtest::random_floats(kMaxQueryGroup * ldq, d + 4);
      for (size_t nq = 1; nq <= kMaxQueryGroup; ++nq) {
        std::vector<float> l2(nq, -1.0f), ip(nq, -1.0f);
        k.l2sqr_queries(queries.data(), nq, ldq, x.data(), d, l2.data());
        k.dot_queries(queries.data(), nq, ldq, x.data(), d, ip.data());
        for (size_t q = 0; q < nq; ++q) {
          CHECK_MSG(l2[q] == k.l2sqr(queries.data() + q * ldq, x.data(), d),
                    simd_level_name(level) << " d=" << d << " nq=" << nq << " q=" << q);
          CHECK_MSG(ip[q] == k.dot(queries.data() + q * ldq, x.data(), d),
                    simd_level_name(level) << " d=" << d << " nq=" << nq << " q=" << q);
        }
      }
    }
  }
}

TEST_CASE("flat: batch search in query groups returns what query-by-query search returns") {
  // Batches of two or more queries score query groups (rows outer) once the store reaches
  // FlatIndex::kQueryGroupMinBytes (4 200 × 1 000 floats is just above 16 MiB); one query per call scans alone.
  // Both must give the same ids and the same distance bits, for every metric, with a filter and across row blocks.
  const size_t d = 1000, n = 4200, k = 9;
  static_assert(4200 * 1000 * sizeof(float) >= FlatIndex::kQueryGroupMinBytes, "the test must reach query groups");
  const auto x = qvtest::random_floats(n * d, 11);
  for (Metric metric : {Metric::L2, Metric::InnerProduct, Metric::Cosine}) {
    auto flat = make_index("Flat", d, metric);
    flat->add(n, x.data(), nullptr, 1);
    std::vector<int64_t> allow;
    for (int64_t id = 0; id < int64_t(n); id += 3) allow.push_back(id);
    for (bool filtered : {false, true}) {
      for (size_t nq : {2, 9, 21}) {
        // Stored rows at and around the 256-row block edges (self-matches: a skipped or misplaced row changes
        // the results), then random queries.
        auto queries = qvtest::random_floats(nq * d, nq + 50);
        const size_t edges[] = {0, 255, 256, 511, 767, 3839, 4095, 4096, n - 1};
        for (size_t q = 0; q < nq && q < std::size(edges); ++q)
          std::copy(x.begin() + long(edges[q] * d), x.begin() + long((edges[q] + 1) * d),
                    queries.begin() + long(q * d));
        SearchParams params;
        params.threads = 2;
        if (filtered) {
          params.allow_ids = allow.data();
          params.allow_count = allow.size();
        }
        std::vector<int64_t> labels(nq * k);
        std::vector<float> distances(nq * k);
        flat->search(nq, queries.data(), k, params, labels.data(), distances.data());
        for (size_t q = 0; q < nq; ++q) {
          std::vector<int64_t> one_label(k);
          std::vector<float> one_distance(k);
          flat->search(1, queries.data() + q * d, k, params, one_label.data(), one_distance.data());
          for (size_t j = 0; j < k; ++j) {
            CHECK_MSG(labels[q * k + j] == one_label[j], "metric " << int(metric) << " nq=" << nq << " q=" << q);
            CHECK(distances[q * k + j] == one_distance[j]);
            if (filtered) CHECK(labels[q * k + j] % 3 == 0);
          }
          if (metric != Metric::InnerProduct && q < std::size(edges) && (!filtered || edges[q] % 3 == 0))
            CHECK_MSG(labels[q * k] == int64_t(edges[q]), "row " << edges[q] << " finds itself first");
        }
      }
    }
  }
}

TEST_CASE("kernels: uint8-table ADC sums are exact on every level, block minima included") {
  const Kernels& ref = kScalarKernels;
  CHECK(!ref.adc_sums_u8_fast);
  // m multiples of 8 take the VBMI kernel's word tiles (one load for 8, gathers above), others its fallback;
  // n covers partial, whole and several 64-code blocks.
  for (size_t m : {1, 5, 8, 16, 24, 32, 64, 256}) {
    for (size_t n : {1, 63, 64, 65, 200, 1024}) {
      Rng rng(m * 1000 + n);
      std::vector<uint8_t> codes(n * m), qlut(m * 256);
      for (auto& c : codes) c = uint8_t(rng.below(256));
      for (auto& v : qlut) v = uint8_t(rng.below(256));
      qlut[255] = 255;
      codes[0] = 255;  // the largest entry, so sums reach their top
      const size_t blocks = (n + 63) / 64;
      std::vector<uint16_t> want(n), want_min(blocks);
      ref.adc_sums_u8(codes.data(), n, m, qlut.data(), want.data(), want_min.data());
      for (size_t i = 0; i < n; i += 37) {
        uint32_t direct = 0;
        for (size_t s = 0; s < m; ++s) direct += qlut[s * 256 + codes[i * m + s]];
        CHECK(want[i] == direct);
      }
      for (size_t b = 0; b < blocks; ++b)
        CHECK(want_min[b] == *std::min_element(want.begin() + long(b * 64), want.begin() + long(std::min(n, b * 64 + 64))));
      for (SimdLevel level : supported_simd_levels()) {
        std::vector<uint16_t> got(n), got_min(blocks);
        kernels_for(level).adc_sums_u8(codes.data(), n, m, qlut.data(), got.data(), got_min.data());
        CHECK_MSG(got == want && got_min == want_min, simd_level_name(level) << " m=" << m << " n=" << n);
      }
    }
  }
}

TEST_CASE("simd: level can be read and forced") {
  const SimdLevel before = simd_level();
  set_simd_level(SimdLevel::Scalar);
  CHECK(simd_level() == SimdLevel::Scalar);
  set_simd_level(before);
  CHECK(simd_level() == before);
  SimdLevel parsed;
  CHECK(parse_simd_level("avx2", &parsed) && parsed == SimdLevel::AVX2);
  CHECK(!parse_simd_level("sse9", &parsed));
}

TEST_CASE("spec: parse, canonical names and clear errors") {
  auto parts = parse_spec("PQ16x8, Refine");
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].name == "PQ" && parts[0].numbers == std::vector<size_t>({16, 8}));
  CHECK(parts[1].name == "Refine");
  CHECK(describe_index_spec("PQ16", 128).canonical == "PQ16x8");
  CHECK(describe_index_spec("PQ16", 128).code_size == 16);
  CHECK(describe_index_spec("PQ10x4", 100).code_size == 5);
  CHECK(describe_index_spec("Flat", 100).code_size == 400);
  CHECK(describe_index_spec("PQ8,Refine", 64).canonical == "PQ8x8,Refine");
  for (const char* bad : {"", "PQ", "PQ16y8", "PQ16x", "HNSW32", "Flat,Refine", "PQ0", "PQ200", "PQ8x13",
                          ",PQ8", "PQ8,,Refine", "beam=3", "PQ8x8x8", "Flat8"}) {
    bool threw = false;
    try {
      make_index(bad, 128, Metric::L2);
    } catch (const Error& e) {
      threw = e.code() == ErrorCode::InvalidArgument && std::string(e.what()).size() > 10;
    }
    CHECK_MSG(threw, "spec '" << bad << "' should be rejected");
  }
}
