#include "pq.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include "bitpack.h"
#include "error.h"
#include "gpu.h"
#include "index.h"
#include "kmeans.h"
#include "lut_quant.h"
#include "simd.h"
#include "thread_pool.h"
#include "topk.h"

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
  // The transposed copy serves compute_lut: one SIMD pass per sub-space with lanes over centroids.
  centroids_t_.resize(centroids_.size());
  for (size_t s = 0; s < m_; ++s) {
    const size_t ds = sub_dims_[s];
    const float* c = centroids_.data() + sub_offsets_[s] * ksub_;
    float* t = centroids_t_.data() + sub_offsets_[s] * ksub_;
    for (size_t j = 0; j < ksub_; ++j)
      for (size_t i = 0; i < ds; ++i) t[i * ksub_ + j] = c[j * ds + i];
  }
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
    const float* ct = centroids_t_.data() + sub_offsets_[s] * ksub_;
    float* row = lut + s * ksub_;
    if (metric == Metric::L2) {
      kern.l2sqr_transposed(q, ct, ds, ksub_, ksub_, row);
    } else {
      kern.dot_transposed(q, ct, ds, ksub_, ksub_, row);
      for (size_t j = 0; j < ksub_; ++j) row[j] = -row[j];
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
    // Pruning pays where the uint8 sums are much cheaper than the float look-ups (AVX-512 VBMI) and the
    // sums cannot overflow uint16 (≤ 256 sub-quantizers of ≤ 255).
    prunable_ = pq.nbits() == 8 && pq.m() % 8 == 0 && pq.m() <= 256 && kernels().adc_sums_u8_fast;
  }

  void scan(const uint8_t* codes, size_t n, float* out) const override { pq_.scan_lut(lut_.data(), codes, n, out); }

  // Uint8 sums of 1 024 rows at a time (lut_quant.h); blocks of 64 whose smallest sum exceeds the bound of the
  // current k-th score are skipped whole, other rows whose sum may qualify are scored with the float table by
  // the level's own adc_scan_u8, so scores and results are bit for bit those of the unpruned scan.
  bool scan_top(const uint8_t* codes, size_t begin, size_t end, TopK& out, const RowFilter& filter) const override {
    if (!prunable_) return false;
    const size_t m = pq_.m();
    // Quantised on first use: IVF builds a table per probed list and scans it without pruning. Rows of one
    // query may be split over threads, hence call_once.
    std::call_once(quantized_, [&] {
      qlut_.resize(m * 256);
      quant_.quantize(lut_.data(), m, 256, qlut_.data(), 256);
    });
    const Kernels& kern = kernels();
    constexpr size_t kChunk = 1024, kBlock = 64;
    uint16_t sums[kChunk], block_min[kChunk / kBlock];
    uint32_t limit = quant_.bound(out.threshold());
    for (size_t first = begin; first < end; first += kChunk) {
      const size_t count = std::min(kChunk, end - first);
      kern.adc_sums_u8(codes + first * m, count, m, qlut_.data(), sums, block_min);
      for (size_t block = 0; block * kBlock < count; ++block) {
        if (block_min[block] > limit) continue;
        const size_t from = block * kBlock, to = std::min(count, from + kBlock);
        for (uint64_t rows = rows_within(sums + from, to - from, limit); rows; rows &= rows - 1) {
          const size_t j = from + size_t(__builtin_ctzll(rows));
          const size_t row = first + j;
          if (sums[j] > limit || !filter.allows(row)) continue;
          float score;
          kern.adc_scan_u8(codes + row * m, 1, m, lut_.data(), &score);
          if (score <= out.threshold()) {
            out.push(score, int64_t(row));
            limit = quant_.bound(out.threshold());
          }
        }
      }
    }
    return true;
  }

 private:
  const ProductQuantizer& pq_;
  std::vector<float> lut_;
  bool prunable_ = false;
  mutable std::once_flag quantized_;
  mutable std::vector<uint8_t> qlut_;  // m × 256, filled by the first scan_top
  mutable LutQuantization quant_;
};

}  // namespace

std::unique_ptr<DistanceTable> ProductQuantizer::distance_table(const float* query, Metric metric) const {
  require_trained("search");
  QV_CHECK(metric != Metric::Cosine, Internal, "cosine must be resolved to inner product before ADC");
  return std::make_unique<PQDistanceTable>(*this, query, metric);
}

}  // namespace quiver
