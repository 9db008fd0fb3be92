// OPQ, TRQ and the first-level + PQ hybrids: round trips, ADC, learnt rotations, spec grammar.
#include <algorithm>
#include <cmath>
#include <string>

#include "check.h"
#include "error.h"
#include "index.h"
#include "io.h"
#include "kmeans.h"
#include "linalg.h"
#include "opq.h"
#include "pq.h"
#include "simd.h"
#include "spec.h"
#include "test_codecs.h"
#include "test_util.h"
#include "trq.h"

using namespace quiver;

namespace {

// `clusters` centres; each cluster's points spread along its own random rotation of one anisotropic profile
// (standard deviations 8, 4, 2, 1, 0.5, …) inside the first p coordinates; the other d − p coordinates hold
// small isotropic noise (0.1). A shared fine codebook fits all clusters only once their residuals are rotated
// back to a common frame: the case TRQ is made for, and with p < d the case of subspace transforms (sub=p).
// rotations: clusters × p × p.
std::vector<float> subspace_rotated_clusters(size_t n, size_t d, size_t p, size_t clusters, uint64_t seed,
                                             std::vector<float>* rotations = nullptr) {
  std::vector<float> centres;
  std::vector<float> x = qvtest::blobs(n, d, clusters, seed, &centres);
  std::vector<float> rots(clusters * p * p);
  for (size_t c = 0; c < clusters; ++c) random_orthogonal(p, seed * 100 + c, &rots[c * p * p]);
  const auto z = qvtest::random_floats(n * d, seed + 1);
  std::vector<float> local(p);
  for (size_t i = 0; i < n; ++i) {
    const size_t c = i % clusters;
    for (size_t j = 0; j < p; ++j) local[j] = z[i * d + j] * 8.0f / float(1u << std::min<size_t>(j, 8));
    // residual = Rotᵀ local: the profile's axes are the rows of the cluster's rotation.
    for (size_t j = 0; j < d; ++j) {
      float v = 0;
      if (j < p)
        for (size_t t = 0; t < p; ++t) v += rots[c * p * p + t * p + j] * local[t];
      else
        v = 0.1f * z[i * d + j];
      x[i * d + j] = centres[c * d + j] + v;
    }
  }
  if (rotations) *rotations = rots;
  return x;
}

// The profile rotated in all d coordinates (rotations: clusters × d × d).
std::vector<float> rotated_clusters(size_t n, size_t d, size_t clusters, uint64_t seed,
                                    std::vector<float>* rotations = nullptr) {
  return subspace_rotated_clusters(n, d, d, clusters, seed, rotations);
}

TrainContext quick_context(uint64_t seed = 3) {
  TrainContext ctx;
  ctx.seed = seed;
  ctx.iterations = 8;
  return ctx;
}

double codec_mse(const Quantizer& q, size_t n, const std::vector<float>& x) {
  std::vector<uint8_t> codes;
  return qvtest::mean_squared_error(x, qvtest::round_trip(q, n, x.data(), &codes), n);
}

}  // namespace

TEST_CASE("opq: learnt rotation is orthogonal and beats PQ on correlated data; ADC matches decode") {
  const size_t d = 16, n = 3000;
  std::vector<float> rot;
  const auto x = rotated_clusters(n, d, 1, 5, &rot);  // one anisotropic cloud in a random orientation
  const auto q = qvtest::random_floats(d, 6);
  TrainContext ctx = quick_context();
  int reports = 0;
  double first = 0, last = 0;
  ctx.progress = [&](const Progress& p) {
    if (p.phase != "opq") return;
    if (reports++ == 0) first = p.error;
    last = p.error;
  };
  OPQQuantizer opq(d, 4, 6, 6);
  CHECK(opq.spec() == "OPQ4,PQ4x6,iters=6");
  opq.train(n, x.data(), ctx);
  CHECK(reports == 6 && last < first);
  CHECK(orthogonality_error(d, opq.rotation().data()) < 1e-4);
  ProductQuantizer pq(d, 4, 6);
  pq.train(n, x.data(), quick_context());
  const double e_pq = codec_mse(pq, n, x), e_opq = codec_mse(opq, n, x);
  CHECK_MSG(e_opq < 0.8 * e_pq, "OPQ " << e_opq << " vs PQ " << e_pq);
  std::vector<uint8_t> codes;
  const auto decoded = qvtest::round_trip(opq, n, x.data(), &codes);
  qvtest::check_adc_matches_decoded(opq, n, codes, decoded, q.data(), 1e-5);
}

