// k-means, product quantizer and the indexes built on them.
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "check.h"
#include "error.h"
#include "index.h"
#include "kmeans.h"
#include "pq.h"
#include "simd.h"
#include "spec.h"
#include "test_util.h"

using namespace quiver;

namespace {

double mse(const std::vector<float>& a, const std::vector<float>& b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i] - b[i]) * (a[i] - b[i]);
  return s / double(n);
}

// The largest squared distance from a true centre (k × d) to its nearest learnt centroid (k × d): below the
// noise scale when every centre was recovered.
double worst_centre_miss(const std::vector<float>& centres, const std::vector<float>& centroids, size_t k, size_t d) {
  double worst = 0;
  for (size_t c = 0; c < k; ++c) {
    double best = 1e30;
    for (size_t j = 0; j < k; ++j) {
      double s = 0;
      for (size_t t = 0; t < d; ++t) s += std::pow(centres[c * d + t] - centroids[j * d + t], 2);
      best = std::min(best, s);
    }
    worst = std::max(worst, best);
  }
  return worst;
}

}  // namespace

TEST_CASE("kmeans: recovers well-separated clusters, deterministic under a seed") {
  const size_t d = 6, k = 12, n = 2400;
  std::vector<float> centres;
  const auto x = qvtest::blobs(n, d, k, 3, &centres);
  TrainContext ctx;
  ctx.seed = 42;
  int reports = 0;
  ctx.progress = [&](const Progress& p) {
    ++reports;
    CHECK(p.phase == "kmeans" && p.iteration >= 1 && p.error >= 0);
  };
  const KMeansResult a = kmeans(n, d, x.data(), k, ctx);
  CHECK(reports == a.iterations_run);
  // Noise is uniform in ±0.5 per dimension: variance 1/12 each, so the MSE per vector is d/12 at the optimum.
  CHECK_MSG(a.mse < d / 12.0 * 1.05, "mse " << a.mse);
  // Every true centre has a learnt centroid within noise distance.
  CHECK(worst_centre_miss(centres, a.centroids, k, d) < 0.05);
  ctx.progress = nullptr;
  const KMeansResult b = kmeans(n, d, x.data(), k, ctx);
  CHECK(a.centroids == b.centroids);
}

TEST_CASE("kmeans: progressive dimensions recover clusters in the input space, with and without initial centroids") {
  const size_t d = 24, k = 10, n = 2000;
  std::vector<float> centres;
  const auto x = qvtest::blobs(n, d, k, 5, &centres);
  TrainContext ctx;
  ctx.seed = 3;
  std::vector<float> initial(x.begin(), x.begin() + k * d);  // the first k rows: one per cluster (i % k)
  for (const float* init : {static_cast<const float*>(nullptr), static_cast<const float*>(initial.data())}) {
    for (size_t steps : {1, 4, 10}) {
      const KMeansResult r = kmeans_progressive(n, d, x.data(), k, init, steps, ctx);
      REQUIRE(r.centroids.size() == k * d);
      // The error k-means measured in the rotated space is the error of the returned centroids in the input
      // space: the rotation and the mean were undone exactly.
      std::vector<float> dists(n);
      std::vector<int32_t> labels(n);
      assign_nearest(n, d, x.data(), k, r.centroids.data(), labels.data(), dists.data(), 1);
      double mse = 0;
      for (float v : dists) mse += v;
      mse /= double(n);
      CHECK_MSG(std::abs(mse - r.mse) <= 1e-3 * r.mse, "steps " << steps << ": " << mse << " vs " << r.mse);
      // From one point of every cluster, or in a single step (plain k-means on rotated data), every true
      // centre gets a centroid within noise distance. (From k-means++ over a few leading components, two
      // blobs that overlap there may merge: a local optimum, as k-means may find in any space.)
      if (!init && steps > 1) continue;
      CHECK_MSG(mse < d / 12.0 * 1.05, "mse " << mse);
      const double miss = worst_centre_miss(centres, r.centroids, k, d);
      CHECK_MSG(miss < 0.05, "steps " << steps << (init ? " with" : " without") << " initial: " << miss);
    }
  }
  // Progress comes from the full-dimensional run alone: iterations 1, 2, … once.
  int reports = 0;
  bool in_order = true;
  ctx.progress = [&](const Progress& p) {
    ++reports;
    in_order = in_order && p.iteration == reports;
  };
  const KMeansResult reported = kmeans_progressive(n, d, x.data(), k, nullptr, 4, ctx);
  CHECK(reports == reported.iterations_run && in_order);
  ctx.progress = nullptr;
  CHECK_THROWS_CODE(kmeans_progressive(n, d, x.data(), k, nullptr, 0, ctx), InvalidArgument);
  CHECK_THROWS_CODE(kmeans_progressive(5, d, x.data(), k, nullptr, 4, ctx), InvalidArgument);
}

