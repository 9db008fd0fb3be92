// Indexes: a store of vectors (raw or encoded) with int64 ids and optional small integer categories, searched
// for the k best per query, mutable (add / remove / upsert) and serialisable.
//
// Rows: vectors are kept in insertion order in row-major stores (codes: size() × code_size bytes; vectors:
// size() × dim floats). Removing compacts the stores in order. ids_[row] is the caller's id; id_rows_ maps back.
// Results are written as labels[q·k + i] / distances[q·k + i], best first; rows with fewer than k results are
// padded with id −1 and distance +∞ (L2) or −∞ (inner product, cosine).
//
// Thread-safety: const methods may run concurrently with each other; train/add/remove need exclusive access
// (the Node layer holds a readers–writer lock around them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "io.h"
#include "metric.h"
#include "quantizer.h"
#include "gpu.h"
#include "refine.h"
#include "row_store.h"
#include "topk.h"
#include "train_context.h"

namespace quiver {

constexpr int32_t kNoCategory = -1;

struct SearchParams {
  size_t nprobe = 1;  // inverted lists to visit (ignored by exhaustive indexes)
  size_t refine = 1;  // re-score the best k·refine candidates exactly (needs stored vectors when > 1)
  int threads = 0;    // 0 = every hardware thread
  // Device::Cuda: candidates come from the GPU where gpu.h says it covers the index (else the CPU).
  Device device = Device::Cpu;
  // Allow-list filter: only rows whose id is listed are candidates (unknown ids are ignored). Null = no filter.
  const int64_t* allow_ids = nullptr;
  size_t allow_count = 0;
  // Category filter: only rows whose category is listed are candidates. Null = no filter.
  const int32_t* categories = nullptr;
  size_t category_count = 0;
};

// Rows a search may return: a bitset over rows built once per call (inactive = every row).
struct RowFilter {
  std::vector<uint64_t> bits;
  bool active = false;
  bool allows(size_t row) const { return !active || (bits[row >> 6] >> (row & 63)) & 1; }
};

// Scores a block of consecutive stored rows against one prepared query (smaller is better).
class RowScorer {
 public:
  virtual ~RowScorer() = default;
  virtual void score(size_t begin, size_t count, float* out) const = 0;
  // Optional fused scan of rows [begin, end) into `out` (keyed by row), honouring `filter`; scorers that can
  // prune before computing exact scores (4-bit fast-scan) implement it. Returns false to use score().
  virtual bool scan(size_t begin, size_t end, TopK& out, const RowFilter& filter) const { return false; }
};

class Index {
 public:
  Index(size_t dim, Metric metric);
  virtual ~Index() = default;

  size_t dim() const { return dim_; }
  Metric metric() const { return metric_; }
  size_t size() const { return ids_.size(); }
  const std::vector<int64_t>& ids() const { return ids_; }
  bool has_categories() const { return !categories_.empty(); }

  virtual std::string spec() const = 0;
  virtual size_t code_size() const = 0;  // bytes stored per vector for search (excluding the id)
  virtual bool is_trained() const = 0;
  // Bytes per vector kept for refine (0 when the index stores none beyond its codes).
  size_t refine_bytes() const { return refine_.bytes_per_vector(); }
  RefineStorage refine_storage() const { return refine_.storage(); }
  // Chooses the refine store (spec suffix ",Refine[,store=…]"). Only on an empty, untrained index: the spec
  // factory calls it right after construction.
  void set_refine_storage(RefineStorage storage) { refine_.configure(dim_, storage); }

  // x: n × dim floats. Cosine indexes normalise a copy first.
  void train(size_t n, const float* x, const TrainContext& ctx);
  // x: n × dim floats; ids: n ids or null for ids following the largest id so far; categories: n labels ≥ 0
  // or null (no category). An id already present is an InvalidArgument unless upsert, which replaces it.
  void add(size_t n, const float* x, const int64_t* ids, const int32_t* categories, bool upsert, int threads);
  void add(size_t n, const float* x, const int64_t* ids, int threads) { add(n, x, ids, nullptr, false, threads); }
  // Removes the listed ids that exist; returns how many were removed.
  size_t remove(size_t n, const int64_t* ids);
  bool has(int64_t id) const { return id_rows_.count(id) != 0; }
  // Writes the decoded vector of `id` (dim floats; normalised for cosine) as the index's search codes
  // represent it: Flat's stored vector, or the codec's reconstruction for compressed indexes — not the refine
  // store's copy (see reconstruct_refined). False if absent.
  bool reconstruct(int64_t id, float* out) const;
  // The refine store's copy of `id` (f32 exact, fp16 or int8 decoded). False if absent or no refine store.
  bool reconstruct_refined(int64_t id, float* out) const;
  // queries: nq × dim; labels, distances: nq × k each.
  void search(size_t nq, const float* queries, size_t k, const SearchParams& params, int64_t* labels,
              float* distances) const;
  // The best k of each listed category (params.categories, required): labels/distances nq × categories × k.
  void search_per_category(size_t nq, const float* queries, size_t k, const SearchParams& params,
                           int64_t* labels, float* distances) const;