TEST_CASE("trq: per-cluster rotations align anisotropic clusters; TRQ beats the untransformed hybrid") {
  const size_t d = 16, n = 4096, clusters = 4;
  const auto x = rotated_clusters(n, d, clusters, 9);
  const auto q = qvtest::random_floats(d, 10);
  TRQOptions with;
  with.iterations = 3;
  TransformedResidualQuantizer trq(d, 2, FineQuantizerKind::Product, 4, 6, with);
  CHECK(trq.spec() == "TRQ1x2,PQ4x6,iters=3");
  CHECK(trq.code_size() == 4);  // 2 + 4·6 = 26 bits
  TrainContext ctx = quick_context();
  std::vector<double> errors;
  ctx.progress = [&](const Progress& p) {
    if (p.phase == "trq") errors.push_back(p.error);
  };
  trq.train(n, x.data(), ctx);
  REQUIRE(errors.size() == 4);  // 3 alternations + the final refresh
  CHECK_MSG(errors.back() < errors.front(), errors.front() << " -> " << errors.back());
  CHECK(trq.transform_count() == clusters);
  for (size_t k = 0; k < clusters; ++k) {
    REQUIRE(trq.transform(k) != nullptr);
    CHECK(orthogonality_error(d, trq.transform(k)) < 1e-4);
  }
  TRQOptions without;
  without.transforms = false;
  TransformedResidualQuantizer hybrid(d, 2, FineQuantizerKind::Product, 4, 6, without);
  CHECK(hybrid.spec() == "RQ1x2,PQ4x6");
  hybrid.train(n, x.data(), quick_context());
  CHECK(hybrid.transform_count() == 0);
  const double e_trq = codec_mse(trq, n, x), e_hybrid = codec_mse(hybrid, n, x);
  CHECK_MSG(e_trq < 0.7 * e_hybrid, "TRQ " << e_trq << " vs untransformed " << e_hybrid);
  for (const Quantizer* codec : {static_cast<const Quantizer*>(&trq), static_cast<const Quantizer*>(&hybrid)}) {
    std::vector<uint8_t> codes;
    const auto decoded = qvtest::round_trip(*codec, n, x.data(), &codes);
    qvtest::check_adc_matches_decoded(*codec, n, codes, decoded, q.data(), 1e-5);
  }
}

