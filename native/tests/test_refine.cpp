// Refine stores (refine.h): half conversions, the fp16/int8 kernels at every SIMD level against the scalar
// reference, specs, persistence (copy and borrowed), mutation and merging, and recall after refine on the
// SIFT slice with each storage.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>

#include "check.h"
#include "error.h"
#include "index.h"
#include "refine.h"
#include "simd.h"
#include "spec.h"
#include "test_data.h"
#include "test_util.h"

using namespace quiver;

namespace {

bool is_nan_half(uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0; }

std::unique_ptr<Index> build(const std::string& spec, size_t n, size_t d, const std::vector<float>& x,
                             Metric metric = Metric::L2) {
  auto index = make_index(spec, d, metric);
  TrainContext ctx;
  ctx.seed = 3;
  ctx.iterations = 6;
  index->train(n, x.data(), ctx);
  index->add(n, x.data(), nullptr, 1);
  return index;
}

struct Results {
  std::vector<int64_t> labels;
  std::vector<float> distances;
};

Results search(const Index& index, size_t nq, const float* q, size_t k, size_t refine, size_t nprobe = 1) {
  Results r;
  r.labels.resize(nq * k);
  r.distances.resize(nq * k);
  SearchParams p;
  p.refine = refine;
  p.nprobe = nprobe;
  p.threads = 1;
  index.search(nq, q, k, p, r.labels.data(), r.distances.data());
  return r;
}

}  // namespace

TEST_CASE("refine: half conversion is exact both ways and rounds to nearest even") {
  // Every half survives half → float → half (NaNs stay NaNs).
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = half_to_float(uint16_t(h));
    if (is_nan_half(uint16_t(h))) {
      CHECK(std::isnan(f) && is_nan_half(float_to_half(f)));
      continue;
    }
    if ((h & 0x7FFFu) == 0x7C00u) continue;  // ±infinity: clamped on the way back (below)
    CHECK_MSG(float_to_half(f) == h, "half " << h);
  }
  CHECK(half_to_float(0x3C00) == 1.0f && half_to_float(0xC000) == -2.0f && half_to_float(0x7BFF) == 65504.0f);
  CHECK(half_to_float(0x0001) == std::ldexp(1.0f, -24));
  // Nearest even at ties, clamping beyond the range, flushing below half the smallest subnormal.
  CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);                            // tie → even (down)
  CHECK(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02);                        // tie → even (up)
  CHECK(float_to_half(65519.0f) == 0x7BFF && float_to_half(1e9f) == 0x7BFF && float_to_half(-1e9f) == 0xFBFF);
  CHECK(float_to_half(std::numeric_limits<float>::infinity()) == 0x7BFF);
  CHECK(float_to_half(std::ldexp(1.0f, -25)) == 0 && float_to_half(std::ldexp(1.5f, -25)) == 1);
  CHECK(float_to_half(-0.0f) == 0x8000 && float_to_half(1e-30f) == 0);
  // Random floats: the chosen half is never farther than its neighbours.
  const auto xs = qvtest::random_floats(20000, 9);
  for (size_t i = 0; i < xs.size(); ++i) {
    const float x = xs[i] * std::ldexp(1.0f, int(i % 40) - 20);
    const uint16_t h = float_to_half(x);
    const double err = std::fabs(double(x) - half_to_float(h));
    for (const int step : {-1, 1}) {
      const uint16_t n = uint16_t(h + step);
      if ((n & 0x7C00u) == 0x7C00u || ((n ^ h) & 0x8000u)) continue;
      CHECK_MSG(err <= std::fabs(double(x) - half_to_float(n)), "x " << x);
    }
  }
}

