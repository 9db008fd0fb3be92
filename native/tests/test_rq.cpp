// Residual quantizer (beam search, cross tables, refit, norm storage) and product residual quantizer.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "bitpack.h"
#include "check.h"
#include "error.h"
#include "prq.h"
#include "random.h"
#include "rq.h"
#include "simd.h"
#include "test_codecs.h"
#include "test_util.h"

using namespace quiver;

namespace {

// Correlated data: each point is a random mix of a few directions plus noise, so later RQ stages still find
// structure (uniform noise would make every codec look alike).
std::vector<float> mixture(size_t n, size_t d, uint64_t seed) {
  const auto dirs = qvtest::random_floats(6 * d, seed);
  const auto coef = qvtest::random_floats(n * 6, seed + 1);
  const auto noise = qvtest::random_floats(n * d, seed + 2);
  std::vector<float> x(n * d);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) {
      float v = 0.2f * noise[i * d + j];
      for (size_t t = 0; t < 6; ++t) v += float(6 - t) * coef[i * 6 + t] * dirs[t * d + j];
      x[i * d + j] = v;
    }
  return x;
}

TrainContext quick_context(uint64_t seed = 7) {
  TrainContext ctx;
  ctx.seed = seed;
  ctx.iterations = 8;
  return ctx;
}

}  // namespace

TEST_CASE("rq: round trip, ADC equals the exact distance to the decoded vector, every code width") {
  const size_t d = 24, n = 1500;
  const auto x = mixture(n, d, 11);
  const auto q = qvtest::random_floats(d, 12);
  for (size_t nbits : {8, 5}) {
    for (NormStorage norm : {NormStorage::Float32, NormStorage::Uint8}) {
      RQOptions o;
      o.beam = 4;
      o.norm = norm;
      ResidualQuantizer rq(d, 3, nbits, o);
      CHECK(rq.code_size() == packed_bytes(3, nbits) + (norm == NormStorage::Float32 ? 4 : 1));
      CHECK_THROWS_CODE(rq.encode(1, x.data(), nullptr, 0), State);
      rq.train(n, x.data(), quick_context());
      std::vector<uint8_t> codes;
      const auto decoded = qvtest::round_trip(rq, n, x.data(), &codes);
      // Decoding is the sum of the unpacked codewords.
      std::vector<uint32_t> stage_codes(3);
      std::vector<float> rec(d);
      for (size_t i = 0; i < n; i += 101) {
        rq.unpack(&codes[i * rq.code_size()], stage_codes.data());
        rq.reconstruct(stage_codes.data(), rec.data());
        for (size_t j = 0; j < d; ++j) CHECK_NEAR(rec[j], decoded[i * d + j], 1e-5);
      }
      // u8 norms cost up to half a quantisation step on every L2 score.
      const double step = norm == NormStorage::Uint8 ? (rq.norm_codec().hi() - rq.norm_codec().lo()) / 255.0 : 0;
      qvtest::check_adc_matches_decoded(rq, n, codes, decoded, q.data(), 1e-5, step / 2 + 1e-3);
      // Three stages of codewords do much better than the mean.
      std::vector<float> zero(n * d, 0.0f);
      CHECK_MSG(qvtest::mean_squared_error(x, decoded, n) < 0.35 * qvtest::mean_squared_error(x, zero, n),
                rq.spec());
    }
  }
}

