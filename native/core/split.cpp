#include "split.h"

#include <algorithm>
#include <cstring>

#include "error.h"
#include "io.h"

namespace quiver {

namespace {

// Rows copied per pass in encode and decode: bounds the part copies (kChunk × part dims floats).
constexpr size_t kChunk = 4096;
// Codes per scan block: each part's codes are gathered into a contiguous block for its table's scan.
constexpr size_t kScanBlock = 256;

// Sum of the parts' tables on the query's parts (split.h).
class SplitDistanceTable : public DistanceTable {
 public:
  SplitDistanceTable(const SplitQuantizer& split, std::vector<std::unique_ptr<DistanceTable>> tables)
      : split_(split), tables_(std::move(tables)) {}

  void scan(const uint8_t* codes, size_t n, float* out) const override {
    const size_t cs = split_.code_size(), pcs = split_.part(0).code_size(), P = tables_.size();
    std::vector<uint8_t>& block = block_;
    std::vector<float>& scores = scores_;
    block.resize(std::min(n, kScanBlock) * pcs);
    scores.resize(std::min(n, kScanBlock));
    for (size_t first = 0; first < n; first += kScanBlock) {
      const size_t count = std::min(kScanBlock, n - first);
      for (size_t p = 0; p < P; ++p) {
        split_.gather_codes(p, count, codes + first * cs, block.data());
        float* target = p == 0 ? out + first : scores.data();
        tables_[p]->scan(block.data(), count, target);
        if (p > 0)
          for (size_t i = 0; i < count; ++i) out[first + i] += scores[i];
      }
    }
  }