TEST_CASE("trq: subspace transforms (sub=p) rotate only inside the shared basis and align the clusters") {
  const size_t d = 24, p = 6, n = 4096, clusters = 4;
  const auto x = subspace_rotated_clusters(n, d, p, clusters, 31);
  const auto q = qvtest::random_floats(d, 32);
  for (FineQuantizerKind kind : {FineQuantizerKind::Product, FineQuantizerKind::Residual}) {
    const bool rq = kind == FineQuantizerKind::Residual;
    TRQOptions o;
    o.iterations = 3;
    o.subspace = p;
    TransformedResidualQuantizer trq(d, 2, kind, rq ? 3 : 6, rq ? 3 : 6, o);
    CHECK(trq.spec() == std::string(rq ? "TRQ1x2,RQ3x3" : "TRQ1x2,PQ6x6") + ",iters=3,sub=6");
    CHECK(trq.transform_dim() == p);
    trq.train(n, x.data(), quick_context());
    REQUIRE(trq.transform_count() == clusters);
    REQUIRE(trq.basis().size() == p * d);
    CHECK(orthonormal_rows_error(p, d, trq.basis().data()) < 1e-5);
    // The basis is orthonormal and spans the rotated coordinates (the noise elsewhere is 80× weaker).
    for (size_t i = 0; i < p; ++i) {
      double inside = 0;
      for (size_t j = 0; j < d; ++j) {
        const double v = trq.basis()[i * d + j];
        if (j < p) inside += v * v;
      }
      CHECK_MSG(inside > 0.99, "basis row " << i << " has " << inside << " of its weight in the first p axes");
    }
    // R_k as a d × d matrix, column by column: orthogonal, the identity on the basis's complement, and
    // rotate_back is its transpose.
    for (size_t k = 0; k < clusters; ++k) {
      CHECK(orthogonality_error(p, trq.transform(k)) < 1e-4);
      std::vector<float> eye(d * d, 0.0f), columns(d * d), rows(d * d);
      for (size_t j = 0; j < d; ++j) eye[j * d + j] = 1.0f;
      trq.rotate(k, d, eye.data(), columns.data());  // row j = R_k e_j = column j of R_k
      std::vector<float> r(d * d);
      transpose(d, d, columns.data(), r.data());
      CHECK(orthogonality_error(d, r.data()) < 1e-4);
      std::vector<float> back(d);
      for (size_t j = 0; j < d; ++j) {
        trq.rotate_back(k, &columns[j * d], back.data());
        for (size_t t = 0; t < d; ++t) CHECK(std::fabs(back[t] - eye[j * d + t]) < 1e-4);
      }
      std::vector<float> outside(d, 0.0f), rotated(d);
      for (size_t j = p; j < d; ++j) outside[j] = 1.0f;  // in the complement up to the basis's small tilt
      trq.rotate(k, 1, outside.data(), rotated.data());
      double moved = 0;
      for (size_t j = 0; j < d; ++j) moved += (rotated[j] - outside[j]) * (rotated[j] - outside[j]);
      CHECK_MSG(moved < 0.05, "a vector outside the subspace moved by " << std::sqrt(moved));
    }
    // Untransformed baseline of the same shape: no transforms for PQ; for RQ (which has no untransformed
    // two-part form) a prior so strong that every transform stays at the identity.
    TRQOptions without = o;
    if (rq)
      without.prior = 1e6;
    else
      without = TRQOptions{}, without.transforms = false;
    std::unique_ptr<Quantizer> plain = std::make_unique<TransformedResidualQuantizer>(d, 2, kind, rq ? 3 : 6, rq ? 3 : 6, without);
    plain->train(n, x.data(), quick_context());
    const double e_sub = codec_mse(trq, n, x), e_plain = codec_mse(*plain, n, x);
    CHECK_MSG(e_sub < 0.85 * e_plain, plain->spec() << ": sub " << e_sub << " vs untransformed " << e_plain);
    std::vector<uint8_t> codes, codes1;
    const auto decoded = qvtest::round_trip(trq, n, x.data(), &codes);
    qvtest::round_trip(trq, n, x.data(), &codes1, 1);
    CHECK(codes == codes1);
    qvtest::check_adc_matches_decoded(trq, n, codes, decoded, q.data(), 1e-5);
  }
}

TEST_CASE("trq: RQ fine quantizer with beam, PCA start and u8 norms; round trip, ADC, threads") {
  const size_t d = 12, n = 3000;
  const auto x = rotated_clusters(n, d, 8, 13);
  const auto q = qvtest::random_floats(d, 14);
  for (bool pca : {false, true}) {
    TRQOptions o;
    o.beam = 3;
    o.iterations = 2;
    o.pca_init = pca;
    o.norm = pca ? NormStorage::Uint8 : NormStorage::Float32;
    TransformedResidualQuantizer trq(d, 3, FineQuantizerKind::Residual, 3, 5, o);
    CHECK(trq.spec() == std::string("TRQ1x3,RQ3x5,beam=3,iters=2") + (pca ? ",norm=u8,pca=1" : ""));
    CHECK(trq.code_size() == 3 + (pca ? 1 : 4));  // 3 + 15 bits, then the norm
    trq.train(n, x.data(), quick_context());
    CHECK(trq.transform_count() >= 1);
    std::vector<uint8_t> codes, codes1;
    const auto decoded = qvtest::round_trip(trq, n, x.data(), &codes);
    qvtest::round_trip(trq, n, x.data(), &codes1, 1);
    CHECK(codes == codes1);
    const double step = pca ? (trq.norm_codec().hi() - trq.norm_codec().lo()) / 255.0 : 0;
    qvtest::check_adc_matches_decoded(trq, n, codes, decoded, q.data(), 1e-5, step / 2 + 1e-3);
    // Every code's cluster id is valid and its decode is c_k + R_kᵀ ŷ.
    std::vector<uint32_t> fine(trq.fine_count());
    uint32_t cluster;
    trq.unpack(&codes[0], &cluster, fine.data());
    CHECK(cluster < trq.first_count());
    std::vector<float> zero(n * d, 0.0f);
    CHECK(qvtest::mean_squared_error(x, decoded, n) < 0.2 * qvtest::mean_squared_error(x, zero, n));
  }
  // Canonical form of equal bit widths.
  CHECK(TransformedResidualQuantizer(d, 4, FineQuantizerKind::Residual, 3, 4).spec() == "TRQ4x4");
  CHECK_THROWS_CODE(TransformedResidualQuantizer(d, 4, FineQuantizerKind::Residual, 3, 4, [] {
                      TRQOptions o;
                      o.transforms = false;
                      return o;
                    }()),
                    InvalidArgument);
}