TEST_CASE("rq: beam search matches brute force on small codebooks and beats greedy on the same codebooks") {
  const size_t d = 6, n = 600, L = 2, nbits = 3, K = 8;
  const auto x = mixture(n, d, 21);
  RQOptions wide;
  wide.beam = K * K;  // keeps every partial sum: exhaustive
  ResidualQuantizer rq(d, L, nbits, wide);
  rq.train(n, x.data(), quick_context());
  std::vector<uint32_t> codes(n * L);
  std::vector<float> errors(n);
  rq.encode_stages(n, x.data(), codes.data(), errors.data(), 0);
  std::vector<float> rec(d);
  for (size_t i = 0; i < n; ++i) {
    float best = std::numeric_limits<float>::infinity();
    for (uint32_t a = 0; a < K; ++a)
      for (uint32_t b = 0; b < K; ++b) {
        const uint32_t pair[2] = {a, b};
        rq.reconstruct(pair, rec.data());
        best = std::min(best, kScalarKernels.l2sqr(&x[i * d], rec.data(), d));
      }
    CHECK_NEAR(errors[i], best, 1e-4 * (1 + best));
  }
  // Wider beams on the same codebooks lower the mean error. (Per vector a beam can lose to greedy: the greedy
  // path may drop out of the beam at a middle stage. Such vectors must stay rare.)
  const size_t stages = 4, m = 2000, dm = 16;
  const auto y = mixture(m, dm, 22);
  RQOptions greedy_options;
  greedy_options.beam = 1;
  greedy_options.refit_rounds = 0;
  ResidualQuantizer greedy(dm, stages, 6, greedy_options);
  greedy.train(m, y.data(), quick_context());
  std::vector<uint32_t> c1(m * stages), c8(m * stages);
  std::vector<float> e1(m), e8(m);
  greedy.encode_stages(m, y.data(), c1.data(), e1.data(), 0);
  RQOptions beam_options;
  beam_options.beam = 8;
  ResidualQuantizer beamed(dm, stages, 6, beam_options);
  beamed.set_codebooks(greedy.all_codebooks());
  beamed.encode_stages(m, y.data(), c8.data(), e8.data(), 0);
  double s1 = 0, s8 = 0;
  size_t worse = 0;
  for (size_t i = 0; i < m; ++i) {
    s1 += e1[i];
    s8 += e8[i];
    worse += e8[i] > e1[i] * (1 + 1e-5) + 1e-5;
  }
  CHECK_MSG(worse < m / 20, worse << " vectors lost to greedy");
  CHECK_MSG(s8 < 0.97 * s1, "beam 8 " << s8 / m << " vs greedy " << s1 / m);
  // (Whole pipelines, beam-trained against greedy-trained, are compared on real data in test_codecs_sift.cpp:
  // on small synthetic sets like this one the training heuristics dominate the difference.)
}