 private:
  const SplitQuantizer& split_;
  std::vector<std::unique_ptr<DistanceTable>> tables_;
  // Scratch (a DistanceTable is used from one thread at a time).
  mutable std::vector<uint8_t> block_;
  mutable std::vector<float> scores_;
};

}  // namespace

SplitQuantizer::SplitQuantizer(size_t dim, std::vector<std::unique_ptr<Quantizer>> parts)
    : Quantizer(dim), parts_(std::move(parts)) {
  const size_t P = parts_.size();
  QV_CHECK(P >= 1 && P <= kMaxParts && P <= dim, InvalidArgument,
           "SPLIT needs 1 <= parts <= min(" << kMaxParts << ", d = " << dim << "), got " << P);
  size_t offset = 0;
  for (size_t p = 0; p < P; ++p) {
    QV_CHECK(parts_[p] && parts_[p]->dim() == cut_dim(dim, P, p), Internal,
             "SPLIT part " << p << " must have " << cut_dim(dim, P, p) << " dimensions");
    offsets_.push_back(offset);
    offset += parts_[p]->dim();
  }
  // Parts of one split share a spec, but the first d mod P of them have one dimension more: for most codecs
  // the code size does not depend on d; where it could, the layout above needs it equal.
  part_code_size_ = parts_[0]->code_size();
  for (size_t p = 1; p < P; ++p)
    QV_CHECK(parts_[p]->code_size() == part_code_size_, InvalidArgument,
             "SPLIT" << P << " parts of " << parts_[0]->dim() << " and " << parts_[p]->dim()
                     << " dimensions have different code sizes with " << parts_[0]->spec());
  code_size_ = P * part_code_size_;
}

std::string SplitQuantizer::spec() const { return "SPLIT" + std::to_string(parts_.size()) + "," + parts_[0]->spec(); }

bool SplitQuantizer::is_trained() const {
  for (const auto& part : parts_)
    if (!part->is_trained()) return false;
  return true;
}

void SplitQuantizer::gather(size_t p, size_t count, const float* x, float* rows) const {
  const size_t d = dim(), dp = part_dim(p), off = offsets_[p];
  for (size_t i = 0; i < count; ++i) std::memcpy(rows + i * dp, x + i * d + off, dp * sizeof(float));
}

void SplitQuantizer::scatter(size_t p, size_t count, const float* rows, float* x) const {
  const size_t d = dim(), dp = part_dim(p), off = offsets_[p];
  for (size_t i = 0; i < count; ++i) std::memcpy(x + i * d + off, rows + i * dp, dp * sizeof(float));
}

void SplitQuantizer::gather_codes(size_t p, size_t count, const uint8_t* codes, uint8_t* part_codes) const {
  const size_t cs = code_size(), pcs = part_code_size_;
  for (size_t i = 0; i < count; ++i) std::memcpy(part_codes + i * pcs, codes + i * cs + part_code_offset(p), pcs);
}

void SplitQuantizer::scatter_codes(size_t p, size_t count, const uint8_t* part_codes, uint8_t* codes) const {
  const size_t cs = code_size(), pcs = part_code_size_;
  for (size_t i = 0; i < count; ++i) std::memcpy(codes + i * cs + part_code_offset(p), part_codes + i * pcs, pcs);
}

template <typename F>
void SplitQuantizer::in_chunks(size_t n, F&& body) const {
  for (size_t first = 0; first < n; first += kChunk) body(first, std::min(kChunk, n - first));
}

void SplitQuantizer::train(size_t n, const float* x, const TrainContext& ctx) {
  const size_t P = parts_.size();
  std::vector<float> rows;
  for (size_t p = 0; p < P; ++p) {
    rows.resize(n * part_dim(p));
    gather(p, n, x, rows.data());
    TrainContext part_ctx = ctx;
    part_ctx.seed = ctx.seed + 7919 * (p + 1);  // parts see different data; distinct seeds keep them independent
    if (ctx.progress)
      part_ctx.progress = [&ctx, p, P](const Progress& r) {
        Progress relabelled = r;
        relabelled.phase = "part " + std::to_string(p + 1) + "/" + std::to_string(P) + " " + r.phase;
        ctx.report(relabelled);
      };
    parts_[p]->train(n, rows.data(), part_ctx);
  }
}

void SplitQuantizer::encode(size_t n, const float* x, uint8_t* codes, int threads) const {
  require_trained("encode");
  const size_t d = dim(), cs = code_size(), pcs = part_code_size_;
  std::vector<float> rows;
  std::vector<uint8_t> part_codes;
  in_chunks(n, [&](size_t first, size_t count) {
    part_codes.resize(count * pcs);
    for (size_t p = 0; p < parts_.size(); ++p) {
      rows.resize(count * part_dim(p));
      gather(p, count, x + first * d, rows.data());
      parts_[p]->encode(count, rows.data(), part_codes.data(), threads);
      scatter_codes(p, count, part_codes.data(), codes + first * cs);
    }
  });
}

void SplitQuantizer::decode(size_t n, const uint8_t* codes, float* x, int threads) const {
  require_trained("decode");
  const size_t d = dim(), cs = code_size(), pcs = part_code_size_;
  std::vector<float> rows;
  std::vector<uint8_t> part_codes;
  in_chunks(n, [&](size_t first, size_t count) {
    part_codes.resize(count * pcs);
    for (size_t p = 0; p < parts_.size(); ++p) {
      gather_codes(p, count, codes + first * cs, part_codes.data());
      rows.resize(count * part_dim(p));
      parts_[p]->decode(count, part_codes.data(), rows.data(), threads);
      scatter(p, count, rows.data(), x + first * d);
    }
  });
}

std::unique_ptr<DistanceTable> SplitQuantizer::distance_table(const float* query, Metric metric) const {
  require_trained("search");
  std::vector<std::unique_ptr<DistanceTable>> tables;
  for (size_t p = 0; p < parts_.size(); ++p) tables.push_back(parts_[p]->distance_table(query + offsets_[p], metric));
  return std::make_unique<SplitDistanceTable>(*this, std::move(tables));
}

// State: u32 parts (must match the spec), then each part's state in order.
void SplitQuantizer::save_state(ByteWriter& out) const {
  require_trained("save");
  out.u32(uint32_t(parts_.size()));
  for (const auto& part : parts_) part->save_state(out);
}

void SplitQuantizer::load_state(ByteReader& in) {
  const uint32_t parts = in.u32();
  QV_CHECK(parts == parts_.size(), Corrupt, "SPLIT state for " << parts << " parts does not match the spec " << spec());
  for (auto& part : parts_) part->load_state(in);
}

}  // namespace quiver
