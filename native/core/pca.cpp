#include "pca.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "error.h"
#include "io.h"
#include "kmeans.h"
#include "linalg.h"
#include "simd.h"

namespace quiver {

namespace {

// Vectors projected or reconstructed per pass: bounds the temporary copies of encode and decode.
constexpr size_t kChunk = 4096;

// The inner codec's table on the projected query, plus the one constant per query that makes scores those of
// the full-dimensional reconstruction (pca.h).
class PCADistanceTable : public DistanceTable {
 public:
  PCADistanceTable(std::unique_ptr<DistanceTable> inner, float offset) : inner_(std::move(inner)), offset_(offset) {}
  void scan(const uint8_t* codes, size_t n, float* out) const override {
    inner_->scan(codes, n, out);
    for (size_t i = 0; i < n; ++i) out[i] += offset_;
  }
  // scan_top is left to the default (scan, then push): the inner table's fused scans would push scores
  // without the offset.

 private:
  std::unique_ptr<DistanceTable> inner_;
  float offset_;
};

}  // namespace

PCAQuantizer::PCAQuantizer(size_t dim, size_t out_dim, std::unique_ptr<Quantizer> inner)
    : Quantizer(dim), out_dim_(out_dim), inner_(std::move(inner)) {
  QV_CHECK(out_dim >= 1 && out_dim <= dim, InvalidArgument,
           "PCA" << out_dim << " keeps between 1 and d = " << dim << " dimensions, got " << out_dim);
  QV_CHECK(inner_ && inner_->dim() == out_dim, Internal, "PCA inner codec must have " << out_dim << " dimensions");
}

std::string PCAQuantizer::spec() const { return "PCA" + std::to_string(out_dim_) + "," + inner_->spec(); }

void PCAQuantizer::set_projection(std::vector<float> mean, std::vector<float> projection) {
  const size_t d = dim(), p = out_dim_;
  mean_ = std::move(mean);
  projection_ = std::move(projection);
  back_.resize(d * p);
  transpose(p, d, projection_.data(), back_.data());
  projected_mean_.resize(p);
  matvec(p, d, projection_.data(), mean_.data(), projected_mean_.data());
}

void PCAQuantizer::train(size_t n, const float* x, const TrainContext& ctx) {
  const size_t d = dim(), p = out_dim_;
  QV_CHECK(n >= 2, InvalidArgument, spec() << " needs at least 2 training vectors for its principal components, got " << n);
  trained_ = false;
  const std::vector<float> sample = subsample_rows(n, d, x, kMaxPcaRows, ctx.seed + 4099);
  const size_t rows = sample.empty() ? n : sample.size() / d;
  PcaResult pca_result = pca(rows, d, sample.empty() ? x : sample.data(), ctx.threads);
  // Progress: the variance per vector that the projection discards (what no inner codec can restore).
  double dropped = 0;
  for (size_t j = p; j < d; ++j) dropped += std::max(0.0, pca_result.eigenvalues[j]);
  ctx.report(Progress{"pca", 0, 1, 1, 1, dropped});
  pca_result.components.resize(p * d);  // the p leading rows
  set_projection(std::move(pca_result.mean), std::move(pca_result.components));
  std::vector<float> projected(n * p);
  project(n, x, projected.data(), ctx.threads);
  inner_->train(n, projected.data(), ctx);
  trained_ = true;
}

void PCAQuantizer::project(size_t n, const float* x, float* y, int threads) const {
  const size_t d = dim(), p = out_dim_;
  matmul(n, d, p, x, back_.data(), y, threads);  // y = x Eᵀ (back_ is Eᵀ, d × p)
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < p; ++j) y[i * p + j] -= projected_mean_[j];
}

template <typename F>
void PCAQuantizer::in_chunks(size_t n, F&& body) const {
  std::vector<float> projected(std::min(n, kChunk) * out_dim_);
  for (size_t first = 0; first < n; first += kChunk) body(first, std::min(kChunk, n - first), projected.data());
}