TEST_CASE("rq: each beam step keeps exactly the best candidates by (distance, entry, codeword), ties and all") {
  // The selection skips chunks of sixteen candidates above a bound; a plain sort of every candidate is the
  // reference. Duplicated codewords make exact ties within and across entries; widths from 1 to past K, and
  // K = 8 (no chunks), 16, 64.
  const size_t d = 5, n = 60, L = 3;
  const auto x = mixture(n, d, 41);
  for (size_t nbits : {3, 4, 6}) {
    const size_t K = size_t(1) << nbits;
    std::vector<float> books = qvtest::random_floats(L * K * d, 43 + nbits);
    for (size_t l = 0; l < L; ++l)
      for (size_t j = K / 2; j < K; j += 3)  // every third codeword of the upper half copies one of the lower
        std::copy_n(&books[(l * K + j - K / 2) * d], d, &books[(l * K + j) * d]);
    for (size_t width : {size_t(1), size_t(3), size_t(16), size_t(40), size_t(300)}) {
      RQOptions o;
      o.beam = std::min<size_t>(width, 256);
      ResidualQuantizer rq(d, L, nbits, o);
      rq.set_codebooks(books);
      RQBeamSearch search(rq);
      size_t mismatches = 0;
      for (size_t i = 0; i < n; ++i) {
        // Reference entries: residuals, distances, paths, advanced by sorting all candidates.
        std::vector<float> residuals(&x[i * d], &x[i * d] + d), dists{kScalarKernels.dot(&x[i * d], &x[i * d], d)};
        std::vector<std::vector<uint32_t>> paths{std::vector<uint32_t>(L, 0)};
        search.reset(1, &x[i * d], dists.data(), nullptr);
        for (size_t l = 0; l < L; ++l) {
          const size_t count = dists.size();
          std::vector<float> scores(count * K);
          rq.table(l).scores_batch(residuals.data(), count, d, scores.data(), K);
          struct Cand { float dist; size_t e, j; };
          std::vector<Cand> all;
          for (size_t e = 0; e < count; ++e)
            for (size_t j = 0; j < K; ++j) all.push_back(Cand{dists[e] + scores[e * K + j], e, j});
          std::sort(all.begin(), all.end(), [](const Cand& a, const Cand& b) {
            return a.dist != b.dist ? a.dist < b.dist : a.e != b.e ? a.e < b.e : a.j < b.j;
          });
          all.resize(std::min(all.size(), o.beam));
          std::vector<float> next_residuals, next_dists;
          std::vector<std::vector<uint32_t>> next_paths;
          for (const Cand& c : all) {
            for (size_t t = 0; t < d; ++t) next_residuals.push_back(residuals[c.e * d + t] - books[(l * K + c.j) * d + t]);
            next_dists.push_back(c.dist);
            next_paths.push_back(paths[c.e]);
            next_paths.back()[l] = uint32_t(c.j);
          }
          residuals.swap(next_residuals);
          dists.swap(next_dists);
          paths.swap(next_paths);
          search.run(l, l + 1, o.beam);
          bool same = search.size() == dists.size();
          for (size_t e = 0; same && e < dists.size(); ++e)
            same = search.distance(e) == dists[e] && std::equal(paths[e].begin(), paths[e].begin() + l + 1, search.path(e));
          mismatches += !same;
        }
      }
      CHECK_MSG(mismatches == 0, "K = " << K << ", width " << o.beam << ": " << mismatches << " steps kept other candidates");
    }
  }
}

TEST_CASE("rq: beam_scores gives the scalar values and chunk minima bit for bit at every SIMD level") {
  for (size_t k : {1, 7, 16, 23, 64, 256}) {
    const auto dots = qvtest::random_floats(k, k + 1), table = qvtest::random_floats(15 * k, k + 3);
    auto norms = qvtest::random_floats(k, k + 2);
    if (k == 64) {  // NaN scores: skipped by the minima, a chunk of only NaNs gives +infinity
      norms[3] = std::nanf("");
      for (size_t j = 16; j < 32; ++j) norms[j] = std::nanf("");
    }
    std::vector<const float*> rows;
    for (size_t m = 0; m < 15; ++m) rows.push_back(&table[m * k]);
    const size_t chunks = k % 16 == 0 ? k / 16 : 0;
    for (size_t nrows : {0, 1, 2, 7, 15}) {
      std::vector<float> want(k), want_minima(chunks);
      kScalarKernels.beam_scores(dots.data(), rows.data(), nrows, norms.data(), k, want.data(),
                                 chunks ? want_minima.data() : nullptr);
      for (size_t j = 0; j < k; ++j) {  // the reference against its definition
        float acc = dots[j];
        for (size_t m = 0; m < nrows; ++m) acc -= table[m * k + j];
        const float value = norms[j] - 2 * acc;
        CHECK(std::isnan(value) ? std::isnan(want[j]) : want[j] == value);
      }
      for (size_t c = 0; c < chunks; ++c) {
        float low = std::numeric_limits<float>::infinity();
        for (size_t j = 16 * c; j < 16 * c + 16; ++j)
          if (!std::isnan(want[j])) low = std::min(low, want[j]);
        CHECK(want_minima[c] == low);
      }
      const auto same = [](const std::vector<float>& a, const std::vector<float>& b) {
        for (size_t i = 0; i < a.size(); ++i)
          if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) return false;
        return true;
      };
      for (SimdLevel level : supported_simd_levels()) {
        std::vector<float> got(k), got_minima(chunks);
        kernels_for(level).beam_scores(dots.data(), rows.data(), nrows, norms.data(), k, got.data(),
                                       chunks ? got_minima.data() : nullptr);
        CHECK_MSG(same(got, want) && got_minima == want_minima, simd_level_name(level) << " k=" << k << " rows=" << nrows);
      }
    }
  }
}

