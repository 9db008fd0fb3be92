// 4-bit fast-scan: kernels at every SIMD level against the scalar reference; the index returns exactly what a
// plain PQ<M>x4 index over the same codes returns; persistence and removal keep the block layout consistent.
#include <algorithm>
#include <cmath>

#include "check.h"
#include "error.h"
#include "fastscan.h"
#include "lut_quant.h"
#include "simd.h"
#include "spec.h"
#include "test_util.h"

using namespace quiver;

TEST_CASE("fastscan kernel: every SIMD level bounds the scalar sums from below, exactly when nothing saturates") {
  // Pair counts cover the one-pass kernels (≤ 16 pairs), the multi-pass ones with and without a last partial
  // pass (17, 24, 33, 64, 128) and an odd last pair; 70 blocks cross the 32-block chunks of the passes. Tables
  // hold 0…127 as the contract says, the largest value included; then 0…63, where no four looked-up entries
  // can pass 255, so the SIMD kernels' saturating byte adds cannot clip and the sums must be exact.
  for (uint32_t top : {127u, 63u}) {
    for (size_t pairs : {1, 2, 3, 8, 15, 16, 17, 24, 33, 64, 128}) {
      const size_t nblocks = pairs % 2 ? 5 : 70;
      Rng rng(pairs + top);
      std::vector<uint8_t> blocks(nblocks * pairs * 32), lut(pairs * 32);
      for (auto& b : blocks) b = uint8_t(rng.below(256));
      for (auto& v : lut) v = uint8_t(rng.below(top + 1));
      lut[0] = lut[31] = uint8_t(top);
      std::vector<uint16_t> want(nblocks * 32), want_min(nblocks);
      kScalarKernels.fastscan_u4(blocks.data(), nblocks, pairs, lut.data(), want.data(), want_min.data());
      for (size_t b = 0; b < nblocks; ++b)
        CHECK(want_min[b] == *std::min_element(want.begin() + long(b * 32), want.begin() + long(b * 32 + 32)));
      // The reference itself against a direct sum.
      uint32_t direct = 0;
      for (size_t p = 0; p < pairs; ++p) {
        const uint8_t byte = blocks[3 * pairs * 32 + p * 32 + 7];
        direct += lut[2 * p * 16 + (byte & 15)] + lut[(2 * p + 1) * 16 + (byte >> 4)];
      }
      CHECK(want[3 * 32 + 7] == direct);
      for (SimdLevel level : supported_simd_levels()) {
        std::vector<uint16_t> got(nblocks * 32), got_min(nblocks);
        kernels_for(level).fastscan_u4(blocks.data(), nblocks, pairs, lut.data(), got.data(), got_min.data());
        if (top == 63) {
          CHECK_MSG(got == want && got_min == want_min, simd_level_name(level) << " pairs=" << pairs);
          continue;
        }
        // A clipped partial sum is 255 or more, so a sum is either exact or at least 255.
        size_t clipped = 0;
        for (size_t i = 0; i < got.size(); ++i) {
          CHECK_MSG(got[i] <= want[i] && got[i] >= std::min<uint16_t>(want[i], 255),
                    simd_level_name(level) << " pairs=" << pairs << " row " << i);
          clipped += got[i] != want[i];
        }
        for (size_t b = 0; b < nblocks; ++b)
          CHECK(got_min[b] == *std::min_element(got.begin() + long(b * 32), got.begin() + long(b * 32 + 32)));
        if (level == SimdLevel::Scalar) CHECK(clipped == 0);
      }
    }
  }
}

TEST_CASE("fastscan exact block scores: every SIMD level gives the scalar reference's bits") {
  for (size_t m : {1, 2, 5, 8, 16, 31, 32, 56}) {
    const size_t pairs = (m + 1) / 2;
    Rng rng(m + 100);
    std::vector<uint8_t> block(pairs * 32);
    for (auto& b : block) b = uint8_t(rng.below(256));
    if (m % 2)  // the phantom sub-quantizer's nibbles are zero, as the writers leave them
      for (size_t j = 0; j < 32; ++j) block[(pairs - 1) * 32 + j] &= 15;
    const auto lut = qvtest::random_floats(m * 16, m + 7);
    std::vector<float> want(32);
    kScalarKernels.fastscan_exact_u4(block.data(), m, lut.data(), want.data());
    for (size_t j = 0; j < 32; j += 7) {  // the reference against a direct sum
      float even = 0, odd = 0;
      for (size_t s = 0; s < m; ++s) {
        const uint8_t byte = block[(s / 2) * 32 + j];
        (s % 2 ? odd : even) += lut[s * 16 + (s % 2 ? byte >> 4 : byte & 15)];
      }
      CHECK(want[j] == even + odd);
    }
    for (SimdLevel level : supported_simd_levels()) {
      std::vector<float> got(32);
      kernels_for(level).fastscan_exact_u4(block.data(), m, lut.data(), got.data());
      CHECK_MSG(got == want, simd_level_name(level) << " m=" << m);
    }
  }
}