TEST_CASE("kmeans: duplicates force empty clusters, which get repaired; too few points is an error") {
  const size_t d = 4, n = 300, k = 10;
  std::vector<float> x(n * d);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) x[i * d + j] = float(i % 3);  // only 3 distinct points
  TrainContext ctx;
  const KMeansResult r = kmeans(n, d, x.data(), k, ctx);
  for (float v : r.centroids) CHECK(std::isfinite(v));
  CHECK(r.mse < 1e-3);
  CHECK_THROWS_CODE(kmeans(5, d, x.data(), k, ctx), InvalidArgument);
}

TEST_CASE("kmeans: subsampling keeps large sets fast and still fits") {
  const size_t d = 8, k = 16, n = 20000;
  std::vector<float> centres;
  const auto x = qvtest::blobs(n, d, k, 9, &centres);
  TrainContext ctx;
  ctx.max_points_per_centroid = 40;  // 640 of 20 000 points are used
  const KMeansResult r = kmeans(n, d, x.data(), k, ctx);
  std::vector<int32_t> labels(n);
  std::vector<float> dists(n);
  assign_nearest(n, d, x.data(), k, r.centroids.data(), labels.data(), dists.data(), 0);
  double total = 0;
  for (float v : dists) total += v;
  CHECK_MSG(total / n < d / 12.0 * 1.1, "full-set mse " << total / n);
}

TEST_CASE("pq: uneven sub-spaces cover every dimension") {
  ProductQuantizer pq(10, 3, 8);
  CHECK(pq.sub_dim(0) == 4 && pq.sub_dim(1) == 3 && pq.sub_dim(2) == 3);
  CHECK(pq.sub_offset(0) == 0 && pq.sub_offset(1) == 4 && pq.sub_offset(2) == 7);
  CHECK(pq.code_size() == 3);
  CHECK(ProductQuantizer(10, 3, 4).code_size() == 2);
  CHECK_THROWS_CODE(ProductQuantizer(10, 11, 8), InvalidArgument);
}

TEST_CASE("pq: encode picks the nearest centroid per sub-space; decode and ADC agree") {
  for (size_t nbits : {8, 5, 4}) {
    const size_t d = 13, m = 4, n = 2000;
    const auto x = qvtest::random_floats(n * d, 100 + nbits);
    ProductQuantizer pq(d, m, nbits);
    TrainContext ctx;
    ctx.iterations = 10;
    pq.train(n, x.data(), ctx);
    std::vector<uint8_t> codes(n * pq.code_size());
    pq.encode(n, x.data(), codes.data(), 0);
    std::vector<float> decoded(n * d);
    pq.decode(n, codes.data(), decoded.data(), 0);
    // Brute-force check of the encoder on the first vectors.
    std::vector<uint32_t> sub(m);
    for (size_t i = 0; i < 50; ++i) {
      pq.unpack(&codes[i * pq.code_size()], sub.data());
      for (size_t s = 0; s < m; ++s) {
        const size_t ds = pq.sub_dim(s);
        const float* xs = &x[i * d + pq.sub_offset(s)];
        float best = std::numeric_limits<float>::infinity();
        for (size_t j = 0; j < pq.ksub(); ++j) best = std::min(best, kScalarKernels.l2sqr(xs, pq.centroids(s) + j * ds, ds));
        const float got = kScalarKernels.l2sqr(xs, pq.centroids(s) + sub[s] * ds, ds);
        CHECK_NEAR(got, best, 1e-5);
      }
      std::vector<uint32_t> again(m);
      std::vector<uint8_t> repacked(pq.code_size());
      pq.pack(sub.data(), repacked.data());
      CHECK(std::equal(repacked.begin(), repacked.end(), codes.begin() + i * pq.code_size()));
    }
    // Quantisation beats a trivial codec (the mean) by far.
    std::vector<float> mean_rec(n * d, 0.0f);
    CHECK_MSG(mse(x, decoded, n) < 0.6 * mse(x, mean_rec, n), "nbits " << nbits);
    // ADC (L2 and IP) equals the exact distance to the decoded vector.
    const auto q = qvtest::random_floats(d, 5);
    for (Metric metric : {Metric::L2, Metric::InnerProduct}) {
      auto table = pq.distance_table(q.data(), metric);
      std::vector<float> scores(n);
      table->scan(codes.data(), n, scores.data());
      for (size_t i = 0; i < n; i += 97) {
        const float want = metric == Metric::L2 ? kScalarKernels.l2sqr(q.data(), &decoded[i * d], d)
                                                : -kScalarKernels.dot(q.data(), &decoded[i * d], d);
        CHECK_NEAR(scores[i], want, 1e-4);
      }
    }
  }
}