TEST_CASE("rq: kth_smallest is the order statistic of the values below +infinity at every SIMD level") {
  // Ties (few distinct values), NaNs, ±infinity; lengths around the 4-, 8-, 16- and 32-lane blocks and their
  // tails; kth past the number of values that count (+infinity).
  Rng rng(13);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  size_t checked = 0;
  for (size_t n : {1, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 47, 48, 96, 100, 257}) {
    for (int trial = 0; trial < 8; ++trial) {
      std::vector<float> values(n);
      for (float& v : values) v = trial % 2 ? float(rng.next() % 4) : float(rng.next() % 1000) * 0.5f - 250.0f;
      if (trial % 4 >= 2)
        for (size_t i = trial % 3; i < n; i += 4 + trial) values[i] = (i / 4) % 3 == 0 ? nan : (i / 4) % 3 == 1 ? inf : -inf;
      std::vector<float> counted;
      for (float v : values)
        if (v < inf) counted.push_back(v);
      std::sort(counted.begin(), counted.end());
      for (size_t kth : {size_t(1), size_t(2), size_t(5), size_t(16), n, n + 3}) {
        const float want = kth <= counted.size() ? counted[kth - 1] : inf;
        for (SimdLevel level : supported_simd_levels()) {
          const float got = kernels_for(level).kth_smallest(values.data(), n, kth);
          CHECK_MSG(got == want, simd_level_name(level) << " n=" << n << " kth=" << kth << " trial " << trial << ": "
                                                        << got << " instead of " << want);
          ++checked;
        }
      }
    }
  }
  CHECK(checked >= 16 * 8 * 6);
}

TEST_CASE("rq: cross-table steps choose the same codes as direct residual scoring") {
  const size_t d = 20, n = 400, L = 5;
  const auto x = mixture(n, d, 31);
  RQOptions o;
  o.beam = 6;
  ResidualQuantizer rq(d, L, 6, o);
  rq.train(n, x.data(), quick_context());
  REQUIRE(rq.uses_cross_tables());
  RQBeamSearch direct(rq), cross(rq);
  std::vector<float> dots(L * rq.ksub());
  size_t same = 0;
  for (size_t i = 0; i < n; ++i) {
    const float* xi = &x[i * d];
    direct.start(xi, nullptr);
    rq.inner_product_tables(xi, dots.data());
    cross.start(xi, dots.data());
    for (size_t l = 0; l < L; ++l) {
      direct.step(l, o.beam);
      cross.step(l, o.beam);
    }
    direct.finish();
    cross.finish();
    CHECK_NEAR(cross.distance(0), direct.distance(0), 1e-3 * (1 + direct.distance(0)));
    same += std::equal(direct.path(0), direct.path(0) + L, cross.path(0));
  }
  // Rounding differs between the two routes, so exact ties may break differently; almost all must agree.
  CHECK_MSG(same >= n * 98 / 100, same << " of " << n);
}

