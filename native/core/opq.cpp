#include "opq.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "error.h"
#include "io.h"
#include "kmeans.h"
#include "linalg.h"
#include "simd.h"
#include "thread_pool.h"

namespace quiver {

void retrain_product_quantizer(ProductQuantizer& pq, size_t n, const float* x, const TrainContext& ctx,
                               const char* phase) {
  QV_CHECK(pq.is_trained(), State, "retrain_product_quantizer needs a trained PQ");
  const size_t d = pq.dim(), ksub = pq.ksub(), m = pq.m();
  std::vector<float> centroids(pq.all_centroids());
  std::vector<float> sub;
  for (size_t s = 0; s < m; ++s) {
    const size_t ds = pq.sub_dim(s), off = pq.sub_offset(s);
    sub.resize(n * ds);
    for (size_t i = 0; i < n; ++i) std::memcpy(&sub[i * ds], x + i * d + off, ds * sizeof(float));
    TrainContext sub_ctx = ctx;
    sub_ctx.seed = ctx.seed + 7919 * (s + 1);
    const KMeansResult km = kmeans_from(n, ds, sub.data(), ksub, pq.centroids(s), sub_ctx, phase, int(s), int(m));
    std::memcpy(&centroids[off * ksub], km.centroids.data(), ksub * ds * sizeof(float));
  }
  pq.set_centroids(std::move(centroids));
}

OPQQuantizer::OPQQuantizer(size_t dim, size_t m, size_t nbits, size_t iterations)
    : Quantizer(dim), iterations_(iterations), pq_(dim, m, nbits) {
  QV_CHECK(iterations >= 1 && iterations <= 100, InvalidArgument,
           "OPQ iterations must be 1 … 100, got " << iterations);
}

std::string OPQQuantizer::spec() const {
  std::string s = "OPQ" + std::to_string(pq_.m()) + "," + pq_.spec();
  if (iterations_ != kDefaultIterations) s += ",iters=" + std::to_string(iterations_);
  return s;
}

void OPQQuantizer::set_state(std::vector<float> rotation, std::vector<float> centroids) {
  const size_t d = dim();
  QV_CHECK(rotation.size() == d * d, InvalidArgument,
           "OPQ rotation: expected " << d * d << " floats, got " << rotation.size());
  pq_.set_centroids(std::move(centroids));
  rotation_ = std::move(rotation);
  rotation_t_.resize(d * d);
  transpose(d, d, rotation_.data(), rotation_t_.data());
  trained_ = true;
}

void OPQQuantizer::train(size_t n, const float* x, const TrainContext& ctx) {
  QV_CHECK(n >= pq_.ksub(), InvalidArgument,
           spec() << " needs at least " << pq_.ksub() << " training vectors (2^nbits), got " << n);
  const size_t d = dim();
  const std::vector<float> sample =
      subsample_rows(n, d, x, pq_.ksub() * ctx.max_points_per_centroid, ctx.seed + 31);
  if (!sample.empty()) {
    x = sample.data();
    n = sample.size() / d;
  }
  trained_ = false;
  std::vector<float> rotation = identity_matrix(d);
  std::vector<float> rotated(x, x + n * d), decoded(n * d);
  std::vector<uint8_t> codes(n * pq_.code_size());
  std::vector<double> corr(d * d);
  pq_.train(n, rotated.data(), ctx);
  // Inside the alternation the codebooks only need to follow a small move of the data: a few Lloyd passes.
  TrainContext inner = ctx;
  inner.iterations = std::max(2, ctx.iterations / 4);
  inner.progress = nullptr;
  for (size_t it = 0; it < iterations_; ++it) {
    pq_.encode(n, rotated.data(), codes.data(), ctx.threads);
    pq_.decode(n, codes.data(), decoded.data(), ctx.threads);
    double err = 0;
    for (size_t i = 0; i < n * d; ++i) err += double(rotated[i] - decoded[i]) * (rotated[i] - decoded[i]);
    ctx.report(Progress{"opq", int(it), int(iterations_), int(it) + 1, int(iterations_), err / double(n)});
    // R = argmin Σ‖R x_i − ŷ_i‖² over rotations: Procrustes on Σ x ŷᵀ.
    matmul_at_b(n, d, d, x, decoded.data(), corr.data(), ctx.threads);
    procrustes_rotation(d, corr.data(), rotation.data());
    transform_rows(n, d, d, rotation.data(), x, rotated.data(), ctx.threads);
    retrain_product_quantizer(pq_, n, rotated.data(), inner, "opq-pq");
  }
  set_state(std::move(rotation), std::vector<float>(pq_.all_centroids()));
}

void OPQQuantizer::encode(size_t n, const float* x, uint8_t* codes, int threads) const {
  require_trained("encode");
  const size_t d = dim(), cs = code_size();
  // Rotate in bounded chunks so encoding a large batch needs no second full-size copy.
  constexpr size_t kChunk = 4096;
  std::vector<float> rotated(std::min(n, kChunk) * d);
  for (size_t b = 0; b < n; b += kChunk) {
    const size_t count = std::min(kChunk, n - b);
    transform_rows(count, d, d, rotation_.data(), x + b * d, rotated.data(), threads);
    pq_.encode(count, rotated.data(), codes + b * cs, threads);
  }
}

void OPQQuantizer::decode(size_t n, const uint8_t* codes, float* x, int threads) const {
  require_trained("decode");
  const size_t d = dim(), cs = code_size();
  constexpr size_t kChunk = 4096;
  std::vector<float> decoded(std::min(n, kChunk) * d);
  for (size_t b = 0; b < n; b += kChunk) {
    const size_t count = std::min(kChunk, n - b);
    pq_.decode(count, codes + b * cs, decoded.data(), threads);
    // x = Rᵀ ŷ: rows transformed by Rᵀ.
    transform_rows(count, d, d, rotation_t_.data(), decoded.data(), x + b * d, threads);
  }
}

// State: the rotation (u64 count = d², floats, row-major), then the inner PQ's state.
void OPQQuantizer::save_state(ByteWriter& out) const {
  require_trained("save");
  out.array(rotation_);
  pq_.save_state(out);
}

void OPQQuantizer::load_state(ByteReader& in) {
  const size_t d = dim();
  std::vector<float> rotation = in.array<float>(d * d, "OPQ rotation");
  QV_CHECK(rotation.size() == d * d, Corrupt, "OPQ rotation: expected " << d * d << " floats, found " << rotation.size());
  for (float v : rotation) QV_CHECK(std::isfinite(v), Corrupt, "OPQ rotation holds a non-finite value");
  QV_CHECK(orthogonality_error(d, rotation.data()) < 1e-3, Corrupt, "OPQ rotation is not orthogonal");
  ProductQuantizer pq(d, pq_.m(), pq_.nbits());
  pq.load_state(in);
  set_state(std::move(rotation), std::vector<float>(pq.all_centroids()));
}

std::unique_ptr<DistanceTable> OPQQuantizer::distance_table(const float* query, Metric metric) const {
  require_trained("search");
  // Distances and inner products are invariant under the rotation: score R q against the PQ codes. The PQ
  // table copies what it needs from the query, so the rotated copy can go out of scope.
  std::vector<float> rotated(dim());
  matvec(dim(), dim(), rotation_.data(), query, rotated.data());
  return pq_.distance_table(rotated.data(), metric);
}

}  // namespace quiver