TEST_CASE("refine: fp16 and int8 kernels match the scalar reference at every SIMD level") {
  const Kernels& ref = kScalarKernels;
  for (SimdLevel level : supported_simd_levels()) {
    const Kernels& k = kernels_for(level);
    for (size_t d : {1, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100, 128, 784}) {
      const auto q = qvtest::random_floats(d, d), v = qvtest::random_floats(d, d + 7), s = qvtest::random_floats(d, d + 9);
      std::vector<uint16_t> h(d);
      std::vector<uint8_t> c(d);
      for (size_t i = 0; i < d; ++i) {
        h[i] = float_to_half(v[i] * 100);
        c[i] = uint8_t(size_t(std::fabs(v[i]) * 255.0f) & 255);
      }
      CHECK_NEAR(k.l2sqr_f16(q.data(), h.data(), d), ref.l2sqr_f16(q.data(), h.data(), d), 1e-5 * d * 1e4);
      CHECK_NEAR(k.dot_f16(q.data(), h.data(), d), ref.dot_f16(q.data(), h.data(), d), 1e-4 * d * 100);
      CHECK_NEAR(k.l2sqr_sq8(q.data(), s.data(), c.data(), d), ref.l2sqr_sq8(q.data(), s.data(), c.data(), d),
                 1e-5 * d * 1e4);
      CHECK_NEAR(k.dot_sq8(q.data(), c.data(), d), ref.dot_sq8(q.data(), c.data(), d), 1e-4 * d * 255);
      // The scalar reference is the plain definition.
      double want = 0;
      for (size_t i = 0; i < d; ++i) want += (double(q[i]) - half_to_float(h[i])) * (double(q[i]) - half_to_float(h[i]));
      CHECK_NEAR(ref.l2sqr_f16(q.data(), h.data(), d), want, 1e-4 * want + 1e-3);
    }
  }
}

TEST_CASE("refine: store option in specs, canonical forms and bytes per vector") {
  CHECK(describe_index_spec("PQ8,Refine,store=fp16", 64).canonical == "PQ8x8,Refine,store=fp16");
  CHECK(describe_index_spec("PQ8,Refine,store=f32", 64).canonical == "PQ8x8,Refine");
  CHECK(describe_index_spec("IVF16,PQ8x4,Refine, store=int8", 64).canonical == "IVF16,PQ8x4,Refine,store=int8");
  CHECK(describe_index_spec("PQ8x4fs,Refine,store=int8", 64).canonical == "PQ8x4fs,Refine,store=int8");
  CHECK(describe_index_spec("RQ2x6,beam=2,Refine,store=fp16", 64).canonical == "RQ2x6,beam=2,Refine,store=fp16");
  CHECK(make_index("PQ8,Refine", 64, Metric::L2)->refine_bytes() == 256);
  CHECK(make_index("PQ8,Refine,store=fp16", 64, Metric::L2)->refine_bytes() == 128);
  CHECK(make_index("PQ8,Refine,store=int8", 64, Metric::L2)->refine_bytes() == 64);
  CHECK(make_index("PQ8", 64, Metric::L2)->refine_bytes() == 0);
  for (const char* bad : {"PQ8,Refine,store=f8", "PQ8,Refine,store=", "PQ8,Refine,beam=2", "PQ8,Refine,store=int8,x=1",
                          "Flat,Refine,store=fp16", "PQ8,store=fp16", "PQ8,Refine3"}) {
    try {
      make_index(bad, 64, Metric::L2);
      CHECK_MSG(false, bad << " was accepted");
    } catch (const Error& e) {
      CHECK_MSG(e.code() == ErrorCode::InvalidArgument, bad << ": " << e.what());
      CHECK_MSG(std::string(e.what()).find(bad) != std::string::npos || std::string(bad).find(" ") != std::string::npos,
                e.what());
    }
  }
}

