// Indexes: a store of vectors (raw or encoded) with ids, searched for the k best per query.
//
// Ids are int64 chosen by the caller (default: the row number at insertion). Results are written as
// labels[q·k + i] / distances[q·k + i], best first; rows with fewer than k results are padded with id −1 and
// distance +∞ (L2) or −∞ (inner product, cosine).
//
// Thread-safety: const methods may run concurrently with each other; train/add need exclusive access
// (the Node layer holds a readers–writer lock around them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "metric.h"
#include "quantizer.h"
#include "topk.h"
#include "train_context.h"

namespace quiver {

struct SearchParams {
  size_t nprobe = 1;  // inverted lists to visit (ignored by exhaustive indexes)
  size_t refine = 1;  // re-score the best k·refine candidates exactly (needs stored vectors when > 1)
  int threads = 0;    // 0 = every hardware thread
};

// Scores stored rows [begin, end) against one prepared query into a TopK keyed by row number.
class RowScanner {
 public:
  virtual ~RowScanner() = default;
  virtual void scan(size_t begin, size_t end, TopK& out) const = 0;
};

class Index {
 public:
  Index(size_t dim, Metric metric);
  virtual ~Index() = default;

  size_t dim() const { return dim_; }
  Metric metric() const { return metric_; }
  size_t size() const { return ids_.size(); }
  const std::vector<int64_t>& ids() const { return ids_; }

  virtual std::string spec() const = 0;
  virtual size_t code_size() const = 0;  // bytes stored per vector for search (excluding the id)
  virtual bool is_trained() const = 0;
  // Bytes per vector kept for exact refine (0 when the index stores none).
  virtual size_t refine_bytes() const { return has_stored_vectors() ? dim_ * sizeof(float) : 0; }

  // x: n × dim floats. Cosine indexes normalise a copy first.
  void train(size_t n, const float* x, const TrainContext& ctx);
  // x: n × dim floats; ids: n ids or null for sequential ids starting at size().
  void add(size_t n, const float* x, const int64_t* ids, int threads);
  // queries: nq × dim; labels, distances: nq × k each.
  void search(size_t nq, const float* queries, size_t k, const SearchParams& params, int64_t* labels,
              float* distances) const;

 protected:
  // Internal metric: cosine becomes inner product once vectors are normalised.
  Metric internal_metric() const { return metric_ == Metric::Cosine ? Metric::InnerProduct : metric_; }
  virtual void train_impl(size_t n, const float* x, const TrainContext& ctx) = 0;
  virtual void add_impl(size_t n, const float* x, int threads) = 0;
  virtual std::unique_ptr<RowScanner> make_scanner(const float* query) const = 0;
  // Exact vectors for refine; null when the index stores none.
  virtual bool has_stored_vectors() const = 0;
  virtual const float* stored_vector(size_t row) const = 0;

 private:
  void search_one(const float* query, size_t k, const SearchParams& params, bool parallel_rows,
                  int64_t* labels, float* distances) const;

  size_t dim_;
  Metric metric_;
  std::vector<int64_t> ids_;
};

// Exact search over float32 vectors (also the reference for recall).
class FlatIndex : public Index {
 public:
  FlatIndex(size_t dim, Metric metric) : Index(dim, metric) {}
  std::string spec() const override { return "Flat"; }
  size_t code_size() const override { return dim() * sizeof(float); }
  size_t refine_bytes() const override { return 0; }  // the vectors are the codes
  bool is_trained() const override { return true; }

 protected:
  void train_impl(size_t, const float*, const TrainContext&) override {}
  void add_impl(size_t n, const float* x, int threads) override;
  std::unique_ptr<RowScanner> make_scanner(const float* query) const override;
  bool has_stored_vectors() const override { return true; }
  const float* stored_vector(size_t row) const override { return vectors_.data() + row * dim(); }

 private:
  std::vector<float> vectors_;  // size() × dim
};

// Exhaustive ADC search over the codes of any Quantizer, optionally keeping the float32 vectors for refine.
class CodecIndex : public Index {
 public:
  CodecIndex(size_t dim, Metric metric, std::unique_ptr<Quantizer> codec, bool store_vectors);
  std::string spec() const override;
  size_t code_size() const override { return codec_->code_size(); }
  bool is_trained() const override { return codec_->is_trained(); }
  const Quantizer& codec() const { return *codec_; }

 protected:
  void train_impl(size_t n, const float* x, const TrainContext& ctx) override;
  void add_impl(size_t n, const float* x, int threads) override;
  std::unique_ptr<RowScanner> make_scanner(const float* query) const override;
  bool has_stored_vectors() const override { return store_vectors_; }
  const float* stored_vector(size_t row) const override { return vectors_.data() + row * dim(); }

 private:
  std::unique_ptr<Quantizer> codec_;
  bool store_vectors_;
  std::vector<uint8_t> codes_;  // size() × code_size
  std::vector<float> vectors_;  // size() × dim when store_vectors_
};

}  // namespace quiver