TEST_CASE("index: Flat equals brute force, pads when k > size, keeps ids; PQ needs training") {
  const size_t d = 16, n = 500, nq = 7, k = 10;
  const auto x = qvtest::random_floats(n * d, 1), q = qvtest::random_floats(nq * d, 2);
  for (Metric metric : {Metric::L2, Metric::InnerProduct, Metric::Cosine}) {
    auto index = make_index("Flat", d, metric);
    std::vector<int64_t> ids(n);
    for (size_t i = 0; i < n; ++i) ids[i] = int64_t(1000 + 3 * i);
    index->add(n, x.data(), ids.data(), 0);
    std::vector<int64_t> labels(nq * k);
    std::vector<float> dists(nq * k);
    index->search(nq, q.data(), k, SearchParams{}, labels.data(), dists.data());
    for (size_t qi = 0; qi < nq; ++qi) {
      std::vector<std::pair<float, int64_t>> all;
      for (size_t i = 0; i < n; ++i) {
        const float* v = &x[i * d];
        float s;
        if (metric == Metric::L2) {
          s = kScalarKernels.l2sqr(&q[qi * d], v, d);
        } else {
          s = -kScalarKernels.dot(&q[qi * d], v, d);
          if (metric == Metric::Cosine)
            s /= std::sqrt(kScalarKernels.dot(v, v, d) * kScalarKernels.dot(&q[qi * d], &q[qi * d], d));
        }
        all.push_back({s, ids[i]});
      }
      std::sort(all.begin(), all.end());
      for (size_t i = 0; i < k; ++i) {
        CHECK(labels[qi * k + i] == all[i].second);
        const float user = metric == Metric::L2 ? all[i].first : -all[i].first;
        CHECK_NEAR(dists[qi * k + i], user, 1e-3);
      }
    }
  }
  auto small = make_index("Flat", d, Metric::L2);
  small->add(3, x.data(), nullptr, 0);
  std::vector<int64_t> labels(k);
  std::vector<float> dists(k);
  small->search(1, q.data(), k, SearchParams{}, labels.data(), dists.data());
  CHECK(labels[3] == -1 && std::isinf(dists[3]) && dists[3] > 0);
  std::set<int64_t> got(labels.begin(), labels.begin() + 3);
  CHECK(got == std::set<int64_t>({0, 1, 2}));

  auto pq = make_index("PQ4x8", d, Metric::L2);
  CHECK_THROWS_CODE(pq->add(n, x.data(), nullptr, 0), State);
  CHECK_THROWS_CODE(pq->search(1, q.data(), k, SearchParams{}, labels.data(), dists.data()), State);
}

TEST_CASE("index: PQ search finds neighbours; refine re-scores exactly; threads do not change results") {
  const size_t d = 32, n = 3000, nq = 20, k = 10;
  std::vector<float> centres;
  const auto x = qvtest::blobs(n, d, 50, 11, &centres);
  auto flat = make_index("Flat", d, Metric::L2);
  flat->add(n, x.data(), nullptr, 0);
  auto pq = make_index("PQ8x8,Refine", d, Metric::L2);
  TrainContext ctx;
  pq->train(n, x.data(), ctx);
  pq->add(n, x.data(), nullptr, 0);
  const float* q = x.data();  // self-queries: the first nq base vectors
  std::vector<int64_t> gt(nq * k), got(nq * k), got1(nq * k), refined(nq * k);
  std::vector<float> gd(nq * k), dd(nq * k), rd(nq * k);
  flat->search(nq, q, k, SearchParams{}, gt.data(), gd.data());
  pq->search(nq, q, k, SearchParams{}, got.data(), dd.data());
  SearchParams one;
  one.threads = 1;
  pq->search(nq, q, k, one, got1.data(), dd.data());
  CHECK(got == got1);
  SearchParams rp;
  rp.refine = 10;
  pq->search(nq, q, k, rp, refined.data(), rd.data());
  size_t hits = 0, refined_hits = 0;
  for (size_t qi = 0; qi < nq; ++qi) {
    hits += got[qi * k] == int64_t(qi);
    for (size_t i = 0; i < k; ++i)
      for (size_t j = 0; j < k; ++j) refined_hits += refined[qi * k + i] == gt[qi * k + j];
  }
  CHECK_MSG(hits >= nq * 9 / 10, "self-recall@1 " << hits);
  CHECK_MSG(refined_hits >= nq * k * 8 / 10, "refined 10-recall@10 hits " << refined_hits);
  CHECK(rd[0] <= rd[1] && rd[0] < 1e-3);  // exact distance of a self-query is 0
  auto no_store = make_index("PQ8x8", d, Metric::L2);
  no_store->train(n, x.data(), ctx);
  CHECK_THROWS_CODE(no_store->search(1, q, k, rp, got.data(), dd.data()), InvalidArgument);
}