TEST_CASE("rq: first_minimum picks what a strict-< scan picks: first of ties, NaNs skipped, any length") {
  Rng rng(5);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  size_t checked = 0;
  for (size_t k : {1, 2, 3, 15, 16, 17, 31, 64, 255, 256, 300, 4096}) {
    for (int trial = 0; trial < 40; ++trial) {
      std::vector<float> scores(k);
      // Few distinct values so that equal minima are common; some NaNs; sometimes a NaN at 0.
      for (float& v : scores) v = float(rng.next() % 7) - 3.0f + (trial % 2 ? 0.25f : 0.0f);
      if (trial % 3 == 0)
        for (size_t j = 0; j < k; j += 5 + trial % 7) scores[j] = nan;
      if (trial % 10 == 9) scores[0] = nan;
      const float base = trial % 4 == 0 ? 1e7f : float(trial);  // large bases make sums round to ties
      size_t expected = 0;
      float best = base + scores[0];
      for (size_t j = 1; j < k; ++j)
        if (base + scores[j] < best) {
          best = base + scores[j];
          expected = j;
        }
      CHECK_MSG(first_minimum(base, scores.data(), k) == expected, "k " << k << " trial " << trial);
      ++checked;
    }
  }
  CHECK(checked == 12 * 40);
}

TEST_CASE("rq: smallest_ids gives a partial sort by (value, id): ties, +infinity, lengths with and without chunks") {
  Rng rng(9);
  const float inf = std::numeric_limits<float>::infinity();
  SelectionScratch scratch;
  size_t checked = 0;
  for (size_t n : {1, 5, 16, 40, 64, 256, 1024}) {
    for (int trial = 0; trial < 12; ++trial) {
      std::vector<float> values(n);
      // Few distinct values (ties across and within chunks), or many; some +infinity.
      for (float& v : values) v = trial % 2 ? float(rng.next() % 5) : float(rng.next() % 100000) * 0.01f - 300.0f;
      if (trial % 3 == 0)
        for (size_t j = 0; j < n; j += 3 + trial % 5) values[j] = inf;
      std::vector<uint32_t> reference(n);
      std::iota(reference.begin(), reference.end(), 0u);
      std::stable_sort(reference.begin(), reference.end(), [&](uint32_t a, uint32_t b) { return values[a] < values[b]; });
      for (size_t count : {size_t(1), size_t(2), size_t(6), size_t(16), size_t(17), n}) {
        if (count > n) continue;
        std::vector<uint32_t> ids(count);
        smallest_ids(values.data(), n, count, ids.data(), scratch);
        CHECK_MSG(std::equal(ids.begin(), ids.end(), reference.begin()), "n " << n << " count " << count << " trial " << trial);
        ++checked;
      }
    }
  }
  CHECK(checked > 400);
}

TEST_CASE("rq: the greedy block encoder gives the codes and errors of a width-1 beam search per vector") {
  const size_t d = 24, n = 333, L = 6;  // n not a multiple of the block: a short last block
  const auto x = mixture(n, d, 37);
  for (size_t nbits : {4, 8}) {
    RQOptions o;
    o.beam = 1;
    ResidualQuantizer rq(d, L, nbits, o);
    rq.train(n, x.data(), quick_context());
    std::vector<uint32_t> codes(n * L);
    std::vector<float> errors(n);
    rq.encode_stages(n, x.data(), codes.data(), errors.data(), 2);
    RQBeamSearch search(rq);
    size_t same = 0;
    for (size_t i = 0; i < n; ++i) {
      search.start(&x[i * d], nullptr);
      for (size_t l = 0; l < L; ++l) search.step(l, 1);
      search.finish();
      const float* r = search.residual(0);
      float error = 0;
      for (size_t t = 0; t < d; ++t) error += r[t] * r[t];
      same += std::equal(codes.begin() + i * L, codes.begin() + (i + 1) * L, search.path(0));
      CHECK_NEAR(errors[i], error, 1e-4f * (1 + error));
    }
    CHECK_MSG(same == n, same << " of " << n << " vectors agree at " << nbits << " bits");
  }
}

