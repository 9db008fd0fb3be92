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
// Memory: code_size + 4 bytes per vector (+ 8 for the id), plus nlist·d floats of centroids and, with TRQ,
// nlist·d² floats of transforms (64 KiB per list at d = 128).
#pragma once

#include <memory>
#include <vector>

#include "index.h"
#include "kmeans.h"

namespace quiver {

class IVFIndex : public Index {
 public:
  IVFIndex(size_t dim, Metric metric, size_t nlist, bool local_transforms, int transform_iterations,
           std::unique_ptr<Quantizer> fine, bool store_vectors);
  std::string spec() const override;
  size_t code_size() const override { return fine_->code_size(); }
  bool is_trained() const override { return trained_; }
  size_t nlist() const { return nlist_; }
  const Quantizer& fine() const { return *fine_; }
  size_t list_size(size_t list) const { return list_view(list).count; }
  const std::vector<float>& centroids() const { return centroids_; }  // nlist × dim
  const std::vector<float>& transforms() const { return transforms_; }  // nlist × dim × dim, empty without TRQ
  bool local_transforms() const { return local_transforms_; }
  int transform_iterations() const { return transform_iterations_; }
  bool stores_vectors() const { return store_vectors_; }

 protected:
  void train_impl(size_t n, const float* x, const TrainContext& ctx) override;
  void add_impl(size_t n, const float* x, int threads) override;
  void compact_impl(const std::vector<bool>& keep) override;
  std::unique_ptr<RowScorer> make_scorer(const float* query) const override;
  void reconstruct_row(size_t row, float* out) const override;
  bool has_stored_vectors() const override { return store_vectors_; }
  const float* stored_vector(size_t row) const override { return vectors_.data() + row * dim(); }
  void save_impl(ContainerWriter& out) const override;
  void load_impl(const std::vector<Section>& sections, const std::shared_ptr<ByteSource>& source,
                 bool borrow) override;
  void merge_impl(const Index& other) override;
  bool custom_search() const override { return true; }
  void search_custom(size_t nq, const float* queries, size_t shortlist, const SearchParams& params,
                     const RowFilter& filter, const int32_t* row_group, size_t groups,
                     std::vector<std::vector<Candidate>>& found) const override;

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
  // (Re)builds the coarse centroid table used for assignment and probing.
  void rebuild_coarse();

  size_t nlist_;
  bool local_transforms_;
  int transform_iterations_;
  std::unique_ptr<Quantizer> fine_;
  bool store_vectors_;
  bool trained_ = false;
  std::vector<float> centroids_;    // nlist × dim
  std::vector<float> transforms_;   // nlist × dim × dim (row-major R_l) when local_transforms_
  std::unique_ptr<CentroidTable> coarse_;
  // Owned lists (after training, adds or the first mutation of a loaded index).
  std::vector<std::vector<uint8_t>> list_codes_;
  std::vector<std::vector<uint32_t>> list_rows_;
  // Borrowed lists (a loaded file): all lists' codes and rows back to back, list l at offsets_[l] … offsets_[l+1].
  bool borrowed_ = false;
  const uint8_t* all_codes_ = nullptr;
  const uint32_t* all_rows_ = nullptr;
  std::vector<uint64_t> offsets_;
  std::shared_ptr<ByteSource> keepalive_;
  std::vector<uint32_t> row_list_;  // list of each row (size() entries), for reconstruct and compaction
  RowStore<float> vectors_;         // size() × dim when store_vectors_
};

}  // namespace quiver