TEST_CASE("trq: greedy encoding (blocks of rows) equals the vector-at-a-time route: nearest centroid, R_k, beam 1") {
  const size_t d = 16, n = 1500;
  const auto x = rotated_clusters(n, d, 8, 17);
  TransformedResidualQuantizer trq(d, 4, FineQuantizerKind::Residual, 3, 6);  // TRQ1x4,RQ3x6, beam 1
  trq.train(n, x.data(), quick_context());
  REQUIRE(trq.transform_count() >= 1);
  std::vector<uint8_t> codes(n * trq.code_size());
  trq.encode(n, x.data(), codes.data(), 2);
  // By hand: the first-level argmin of CentroidTable scores, y = R_k (x − c_k), a width-1 beam over the fine
  // stages, and the norm of ŷ = y − r.
  std::vector<float> firsts(trq.first_count() * d);
  std::copy(trq.first_centroid(0), trq.first_centroid(0) + firsts.size(), firsts.begin());
  const CentroidTable first_table(trq.first_count(), d, firsts.data());
  RQBeamSearch search(*trq.fine_rq());
  std::vector<float> scores(trq.first_count()), residual(d), y(d), y_hat(d);
  std::vector<uint32_t> fine(trq.fine_count());
  std::vector<uint8_t> expected(trq.code_size());
  size_t same = 0;
  for (size_t i = 0; i < n; ++i) {
    const float* xi = &x[i * d];
    first_table.scores(xi, scores.data());
    uint32_t k = 0;
    for (uint32_t j = 1; j < trq.first_count(); ++j)
      if (scores[j] < scores[k]) k = j;
    for (size_t t = 0; t < d; ++t) residual[t] = xi[t] - trq.first_centroid(k)[t];
    if (trq.transform(k))
      matvec(d, d, trq.transform(k), residual.data(), y.data());
    else
      y = residual;
    const float norm = kernels().dot(y.data(), y.data(), d);
    search.reset(1, y.data(), &norm, nullptr);
    search.run(0, trq.fine_count(), 1);
    for (size_t t = 0; t < d; ++t) y_hat[t] = y[t] - search.residual(0)[t];
    trq.pack(k, search.path(0), kernels().dot(y_hat.data(), y_hat.data(), d), expected.data());
    same += std::equal(expected.begin(), expected.end(), codes.begin() + i * trq.code_size());
  }
  CHECK_MSG(same == n, same << " of " << n << " codes agree");
}

