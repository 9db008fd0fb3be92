// PCA in front of a codec (pca.h): the projection, round trips, ADC against the decoded vectors, persistence,
// hostile state and spec errors.
#include <cmath>
#include <string>
#include <vector>

#include "check.h"
#include "error.h"
#include "index.h"
#include "io.h"
#include "linalg.h"
#include "pca.h"
#include "random.h"
#include "spec.h"
#include "test_codecs.h"
#include "test_util.h"

using namespace quiver;

namespace {

// n × d vectors with most of their variance in `rank` random directions (scales 30, 25, …) plus isotropic
// noise of standard deviation `noise`, around a non-zero mean.
std::vector<float> low_rank_data(size_t n, size_t d, size_t rank, float noise, uint64_t seed) {
  std::vector<float> basis(d * d);
  random_orthogonal(d, seed, basis.data());
  const std::vector<float> coefficients = qvtest::random_floats(n * rank, seed + 1);  // uniform in [-1, 1)
  const std::vector<float> jitter = qvtest::random_floats(n * d, seed + 2);
  std::vector<float> x(n * d);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) {
      float v = 5.0f + float(j % 3) + noise * jitter[i * d + j];
      for (size_t r = 0; r < rank; ++r) v += (30.0f - 5.0f * float(r)) * coefficients[i * rank + r] * basis[r * d + j];
      x[i * d + j] = v;
    }
  return x;
}

std::unique_ptr<Quantizer> trained(const std::string& spec, size_t d, size_t n, const float* x) {
  auto codec = make_codec(spec, d);
  TrainContext ctx;
  ctx.iterations = 8;
  codec->train(n, x, ctx);
  return codec;
}

}  // namespace

TEST_CASE("pca: projection is orthonormal and centred; round trip and ADC equal the decoded vectors (L2, IP)") {
  const size_t n = 2000, d = 24, rank = 4;
  const std::vector<float> x = low_rank_data(n, d, rank, 0.5f, 11);
  const auto codec = trained("PCA6,PQ3x6", d, n, x.data());
  CHECK(codec->spec() == "PCA6,PQ3x6");
  CHECK(codec->code_size() == make_codec("PQ3x6", 6)->code_size());
  const auto& pca = static_cast<const PCAQuantizer&>(*codec);
  CHECK(pca.out_dim() == 6 && pca.inner().dim() == 6);
  CHECK(orthonormal_rows_error(6, d, pca.projection().data()) < 1e-4);
  // The mean is the data's; projected training data is centred.
  std::vector<double> mean(d, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) mean[j] += x[i * d + j] / double(n);
  for (size_t j = 0; j < d; ++j) CHECK_NEAR(pca.mean()[j], mean[j], 1e-3);
  std::vector<float> y(n * 6);
  pca.project(n, x.data(), y.data(), 0);
  for (size_t j = 0; j < 6; ++j) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += y[i * 6 + j];
    CHECK_NEAR(s / double(n), 0.0, 1e-2);
  }
  std::vector<uint8_t> codes;
  const std::vector<float> decoded = qvtest::round_trip(*codec, n, x.data(), &codes);
  // Reconstructions lie in the affine subspace μ + span(E): re-projecting and rebuilding changes nothing.
  std::vector<float> reprojected(n * 6);
  pca.project(n, decoded.data(), reprojected.data(), 0);
  double off_subspace = 0;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) {
      double v = pca.mean()[j];
      for (size_t r = 0; r < 6; ++r) v += double(reprojected[i * 6 + r]) * pca.projection()[r * d + j];
      off_subspace = std::max(off_subspace, std::fabs(v - decoded[i * d + j]));
    }
  CHECK_MSG(off_subspace < 1e-2, "decoded vectors leave the PCA subspace by " << off_subspace);
  // Most variance is in 4 directions: 6 components keep it, so the error is the PQ's on 6 dimensions plus the
  // dropped noise (18 dimensions of variance 0.5² / 3): far below the data's variance.
  double variance = 0;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) variance += std::pow(x[i * d + j] - mean[j], 2) / double(n);
  const double err = qvtest::mean_squared_error(x, decoded, n);
  CHECK_MSG(err < 0.05 * variance, "PCA6,PQ3x6 MSE " << err << " against variance " << variance);
  // ADC scores are distances to the full-dimensional reconstructions, queries off the subspace included.
  const std::vector<float> queries = qvtest::random_floats(3 * d, 5);
  for (size_t q = 0; q < 3; ++q) {
    std::vector<float> query(d);
    for (size_t j = 0; j < d; ++j) query[j] = 20.0f * queries[q * d + j] + (q == 2 ? x[j] : 0.0f);
    qvtest::check_adc_matches_decoded(*codec, n, codes, decoded, query.data(), 1e-5);
  }
}

