// The refine store: a second, finer copy of every vector, used to re-score the best k·refine candidates of a
// search (spec suffix ",Refine" and its option store=f32|fp16|int8).
//
// Storages (one record per row, rows in the index's insertion order, compacted with it):
//   f32  — dim floats (4·dim bytes). Re-scoring is exact.
//   fp16 — dim IEEE binary16 values (2·dim bytes), rounded to nearest even; finite magnitudes above 65 504
//          are clamped to ±65 504 (no infinities in distances). Relative error ≤ 2⁻¹¹ per component.
//   int8 — dim uint8 codes (dim bytes) of a per-dimension scalar quantiser trained on the training set:
//          x̂_j = vmin_j + scale_j · c_j with c_j = round((x_j − vmin_j) / scale_j) clamped to [0, 255] and
//          scale_j = (vmax_j − vmin_j) / 255 over the training vectors (0 when the dimension is constant).
//          Values outside the trained range are clamped to it.
// Distances for refine are computed against the decoded vector x̂: L2 Σ (q_j − x̂_j)², inner product −⟨q, x̂⟩
// (cosine indexes store normalised vectors and queries are normalised first, as for the codes).
//
// Persistence ('VECS' for f32 is the layout older files use, so they load unchanged):
//   f32:  'VECS' bulk section, rows × dim float32.
//   fp16: 'RFIN' (u32 format version = 1, u8 storage = 2, u64 dim), 'RF16' bulk section, rows × dim uint16.
//   int8: 'RFIN' (u32 version = 1, u8 storage = 3, u64 dim, dim f32 vmin, dim f32 scale), 'RSQ8' bulk,
//         rows × dim uint8.
// Bulk sections are 8-byte aligned in the file and are borrowed from a memory-mapped file like the codes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io.h"
#include "metric.h"
#include "row_store.h"

namespace quiver {

enum class RefineStorage : uint8_t { None = 0, Float32 = 1, Float16 = 2, Int8 = 3 };

// "f32", "fp16", "int8" (the spec option's values); "none" for None.
const char* refine_storage_name(RefineStorage storage);
// Parses a store= value; false when unknown.
bool parse_refine_storage(const std::string& name, RefineStorage* out);

// IEEE binary16 conversions (portable, bit-exact on every SIMD level). float_to_half rounds to nearest even
// and clamps finite values beyond the half range to ±65 504; NaN stays NaN.
uint16_t float_to_half(float value);
float half_to_float(uint16_t half);

class RefineStore {
 public:
  // Chooses the storage; only on an empty, untrained store.
  void configure(size_t dim, RefineStorage storage);
  RefineStorage storage() const { return storage_; }
  bool enabled() const { return storage_ != RefineStorage::None; }
  size_t bytes_per_vector() const;
  // The spec suffix: "", ",Refine" (f32) or ",Refine,store=fp16" / ",Refine,store=int8".
  std::string spec_suffix() const;
  // Only int8 has trained state (vmin, scale); the others are always trained.
  bool is_trained() const { return storage_ != RefineStorage::Int8 || !vmin_.empty(); }
  // x: n × dim (n ≥ 1). Trains the int8 ranges; a no-op for the other storages.
  void train(size_t n, const float* x);

  size_t rows() const;
  // Makes room for `extra` more rows (so that a following append cannot fail half-way).
  void reserve_more(size_t extra);
  // Appends n rows (n × dim floats), encoding them in the storage.
  void append(size_t n, const float* x);
  // Keeps the rows whose keep[row] is set, in order.
  void compact(const std::vector<bool>& keep);
  // Throws InvalidArgument, before anything changes, unless `other` has the same storage and trained state.
  void check_mergeable(const RefineStore& other) const;
  void append_from(const RefineStore& other);

  // A query prepared for re-scoring many rows: distance() = L2 Σ (q_j − x̂_j)² or −⟨q, x̂⟩ (smaller is better).
  struct Query {
    const float* query = nullptr;  // the query itself (f32, fp16)
    std::vector<float> weights;    // int8: q − vmin (L2) or q·scale (inner product)
    float bias = 0;                // int8 inner product: ⟨q, vmin⟩
    Metric metric = Metric::L2;    // L2 or InnerProduct (cosine is inner product on normalised vectors)
  };
  Query prepare(const float* query, Metric metric) const;
  float distance(const Query& q, size_t row) const;
  // Hints the CPU to start loading a row that distance() will read soon (re-scoring visits rows in score
  // order, i.e. at random: without it each row's first cache lines are a wait on memory). Level::L1 for the
  // next few rows, Level::L2 for a wider wave issued early (see Index::finish_query).
  enum class Level { L1, L2 };
  void prefetch(size_t row, Level level = Level::L1) const;
  // Bytes one row occupies in the store (0 without a store).
  size_t row_bytes() const;
  // The stored (decoded) vector of a row: dim floats.
  void decode(size_t row, float* out) const;

  void save(ContainerWriter& out) const;
  // Reads the store of `rows` rows (sections written by save) for the configured storage.
  void load(const std::vector<Section>& sections, size_t rows, const std::shared_ptr<ByteSource>& source,
            bool borrow);

 private:
  size_t dim_ = 0;
  RefineStorage storage_ = RefineStorage::None;
  RowStore<float> f32_;      // rows × dim (f32)
  RowStore<uint16_t> f16_;   // rows × dim (fp16)
  RowStore<uint8_t> sq8_;    // rows × dim (int8)
  std::vector<float> vmin_, scale_;           // int8: dim each, empty until trained
};

}  // namespace quiver
