#include "index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "error.h"
#include "simd.h"
#include "thread_pool.h"

namespace quiver {

namespace {

// Rows scored per scan call: large enough to amortise the virtual call, small enough to stay in L1.
constexpr size_t kScanBlock = 1024;

// When one query would scan fewer rows than this, splitting it across threads costs more than it saves.
constexpr size_t kMinRowsPerThread = 16384;

std::vector<float> normalized_copy(size_t n, size_t d, const float* x) {
  std::vector<float> copy(x, x + n * d);
  normalize_rows(n, d, copy.data());
  return copy;
}

}  // namespace

Index::Index(size_t dim, Metric metric) : dim_(dim), metric_(metric) {
  QV_CHECK(dim >= 1, InvalidArgument, "dim must be >= 1, got " << dim);
}

void Index::train(size_t n, const float* x, const TrainContext& ctx) {
  if (metric_ == Metric::Cosine) {
    const std::vector<float> normalized = normalized_copy(n, dim_, x);
    train_impl(n, normalized.data(), ctx);
  } else {
    train_impl(n, x, ctx);
  }
}

void Index::add(size_t n, const float* x, const int64_t* ids, int threads) {
  QV_CHECK(is_trained(), State, "add: the index " << spec() << " is not trained yet");
  if (n == 0) return;
  const size_t first = ids_.size();
  // Reserve first so that a failed allocation leaves the index as it was.
  ids_.reserve(first + n);
  if (metric_ == Metric::Cosine) {
    const std::vector<float> normalized = normalized_copy(n, dim_, x);
    add_impl(n, normalized.data(), threads);
  } else {
    add_impl(n, x, threads);
  }
  for (size_t i = 0; i < n; ++i) ids_.push_back(ids ? ids[i] : int64_t(first + i));
}

void Index::search(size_t nq, const float* queries, size_t k, const SearchParams& params, int64_t* labels,
                   float* distances) const {
  QV_CHECK(is_trained(), State, "search: the index " << spec() << " is not trained yet");
  QV_CHECK(k >= 1, InvalidArgument, "k must be >= 1, got " << k);
  QV_CHECK(params.refine >= 1, InvalidArgument, "refine must be >= 1, got " << params.refine);
  QV_CHECK(params.refine == 1 || has_stored_vectors(), InvalidArgument,
           "refine=" << params.refine << " needs stored vectors: build the index with spec '" << spec()
                     << ",Refine'");
  std::vector<float> normalized;
  if (metric_ == Metric::Cosine) {
    normalized = normalized_copy(nq, dim_, queries);
    queries = normalized.data();
  }
  const size_t threads = effective_threads(params.threads);
  // Many queries: one thread per query. Few queries over many rows: split each query's rows instead.
  const bool parallel_rows = nq < threads && size() >= 2 * kMinRowsPerThread;
  if (parallel_rows) {
    for (size_t q = 0; q < nq; ++q)
      search_one(queries + q * dim_, k, params, true, labels + q * k, distances + q * k);
    return;
  }
  default_pool().parallel_for(
      nq, 1,
      [&](size_t begin, size_t end) {
        for (size_t q = begin; q < end; ++q)
          search_one(queries + q * dim_, k, params, false, labels + q * k, distances + q * k);
      },
      threads);
}

void Index::search_one(const float* query, size_t k, const SearchParams& params, bool parallel_rows,
                       int64_t* labels, float* distances) const {
  const Metric metric = internal_metric();
  // Candidates kept before refine: k·refine, saturating instead of overflowing, and never more than the
  // rows that exist (so a huge k costs no memory here).
  size_t shortlist = k;
  if (params.refine > 1) shortlist = k > size_t(-1) / params.refine ? size_t(-1) : k * params.refine;
  shortlist = std::max<size_t>(std::min(shortlist, size()), 1);
  const std::unique_ptr<RowScanner> scanner = make_scanner(query);
  TopK best(shortlist);
  const size_t n = size();
  if (parallel_rows) {
    const size_t threads = effective_threads(params.threads);
    const size_t grain = std::max(kMinRowsPerThread, (n + threads - 1) / threads);
    std::vector<TopK> partial((n + grain - 1) / grain, TopK(best.k()));
    default_pool().parallel_for(
        n, grain, [&](size_t begin, size_t end) { scanner->scan(begin, end, partial[begin / grain]); },
        threads);
    for (const TopK& p : partial) best.merge(p);
  } else {
    scanner->scan(0, n, best);
  }
  std::vector<Candidate> found = best.take_sorted();

  if (params.refine > 1) {
    const Kernels& kern = kernels();
    TopK exact(k);
    for (const Candidate& c : found) {
      const float* v = stored_vector(size_t(c.id));
      const float score = metric == Metric::L2 ? kern.l2sqr(query, v, dim_) : -kern.dot(query, v, dim_);
      exact.push(score, c.id);
    }
    found = exact.take_sorted();
  }

  const float pad = metric == Metric::L2 ? std::numeric_limits<float>::infinity()
                                         : -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < k; ++i) {
    if (i < found.size()) {
      labels[i] = ids_[size_t(found[i].id)];
      distances[i] = to_user_distance(metric, found[i].score);
    } else {
      labels[i] = -1;
      distances[i] = pad;
    }
  }
}

