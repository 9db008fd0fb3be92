// Inverted-file index (spec "IVF<nlist>,<fine codec>[,Refine]" or "IVF<nlist>,TRQ,<fine codec>[,Refine]").
//
// A k-means coarse quantizer of nlist centroids c_l splits the space into lists; a vector x goes to the list of
// its nearest centroid and its residual r = x − c_l is encoded by the fine codec (PQ, RQ, OPQ, …). With TRQ,
// each list also has a learnt orthogonal d × d transform R_l (Yuan & Liu, "Transformed Residual Quantization",
// 2015) and the fine codec encodes y = R_l r: residuals of different lists are aligned before quantisation.
// Search probes the nprobe lists nearest to the query and scores their codes by ADC against the (rotated)
// query residual R_l (q − c_l); for inner product, ⟨q, x̂⟩ = ⟨q, c_l⟩ + ⟨R_l q, ŷ⟩.
//
// Storage: per list, its codes back to back (count × code_size bytes) and the row number of each (uint32;
// rows index the base class's ids and categories, and the refine store, in insertion order). A loaded file's
// lists are used in place (mmap) until the first mutation copies them.
// Fast-scan lists ("IVF<nlist>,[TRQ,]PQ<M>x4fs"): each list keeps its codes in the 4-bit fast-scan block
// layout of fastscan.h (blocks of 32 rows; a list of c rows takes ⌈c/32⌉ · ⌈M/2⌉ · 32 bytes) instead of packed
// codes. A probed list is scanned with uint8 tables quantised from that list's float table (L2: built from
// q − c_l, or from the precomputed tables; inner product without TRQ: one table per query), and rows that may
// enter the top-k are re-scored from the float table, so results equal those of IVF<nlist>,PQ<M>x4 up to
// float rounding of the sums.
//
// Memory: code_size + 4 bytes per vector (+ 8 for the id), plus nlist·d floats of centroids and, with TRQ,
// nlist·d² floats of transforms (64 KiB per list at d = 128).
//
// Precomputed tables (L2, plain PQ fine codec, no TRQ): ‖q − c_l − y‖² = ‖q − c_l‖² + (‖y‖² + 2⟨c_l, y⟩) − 2⟨q, y⟩
// and PQ splits each term by sub-quantizer, so the middle term is kept per (list, sub-quantizer, code) —
// nlist × M × ksub floats, built after training and loading — and the last is one M × ksub table per query
// shared by every probed list. A probed list then costs M·ksub additions instead of d·ksub multiply-adds.
// Used only while the table stays under kMaxPrecomputedBytes (64 MiB: IVF4096,PQ16x8); otherwise, and for
// other codecs, each list builds its table from q − c_l. The two paths differ only by float rounding.
#pragma once

#include <memory>
#include <vector>

#include "index.h"
#include "kmeans.h"

namespace quiver {

class IVFIndex : public Index {
 public:
  IVFIndex(size_t dim, Metric metric, size_t nlist, bool local_transforms, int transform_iterations,
           std::unique_ptr<Quantizer> fine, bool store_vectors, bool fast_scan = false);
  std::string spec() const override;
  size_t code_size() const override { return fine_->code_size(); }
  bool is_trained() const override { return trained_; }
  size_t nlist() const { return nlist_; }
  const Quantizer& fine() const { return *fine_; }
  size_t list_size(size_t list) const { return list_view(list).count; }
  bool fast_scan() const { return fast_scan_; }
  static constexpr size_t kMaxPrecomputedBytes = size_t(64) << 20;
  // Whether searches use the precomputed tables (see above); enable = false forces the per-list tables (for
  // comparisons). Not while searches run.
  bool precomputed_tables() const { return use_precomputed_ && !precomputed_.empty(); }
  void set_precomputed_tables(bool enable) { use_precomputed_ = enable; }
  const std::vector<float>& centroids() const { return centroids_; }  // nlist × dim
  const std::vector<float>& transforms() const { return transforms_; }  // nlist × dim × dim, empty without TRQ
  bool local_transforms() const { return local_transforms_; }
  int transform_iterations() const { return transform_iterations_; }

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
  bool custom_search() const override { return true; }
  void search_custom(size_t nq, const float* queries, size_t shortlist, const SearchParams& params,
                     const RowFilter& filter, const int32_t* row_group, size_t groups,
                     std::vector<std::vector<Candidate>>& found) const override;
  bool gpu_candidates(size_t nq, const float* queries, size_t shortlist, const SearchParams& params,
                      const RowFilter& filter, std::vector<std::vector<Candidate>>& found) const override;

 public:
  struct ListView {
    const uint8_t* codes;
    const uint32_t* rows;
    size_t count;
  };
  ListView list_view(size_t list) const;

 private:
  // Residual of x for list l, rotated when the index has transforms: out = R_l (x − c_l). out: dim floats.
  // With fixed_order the rotation sums in one order at every SIMD level (for encoding: reproducible codes).
  void list_residual(size_t list, const float* x, float* out, bool fixed_order = false) const;
  void materialize_lists();
  // Bytes of a list of `count` rows: count × code_size, or the fast-scan blocks.
  size_t list_code_bytes(size_t count) const;
  // The packed fine code (code_size bytes) of a list slot, from either layout.
  void list_code(const ListView& v, size_t slot, uint8_t* code) const;
  // Writes a packed code at `slot` of an owned list, growing its storage to list_code_bytes(slot + 1).
  void put_list_code(size_t list, size_t slot, const uint8_t* code);
  // (Re)builds the coarse centroid table used for assignment and probing.
  void rebuild_coarse();
  // (Re)builds precomputed_ when it applies (L2, PQ fine codec, no TRQ, small enough); clears it otherwise.
  void rebuild_precomputed();

  size_t nlist_;
  bool local_transforms_;
  int transform_iterations_;
  std::unique_ptr<Quantizer> fine_;
  bool fast_scan_;
  bool trained_ = false;
  std::vector<float> centroids_;    // nlist × dim
  std::vector<float> transforms_;   // nlist × dim × dim (row-major R_l) when local_transforms_
  std::unique_ptr<CentroidTable> coarse_;
  std::vector<float> precomputed_;  // nlist × M × ksub: ‖y_mj‖² + 2⟨c_l(m), y_mj⟩ (empty when not used)
  // With precomputed_: −2·y transposed per sub-quantizer (sub-space m: sub_dim(m) rows × ksub, at
  // sub_offset(m)·ksub), so a query's table −2⟨q_m, y_mj⟩ is one dot_transposed per sub-space.
  std::vector<float> neg2_transposed_;
  bool use_precomputed_ = true;
  // Owned lists (after training, adds or the first mutation of a loaded index).
  std::vector<std::vector<uint8_t>> list_codes_;
  std::vector<std::vector<uint32_t>> list_rows_;
  // Borrowed lists (a loaded file): all lists' codes and rows back to back, list l at offsets_[l] … offsets_[l+1].
  bool borrowed_ = false;
  const uint8_t* all_codes_ = nullptr;
  const uint32_t* all_rows_ = nullptr;
  std::vector<uint64_t> offsets_;       // rows
  std::vector<uint64_t> code_offsets_;  // bytes of codes before list l
  std::shared_ptr<ByteSource> keepalive_;
  std::vector<uint32_t> row_list_;  // list of each row (size() entries), for reconstruct and compaction
};

}  // namespace quiver