TEST_CASE("pca: keeping every dimension is a rotation; fewer dimensions lose exactly the dropped variance") {
  const size_t n = 3000, d = 16;
  const std::vector<float> x = low_rank_data(n, d, 3, 2.0f, 21);
  // With p = d and an 8-bit code per dimension the only loss is the scalar quantisation: tiny.
  const auto full = trained("PCA16,PQ16x8", d, n, x.data());
  std::vector<uint8_t> codes;
  const double err_full = qvtest::mean_squared_error(x, qvtest::round_trip(*full, n, x.data(), &codes), n);
  // p = 3: the 13 dropped dimensions hold the noise, (2²/3) each; PQ16x8 would keep it, PCA3 cannot.
  const auto reduced = trained("PCA3,PQ3x8", d, n, x.data());
  const double err_reduced = qvtest::mean_squared_error(x, qvtest::round_trip(*reduced, n, x.data(), &codes), n);
  const double noise = 13 * 4.0 / 3.0;
  CHECK_MSG(err_full < 0.2 * noise, "PCA16,PQ16x8 MSE " << err_full);
  CHECK_MSG(err_reduced > 0.8 * noise && err_reduced < 1.3 * noise,
            "PCA3,PQ3x8 MSE " << err_reduced << ", dropped noise " << noise);
}

TEST_CASE("pca: wraps RQ and TRQ; save and load give the same codes; an index searches with exact scores") {
  const size_t n = 1500, d = 20;
  const std::vector<float> x = low_rank_data(n, d, 5, 1.0f, 31);
  for (const char* spec : {"PCA8,RQ3x6,beam=2", "PCA8,TRQ3x5", "PCA10,OPQ2,PQ2x6"}) {
    const auto codec = trained(spec, d, n, x.data());
    CHECK(codec->spec() == spec);
    std::vector<uint8_t> codes;
    const std::vector<float> decoded = qvtest::round_trip(*codec, n, x.data(), &codes);
    const auto loaded = deserialize_codec(serialize_codec(*codec).data(), serialize_codec(*codec).size());
    CHECK(loaded->spec() == spec && same_codec_state(*codec, *loaded));
    std::vector<uint8_t> again(codes.size());
    loaded->encode(n, x.data(), again.data(), 0);
    CHECK_MSG(again == codes, spec << ": codes differ after a save and load");
    qvtest::check_adc_matches_decoded(*loaded, 200, codes, decoded, x.data() + 7 * d, 1e-5);
  }
  // As an exhaustive index: the top-1 of a stored vector is itself or a vector with the same reconstruction.
  const auto index = qvtest::filled_index("PCA8,RQ3x6", d, n, x.data());
  std::vector<int64_t> labels(5);
  std::vector<float> distances(5);
  index->search(1, x.data(), 5, SearchParams{}, labels.data(), distances.data());
  std::vector<float> decoded(d);
  index->reconstruct(labels[0], decoded.data());
  double exact = 0;
  for (size_t j = 0; j < d; ++j) exact += std::pow(double(x[j]) - decoded[j], 2);
  CHECK_NEAR(distances[0], exact, 1e-3 * (exact + 1));
}

TEST_CASE("pca: hostile state is Corrupt; bad specs say what was expected") {
  const size_t d = 8, p = 3;
  // A projection whose rows are not orthonormal, and one holding a NaN, with a valid inner PQ state.
  const std::vector<float> x = low_rank_data(400, d, 2, 1.0f, 41);
  const auto good = trained("PCA3,PQ3x4", d, 400, x.data());
  const auto& pca = static_cast<const PCAQuantizer&>(*good);
  for (int variant = 0; variant < 3; ++variant) {
    std::vector<float> projection = pca.projection();
    if (variant == 0) projection[0] *= 2.0f;
    if (variant == 1) projection[d + 1] = std::nanf("");
    ByteWriter state;
    state.array(pca.mean());
    if (variant == 2) {
      state.array(std::vector<float>(p * d - 1, 0.0f));  // one float short
    } else {
      state.array(projection);
    }
    pca.inner().save_state(state);
    auto fresh = make_codec("PCA3,PQ3x4", d);
    ByteReader in(state.bytes().data(), state.bytes().size(), "test");
    CHECK_THROWS_CODE(fresh->load_state(in), Corrupt);
  }
  for (const char* spec : {"PCA0,PQ2x4", "PCA9,PQ3x4", "PCA4", "PCA4,PCA2,PQ2x4", "PCA4,iters=2,PQ2x4", "PCA,PQ2x4",
                           "PCA4x2,PQ2x4", "PCA4,PQ2x4fs", "PCA4,Flat", "PCA4,PQ2x4,beam=3"})
    CHECK_THROWS_CODE(make_codec(spec, d), InvalidArgument);
  try {
    make_codec("PCA9,PQ3x4", d);
  } catch (const Error& e) {
    CHECK_MSG(std::string(e.what()).find("between 1 and d = 8") != std::string::npos, e.what());
  }
  CHECK(make_index("PCA4,PQ2x4,Refine", d, Metric::L2)->spec() == "PCA4,PQ2x4,Refine");
  CHECK(make_index("IVF4,PCA4,PQ2x4", d, Metric::L2)->spec() == "IVF4,PCA4,PQ2x4");
}
