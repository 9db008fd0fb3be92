#include "pq.h"

#include <algorithm>
#include <cstring>

#include "bitpack.h"
#include "error.h"
#include "gpu.h"
#include "kmeans.h"
#include "simd.h"
#include "thread_pool.h"

namespace quiver {

void Quantizer::require_trained(const char* what) const {
  QV_CHECK(is_trained(), State, what << ": the codec " << spec() << " is not trained yet");
}

ProductQuantizer::ProductQuantizer(size_t dim, size_t m, size_t nbits)
    : Quantizer(dim), m_(m), nbits_(nbits), ksub_(size_t(1) << nbits) {
  QV_CHECK(m >= 1 && m <= dim, InvalidArgument,
           "PQ needs 1 <= M <= dim sub-quantizers, got M=" << m << " for dim=" << dim);
  QV_CHECK(nbits >= 1 && nbits <= 12, InvalidArgument, "PQ needs 1 <= nbits <= 12, got " << nbits);
  code_size_ = (m * nbits + 7) / 8;
  sub_dims_.resize(m);
  sub_offsets_.resize(m);
  const size_t base = dim / m, extra = dim % m;
  size_t offset = 0;
  for (size_t s = 0; s < m; ++s) {
    sub_dims_[s] = base + (s < extra ? 1 : 0);
    sub_offsets_[s] = offset;
    offset += sub_dims_[s];
  }
}

std::string ProductQuantizer::spec() const {
  return "PQ" + std::to_string(m_) + "x" + std::to_string(nbits_);
}

void ProductQuantizer::set_centroids(std::vector<float> centroids) {
  QV_CHECK(centroids.size() == ksub_ * dim(), InvalidArgument,
           "PQ centroids: expected " << ksub_ * dim() << " floats, got " << centroids.size());
  centroids_ = std::move(centroids);
  trained_ = true;
}

void ProductQuantizer::train(size_t n, const float* x, const TrainContext& ctx) {
  QV_CHECK(n >= ksub_, InvalidArgument,
           "vectors: " << spec() << " needs at least " << ksub_ << " training vectors (2^nbits), got " << n);
  const size_t d = dim();
  std::vector<float> centroids(ksub_ * d);
  std::vector<float> sub;
  for (size_t s = 0; s < m_; ++s) {
    const size_t ds = sub_dims_[s], off = sub_offsets_[s];
    sub.resize(n * ds);
    for (size_t i = 0; i < n; ++i) std::memcpy(&sub[i * ds], x + i * d + off, ds * sizeof(float));
    TrainContext sub_ctx = ctx;
    sub_ctx.seed = ctx.seed + 7919 * (s + 1);  // independent, reproducible streams per sub-space
    KMeansResult km = kmeans(n, ds, sub.data(), ksub_, sub_ctx, "pq", int(s), int(m_));
    std::memcpy(&centroids[off * ksub_], km.centroids.data(), ksub_ * ds * sizeof(float));
  }
  set_centroids(std::move(centroids));
}

void ProductQuantizer::unpack(const uint8_t* code, uint32_t* out) const {
  unpack_bits(code, m_, unsigned(nbits_), out);
}

void ProductQuantizer::pack(const uint32_t* sub_codes, uint8_t* code) const {
  pack_bits(sub_codes, m_, unsigned(nbits_), code);
}

void ProductQuantizer::encode(size_t n, const float* x, uint8_t* codes, int threads) const {
  require_trained("encode");
  if (gpu_encode(*this, n, x, codes)) return;  // Device::Cuda in scope and a GPU present
  const size_t d = dim();
  std::vector<CentroidTable> tables;
  tables.reserve(m_);
  for (size_t s = 0; s < m_; ++s) tables.emplace_back(ksub_, sub_dims_[s], centroids(s));
  default_pool().parallel_for(
      n, 256,
      [&](size_t begin, size_t end) {
        std::vector<float> scratch(ksub_);
        std::vector<uint32_t> sub_codes(m_);
        for (size_t i = begin; i < end; ++i) {
          const float* xi = x + i * d;
          for (size_t s = 0; s < m_; ++s)
            sub_codes[s] = uint32_t(tables[s].nearest(xi + sub_offsets_[s], scratch.data()));
          pack(sub_codes.data(), codes + i * code_size_);
        }
      },
      effective_threads(threads));
}

void ProductQuantizer::decode(size_t n, const uint8_t* codes, float* x, int threads) const {
  require_trained("decode");
  const size_t d = dim();
  default_pool().parallel_for(
      n, 1024,
      [&](size_t begin, size_t end) {
        std::vector<uint32_t> sub_codes(m_);
        for (size_t i = begin; i < end; ++i) {
          unpack(codes + i * code_size_, sub_codes.data());
          for (size_t s = 0; s < m_; ++s) {
            const size_t ds = sub_dims_[s];
            std::memcpy(x + i * d + sub_offsets_[s], centroids(s) + sub_codes[s] * ds, ds * sizeof(float));
          }
        }
      },
      effective_threads(threads));
}

void ProductQuantizer::compute_lut(const float* query, Metric metric, float* lut) const {
  const Kernels& kern = kernels();
  for (size_t s = 0; s < m_; ++s) {
    const size_t ds = sub_dims_[s];
    const float* q = query + sub_offsets_[s];
    const float* c = centroids(s);
    float* row = lut + s * ksub_;
    if (metric == Metric::L2) {
      for (size_t j = 0; j < ksub_; ++j) row[j] = kern.l2sqr(q, c + j * ds, ds);
    } else {
      for (size_t j = 0; j < ksub_; ++j) row[j] = -kern.dot(q, c + j * ds, ds);
    }
  }
}

void ProductQuantizer::scan_lut(const float* lut, const uint8_t* codes, size_t n, float* out) const {
  if (nbits_ == 8) {
    kernels().adc_scan_u8(codes, n, m_, lut, out);
    return;
  }
  // Generic widths: unpack then sum (the 4-bit fast-scan layout has its own kernels).
  std::vector<uint32_t> sub(m_);
  for (size_t i = 0; i < n; ++i) {
    unpack(codes + i * code_size_, sub.data());
    float sum = 0;
    for (size_t s = 0; s < m_; ++s) sum += lut[s * ksub_ + sub[s]];
    out[i] = sum;
  }
}

namespace {

class PQDistanceTable : public DistanceTable {
 public:
  PQDistanceTable(const ProductQuantizer& pq, const float* query, Metric metric)
      : pq_(pq), lut_(pq.m() * pq.ksub()) {
    pq.compute_lut(query, metric, lut_.data());
  }

  void scan(const uint8_t* codes, size_t n, float* out) const override { pq_.scan_lut(lut_.data(), codes, n, out); }

 private:
  const ProductQuantizer& pq_;
  std::vector<float> lut_;
};

}  // namespace

std::unique_ptr<DistanceTable> ProductQuantizer::distance_table(const float* query, Metric metric) const {
  require_trained("search");
  QV_CHECK(metric != Metric::Cosine, Internal, "cosine must be resolved to inner product before ADC");
  return std::make_unique<PQDistanceTable>(*this, query, metric);
}

}  // namespace quiver
