#include "prq.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "bitpack.h"
#include "error.h"
#include "io.h"
#include "simd.h"
#include "thread_pool.h"

namespace quiver {

ProductResidualQuantizer::ProductResidualQuantizer(size_t dim, size_t parts, size_t stages, size_t nbits,
                                                   RQOptions options)
    : Quantizer(dim), stages_(stages), nbits_(nbits), code_bytes_(0), options_(options), norm_(options.norm) {
  QV_CHECK(parts >= 1 && parts <= dim, InvalidArgument,
           "PRQ needs 1 <= parts <= dim, got " << parts << " parts for dim=" << dim);
  part_dims_.resize(parts);
  part_offsets_.resize(parts);
  const size_t base = dim / parts, extra = dim % parts;
  size_t offset = 0;
  for (size_t p = 0; p < parts; ++p) {
    part_dims_[p] = base + (p < extra ? 1 : 0);
    part_offsets_[p] = offset;
    offset += part_dims_[p];
    // The parts' own norm fields are never written: PRQ stores one norm for the whole vector.
    RQOptions part_options = options;
    part_options.norm = NormStorage::Float32;
    parts_.push_back(std::make_unique<ResidualQuantizer>(part_dims_[p], stages, nbits, part_options));
  }
  code_bytes_ = packed_bytes(parts * stages, nbits);
}

std::string ProductResidualQuantizer::spec() const {
  std::string s = "PRQ" + std::to_string(parts_.size()) + "x" + std::to_string(stages_) + "x" + std::to_string(nbits_);
  if (options_.beam != 1) s += ",beam=" + std::to_string(options_.beam);
  if (options_.training_beam() != options_.beam) s += ",trainbeam=" + std::to_string(options_.training_beam());
  if (norm_.storage() != NormStorage::Float32) s += std::string(",norm=") + norm_.name();
  if (options_.refit_rounds != 0) s += ",refit=" + std::to_string(options_.refit_rounds);
  if (options_.progressive_steps) s += ",pd=" + std::to_string(options_.progressive_steps);
  return s;
}

void ProductResidualQuantizer::train(size_t n, const float* x, const TrainContext& ctx) {
  const size_t ksub = size_t(1) << nbits_, d = dim(), P = parts_.size();
  QV_CHECK(n >= ksub, InvalidArgument,
           spec() << " needs at least " << ksub << " training vectors (2^nbits), got " << n);
  trained_ = false;
  std::vector<float> sub;
  for (size_t p = 0; p < P; ++p) {
    const size_t dp = part_dims_[p], off = part_offsets_[p];
    sub.resize(n * dp);
    for (size_t i = 0; i < n; ++i) std::memcpy(&sub[i * dp], x + i * d + off, dp * sizeof(float));
    TrainContext part_ctx = ctx;
    part_ctx.seed = ctx.seed + 6151 * (p + 1);
    // Reports say which part and stage: stage = p·L + l of P·L.
    if (ctx.progress)
      part_ctx.progress = [&ctx, p, P](const Progress& r) {
        Progress relabelled = r;
        relabelled.phase = r.phase == "rq" ? "prq" : "prq-refit";
        relabelled.stage = int(p) * r.stages + r.stage;
        relabelled.stages = int(P) * r.stages;
        ctx.report(relabelled);
      };
    parts_[p]->train(n, sub.data(), part_ctx);
  }
  if (norm_.storage() == NormStorage::Uint8) {
    // The u8 norm range comes from the reconstructions of (a sample of) the training set.
    const size_t rows = std::min<size_t>(n, 65536);
    std::vector<uint32_t> stage_codes(rows * P * stages_);
    std::vector<float> norms(rows);
    default_pool().parallel_for(
        rows, 256,
        [&](size_t begin, size_t end) {
          encode_rows(end - begin, x + begin * d, &stage_codes[begin * P * stages_], &norms[begin]);
        },
        effective_threads(ctx.threads));
    norm_.set_range(*std::min_element(norms.begin(), norms.end()), *std::max_element(norms.begin(), norms.end()));
  }
  trained_ = true;
}

void ProductResidualQuantizer::encode_rows(size_t n, const float* x, uint32_t* stage_codes, float* sq_norms) const {
  const size_t d = dim(), P = parts_.size(), L = stages_;
  const Kernels& kern = kernels();
  std::vector<float> sub, err(n), rec;
  std::vector<uint32_t> part_codes(n * L);
  std::fill(sq_norms, sq_norms + n, 0.0f);
  for (size_t p = 0; p < P; ++p) {
    const size_t dp = part_dims_[p], off = part_offsets_[p];
    sub.resize(n * dp);
    rec.resize(dp);
    for (size_t i = 0; i < n; ++i) std::memcpy(&sub[i * dp], x + i * d + off, dp * sizeof(float));
    parts_[p]->encode_stages(n, sub.data(), part_codes.data(), nullptr, 1);
    for (size_t i = 0; i < n; ++i) {
      std::memcpy(stage_codes + i * P * L + p * L, &part_codes[i * L], L * sizeof(uint32_t));
      parts_[p]->reconstruct(&part_codes[i * L], rec.data());
      sq_norms[i] += kern.dot(rec.data(), rec.data(), dp);  // ‖x̂‖² = Σ_p ‖x̂_p‖²
    }
  }
}

void ProductResidualQuantizer::unpack(const uint8_t* code, uint32_t* stage_codes) const {
  unpack_bits(code, parts_.size() * stages_, unsigned(nbits_), stage_codes);
}

void ProductResidualQuantizer::encode(size_t n, const float* x, uint8_t* codes, int threads) const {
  require_trained("encode");
  const size_t d = dim(), PL = parts_.size() * stages_, cs = code_size();
  default_pool().parallel_for(
      n, 128,
      [&](size_t begin, size_t end) {
        const size_t count = end - begin;
        std::vector<uint32_t> stage_codes(count * PL);
        std::vector<float> norms(count);
        encode_rows(count, x + begin * d, stage_codes.data(), norms.data());
        for (size_t i = 0; i < count; ++i) {
          uint8_t* code = codes + (begin + i) * cs;
          pack_bits(&stage_codes[i * PL], PL, unsigned(nbits_), code);
          norm_.write(norms[i], code + code_bytes_);
        }
      },
      effective_threads(threads));
}

void ProductResidualQuantizer::decode(size_t n, const uint8_t* codes, float* x, int threads) const {
  require_trained("decode");
  const size_t d = dim(), L = stages_, PL = parts_.size() * L, cs = code_size();
  default_pool().parallel_for(
      n, 256,
      [&](size_t begin, size_t end) {
        std::vector<uint32_t> stage_codes(PL);
        for (size_t i = begin; i < end; ++i) {
          unpack(codes + i * cs, stage_codes.data());
          for (size_t p = 0; p < parts_.size(); ++p)
            parts_[p]->reconstruct(&stage_codes[p * L], x + i * d + part_offsets_[p]);
        }
      },
      effective_threads(threads));
}

// State: u32 parts, f32 norm range lo, hi, then each part's RQ state in order.
void ProductResidualQuantizer::save_state(ByteWriter& out) const {
  require_trained("save");
  out.u32(uint32_t(parts_.size()));
  out.f32(norm_.lo());
  out.f32(norm_.hi());
  for (const auto& part : parts_) part->save_state(out);
}

void ProductResidualQuantizer::load_state(ByteReader& in) {
  const uint32_t parts = in.u32();
  QV_CHECK(parts == parts_.size(), Corrupt, "PRQ state for " << parts << " parts does not match the spec " << spec());
  const float lo = in.f32(), hi = in.f32();
  QV_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, Corrupt, "PRQ norm range is invalid");
  for (auto& part : parts_) part->load_state(in);
  norm_.set_range(lo, hi);
  trained_ = true;
}