  // Appends every row of `other` after this index's rows, keeping their order, ids and categories: the result
  // equals one index that added this index's vectors and then other's. Both must be of the same type and spec
  // with an identical trained state (the same codebook, bit for bit); an id present in both is InvalidArgument
  // and leaves this index unchanged. For IVF, list l becomes this list l followed by other's list l, so lists
  // stay contiguous. `other` may be borrowed from a mapped file; this index owns its data afterwards.
  void merge_from(const Index& other);

  // Serialises to the container format (io.h), magic "QVRI".
  std::vector<uint8_t> serialize() const;
  // Loads an index. With `borrow`, bulk stores point into `source` (kept alive) instead of being copied.
  static std::unique_ptr<Index> deserialize(std::shared_ptr<ByteSource> source, bool borrow);

 protected:
  // ",Refine…" when the index keeps a refine store (subclasses append it to their spec).
  std::string refine_suffix() const { return refine_.spec_suffix(); }
  // Internal metric: cosine becomes inner product once vectors are normalised.
  Metric internal_metric() const { return metric_ == Metric::Cosine ? Metric::InnerProduct : metric_; }
  virtual void train_impl(size_t n, const float* x, const TrainContext& ctx) = 0;
  virtual void add_impl(size_t n, const float* x, int threads) = 0;
  virtual void compact_impl(const std::vector<bool>& keep) = 0;
  virtual std::unique_ptr<RowScorer> make_scorer(const float* query) const = 0;
  virtual void reconstruct_row(size_t row, float* out) const = 0;
  // True when the scan's scores are exact already (Flat), so refine > 1 needs no store and changes nothing.
  virtual bool exact_scores() const { return false; }
  // Query groups (Flat): an index whose scores cost memory bandwidth more than arithmetic says so with
  // scores_query_groups() and scores rows [begin, begin + count) against nq queries at once in score_queries
  // (out[q·count + i]), each score bit for bit what make_scorer(query q) gives, so that a row is read from
  // memory once per group rather than once per query. Other indexes scan query by query.
  virtual bool scores_query_groups() const { return false; }
  virtual void score_queries(const float* queries, size_t nq, size_t begin, size_t count, float* out) const {}
  // Subclass state: written after the common sections, read back by load_impl.
  virtual void save_impl(ContainerWriter& out) const = 0;
  // Indexes that do not scan every row (IVF) take over candidate generation: search_custom fills
  // found[q·groups + g] with the best `shortlist` candidates (score, row) of query q in group g, best first,
  // honouring `filter`. row_group (size() entries, or null for a single group) gives each row's group, −1 to
  // skip it; per-category search uses one group per requested category. Queries are already normalised for
  // cosine; refine and id mapping stay with the base class.
  virtual bool custom_search() const { return false; }
  virtual void search_custom(size_t nq, const float* queries, size_t shortlist, const SearchParams& params,
                             const RowFilter& filter, const int32_t* row_group, size_t groups,
                             std::vector<std::vector<Candidate>>& found) const {}
  virtual void load_impl(const std::vector<Section>& sections, const std::shared_ptr<ByteSource>& source,
                         bool borrow) = 0;
  // Appends other's rows to the subclass stores (other has this dynamic type and spec). Must throw, before
  // changing anything, InvalidArgument when the trained states differ. The default refuses (Unsupported).
  virtual void merge_impl(const Index& other);
  // GPU candidate generation (see gpu.h): fills found as search_custom does for one group and returns true, or
  // returns false to let the CPU path run. Called only when params.device asks for a usable GPU.
  virtual bool gpu_candidates(size_t nq, const float* queries, size_t shortlist, const SearchParams& params,
                              const RowFilter& filter, std::vector<std::vector<Candidate>>& found) const {
    return false;
  }
  // The device-resident copy of this index's search data, built by the first GPU search and dropped by every
  // mutation (add, remove, merge).
  mutable std::mutex gpu_mutex_;
  mutable GpuResidentPtr gpu_resident_;
  void drop_gpu_copy() {
    std::lock_guard<std::mutex> guard(gpu_mutex_);
    gpu_resident_.reset();
  }

 private:
  RowFilter build_filter(const SearchParams& params) const;
  void check_search(size_t k, const SearchParams& params) const;
  const float* prepare_queries(size_t nq, const float* queries, std::vector<float>& scratch) const;
  void finish_query(const float* query, std::vector<Candidate> found, size_t k, const SearchParams& params,
                    int64_t* labels, float* distances) const;
  bool fully_trained() const { return is_trained() && refine_.is_trained(); }