TEST_CASE("fastscan table set-up: every SIMD level sums and ranges like the scalar reference and rounds to nearest") {
  for (size_t m : {1, 2, 5, 16, 56, 98}) {
    const auto a = qvtest::random_floats(m * 16, m + 11), b = qvtest::random_floats(m * 16, m + 12);
    std::vector<float> want_lut(m * 16), want_lo(m), want_hi(m);
    kScalarKernels.lut16_sum_range(a.data(), b.data(), m, want_lut.data(), want_lo.data(), want_hi.data());
    // The reference against its definition.
    for (size_t t = 0; t < m; ++t) {
      float lo = a[t * 16] + b[t * 16], hi = lo;
      for (size_t j = 0; j < 16; ++j) {
        const float v = a[t * 16 + j] + b[t * 16 + j];
        CHECK(want_lut[t * 16 + j] == v);
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      CHECK(want_lo[t] == lo && want_hi[t] == hi);
    }
    const float scale = 127.0f / 3.5f, top = 127;
    std::vector<uint8_t> want_q(m * 16);
    kScalarKernels.lut16_quantize(want_lut.data(), m, want_lo.data(), scale, top, want_q.data());
    for (size_t i = 0; i < m * 16; ++i) {
      const double exact = (double(want_lut[i]) - want_lo[i / 16]) * scale;
      CHECK_MSG(std::fabs(double(want_q[i]) - std::min(double(top), exact)) <= 0.5 + 1e-3, "entry " << i);
    }
    for (SimdLevel level : supported_simd_levels()) {
      const Kernels& k = kernels_for(level);
      std::vector<float> lut(m * 16), lo(m), hi(m);
      k.lut16_sum_range(a.data(), b.data(), m, lut.data(), lo.data(), hi.data());
      CHECK_MSG(lut == want_lut && lo == want_lo && hi == want_hi, simd_level_name(level) << " m=" << m);
      // Without b, in place: the table is a itself.
      std::vector<float> in_place = a, lo1(m), hi1(m);
      k.lut16_sum_range(in_place.data(), nullptr, m, in_place.data(), lo1.data(), hi1.data());
      CHECK_MSG(in_place == a, simd_level_name(level) << " in place m=" << m);
      for (size_t t = 0; t < m; ++t)
        CHECK(lo1[t] == *std::min_element(a.begin() + long(t * 16), a.begin() + long(t * 16 + 16)) &&
              hi1[t] == *std::max_element(a.begin() + long(t * 16), a.begin() + long(t * 16 + 16)));
      std::vector<uint8_t> q(m * 16);
      k.lut16_quantize(want_lut.data(), m, want_lo.data(), scale, top, q.data());
      // Round to nearest, as the pruning bound assumes (a level may round the product-sum once instead of twice,
      // so its bytes can differ from the reference's at exact halves).
      size_t off = 0;
      for (size_t i = 0; i < m * 16; ++i) {
        const double exact = std::min(double(top), (double(want_lut[i]) - want_lo[i / 16]) * scale);
        off += std::fabs(double(q[i]) - exact) > 0.5 + 1e-3 || std::abs(int(q[i]) - int(want_q[i])) > 1;
      }
      CHECK_MSG(off == 0, simd_level_name(level) << " m=" << m << ": " << off << " bytes not rounded to nearest");
    }
  }
}

TEST_CASE("fastscan index: same results as PQ<M>x4, odd M, filters, refine, remove and reload") {
  const size_t d = 20, n = 1000, nq = 12, k = 10;
  std::vector<float> centres;
  const auto x = qvtest::blobs(n, d, 40, 5, &centres);
  const auto q = qvtest::random_floats(nq * d, 6);
  for (size_t m : {5, 8}) {
    for (Metric metric : {Metric::L2, Metric::InnerProduct}) {
      const std::string fs_spec = "PQ" + std::to_string(m) + "x4fs,Refine";
      auto fs = make_index(fs_spec, d, metric);
      auto plain = make_index("PQ" + std::to_string(m) + "x4", d, metric);
      CHECK(fs->spec() == fs_spec && fs->code_size() == (m + 1) / 2);
      TrainContext ctx;
      ctx.iterations = 6;
      fs->train(n, x.data(), ctx);
      plain->train(n, x.data(), ctx);
      fs->add(n / 2, x.data(), nullptr, 0);  // two adds: the second fills the last partial block
      fs->add(n - n / 2, x.data() + (n / 2) * d, nullptr, 0);
      plain->add(n, x.data(), nullptr, 0);
      std::vector<int64_t> a(nq * k), b(nq * k);
      std::vector<float> da(nq * k), db(nq * k);
      fs->search(nq, q.data(), k, SearchParams{}, a.data(), da.data());
      plain->search(nq, q.data(), k, SearchParams{}, b.data(), db.data());
      CHECK_MSG(a == b, "M=" << m);
      for (size_t i = 0; i < a.size(); ++i) CHECK_NEAR(da[i], db[i], 1e-5 * std::fabs(db[i]) + 1e-4);
      // Filtered and refined searches still agree with brute force over the plain index.
      std::vector<int64_t> allow;
      for (int64_t i = 0; i < int64_t(n); i += 2) allow.push_back(i);
      SearchParams p;
      p.allow_ids = allow.data();
      p.allow_count = allow.size();
      fs->search(nq, q.data(), k, p, a.data(), da.data());
      plain->search(nq, q.data(), k, p, b.data(), db.data());
      CHECK(a == b);
      for (int64_t id : a) CHECK(id % 2 == 0);
      SearchParams r;
      r.refine = 8;
      fs->search(nq, q.data(), k, r, a.data(), da.data());
      // Remove, then save and load (copied and borrowed): results follow.
      std::vector<int64_t> gone;
      for (int64_t i = 0; i < int64_t(n); i += 3) gone.push_back(i);
      fs->remove(gone.size(), gone.data());
      plain->remove(gone.size(), gone.data());
      fs->search(nq, q.data(), k, SearchParams{}, a.data(), da.data());
      plain->search(nq, q.data(), k, SearchParams{}, b.data(), db.data());
      CHECK(a == b);
      const auto bytes = fs->serialize();
      for (bool borrow : {false, true}) {
        auto loaded = Index::deserialize(owned_bytes(bytes), borrow);
        std::vector<int64_t> c(nq * k);
        loaded->search(nq, q.data(), k, SearchParams{}, c.data(), db.data());
        CHECK(c == a);
      }
      std::vector<float> rec(d), rec_plain(d);
      CHECK(fs->reconstruct(1, rec.data()) && plain->reconstruct(1, rec_plain.data()) && rec == rec_plain);
    }
  }
  CHECK_THROWS_CODE(make_index("PQ8x8fs", d, Metric::L2), InvalidArgument);
  CHECK_THROWS_CODE(make_codec("PQ8x4fs", d), InvalidArgument);
}

// Large enough for scan()'s seeded order (best block of each group first, then the rest) and its segments
// (65 536 rows) to matter: several segments, thread splits that start mid-block, many exact ties (each
// distinct vector repeated ~47 times, so ids break ties across far-apart blocks), k from 1 to 100, a filter.
TEST_CASE("fastscan index: seeded scan order and segments give plain PQ<M>x4's results") {
  const size_t d = 8, distinct = 3000, n = 140000, nq = 4;
  const auto x = qvtest::repeated_blobs(n, distinct, d, 11);  // its first `distinct` rows are the blobs
  const auto q = qvtest::random_floats(nq * d, 12);
  const auto allow = qvtest::every_nth_id(n, 3, 7);
  for (Metric metric : {Metric::L2, Metric::InnerProduct}) {
    auto fs = make_index("PQ4x4fs", d, metric);
    auto plain = make_index("PQ4x4", d, metric);
    TrainContext ctx;
    ctx.iterations = 4;
    fs->train(distinct, x.data(), ctx);
    plain->train(distinct, x.data(), ctx);
    fs->add(n, x.data(), nullptr, 0);
    plain->add(n, x.data(), nullptr, 0);
    for (size_t k : {1, 10, 100}) {
      for (int threads : {1, 3}) {
        for (bool filtered : {false, true}) {
          SearchParams p;
          p.threads = threads;
          if (filtered) p.allow_ids = allow.data(), p.allow_count = allow.size();
          std::vector<int64_t> a(nq * k), b(nq * k);
          std::vector<float> da(nq * k), db(nq * k);
          // One query per call as well as all at once: a lone query is split across threads by rows.
          for (size_t i = 0; i < nq; ++i)
            fs->search(1, q.data() + i * d, k, p, a.data() + i * k, da.data() + i * k);
          plain->search(nq, q.data(), k, p, b.data(), db.data());
          CHECK_MSG(a == b, "k=" << k << " threads=" << threads << " filtered=" << filtered);
          for (size_t i = 0; i < a.size(); ++i) CHECK_NEAR(da[i], db[i], 1e-5 * std::fabs(db[i]) + 1e-4);
          fs->search(nq, q.data(), k, p, a.data(), da.data());
          CHECK(a == b);
        }
      }
    }
  }
}

// The seeded order rests on group_argmin; a wrong index would not change any search's results (the order does
// not), only their speed, so it is checked directly: counts around the 32-value SIMD steps, values on both sides
// of 0x8000 (the signed-min bias), and ties (the first wins).
TEST_CASE("group_argmin: index of the first smallest value, any count, full uint16 range") {
  Rng rng(31);
  for (size_t count : {1, 2, 31, 32, 33, 63, 64, 65, 100}) {
    for (int round = 0; round < 20; ++round) {
      std::vector<uint16_t> values(count);
      for (auto& v : values) v = uint16_t(round % 2 ? rng.below(65536) : 0x7FF0 + rng.below(32));
      const size_t want = size_t(std::min_element(values.begin(), values.end()) - values.begin());
      CHECK_MSG(group_argmin(values.data(), count) == want, "count=" << count << " round=" << round);
    }
  }
}