TEST_CASE("trq: beam encoding with subspace transforms (seed tables) matches the direct beam search") {
  const size_t d = 24, p = 6, n = 1500, beam = 3;
  const auto x = subspace_rotated_clusters(n, d, p, 8, 37);
  TRQOptions o;
  o.beam = beam;
  o.subspace = p;
  o.iterations = 2;
  TransformedResidualQuantizer trq(d, 3, FineQuantizerKind::Residual, 3, 5, o);  // TRQ1x3,RQ3x5,beam=3,sub=6
  trq.train(n, x.data(), quick_context());
  REQUIRE(trq.transform_count() >= 1);
  std::vector<uint8_t> codes(n * trq.code_size()), codes1(n * trq.code_size());
  trq.encode(n, x.data(), codes.data(), 2);
  trq.encode(n, x.data(), codes1.data(), 1);
  CHECK(codes == codes1);
  // By hand, the direct route: the `beam` nearest first-level centroids, y_b = R_b(x − c_b) by rotate(), one
  // joint beam search over the fine stages scoring residual vectors (no cross tables).
  std::vector<float> firsts(trq.first_count() * d);
  std::copy(trq.first_centroid(0), trq.first_centroid(0) + firsts.size(), firsts.begin());
  const CentroidTable first_table(trq.first_count(), d, firsts.data());
  RQBeamSearch search(*trq.fine_rq());
  std::vector<float> scores(trq.first_count()), residual(d), ys(beam * d), norms(beam), decoded(d);
  std::vector<uint32_t> order(trq.first_count()), tags(beam), fine(trq.fine_count());
  size_t same = 0;
  double seeded_error = 0, direct_error = 0;
  for (size_t i = 0; i < n; ++i) {
    const float* xi = &x[i * d];
    first_table.scores(xi, scores.data());
    for (uint32_t j = 0; j < order.size(); ++j) order[j] = j;
    std::partial_sort(order.begin(), order.begin() + beam, order.end(), [&](uint32_t a, uint32_t b) {
      return scores[a] < scores[b] || (scores[a] == scores[b] && a < b);
    });
    for (size_t b = 0; b < beam; ++b) {
      for (size_t t = 0; t < d; ++t) residual[t] = xi[t] - trq.first_centroid(order[b])[t];
      trq.rotate(order[b], 1, residual.data(), &ys[b * d]);
      norms[b] = kernels().dot(&ys[b * d], &ys[b * d], d);
      tags[b] = uint32_t(b);
    }
    search.reset(beam, ys.data(), norms.data(), tags.data());
    search.run(0, trq.fine_count(), beam);
    direct_error += search.distance(0);
    uint32_t cluster;
    trq.unpack(&codes[i * trq.code_size()], &cluster, fine.data());
    same += cluster == order[search.tag(0)] && std::equal(fine.begin(), fine.end(), search.path(0));
    trq.decode(1, &codes[i * trq.code_size()], decoded.data(), 1);
    for (size_t t = 0; t < d; ++t) seeded_error += double(xi[t] - decoded[t]) * (xi[t] - decoded[t]);
  }
  // The two routes round differently (products regrouped), so a near-tie may go either way, and a tie decided
  // otherwise at an early stage can end the beam elsewhere: one such vector of these 1 500 (P x as one
  // transposed product instead of p dot products) moved the total error by 2.5e-4. The bound allows a few.
  CHECK_MSG(same >= n * 99 / 100, same << " of " << n << " codes agree");
  CHECK_MSG(seeded_error <= direct_error * (1 + 1e-3),
            "seeded " << seeded_error << " direct " << direct_error << " (" << same << " of " << n << " agree)");
}