  size_t dim_;
  Metric metric_;
  std::vector<int64_t> ids_;
  std::vector<int32_t> categories_;  // empty when no vector ever had a category, else one per row
  std::unordered_map<int64_t, size_t> id_rows_;
  int64_t next_id_ = 0;  // default id for the next vector added without ids
  // Vectors for refine, kept, compacted, merged and saved by the base class after the subclass's stores
  // (so f32 files keep their section order and bytes).
  RefineStore refine_;
};

// Exact search over float32 vectors (also the reference for recall).
class FlatIndex : public Index {
 public:
  // Batch searches score query groups (score_queries) where the store does not stay in cache: from 16 MiB of
  // vectors. Below that (the SIFT slice, 5 MB, k = 100) groups measured about 10 % slower than query-by-query
  // scans, which then read the rows from L2/L3.
  static constexpr size_t kQueryGroupMinBytes = size_t(16) << 20;

  FlatIndex(size_t dim, Metric metric) : Index(dim, metric) {}
  std::string spec() const override { return "Flat"; }
  size_t code_size() const override { return dim() * sizeof(float); }
  bool is_trained() const override { return true; }

 protected:
  void train_impl(size_t, const float*, const TrainContext&) override {}
  void add_impl(size_t n, const float* x, int threads) override;
  void compact_impl(const std::vector<bool>& keep) override { vectors_.compact(keep, dim()); }
  std::unique_ptr<RowScorer> make_scorer(const float* query) const override;
  void reconstruct_row(size_t row, float* out) const override;
  bool exact_scores() const override { return true; }
  bool scores_query_groups() const override { return size() * dim() * sizeof(float) >= kQueryGroupMinBytes; }
  void score_queries(const float* queries, size_t nq, size_t begin, size_t count, float* out) const override;
  void save_impl(ContainerWriter& out) const override;
  void load_impl(const std::vector<Section>& sections, const std::shared_ptr<ByteSource>& source,
                 bool borrow) override;
  void merge_impl(const Index& other) override;

 private:
  RowStore<float> vectors_;  // size() × dim
};

// Exhaustive ADC search over the codes of any Quantizer, optionally with a refine store (store_vectors: f32;
// the spec factory may choose another storage with set_refine_storage).
class CodecIndex : public Index {
 public:
  CodecIndex(size_t dim, Metric metric, std::unique_ptr<Quantizer> codec, bool store_vectors);
  std::string spec() const override;
  size_t code_size() const override { return codec_->code_size(); }
  bool is_trained() const override { return codec_->is_trained(); }
  const Quantizer& codec() const { return *codec_; }
  const uint8_t* codes() const { return codes_.data(); }  // size() × code_size bytes, row order

 protected:
  void train_impl(size_t n, const float* x, const TrainContext& ctx) override;
  void add_impl(size_t n, const float* x, int threads) override;
  void compact_impl(const std::vector<bool>& keep) override;
  std::unique_ptr<RowScorer> make_scorer(const float* query) const override;
  void reconstruct_row(size_t row, float* out) const override;
  void save_impl(ContainerWriter& out) const override;
  void load_impl(const std::vector<Section>& sections, const std::shared_ptr<ByteSource>& source,
                 bool borrow) override;
  void merge_impl(const Index& other) override;
  bool gpu_candidates(size_t nq, const float* queries, size_t shortlist, const SearchParams& params,
                      const RowFilter& filter, std::vector<std::vector<Candidate>>& found) const override;

 private:
  std::unique_ptr<Quantizer> codec_;
  RowStore<uint8_t> codes_;  // size() × code_size
};

// Bulk sections shared by index types: u32 pad + pad bytes (8-byte file alignment), u64 element count, then
// the elements. read_bulk insists on exactly `expected` elements and borrows them from `source` when asked.
void write_bulk(ContainerWriter& out, uint32_t tag, const uint8_t* data, size_t count);
void write_bulk(ContainerWriter& out, uint32_t tag, const float* data, size_t count);
void write_bulk(ContainerWriter& out, uint32_t tag, const uint16_t* data, size_t count);
void read_bulk(const std::vector<Section>& sections, uint32_t tag, const char* name, size_t expected,
               const std::shared_ptr<ByteSource>& source, bool borrow, RowStore<uint8_t>& store);
void read_bulk(const std::vector<Section>& sections, uint32_t tag, const char* name, size_t expected,
               const std::shared_ptr<ByteSource>& source, bool borrow, RowStore<float>& store);
void read_bulk(const std::vector<Section>& sections, uint32_t tag, const char* name, size_t expected,
               const std::shared_ptr<ByteSource>& source, bool borrow, RowStore<uint16_t>& store);

// Codec persistence (container magic "QVRC"): the canonical spec, the dimension and the trained state.
std::vector<uint8_t> serialize_codec(const Quantizer& codec);
std::unique_ptr<Quantizer> deserialize_codec(const uint8_t* data, size_t size);
// The 'CODC' section payload shared by codec files and index files.
void write_codec_section(const Quantizer& codec, ByteWriter& out);
std::unique_ptr<Quantizer> read_codec_section(ByteReader& in);
// True when two codecs have the same spec and dimension and bit-identical trained state (their CODC payloads).
bool same_codec_state(const Quantizer& a, const Quantizer& b);

}  // namespace quiver