TEST_CASE("refine: fp16/int8 stores survive save/load (copied and borrowed), remove, upsert and merge") {
  const size_t d = 24, n = 600, nq = 12, k = 5;
  std::vector<float> centres;
  const auto x = qvtest::blobs(n, d, 9, 41, &centres);
  const auto q = qvtest::random_floats(nq * d, 42);
  for (const char* spec : {"PQ4x8,Refine,store=fp16", "PQ4x8,Refine,store=int8", "PQ6x4fs,Refine,store=int8",
                           "IVF8,PQ4x8,Refine,store=fp16", "IVF8,TRQ,PQ4x6,Refine,store=int8"}) {
    for (const Metric metric : {Metric::L2, Metric::InnerProduct, Metric::Cosine}) {
      auto index = build(spec, n, d, x, metric);
      const int64_t gone[] = {3, 17, 400};
      CHECK(index->remove(3, gone) == 3);
      const Results want = search(*index, nq, q.data(), k, 8, 4);
      std::vector<float> before(d), after(d);
      REQUIRE(index->reconstruct_refined(5, before.data()));
      CHECK(!index->reconstruct_refined(3, before.data()));
      const std::vector<uint8_t> bytes = index->serialize();
      for (const bool borrow : {false, true}) {
        auto source = owned_bytes(std::vector<uint8_t>(bytes));
        auto loaded = Index::deserialize(source, borrow);
        CHECK(loaded->spec() == index->spec() && loaded->refine_bytes() == index->refine_bytes());
        const Results got = search(*loaded, nq, q.data(), k, 8, 4);
        CHECK_MSG(got.labels == want.labels && got.distances == want.distances, spec << " borrow " << borrow);
        REQUIRE(loaded->reconstruct_refined(5, after.data()));
        CHECK(before == after);
        CHECK(loaded->serialize() == bytes);
        // Mutating a borrowed index copies first and keeps the other rows' stored vectors.
        const int64_t more[] = {5};
        CHECK(loaded->remove(1, more) == 1);
        REQUIRE(loaded->reconstruct_refined(6, after.data()));
        std::vector<float> six(d);
        index->reconstruct_refined(6, six.data());
        CHECK(six == after);
      }
      // Merging two halves equals one index holding both (the trained state is shared through the file).
      auto empty = make_index(spec, d, metric);
      TrainContext ctx;
      ctx.seed = 3;
      ctx.iterations = 6;
      empty->train(n, x.data(), ctx);
      const std::vector<uint8_t> trained = empty->serialize();
      auto a = Index::deserialize(owned_bytes(std::vector<uint8_t>(trained)), false);
      auto b = Index::deserialize(owned_bytes(std::vector<uint8_t>(trained)), true);
      std::vector<int64_t> ids(n);
      for (size_t i = 0; i < n; ++i) ids[i] = int64_t(i);
      a->add(n / 2, x.data(), ids.data(), 1);
      b->add(n - n / 2, x.data() + n / 2 * d, ids.data() + n / 2, 1);
      a->merge_from(*b);
      auto whole = Index::deserialize(owned_bytes(std::vector<uint8_t>(trained)), false);
      whole->add(n, x.data(), ids.data(), 1);
      CHECK_MSG(a->serialize() == whole->serialize(), spec << ": merged file differs");
    }
  }
  // int8 stores trained on different data do not merge.
  const auto y = qvtest::random_floats(n * d, 77);
  auto a = build("PQ4x8,Refine,store=int8", n, d, x);
  auto b = make_index("PQ4x8,Refine,store=int8", d, Metric::L2);
  TrainContext ctx;
  b->train(n, y.data(), ctx);
  CHECK_THROWS_CODE(a->merge_from(*b), InvalidArgument);
}

TEST_CASE("refine: damaged refine headers are Corrupt, never trusted") {
  const size_t d = 16, n = 300;
  std::vector<float> centres;
  const auto x = qvtest::blobs(n, d, 4, 5, &centres);
  const std::vector<uint8_t> bytes = build("PQ4x8,Refine,store=int8", n, d, x)->serialize();
  // Re-emit the container with the RFIN version changed (the writer recomputes the CRCs; every section keeps
  // its size, so the bulk sections keep their offsets and alignment).
  std::vector<Section> sections = read_container(bytes.data(), bytes.size(), fourcc("QVRI"));
  for (const uint32_t version : {0u, 2u}) {
    ContainerWriter out(fourcc("QVRI"));
    for (const Section& s : sections) {
      ByteWriter w;
      if (s.tag == fourcc("RFIN")) {
        std::vector<uint8_t> p(s.payload, s.payload + s.size);
        std::memcpy(p.data(), &version, 4);
        w.raw(p.data(), p.size());
      } else {
        w.raw(s.payload, s.size);
      }
      out.section(s.tag, w);
    }
    const std::vector<uint8_t> damaged = out.finish();
    CHECK_THROWS_CODE(Index::deserialize(owned_bytes(std::vector<uint8_t>(damaged)), false), Corrupt);
  }
}