void PCAQuantizer::encode(size_t n, const float* x, uint8_t* codes, int threads) const {
  require_trained("encode");
  const size_t d = dim(), cs = code_size();
  in_chunks(n, [&](size_t first, size_t count, float* projected) {
    project(count, x + first * d, projected, threads);
    inner_->encode(count, projected, codes + first * cs, threads);
  });
}

void PCAQuantizer::decode(size_t n, const uint8_t* codes, float* x, int threads) const {
  require_trained("decode");
  const size_t d = dim(), p = out_dim_, cs = code_size();
  in_chunks(n, [&](size_t first, size_t count, float* decoded) {
    inner_->decode(count, codes + first * cs, decoded, threads);
    float* out = x + first * d;
    matmul(count, p, d, decoded, projection_.data(), out, threads);  // rows ŷᵀ E, i.e. Eᵀ ŷ
    for (size_t i = 0; i < count; ++i)
      for (size_t j = 0; j < d; ++j) out[i * d + j] += mean_[j];
  });
}

std::unique_ptr<DistanceTable> PCAQuantizer::distance_table(const float* query, Metric metric) const {
  require_trained("search");
  const size_t d = dim(), p = out_dim_;
  std::vector<float> projected(p);
  matvec(p, d, projection_.data(), query, projected.data());
  double offset = 0;
  if (metric == Metric::L2) {
    // y_q = E(q − μ); offset = ‖q − μ − Eᵀ y_q‖², computed from the perpendicular part itself rather than as
    // ‖q − μ‖² − ‖y_q‖², which would cancel catastrophically when most of q lies in the subspace.
    for (size_t j = 0; j < p; ++j) projected[j] -= projected_mean_[j];
    std::vector<float> in_subspace(d);
    // Eᵀ y_q as one transposed pass over E (d outputs in SIMD lanes), not d dot products of length p.
    matvec_transposed(p, d, projection_.data(), projected.data(), in_subspace.data());
    for (size_t j = 0; j < d; ++j) {
      const double r = double(query[j]) - mean_[j] - in_subspace[j];
      offset += r * r;
    }
  } else {
    // −⟨q, x̂⟩ = −⟨E q, ŷ⟩ − ⟨q, μ⟩: the inner table scores E q (not centred).
    for (size_t j = 0; j < d; ++j) offset -= double(query[j]) * mean_[j];
  }
  return std::make_unique<PCADistanceTable>(inner_->distance_table(projected.data(), metric), float(offset));
}

// State: the mean (u64 count = d, floats), the projection (u64 count = p·d, floats, row-major), then the inner
// codec's state.
void PCAQuantizer::save_state(ByteWriter& out) const {
  require_trained("save");
  out.array(mean_);
  out.array(projection_);
  inner_->save_state(out);
}

void PCAQuantizer::load_state(ByteReader& in) {
  const size_t d = dim(), p = out_dim_;
  std::vector<float> mean = in.array<float>(d, "PCA mean");
  QV_CHECK(mean.size() == d, Corrupt, "PCA mean: expected " << d << " floats, found " << mean.size());
  std::vector<float> projection = in.array<float>(p * d, "PCA projection");
  QV_CHECK(projection.size() == p * d, Corrupt,
           "PCA projection: expected " << p * d << " floats, found " << projection.size());
  for (float v : mean) QV_CHECK(std::isfinite(v), Corrupt, "PCA mean holds a non-finite value");
  for (float v : projection) QV_CHECK(std::isfinite(v), Corrupt, "PCA projection holds a non-finite value");
  QV_CHECK(orthonormal_rows_error(p, d, projection.data()) < 1e-3, Corrupt, "PCA projection rows are not orthonormal");
  inner_->load_state(in);
  set_projection(std::move(mean), std::move(projection));
  trained_ = true;
}

}  // namespace quiver