TEST_CASE("codec specs: canonical forms, code sizes, round trips through make_codec and make_index") {
  struct Case {
    const char* spec;
    const char* canonical;
    size_t code_size;  // at dim 128
  };
  const Case cases[] = {
      {"RQ8x8", "RQ8x8", 12},
      {"RQ8", "RQ8x8", 12},
      {"RQ8x8,beam=16", "RQ8x8,beam=16", 12},
      {"RQ8x8,beam=16,norm=u8", "RQ8x8,beam=16,norm=u8", 9},
      {"RQ8x8, norm=f32, beam=1", "RQ8x8,beam=1", 12},
      {"RQ8x8,beam=5,trainbeam=5,refit=3", "RQ8x8", 12},
      {"RQ8x8,beam=1,trainbeam=4,refit=0", "RQ8x8,beam=1,trainbeam=4,refit=0", 12},
      {"TRQ8x8,refit=0,trainbeam=2", "TRQ8x8,trainbeam=2,refit=0", 12},
      {"PRQ2x4x8,trainbeam=4", "PRQ2x4x8,trainbeam=4", 12},
      {"RQ4x6,refit=2", "RQ4x6,refit=2", 7},
      {"RQ8x8,pd=10,beam=1", "RQ8x8,beam=1,pd=10", 12},
      {"RQ8x8,pd=0", "RQ8x8", 12},
      {"PRQ2x4x8,pd=6", "PRQ2x4x8,pd=6", 12},
      {"RQ16x12,beam=4", "RQ16x12,beam=4", 28},
      {"OPQ16,PQ16x8", "OPQ16,PQ16x8", 16},
      {"OPQ16,PQ16", "OPQ16,PQ16x8", 16},
      {"OPQ8,PQ8x4,iters=3", "OPQ8,PQ8x4,iters=3", 4},
      {"TRQ8x8", "TRQ8x8", 12},
      {"TRQ8x8,pca=1,iters=2,beam=4", "TRQ8x8,beam=4,iters=2,pca=1", 12},
      {"TRQ8x8,norm=u8,reg=0.5", "TRQ8x8,norm=u8,reg=0.5", 9},
      {"TRQ8x8,reg=0", "TRQ8x8,reg=0", 12},
      {"TRQ1x8,RQ7x8", "TRQ8x8", 12},
      {"TRQ1x6,RQ3x8", "TRQ1x6,RQ3x8", 8},
      {"TRQ1x8,PQ14x4", "TRQ1x8,PQ14x4", 8},
      {"TRQ8x8,pd=10,sub=32,beam=5", "TRQ8x8,beam=5,sub=32,pd=10", 12},
      {"TRQ1x8,PQ14x4,sub=16", "TRQ1x8,PQ14x4,sub=16", 8},
      {"TRQ1x8,beam=2,PQ14x4", "TRQ1x8,PQ14x4,beam=2", 8},
      {"RQ1x8,PQ14x4", "RQ1x8,PQ14x4", 8},
      {"RQ1x8,PQ14x4,beam=4", "RQ1x8,PQ14x4,beam=4", 8},
      {"PRQ2x4x8", "PRQ2x4x8", 12},
      {"PRQ2x4x8,beam=8,norm=u8", "PRQ2x4x8,beam=8,norm=u8", 9},
      {"PRQ3x2", "PRQ3x2x8", 10},
  };
  for (const Case& c : cases) {
    const auto codec = make_codec(c.spec, 128);
    CHECK_MSG(codec->spec() == c.canonical, c.spec << " -> " << codec->spec());
    CHECK_MSG(codec->code_size() == c.code_size, c.spec << " code size " << codec->code_size());
    CHECK_MSG(make_codec(codec->spec(), 128)->spec() == c.canonical, c.spec);
    const SpecInfo info = describe_index_spec(std::string(c.spec) + ",Refine", 128);
    CHECK_MSG(info.canonical == std::string(c.canonical) + ",Refine", info.canonical);
    CHECK(info.code_size == c.code_size);
    CHECK(describe_index_spec(c.canonical, 128).canonical == c.canonical);
  }
}

