// IVF: coarse lists + (transformed) residual codes. Distances agree with the reconstructions, recall grows with
// nprobe, TRQ transforms stay orthogonal and do not hurt, persistence/removal/filters behave.
#include <algorithm>
#include <cmath>
#include <set>

#include "check.h"
#include "error.h"
#include "ivf.h"
#include "linalg.h"
#include "simd.h"
#include "spec.h"
#include "test_util.h"

using namespace quiver;

namespace {

double recall_at(const Index& index, const Index& flat, const std::vector<float>& q, size_t k, size_t nprobe) {
  const size_t nq = q.size() / index.dim();
  std::vector<int64_t> a(nq * k), b(nq * k);
  std::vector<float> da(nq * k), db(nq * k);
  SearchParams p;
  p.nprobe = nprobe;
  index.search(nq, q.data(), k, p, a.data(), da.data());
  flat.search(nq, q.data(), k, SearchParams{}, b.data(), db.data());
  size_t hits = 0;
  for (size_t i = 0; i < nq; ++i) {
    std::set<int64_t> truth(b.begin() + long(i * k), b.begin() + long((i + 1) * k));
    for (size_t j = 0; j < k; ++j) hits += truth.count(a[i * k + j]);
  }
  return double(hits) / double(nq * k);
}

}  // namespace

TEST_CASE("ivf: search distances equal the reconstructions, for L2 and IP, with and without TRQ") {
  const size_t d = 16, n = 3000, nq = 8, k = 6;
  std::vector<float> centres;
  const auto x = qvtest::blobs(n, d, 30, 17, &centres);
  const auto q = qvtest::random_floats(nq * d, 18);
  for (const char* spec : {"IVF8,PQ4x8", "IVF8,TRQ,PQ4x8", "IVF8,TRQ,iters=2,PQ4x6"}) {
    for (Metric metric : {Metric::L2, Metric::InnerProduct}) {
      auto index = make_index(spec, d, metric);
      CHECK(index->spec() == spec);
      TrainContext ctx;
      ctx.iterations = 6;
      index->train(n, x.data(), ctx);
      index->add(n, x.data(), nullptr, 0);
      std::vector<int64_t> labels(nq * k);
      std::vector<float> dists(nq * k);
      SearchParams p;
      p.nprobe = 3;
      index->search(nq, q.data(), k, p, labels.data(), dists.data());
      std::vector<float> rec(d);
      for (size_t i = 0; i < nq * k; ++i) {
        REQUIRE(labels[i] >= 0);
        REQUIRE(index->reconstruct(labels[i], rec.data()));
        const float* qi = &q[(i / k) * d];
        const float want = metric == Metric::L2 ? kScalarKernels.l2sqr(qi, rec.data(), d) : kScalarKernels.dot(qi, rec.data(), d);
        CHECK_NEAR(dists[i], want, 1e-3 * (1 + std::fabs(want)));
      }
    }
  }
}

TEST_CASE("ivf: recall grows with nprobe and reaches the exhaustive level; TRQ helps or ties") {
  const size_t d = 24, n = 6000, nq = 40, k = 10;
  std::vector<float> centres;
  auto x = qvtest::blobs(n, d, 60, 23, &centres);
  // Stretch each blob along its own random direction, so that residuals of different lists are shaped
  // differently: the case local transforms are for.
  const auto noise = qvtest::random_floats(n * d, 24);
  for (size_t i = 0; i < n; ++i) {
    const size_t c = i % 60;
    const float t = noise[i * d] * 6;
    for (size_t j = 0; j < d; ++j) x[i * d + j] += t * std::sin(float(c * 31 + j));
  }
  // Queries half-way between two blobs: their neighbours sit in several lists, so nprobe matters.
  std::vector<float> q(nq * d);
  for (size_t i = 0; i < nq; ++i)
    for (size_t j = 0; j < d; ++j) q[i * d + j] = 0.5f * (x[i * d + j] + x[(i + 1) * d + j]);
  auto flat = make_index("Flat", d, Metric::L2);
  flat->add(n, x.data(), nullptr, 0);
  auto plain = make_index("IVF16,PQ12x8", d, Metric::L2);
  auto trq = make_index("IVF16,TRQ,PQ12x8", d, Metric::L2);
  TrainContext ctx;
  ctx.iterations = 8;
  plain->train(n, x.data(), ctx);
  trq->train(n, x.data(), ctx);
  plain->add(n, x.data(), nullptr, 0);
  trq->add(n, x.data(), nullptr, 0);
  const double r1 = recall_at(*plain, *flat, q, k, 1), r4 = recall_at(*plain, *flat, q, k, 4),
               r16 = recall_at(*plain, *flat, q, k, 16);
  const double t16 = recall_at(*trq, *flat, q, k, 16);
  std::cout << "    IVF16,PQ12x8 recall@10 nprobe 1/4/16: " << r1 << " / " << r4 << " / " << r16
            << "; with TRQ at 16: " << t16 << "\n";
  CHECK(r1 + 0.05 < r16 && r4 <= r16 + 1e-9);
  CHECK(t16 >= r16 - 0.05);
  // Reconstruction error: TRQ's transforms are orthogonal, so it can only align residuals, not inflate them.
  double mse_plain = 0, mse_trq = 0;
  std::vector<float> a(d), b(d);
  for (size_t i = 0; i < n; i += 7) {
    plain->reconstruct(int64_t(i), a.data());
    trq->reconstruct(int64_t(i), b.data());
    mse_plain += kScalarKernels.l2sqr(a.data(), &x[i * d], d);
    mse_trq += kScalarKernels.l2sqr(b.data(), &x[i * d], d);
  }
  std::cout << "    reconstruction error plain " << mse_plain << " vs TRQ " << mse_trq << "\n";
  CHECK(mse_trq < mse_plain * 0.97);  // measured: 0.935 (PQ6x6: 0.73 — coarser codes gain more)
}