TEST_CASE("refine: SIFT recall after refine — fp16 equals f32, int8 within its measured bound") {
  std::vector<float> x;
  size_t n = 0, d = 0;
  if (!qvtest::load_sift_heldout_base(&x, &n, &d)) return;
  // The last 100 base vectors are the queries, searched against the first n − 100 (exact ground truth by
  // brute force).
  const size_t nq = 100, nb = n - nq, k = 10;
  const float* q = x.data() + nb * d;
  std::vector<std::vector<int64_t>> truth(nq);
  for (size_t i = 0; i < nq; ++i) {
    std::vector<std::pair<float, int64_t>> all(nb);
    for (size_t j = 0; j < nb; ++j) all[j] = {kScalarKernels.l2sqr(q + i * d, x.data() + j * d, d), int64_t(j)};
    std::partial_sort(all.begin(), all.begin() + k, all.end());
    for (size_t j = 0; j < k; ++j) truth[i].push_back(all[j].second);
  }
  const auto recall = [&](const Results& r) {
    size_t hits = 0;
    for (size_t i = 0; i < nq; ++i)
      for (size_t j = 0; j < k; ++j)
        hits += std::count(truth[i].begin(), truth[i].end(), r.labels[i * k + j]) ? 1 : 0;
    return double(hits) / double(nq * k);
  };
  TrainContext ctx;
  ctx.seed = 1;
  ctx.iterations = 8;
  // One trained PQ16x8 file, three refine stores: same codes, so the shortlists are identical and only the
  // re-scoring differs.
  double r[3] = {0, 0, 0};
  Results res[3];
  const char* stores[3] = {"", ",store=fp16", ",store=int8"};
  for (size_t s = 0; s < 3; ++s) {
    auto index = make_index(std::string("PQ16x8,Refine") + stores[s], d, Metric::L2);
    index->train(nb, x.data(), ctx);
    index->add(nb, x.data(), nullptr, 0);
    CHECK(index->refine_bytes() == d * (s == 0 ? 4 : s == 1 ? 2 : 1));
    res[s] = search(*index, nq, q, k, 10);
    r[s] = recall(res[s]);
    std::printf("    PQ16x8,Refine%-12s refine 10: 10-recall@10 %.3f  (%zu refine bytes/vector)\n", stores[s], r[s],
                index->refine_bytes());
  }
  // Measured: f32 0.999, fp16 0.999, int8 0.988 (SIFT components are integers 0…255, so int8 steps of
  // (max − min)/255 are close to exact; the bound leaves room for SIMD rounding).
  CHECK_MSG(r[0] >= 0.97, r[0]);
  CHECK_MSG(std::fabs(r[1] - r[0]) <= 0.002, r[1] << " vs " << r[0]);
  CHECK_MSG(r[2] >= r[0] - 0.02, r[2] << " vs " << r[0]);
  // fp16 distances are within fp16 rounding of the exact ones (relative 2⁻¹¹ per component).
  size_t same = 0;
  for (size_t i = 0; i < nq * k; ++i) same += res[1].labels[i] == res[0].labels[i];
  CHECK_MSG(same >= nq * k * 99 / 100, same);
}

TEST_CASE("refine: int8 stores clamp to the trained range and round to the nearest step; fp16 rounds") {
  const size_t d = 4, n = 300;
  // Training data spans [0, 1] in every dimension (exactly: the first two rows are the corners).
  std::vector<float> x = qvtest::random_floats(n * d, 12);
  for (float& v : x) v = (v + 1) / 2;
  for (size_t j = 0; j < d; ++j) {
    x[j] = 0.0f;
    x[d + j] = 1.0f;
  }
  auto int8 = build("PQ2x4,Refine,store=int8", n, d, x);
  auto fp16 = build("PQ2x4,Refine,store=fp16", n, d, x);
  const float v[d] = {-1.0f, 0.5f, 2.0f, 0.2509f};
  const int64_t id = 1000;
  int8->add(1, v, &id, 1);
  fp16->add(1, v, &id, 1);
  float got[d];
  REQUIRE(int8->reconstruct_refined(id, got));
  const float step = 1.0f / 255.0f;
  CHECK(got[0] == 0.0f);                                // clamped up to the trained minimum
  CHECK_NEAR(got[2], 1.0f, 1e-6);                        // clamped down to the trained maximum
  CHECK(std::fabs(got[1] - 0.5f) <= step / 2 + 1e-6f);   // nearest step
  CHECK(std::fabs(got[3] - 0.2509f) <= step / 2 + 1e-6f);
  REQUIRE(fp16->reconstruct_refined(id, got));
  for (size_t j = 0; j < d; ++j) CHECK(got[j] == half_to_float(float_to_half(v[j])));
  CHECK(got[3] != v[3] && std::fabs(got[3] - v[3]) <= v[3] * std::ldexp(1.0f, -11));
  // The codes' decoding is what reconstruct() returns, not the refine copy.
  float decoded[d];
  REQUIRE(fp16->reconstruct(id, decoded));
  CHECK(std::fabs(decoded[3] - v[3]) > std::fabs(got[3] - v[3]));
}