TEST_CASE("codec specs: invalid specs throw InvalidArgument saying what was expected") {
  struct Bad {
    const char* spec;
    const char* says;  // a piece of the message
  };
  const Bad bad[] = {
      {"RQ", "RQ<L>x<b>"},
      {"RQ8x8x8", "RQ<L>x<b>"},
      {"RQ8x13", "nbits"},
      {"RQ0x8", "stages"},
      {"RQ8x8,beam=0", "beam"},
      {"RQ8x8,beam=x", "integer"},
      {"RQ8x8,beam=4,beam=5", "twice"},
      {"RQ8x8,norm=f16", "f32"},
      {"RQ8x8,refit=99", "refit"},
      {"RQ8x8,iters=3", "beam, trainbeam, norm, refit, pd"},
      {"RQ8x8,pd=65", "option pd must be an integer from 0 to 64"},
      {"PRQ2x4x8,pd=65", "option pd must be an integer from 0 to 64"},
      {"RQ8x8,trainbeam=0", "trainbeam"},
      {"TRQ1x8,PQ14x4,refit=2", "no option \"refit\""},
      {"TRQ1x8,PQ14x4,trainbeam=2", "no option \"trainbeam\""},
      {"OPQ16", "followed by PQ16"},
      {"OPQ16,PQ8x8", "PQ16"},
      {"OPQ16,RQ16x8", "followed by PQ16"},
      {"OPQ16,PQ16x8,beam=2", "iters"},
      {"OPQ16,PQ16x4fs", "fast-scan"},
      {"TRQ1x8", "fine quantizer"},
      {"TRQ2x8,PQ14x4", "TRQ1x<b>,PQ<M>x<b>"},
      {"TRQ8x8,PQ4", "TRQ1x<b>,PQ<M>x<b>"},
      {"TRQ1x8,PQ14x4,norm=u8", "norm"},
      {"TRQ1x8,PQ14x4,PQ8", "nothing after"},
      {"TRQ8x8,reg=-1", "reg"},
      {"TRQ8x8,pca=2", "pca"},
      {"TRQ8x8,sub=129", "sub) must be 1 … dim = 128, got 129"},
      {"TRQ8x8,sub=0", "option sub must be an integer from 1"},
      {"TRQ8x8,sub=16,pca=1", "subspace transforms (sub) start from the identity"},
      {"TRQ8x8,pd=65", "option pd must be an integer from 0 to 64"},
      {"RQ1x8,PQ14x4,sub=8", "beam"},
      {"TRQ8x8,depth=2", "no option \"depth\""},
      {"RQ2x8,PQ14x4", "RQ1x<b>,PQ<M>x<b>"},
      {"RQ1x8,PQ14x4,iters=3", "beam"},
      {"RQ1x8,RQ7x8", "RQ1x<b>,PQ<M>x<b>"},
      {"PRQ2x4x8,iters=2", "beam, trainbeam, norm, refit"},
      {"PRQ200x4x8", "parts"},
      {"PRQ2", "PRQ<P>x<L>x<b>"},
      {"PQ8,RQ8", "PQ<M>[x<b>] alone"},
      {"LSQ8x8", "unknown component"},
  };
  for (const Bad& b : bad) {
    std::string message;
    try {
      make_codec(b.spec, 128);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::InvalidArgument) message = e.what();
    }
    CHECK_MSG(!message.empty(), "codec spec '" << b.spec << "' should be rejected");
    CHECK_MSG(message.find(b.says) != std::string::npos, b.spec << ": message \"" << message << "\" lacks \"" << b.says << "\"");
    bool index_threw = false;
    try {
      make_index(b.spec, 128, Metric::L2);
    } catch (const Error& e) {
      index_threw = e.code() == ErrorCode::InvalidArgument;
    }
    CHECK_MSG(index_threw, "index spec '" << b.spec << "' should be rejected");
  }
  // K1·d²·4 bytes of transforms beyond 4 GiB: 2^16 clusters at d = 256 would need 16 GiB.
  bool too_big = false;
  try {
    make_codec("TRQ1x16,PQ64", 256);
  } catch (const Error& e) {
    too_big = e.code() == ErrorCode::InvalidArgument && std::string(e.what()).find("MiB of transforms") != std::string::npos;
  }
  CHECK(too_big);
  // A codec spec does not take Refine; an index spec takes it once, at the end.
  CHECK_THROWS_CODE(make_codec("RQ8x8,Refine", 128), InvalidArgument);
  CHECK_THROWS_CODE(make_index("RQ8x8,Refine,beam=4", 128, Metric::L2), InvalidArgument);
}

TEST_CASE("codec index: exhaustive search over RQ / OPQ / TRQ / PRQ codes finds self-queries; refine is exact") {
  const size_t d = 16, n = 2000, k = 5;
  const auto x = rotated_clusters(n, d, 8, 17);
  for (const char* spec : {"RQ3x6,beam=2,Refine", "OPQ4,PQ4x6,iters=2,Refine", "TRQ1x3,PQ4x6,iters=2,Refine",
                           "TRQ3x6,iters=2,Refine", "PRQ2x2x6,Refine", "RQ1x3,PQ4x6,Refine"}) {
    for (Metric metric : {Metric::L2, Metric::InnerProduct}) {
      auto index = make_index(spec, d, metric);
      index->train(n, x.data(), quick_context());
      index->add(n, x.data(), nullptr, 0);
      std::vector<int64_t> labels(20 * k);
      std::vector<float> dists(20 * k);
      SearchParams params;
      params.refine = 10;
      index->search(20, x.data(), k, params, labels.data(), dists.data());
      if (metric == Metric::L2) {
        size_t hits = 0;
        for (size_t qi = 0; qi < 20; ++qi) hits += labels[qi * k] == int64_t(qi);
        CHECK_MSG(hits >= 19, spec << ": self-recall@1 " << hits << "/20");
        CHECK(dists[0] < 1e-3);
      }
      for (size_t qi = 0; qi < 20; ++qi) CHECK(labels[qi * k] >= 0);
    }
  }
}