namespace {

class PRQDistanceTable : public DistanceTable {
 public:
  PRQDistanceTable(const ProductResidualQuantizer& prq, const float* query, Metric metric)
      : prq_(prq), l2_(metric == Metric::L2) {
    const size_t L = prq.stages(), K = size_t(1) << prq.nbits();
    lut_.resize(prq.parts() * L * K);
    for (size_t p = 0; p < prq.parts(); ++p)
      prq.part(p).inner_product_tables(query + prq.part_offset(p), &lut_[p * L * K]);
    const float factor = l2_ ? -2.0f : -1.0f;
    for (float& v : lut_) v *= factor;
    base_ = l2_ ? kernels().dot(query, query, prq.dim()) : 0.0f;
  }

  void scan(const uint8_t* codes, size_t n, float* out) const override {
    const size_t cs = prq_.code_size(), PL = prq_.parts() * prq_.stages(), K = size_t(1) << prq_.nbits();
    const size_t cb = prq_.stage_code_bytes();
    if (prq_.nbits() == 8) {
      // Whole-byte codes: gather them densely for the SIMD 8-bit scan (its table rows are the P·L stages).
      constexpr size_t kBlock = 256;
      std::vector<uint8_t> block(kBlock * PL);
      for (size_t b = 0; b < n; b += kBlock) {
        const size_t count = std::min(kBlock, n - b);
        for (size_t i = 0; i < count; ++i) std::memcpy(&block[i * PL], codes + (b + i) * cs, PL);
        kernels().adc_scan_u8(block.data(), count, PL, lut_.data(), out + b);
      }
    } else {
      std::vector<uint32_t> stage_codes(PL);
      for (size_t i = 0; i < n; ++i) {
        prq_.unpack(codes + i * cs, stage_codes.data());
        float sum = 0;
        for (size_t t = 0; t < PL; ++t) sum += lut_[t * K + stage_codes[t]];
        out[i] = sum;
      }
    }
    if (l2_)
      for (size_t i = 0; i < n; ++i) out[i] += base_ + prq_.norm_codec().read(codes + i * cs + cb);
  }

 private:
  const ProductResidualQuantizer& prq_;
  bool l2_;
  std::vector<float> lut_;
  float base_;
};

}  // namespace

std::unique_ptr<DistanceTable> ProductResidualQuantizer::distance_table(const float* query, Metric metric) const {
  require_trained("search");
  QV_CHECK(metric != Metric::Cosine, Internal, "cosine must be resolved to inner product before ADC");
  return std::make_unique<PRQDistanceTable>(*this, query, metric);
}

}  // namespace quiver