TEST_CASE("rq: refit lowers the training error; progress reports every stage; threads do not change codes") {
  const size_t d = 16, n = 2000;
  const auto x = mixture(n, d, 41);
  TrainContext ctx = quick_context();
  int stage_reports = 0, refit_reports = 0;
  double last_refit = 1e300;
  bool refit_monotone = true;
  ctx.progress = [&](const Progress& p) {
    if (p.phase == "rq") {
      ++stage_reports;
      CHECK(p.stages == 4 && p.stage >= 0 && p.stage < 4 && p.error >= 0);
    } else if (p.phase == "rq-refit") {
      ++refit_reports;
      refit_monotone = refit_monotone && p.error <= last_refit * (1 + 1e-6);
      last_refit = p.error;
    }
  };
  RQOptions plain_options;
  plain_options.beam = 4;
  plain_options.refit_rounds = 0;
  ResidualQuantizer plain(d, 4, 6, plain_options);
  plain.train(n, x.data(), ctx);
  CHECK(stage_reports >= 4);
  RQOptions refit_options = plain_options;
  refit_options.refit_rounds = 3;
  ResidualQuantizer refit(d, 4, 6, refit_options);
  refit.train(n, x.data(), ctx);
  CHECK(refit_reports == 3 && refit_monotone);
  std::vector<uint8_t> codes, codes1;
  const double e_plain = qvtest::mean_squared_error(x, qvtest::round_trip(plain, n, x.data(), &codes), n);
  const double e_refit = qvtest::mean_squared_error(x, qvtest::round_trip(refit, n, x.data(), &codes), n);
  CHECK_MSG(e_refit < e_plain, "refit " << e_refit << " vs " << e_plain);
  qvtest::round_trip(refit, n, x.data(), &codes1, 1);
  CHECK(codes == codes1);
  CHECK(refit.spec() == "RQ4x6,beam=4");  // 3 refit rounds are the default
  CHECK(plain.spec() == "RQ4x6,beam=4,refit=0");
}

TEST_CASE("prq: parts cover the dimensions unevenly; round trip and ADC agree, with f32 and u8 norms") {
  const size_t d = 21, n = 2000;
  const auto x = mixture(n, d, 51);
  const auto q = qvtest::random_floats(d, 52);
  RQOptions o;
  o.beam = 4;
  o.refit_rounds = 0;
  ProductResidualQuantizer prq(d, 2, 3, 6, o);
  CHECK(prq.part_dim(0) == 11 && prq.part_dim(1) == 10 && prq.part_offset(1) == 11);
  CHECK(prq.code_size() == packed_bytes(6, 6) + 4);
  CHECK(prq.spec() == "PRQ2x3x6,beam=4");
  int reports = 0;
  TrainContext ctx = quick_context();
  ctx.progress = [&](const Progress& p) {
    CHECK(p.phase == "prq" && p.stages == 6 && p.stage >= 0 && p.stage < 6);
    ++reports;
  };
  prq.train(n, x.data(), ctx);
  CHECK(reports >= 6);
  std::vector<uint8_t> codes;
  const auto decoded = qvtest::round_trip(prq, n, x.data(), &codes);
  qvtest::check_adc_matches_decoded(prq, n, codes, decoded, q.data(), 1e-5);
  std::vector<float> zero(n * d, 0.0f);
  CHECK(qvtest::mean_squared_error(x, decoded, n) < 0.3 * qvtest::mean_squared_error(x, zero, n));
  // norm=u8 only changes the norm byte.
  o.norm = NormStorage::Uint8;
  ProductResidualQuantizer small(d, 2, 3, 6, o);
  CHECK(small.code_size() == packed_bytes(6, 6) + 1);
  small.train(n, x.data(), quick_context());
  const auto decoded8 = qvtest::round_trip(small, n, x.data(), &codes);
  const double step = (small.norm_codec().hi() - small.norm_codec().lo()) / 255.0;
  qvtest::check_adc_matches_decoded(small, n, codes, decoded8, q.data(), 1e-5, step / 2 + 1e-3);
  CHECK_THROWS_CODE(ProductResidualQuantizer(4, 5, 2, 8), InvalidArgument);
}