TEST_CASE("codec persistence: every new codec saves and loads to the same codes, alone and inside an index") {
  const size_t d = 16, n = 1500;
  const auto x = rotated_clusters(n, d, 8, 23);
  for (const char* spec : {"RQ3x6,beam=2,norm=u8", "OPQ4,PQ4x6,iters=2", "PRQ2x2x6,norm=u8", "TRQ3x6,iters=2",
                           "TRQ1x3,PQ4x6,iters=2,pca=1", "RQ1x3,PQ4x6", "TRQ3x6,iters=2,sub=5,pd=4",
                           "TRQ1x3,PQ4x6,sub=7"}) {
    const auto codec = make_codec(spec, d);
    codec->train(n, x.data(), quick_context());
    const std::vector<uint8_t> bytes = serialize_codec(*codec);
    const auto loaded = deserialize_codec(bytes.data(), bytes.size());
    CHECK(loaded->spec() == codec->spec());
    std::vector<uint8_t> a, b;
    const auto da = qvtest::round_trip(*codec, n, x.data(), &a);
    const auto db = qvtest::round_trip(*loaded, n, x.data(), &b);
    CHECK_MSG(a == b && da == db, spec);
    std::vector<float> sa(n), sb(n);
    codec->distance_table(x.data(), Metric::L2)->scan(a.data(), n, sa.data());
    loaded->distance_table(x.data(), Metric::L2)->scan(b.data(), n, sb.data());
    CHECK(sa == sb);
    // Truncated state is refused as corrupt, never read past its end.
    for (size_t cut : {bytes.size() / 2, bytes.size() - 5})
      CHECK_THROWS_CODE(deserialize_codec(bytes.data(), cut), Corrupt);
    // Inside an exhaustive index.
    auto index = make_index(std::string(spec) + ",Refine", d, Metric::L2);
    index->train(n, x.data(), quick_context());
    index->add(n, x.data(), nullptr, 0);
    auto copy = Index::deserialize(owned_bytes(index->serialize()), false);
    std::vector<int64_t> l1(5), l2(5);
    std::vector<float> d1(5), d2(5);
    index->search(1, x.data() + 7 * d, 5, SearchParams{}, l1.data(), d1.data());
    copy->search(1, x.data() + 7 * d, 5, SearchParams{}, l2.data(), d2.data());
    CHECK_MSG(l1 == l2 && d1 == d2, spec);
  }
}

TEST_CASE("ivf: the new codecs serve as fine codecs and their specs round-trip") {
  const size_t d = 16, n = 3000, k = 5;
  const auto x = rotated_clusters(n, d, 8, 29);
  for (const char* spec :
       {"IVF8,RQ2x6,beam=2", "IVF8,TRQ,OPQ4,PQ4x6,iters=2", "IVF8,PRQ2x2x6,Refine", "IVF8,PCA12,RQ2x6,beam=2"}) {
    auto index = make_index(spec, d, Metric::L2);
    CHECK_MSG(index->spec() == spec, spec << " -> " << index->spec());
    CHECK(make_index(index->spec(), d, Metric::L2)->spec() == index->spec());
    index->train(n, x.data(), quick_context());
    index->add(n, x.data(), nullptr, 0);
    std::vector<int64_t> labels(10 * k);
    std::vector<float> dists(10 * k);
    SearchParams params;
    params.nprobe = 8;
    index->search(10, x.data(), k, params, labels.data(), dists.data());
    size_t hits = 0;
    for (size_t qi = 0; qi < 10; ++qi) hits += labels[qi * k] == int64_t(qi);
    CHECK_MSG(hits >= 9, spec << ": self-recall@1 " << hits << "/10");
  }
}