// ---------------------------------------------------------------------------------------------- FlatIndex

void FlatIndex::add_impl(size_t n, const float* x, int) { vectors_.insert(vectors_.end(), x, x + n * dim()); }

namespace {

class FlatScanner : public RowScanner {
 public:
  FlatScanner(const float* vectors, size_t d, const float* query, Metric metric)
      : vectors_(vectors), d_(d), query_(query), metric_(metric) {}

  void scan(size_t begin, size_t end, TopK& out) const override {
    const Kernels& kern = kernels();
    if (metric_ == Metric::L2) {
      for (size_t i = begin; i < end; ++i) {
        const float s = kern.l2sqr(query_, vectors_ + i * d_, d_);
        if (s <= out.threshold()) out.push(s, int64_t(i));
      }
    } else {
      for (size_t i = begin; i < end; ++i) {
        const float s = -kern.dot(query_, vectors_ + i * d_, d_);
        if (s <= out.threshold()) out.push(s, int64_t(i));
      }
    }
  }

 private:
  const float* vectors_;
  size_t d_;
  const float* query_;
  Metric metric_;
};

class CodeScanner : public RowScanner {
 public:
  CodeScanner(const uint8_t* codes, size_t code_size, std::unique_ptr<DistanceTable> table)
      : codes_(codes), code_size_(code_size), table_(std::move(table)) {}

  void scan(size_t begin, size_t end, TopK& out) const override {
    float scores[kScanBlock];
    for (size_t block = begin; block < end; block += kScanBlock) {
      const size_t count = std::min(kScanBlock, end - block);
      table_->scan(codes_ + block * code_size_, count, scores);
      for (size_t i = 0; i < count; ++i)
        if (scores[i] <= out.threshold()) out.push(scores[i], int64_t(block + i));
    }
  }

 private:
  const uint8_t* codes_;
  size_t code_size_;
  std::unique_ptr<DistanceTable> table_;
};

}  // namespace

std::unique_ptr<RowScanner> FlatIndex::make_scanner(const float* query) const {
  return std::make_unique<FlatScanner>(vectors_.data(), dim(), query, internal_metric());
}

// --------------------------------------------------------------------------------------------- CodecIndex

CodecIndex::CodecIndex(size_t dim, Metric metric, std::unique_ptr<Quantizer> codec, bool store_vectors)
    : Index(dim, metric), codec_(std::move(codec)), store_vectors_(store_vectors) {
  QV_CHECK(codec_ && codec_->dim() == dim, Internal, "codec dimension does not match the index");
}

std::string CodecIndex::spec() const { return codec_->spec() + (store_vectors_ ? ",Refine" : ""); }

void CodecIndex::train_impl(size_t n, const float* x, const TrainContext& ctx) { codec_->train(n, x, ctx); }

void CodecIndex::add_impl(size_t n, const float* x, int threads) {
  const size_t cs = codec_->code_size();
  std::vector<uint8_t> codes(n * cs);
  codec_->encode(n, x, codes.data(), threads);
  // Reserve both stores first so that a failed allocation leaves them consistent.
  codes_.reserve(codes_.size() + codes.size());
  if (store_vectors_) vectors_.reserve(vectors_.size() + n * dim());
  codes_.insert(codes_.end(), codes.begin(), codes.end());
  if (store_vectors_) vectors_.insert(vectors_.end(), x, x + n * dim());
}

std::unique_ptr<RowScanner> CodecIndex::make_scanner(const float* query) const {
  return std::make_unique<CodeScanner>(codes_.data(), codec_->code_size(),
                                       codec_->distance_table(query, internal_metric()));
}

}  // namespace quiver