TEST_CASE("ivf: persistence (copied and borrowed), removal, filters, refine, errors") {
  const size_t d = 12, n = 1500, nq = 5, k = 5;
  const auto x = qvtest::random_floats(n * d, 41);
  const auto q = qvtest::random_floats(nq * d, 42);
  auto index = make_index("IVF10,TRQ,PQ3x8,Refine", d, Metric::L2);
  TrainContext ctx;
  ctx.iterations = 4;
  index->train(n, x.data(), ctx);
  std::vector<int32_t> cats(n);
  for (size_t i = 0; i < n; ++i) cats[i] = int32_t(i % 3);
  index->add(n, x.data(), nullptr, cats.data(), false, 0);
  std::vector<int64_t> gone;
  for (int64_t i = 0; i < int64_t(n); i += 4) gone.push_back(i);
  CHECK(index->remove(gone.size(), gone.data()) == gone.size());
  SearchParams p;
  p.nprobe = 4;
  p.refine = 3;
  const int32_t wanted[] = {1};
  p.categories = wanted;
  p.category_count = 1;
  std::vector<int64_t> want(nq * k), got(nq * k);
  std::vector<float> dw(nq * k), dg(nq * k);
  index->search(nq, q.data(), k, p, want.data(), dw.data());
  for (int64_t id : want) CHECK(id == -1 || (id % 3 == 1 && id % 4 != 0));
  const auto bytes = index->serialize();
  for (bool borrow : {false, true}) {
    auto loaded = Index::deserialize(owned_bytes(bytes), borrow);
    CHECK(loaded->spec() == "IVF10,TRQ,PQ3x8,Refine" && loaded->size() == index->size());
    loaded->search(nq, q.data(), k, p, got.data(), dg.data());
    CHECK(got == want);
    const auto extra = qvtest::random_floats(2 * d, 43);
    loaded->add(2, extra.data(), nullptr, 0);  // mutating a borrowed index copies its lists first
    CHECK(loaded->size() == index->size() + 2);
  }
  // Bit flips anywhere in a small IVF file are caught.
  auto small = make_index("IVF2,PQ2x4", 4, Metric::L2);
  small->train(200, x.data(), ctx);
  small->add(20, x.data(), nullptr, 0);
  const auto sb = small->serialize();
  for (size_t i = 0; i < sb.size(); ++i) {
    auto flipped = sb;
    flipped[i] ^= 0x04;
    CHECK_THROWS_CODE(Index::deserialize(owned_bytes(flipped), false), Corrupt);
  }
  CHECK_THROWS_CODE(make_index("IVF8", d, Metric::L2), InvalidArgument);
  CHECK_THROWS_CODE(make_index("IVF8,HNSW", d, Metric::L2), InvalidArgument);
  CHECK_THROWS_CODE(make_index("IVF8,TRQ,iters=x,PQ3", d, Metric::L2), InvalidArgument);
  CHECK_THROWS_CODE(make_index("IVF0,PQ3", d, Metric::L2), InvalidArgument);
  auto tiny = make_index("IVF64,PQ3x4", d, Metric::L2);
  CHECK_THROWS_CODE(tiny->train(10, x.data(), ctx), InvalidArgument);
  // Per category: with every list probed, each group equals a category-filtered search.
  const int32_t two[] = {2, 1};
  SearchParams per;
  per.categories = two;
  per.category_count = 2;
  per.nprobe = 10;
  std::vector<int64_t> l(nq * 2 * k), single(nq * k);
  std::vector<float> dd(nq * 2 * k), ds(nq * k);
  index->search_per_category(nq, q.data(), k, per, l.data(), dd.data());
  for (size_t c = 0; c < 2; ++c) {
    SearchParams one;
    one.nprobe = 10;
    one.categories = &two[c];
    one.category_count = 1;
    index->search(nq, q.data(), k, one, single.data(), ds.data());
    for (size_t qi = 0; qi < nq; ++qi)
      CHECK(std::equal(single.begin() + long(qi * k), single.begin() + long((qi + 1) * k),
                       l.begin() + long((qi * 2 + c) * k)));
  }
}
