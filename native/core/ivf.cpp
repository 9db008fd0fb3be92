#include "ivf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <typeinfo>

#include "error.h"
#include "fastscan.h"
#include "linalg.h"
#include "pq.h"
#include "simd.h"
#include "spec.h"
#include "thread_pool.h"

namespace quiver {

namespace {
constexpr size_t kMaxNlist = 1 << 20;
constexpr size_t kScanBlock = 1024;
}  // namespace

IVFIndex::IVFIndex(size_t dim, Metric metric, size_t nlist, bool local_transforms, int transform_iterations,
                   std::unique_ptr<Quantizer> fine, bool store_vectors, bool fast_scan)
    : Index(dim, metric),
      nlist_(nlist),
      local_transforms_(local_transforms),
      transform_iterations_(transform_iterations),
      fine_(std::move(fine)),
      fast_scan_(fast_scan),
      list_codes_(nlist),
      list_rows_(nlist) {
  QV_CHECK(nlist >= 1 && nlist <= kMaxNlist, InvalidArgument,
           "IVF needs 1 <= nlist <= " << kMaxNlist << ", got " << nlist);
  QV_CHECK(fine_ && fine_->dim() == dim, Internal, "fine codec dimension does not match the index");
  QV_CHECK(transform_iterations >= 1 && transform_iterations <= 100, InvalidArgument,
           "TRQ iters must be from 1 to 100, got " << transform_iterations);
  if (store_vectors) set_refine_storage(RefineStorage::Float32);
  if (fast_scan_) {
    const auto* pq = dynamic_cast<const ProductQuantizer*>(fine_.get());
    QV_CHECK(pq && typeid(*fine_) == typeid(ProductQuantizer) && pq->nbits() == 4 && pq->m() <= 256,
             InvalidArgument, "fast-scan lists need a PQ<M>x4 fine codec with M <= 256, got " << fine_->spec());
  }
}

size_t IVFIndex::list_code_bytes(size_t count) const {
  if (!fast_scan_) return count * fine_->code_size();
  return fast_scan_bytes(count, (static_cast<const ProductQuantizer&>(*fine_).m() + 1) / 2);
}

void IVFIndex::list_code(const ListView& v, size_t slot, uint8_t* code) const {
  const size_t cs = fine_->code_size();
  if (!fast_scan_) {
    std::memcpy(code, v.codes + slot * cs, cs);
    return;
  }
  const auto& pq = static_cast<const ProductQuantizer&>(*fine_);
  const size_t m_count = pq.m(), pairs = (m_count + 1) / 2;
  std::vector<uint32_t> sub(m_count);
  for (size_t m = 0; m < m_count; ++m) sub[m] = fast_scan_sub_code(v.codes, pairs, slot, m);
  pq.pack(sub.data(), code);
}

void IVFIndex::put_list_code(size_t list, size_t slot, const uint8_t* code) {
  std::vector<uint8_t>& bytes = list_codes_[list];
  const size_t cs = fine_->code_size();
  if (bytes.size() < list_code_bytes(slot + 1)) bytes.resize(list_code_bytes(slot + 1), 0);
  if (!fast_scan_) {
    std::memcpy(&bytes[slot * cs], code, cs);
    return;
  }
  const auto& pq = static_cast<const ProductQuantizer&>(*fine_);
  std::vector<uint32_t> sub(pq.m());
  pq.unpack(code, sub.data());
  fast_scan_put(bytes.data(), (pq.m() + 1) / 2, pq.m(), slot, 1, sub.data());
}

std::string IVFIndex::spec() const {
  std::string s = "IVF" + std::to_string(nlist_);
  if (local_transforms_) s += transform_iterations_ == 3 ? ",TRQ" : ",TRQ,iters=" + std::to_string(transform_iterations_);
  s += "," + fine_->spec() + (fast_scan_ ? "fs" : "");
  s += refine_suffix();
  return s;
}

void IVFIndex::rebuild_coarse() { coarse_ = std::make_unique<CentroidTable>(nlist_, dim(), centroids_.data()); }

void IVFIndex::rebuild_precomputed() {
  precomputed_.clear();
  neg2_transposed_.clear();
  const auto* pq = dynamic_cast<const ProductQuantizer*>(fine_.get());
  if (!pq || typeid(*fine_) != typeid(ProductQuantizer) || local_transforms_ || internal_metric() != Metric::L2 ||
      !pq->is_trained())
    return;
  const size_t m_count = pq->m(), ksub = pq->ksub();
  if (nlist_ * m_count * ksub > kMaxPrecomputedBytes / sizeof(float)) return;
  std::vector<float> table(nlist_ * m_count * ksub);
  const Kernels& kern = kernels();
  // ‖y_mj‖² once, then 2⟨c_l(m), y_mj⟩ per list.
  std::vector<float> norms(m_count * ksub);
  for (size_t m = 0; m < m_count; ++m) {
    const size_t ds = pq->sub_dim(m);
    for (size_t j = 0; j < ksub; ++j) {
      const float* y = pq->centroids(m) + j * ds;
      norms[m * ksub + j] = kern.dot(y, y, ds);
    }
  }
  default_pool().parallel_for(nlist_, 1, [&](size_t begin, size_t end) {
    for (size_t l = begin; l < end; ++l)
      for (size_t m = 0; m < m_count; ++m) {
        const size_t ds = pq->sub_dim(m);
        const float* c = &centroids_[l * dim() + pq->sub_offset(m)];
        float* row = &table[(l * m_count + m) * ksub];
        for (size_t j = 0; j < ksub; ++j)
          row[j] = norms[m * ksub + j] + 2.0f * kern.dot(c, pq->centroids(m) + j * ds, ds);
      }
  });
  std::vector<float> transposed(dim() * ksub);
  for (size_t m = 0; m < m_count; ++m) {
    const size_t ds = pq->sub_dim(m);
    for (size_t j = 0; j < ksub; ++j)
      for (size_t i = 0; i < ds; ++i)
        transposed[(pq->sub_offset(m) + i) * ksub + j] = -2.0f * pq->centroids(m)[j * ds + i];
  }
  precomputed_ = std::move(table);
  neg2_transposed_ = std::move(transposed);
}

namespace {

// y = M x (M: d × d, row-major) with one summation order whatever the SIMD level: 8 interleaved partial sums in
// plain C++, added pairwise. kernels().dot sums in an order that depends on the level, so codes encoded from its
// output could differ between machines; the compiler may vectorise these independent sums, which keeps each
// one's order, so the bits do not change.
void matvec_fixed_order(size_t d, const float* m, const float* x, float* y) {
  for (size_t i = 0; i < d; ++i) {
    const float* row = m + i * d;
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t j = 0;
    for (; j + 8 <= d; j += 8)
      for (size_t l = 0; l < 8; ++l) s[l] += row[j + l] * x[j + l];
    for (size_t l = 0; j < d; ++j, ++l) s[l] += row[j] * x[j];
    y[i] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  }
}

}  // namespace

void IVFIndex::list_residual(size_t list, const float* x, float* out, bool fixed_order) const {
  const size_t d = dim();
  const float* c = &centroids_[list * d];
  if (!local_transforms_) {
    for (size_t j = 0; j < d; ++j) out[j] = x[j] - c[j];
    return;
  }
  std::vector<float> r(d);
  for (size_t j = 0; j < d; ++j) r[j] = x[j] - c[j];
  if (fixed_order)
    matvec_fixed_order(d, &transforms_[list * d * d], r.data(), out);
  else
    matvec(d, d, &transforms_[list * d * d], r.data(), out);
}

IVFIndex::ListView IVFIndex::list_view(size_t list) const {
  if (borrowed_) {
    const size_t begin = offsets_[list], end = offsets_[list + 1];
    return ListView{all_codes_ + code_offsets_[list], all_rows_ + begin, end - begin};
  }
  return ListView{list_codes_[list].data(), list_rows_[list].data(), list_rows_[list].size()};
}

bool IVFIndex::gpu_candidates(size_t nq, const float* queries, size_t shortlist, const SearchParams& params,
                              const RowFilter& filter, std::vector<std::vector<Candidate>>& found) const {
  // The GPU scans 8-bit codes stored back to back: not TRQ lists, nor fast-scan lists (blocks of 32 rows).
  if (local_transforms_ || fast_scan_ || !trained_) return false;
  IvfGpuView view;
  view.nlist = nlist_;
  view.dim = dim();
  view.centroids = centroids_.data();
  view.pq = dynamic_cast<const ProductQuantizer*>(fine_.get());
  if (!view.pq) return false;
  const size_t cs = fine_->code_size();
  view.gather = [this, cs](std::vector<uint64_t>& offsets, std::vector<uint8_t>& codes, std::vector<uint32_t>& rows) {
    offsets.assign(nlist_ + 1, 0);
    for (size_t l = 0; l < nlist_; ++l) offsets[l + 1] = offsets[l] + list_view(l).count;
    codes.resize(offsets[nlist_] * cs);
    rows.resize(offsets[nlist_]);
    for (size_t l = 0; l < nlist_; ++l) {
      const ListView v = list_view(l);
      if (v.count == 0) continue;
      std::memcpy(&codes[offsets[l] * cs], v.codes, v.count * cs);
      std::memcpy(&rows[offsets[l]], v.rows, v.count * sizeof(uint32_t));
    }
  };
  return gpu_ivf_search(view, internal_metric(), gpu_resident_, gpu_mutex_, nq, queries, params.nprobe, shortlist,
                        filter, found);
}

void IVFIndex::materialize_lists() {
  if (!borrowed_) return;
  for (size_t l = 0; l < nlist_; ++l) {
    const ListView v = list_view(l);
    list_codes_[l].assign(v.codes, v.codes + list_code_bytes(v.count));
    list_rows_[l].assign(v.rows, v.rows + v.count);
  }
  borrowed_ = false;
  all_codes_ = nullptr;
  all_rows_ = nullptr;
  keepalive_.reset();
}

void IVFIndex::train_impl(size_t n, const float* x, const TrainContext& ctx) {
  const size_t d = dim();
  QV_CHECK(n >= nlist_, InvalidArgument,
           "vectors: IVF" << nlist_ << " needs at least " << nlist_ << " training vectors, got " << n);
  KMeansResult coarse = kmeans(n, d, x, nlist_, ctx, "coarse", 0, 1);
  centroids_ = std::move(coarse.centroids);
  rebuild_coarse();
  std::vector<int32_t> labels(n);
  assign_nearest(n, d, x, nlist_, centroids_.data(), labels.data(), nullptr, ctx.threads);
  std::vector<float> residuals(n * d);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) residuals[i * d + j] = x[i * d + j] - centroids_[size_t(labels[i]) * d + j];

  if (!local_transforms_) {
    fine_->train(n, residuals.data(), ctx);
    trained_ = true;
    rebuild_precomputed();
    return;
  }
  // TRQ: alternate between the fine codebooks (on transformed residuals) and one Procrustes rotation per list,
  // R_l = argmin Σ‖R r − ŷ‖² over the list's residuals r and their current reconstructions ŷ.
  transforms_.assign(nlist_ * d * d, 0.0f);
  for (size_t l = 0; l < nlist_; ++l)
    for (size_t j = 0; j < d; ++j) transforms_[l * d * d + j * d + j] = 1.0f;
  std::vector<size_t> count(nlist_, 0);
  for (int32_t l : labels) ++count[size_t(l)];
  std::vector<float> rotated(n * d), decoded(n * d);
  std::vector<uint8_t> codes(n * fine_->code_size());
  for (int it = 0; it < transform_iterations_; ++it) {
    default_pool().parallel_for(
        n, 256,
        [&](size_t begin, size_t end) {
          for (size_t i = begin; i < end; ++i)
            matvec(d, d, &transforms_[size_t(labels[i]) * d * d], &residuals[i * d], &rotated[i * d]);
        },
        effective_threads(ctx.threads));
    TrainContext fine_ctx = ctx;
    fine_ctx.seed = ctx.seed + 1000003 * uint64_t(it + 1);
    fine_->train(n, rotated.data(), fine_ctx);
    fine_->encode(n, rotated.data(), codes.data(), ctx.threads);
    fine_->decode(n, codes.data(), decoded.data(), ctx.threads);
    double error = 0;
    for (size_t i = 0; i < n * d; ++i) error += double(rotated[i] - decoded[i]) * (rotated[i] - decoded[i]);
    ctx.report(Progress{"trq", it, transform_iterations_, it + 1, transform_iterations_, error / double(n)});
    if (it + 1 == transform_iterations_) break;
    // Per-list correlation A_l = Σ r ŷᵀ, then R_l = V Uᵀ. Lists with fewer points than d keep their transform.
    std::vector<std::vector<size_t>> members(nlist_);
    for (size_t i = 0; i < n; ++i) members[size_t(labels[i])].push_back(i);
    default_pool().parallel_for(
        nlist_, 1,
        [&](size_t begin, size_t end) {
          std::vector<double> a(d * d);
          std::vector<float> rs, ys;
          for (size_t l = begin; l < end; ++l) {
            if (count[l] < d) continue;
            rs.resize(count[l] * d);
            ys.resize(count[l] * d);
            for (size_t m = 0; m < count[l]; ++m) {
              std::memcpy(&rs[m * d], &residuals[members[l][m] * d], d * sizeof(float));
              std::memcpy(&ys[m * d], &decoded[members[l][m] * d], d * sizeof(float));
            }
            matmul_at_b(count[l], d, d, rs.data(), ys.data(), a.data(), 1);
            procrustes_rotation(d, a.data(), &transforms_[l * d * d]);
          }
        },
        effective_threads(ctx.threads));
  }
  trained_ = true;
}

void IVFIndex::add_impl(size_t n, const float* x, int threads) {
  const size_t d = dim(), cs = fine_->code_size(), first = size();
  QV_CHECK(first + n < (size_t(1) << 32), InvalidArgument, "IVF indexes hold at most 2^32 − 1 vectors");
  materialize_lists();
  std::vector<int32_t> labels(n);
  assign_nearest(n, d, x, nlist_, centroids_.data(), labels.data(), nullptr, threads);
  std::vector<float> residuals(n * d);
  default_pool().parallel_for(
      n, 256,
      [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) list_residual(size_t(labels[i]), x + i * d, &residuals[i * d], true);
      },
      effective_threads(threads));
  std::vector<uint8_t> codes(n * cs);
  fine_->encode(n, residuals.data(), codes.data(), threads);
  row_list_.reserve(first + n);
  for (size_t i = 0; i < n; ++i) {
    const size_t l = size_t(labels[i]);
    put_list_code(l, list_rows_[l].size(), &codes[i * cs]);
    list_rows_[l].push_back(uint32_t(first + i));
    row_list_.push_back(uint32_t(l));
  }
}

void IVFIndex::compact_impl(const std::vector<bool>& keep) {
  materialize_lists();
  // New row number of every kept row: rows keep their relative order.
  std::vector<uint32_t> renumber(keep.size());
  uint32_t next = 0;
  for (size_t row = 0; row < keep.size(); ++row) renumber[row] = keep[row] ? next++ : 0;
  const size_t cs = fine_->code_size();
  std::vector<uint8_t> code(cs), old;
  for (size_t l = 0; l < nlist_; ++l) {
    size_t out = 0;
    if (fast_scan_) {
      // Re-pack the kept rows into fresh blocks (a row's nibbles move between blocks).
      old.swap(list_codes_[l]);
      list_codes_[l].clear();
      const ListView ov{old.data(), nullptr, list_rows_[l].size()};
      for (size_t slot = 0; slot < ov.count; ++slot) {
        const uint32_t row = list_rows_[l][slot];
        if (!keep[row]) continue;
        list_code(ov, slot, code.data());
        put_list_code(l, out, code.data());
        list_rows_[l][out++] = renumber[row];
      }
      list_rows_[l].resize(out);
      list_codes_[l].resize(list_code_bytes(out));
      continue;
    }
    for (size_t slot = 0; slot < list_rows_[l].size(); ++slot) {
      const uint32_t row = list_rows_[l][slot];
      if (!keep[row]) continue;
      if (out != slot) std::memmove(&list_codes_[l][out * cs], &list_codes_[l][slot * cs], cs);
      list_rows_[l][out++] = renumber[row];
    }
    list_rows_[l].resize(out);
    list_codes_[l].resize(out * cs);
  }
  size_t out = 0;
  for (size_t row = 0; row < keep.size(); ++row)
    if (keep[row]) row_list_[out++] = row_list_[row];
  row_list_.resize(out);
}

void IVFIndex::merge_impl(const Index& other) {
  const IVFIndex& o = static_cast<const IVFIndex&>(other);
  // Bitwise comparison: shards encoded against one codebook file carry exactly its centroids.
  const auto same = [](const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
  };
  QV_CHECK(same(centroids_, o.centroids_) && same(transforms_, o.transforms_) && same_codec_state(*fine_, *o.fine_),
           InvalidArgument, "merge: the indexes hold different codebooks (trained separately?)");
  const size_t first = size(), n = o.size(), cs = fine_->code_size();
  QV_CHECK(first + n < (size_t(1) << 32), InvalidArgument, "IVF indexes hold at most 2^32 − 1 vectors");
  materialize_lists();
  row_list_.reserve(first + n);
  // other's rows keep their order after ours, so each merged list stays sorted by row, as if one add() had
  // seen every vector.
  std::vector<uint8_t> code(cs);
  for (size_t l = 0; l < nlist_; ++l) {
    const ListView v = o.list_view(l);
    if (fast_scan_) {
      // This list's last block may be partly filled: re-pack other's rows after ours.
      const size_t have = list_rows_[l].size();
      list_codes_[l].reserve(list_code_bytes(have + v.count));
      for (size_t slot = 0; slot < v.count; ++slot) {
        o.list_code(v, slot, code.data());
        put_list_code(l, have + slot, code.data());
      }
    } else {
      list_codes_[l].insert(list_codes_[l].end(), v.codes, v.codes + v.count * cs);
    }
    list_rows_[l].reserve(list_rows_[l].size() + v.count);
    for (size_t s = 0; s < v.count; ++s) list_rows_[l].push_back(uint32_t(first + v.rows[s]));
  }
  row_list_.insert(row_list_.end(), o.row_list_.begin(), o.row_list_.end());
}

void IVFIndex::reconstruct_row(size_t row, float* out) const {
  const size_t d = dim(), l = row_list_[row];
  const ListView v = list_view(l);
  size_t slot = 0;
  while (slot < v.count && v.rows[slot] != row) ++slot;
  QV_CHECK(slot < v.count, Internal, "row " << row << " is missing from list " << l);
  std::vector<float> y(d);
  std::vector<uint8_t> code(fine_->code_size());
  list_code(v, slot, code.data());
  fine_->decode(1, code.data(), y.data(), 1);
  if (local_transforms_) {
    std::vector<float> r(d);
    matvec_transposed(d, d, &transforms_[l * d * d], y.data(), r.data());  // R_lᵀ y: back to the residual
    y = r;
  }
  for (size_t j = 0; j < d; ++j) out[j] = centroids_[l * d + j] + y[j];
}

std::unique_ptr<RowScorer> IVFIndex::make_scorer(const float*) const {
  // Every IVF search goes through search_custom; scoring arbitrary rows would need every list's table.
  QV_THROW(Internal, "IVF indexes are searched through their lists only");
}

namespace {

// Scans one fast-scan list into the per-group top-k: uint8 sums prune blocks and rows that cannot reach the
// loosest group's threshold (with the table's error bound), survivors are scored exactly from the float table.
// sums: 32 × 32 uint16, block_min: 32 (scratch).
void scan_fast_list(const IVFIndex::ListView& v, const FastScanTable& table, float offset, const RowFilter& filter,
                    const int32_t* row_group, std::vector<TopK>& best, uint16_t* sums, uint16_t* block_min) {
  const Kernels& kern = kernels();
  const size_t pairs = table.npairs(), block_bytes = pairs * kFastScanBlock;
  const size_t nblocks = (v.count + kFastScanBlock - 1) / kFastScanBlock;
  const auto limit_now = [&] {
    float loosest = best[0].threshold();
    for (size_t g = 1; g < best.size(); ++g) loosest = std::max(loosest, best[g].threshold());
    return table.bound(double(loosest) - double(offset));
  };
  uint32_t limit = limit_now();
  for (size_t first = 0; first < nblocks; first += kFastScanBlock) {
    const size_t count = std::min(kFastScanBlock, nblocks - first);
    kern.fastscan_u4(v.codes + first * block_bytes, count, pairs, table.qlut(), sums, block_min);
    for (size_t b = 0; b < count; ++b) {
      if (block_min[b] > limit) continue;
      const size_t slot0 = (first + b) * kFastScanBlock, slot_end = std::min(v.count, slot0 + kFastScanBlock);
      uint64_t slots = rows_within(sums + b * kFastScanBlock, slot_end - slot0, limit);
      // Several candidates: score the whole block at once (in-register look-ups), else slot by slot.
      float block_scores[kFastScanBlock];
      const bool whole_block = at_least_three_bits(slots);
      if (whole_block) table.exact_block(v.codes, first + b, block_scores);
      for (; slots; slots &= slots - 1) {
        const size_t slot = slot0 + size_t(__builtin_ctzll(slots));
        if (sums[slot - first * kFastScanBlock] > limit) continue;
        const uint32_t row = v.rows[slot];
        const int32_t g = row_group ? row_group[row] : 0;
        if (g < 0 || !filter.allows(row)) continue;
        const float s = (whole_block ? block_scores[slot - slot0] : table.exact(v.codes, slot)) + offset;
        TopK& top = best[size_t(g)];
        if (s <= top.threshold()) {
          top.push(s, int64_t(row));
          limit = limit_now();
        }
      }
    }
  }
}

}  // namespace

void IVFIndex::search_custom(size_t nq, const float* queries, size_t shortlist, const SearchParams& params,
                             const RowFilter& filter, const int32_t* row_group, size_t groups,
                             std::vector<std::vector<Candidate>>& found) const {
  const size_t d = dim(), nprobe = std::min(params.nprobe, nlist_);
  const Metric metric = internal_metric();
  const Kernels& kern = kernels();
  const bool precomputed = precomputed_tables();
  // The PQ fine codec when the precomputed tables or the fast-scan layout need its tables (else null).
  const auto* pq = precomputed || fast_scan_ ? static_cast<const ProductQuantizer*>(fine_.get()) : nullptr;
  const size_t pq_m = pq ? pq->m() : 0, pq_ksub = pq ? pq->ksub() : 0, table_size = pq_m * pq_ksub;
  // Queries go to threads in groups whose coarse scores come from one batched product: the group shares every
  // load of the centroid table (nlist × d floats, often larger than L2) instead of streaming it once per query.
  // Batched and single scores are bit-identical (dot_transposed_batch), so grouping never changes the probes.
  const size_t threads = effective_threads(params.threads);
  const size_t group = std::min<size_t>(16, std::max<size_t>(1, nq / (4 * threads)));
  default_pool().parallel_for(
      nq, group,
      [&](size_t begin, size_t end) {
        std::vector<float> coarse_group((end - begin) * nlist_), residual(d), rotated_query(d), scores(kScanBlock);
        coarse_->scores_batch(queries + begin * d, end - begin, d, coarse_group.data(), nlist_);
        std::vector<std::pair<float, uint32_t>> probes(nlist_);
        std::vector<float> query_table(table_size), list_table(table_size);
        std::unique_ptr<FastScanTable> fs_table;
        if (fast_scan_) fs_table = std::make_unique<FastScanTable>(pq_m);
        uint16_t fs_sums[kFastScanBlock * kFastScanBlock], fs_block_min[kFastScanBlock];
        for (size_t q = begin; q < end; ++q) {
          const float* query = queries + q * d;
          // Nearest lists by ‖q − c‖² (also for inner product: the lists whose centroids are nearest hold the
          // vectors the residual codes describe best; faiss probes the same way for IVF with IP).
          const float* coarse_scores = &coarse_group[(q - begin) * nlist_];
          // NaN (a product of huge finite values) sorts last, so that (score, list) pairs are totally ordered:
          // selecting then sorting the nprobe best then gives partial_sort's probes in its order, with a linear
          // selection instead of a heap over every list (and no comparator inconsistency for the sorts to trip on).
          constexpr float kLast = std::numeric_limits<float>::infinity();
          for (size_t l = 0; l < nlist_; ++l)
            probes[l] = {std::isnan(coarse_scores[l]) ? kLast : coarse_scores[l], uint32_t(l)};
          if (nprobe < nlist_) std::nth_element(probes.begin(), probes.begin() + long(nprobe), probes.end());
          std::sort(probes.begin(), probes.begin() + long(nprobe));
          // A probe's precomputed terms (nlist tables of M × 16 floats, which rarely stay in L2) load while the
          // work before it runs: the first probe's during the query's own table, the next one's during a scan.
          const auto prefetch_terms = [&](size_t list) {
            if (!precomputed || !fast_scan_) return;
            const char* terms = reinterpret_cast<const char*>(&precomputed_[list * table_size]);
            for (size_t at = 0; at < table_size * sizeof(float); at += 64) __builtin_prefetch(terms + at);
          };
          if (nprobe > 0) prefetch_terms(probes[0].second);
          std::vector<TopK> best(groups, TopK(shortlist));
          std::unique_ptr<DistanceTable> ip_table;
          if (metric == Metric::InnerProduct && !local_transforms_ && !fast_scan_)
            ip_table = fine_->distance_table(query, metric);
          if (fast_scan_ && metric == Metric::InnerProduct && !local_transforms_) {
            // Not by residual: one quantised table for every list (the lists differ by −⟨q, c_l⟩ only).
            pq->compute_lut(query, metric, fs_table->lut());
            fs_table->set(fs_table->lut());
          }
          if (precomputed) {
            // −2⟨q_m, y_mj⟩, shared by every probed list.
            for (size_t m = 0; m < pq_m; ++m) {
              const size_t at = pq->sub_offset(m);
              kern.dot_transposed(query + at, &neg2_transposed_[at * pq_ksub], pq->sub_dim(m), pq_ksub, pq_ksub,
                                  &query_table[m * pq_ksub]);
            }
          }
          for (size_t p = 0; p < nprobe; ++p) {
            const size_t l = probes[p].second;
            const ListView v = list_view(l);
            if (v.count == 0) continue;
            std::unique_ptr<DistanceTable> table;
            float offset = 0;
            const DistanceTable* t = nullptr;
            if (fast_scan_) {
              if (precomputed) {
                if (p + 1 < nprobe) prefetch_terms(probes[p + 1].second);
                offset = kern.l2sqr(query, &centroids_[l * d], d);
                fs_table->set_sum(&precomputed_[l * table_size], query_table.data());
              } else if (metric == Metric::L2) {
                list_residual(l, query, residual.data());
                pq->compute_lut(residual.data(), metric, fs_table->lut());
                fs_table->set(fs_table->lut());
              } else {
                offset = -kern.dot(query, &centroids_[l * d], d);
                if (local_transforms_) {
                  matvec(d, d, &transforms_[l * d * d], query, rotated_query.data());
                  pq->compute_lut(rotated_query.data(), metric, fs_table->lut());
                  fs_table->set(fs_table->lut());
                }
              }
              scan_fast_list(v, *fs_table, offset, filter, row_group, best, fs_sums, fs_block_min);
              continue;
            }
            if (precomputed) {
              // ‖q − c_l‖² + Σ_m (‖y‖² + 2⟨c_l, y⟩ − 2⟨q, y⟩)_m
              offset = kern.l2sqr(query, &centroids_[l * d], d);
              const float* term = &precomputed_[l * table_size];
              for (size_t i = 0; i < table_size; ++i) list_table[i] = term[i] + query_table[i];
            } else if (metric == Metric::L2) {
              list_residual(l, query, residual.data());
              table = fine_->distance_table(residual.data(), Metric::L2);
              t = table.get();
            } else {
              // −⟨q, c_l + R_lᵀ ŷ⟩ = −⟨q, c_l⟩ − ⟨R_l q, ŷ⟩
              offset = -kernels().dot(query, &centroids_[l * d], d);
              if (local_transforms_) {
                matvec(d, d, &transforms_[l * d * d], query, rotated_query.data());
                table = fine_->distance_table(rotated_query.data(), metric);
                t = table.get();
              } else {
                t = ip_table.get();
              }
            }
            const size_t cs = fine_->code_size();
            for (size_t block = 0; block < v.count; block += kScanBlock) {
              const size_t count = std::min(kScanBlock, v.count - block);
              if (precomputed)
                pq->scan_lut(list_table.data(), v.codes + block * cs, count, scores.data());
              else
                t->scan(v.codes + block * cs, count, scores.data());
              for (size_t i = 0; i < count; ++i) {
                const float s = scores[i] + offset;
                const uint32_t row = v.rows[block + i];
                const int32_t g = row_group ? row_group[row] : 0;
                if (g < 0) continue;
                TopK& top = best[size_t(g)];
                if (s <= top.threshold() && filter.allows(row)) top.push(s, int64_t(row));
              }
            }
          }
          for (size_t g = 0; g < groups; ++g) found[q * groups + g] = best[g].take_sorted();
        }
      },
      threads);
}

// Sections: 'IVFC' u64 nlist, u8 has_transforms, u32 transform iterations, array<float> centroids,
// array<float> transforms (empty without TRQ); 'CODC' the fine codec; 'IVFL' aligned: u64 nlist + 1 offsets,
// then (aligned) all rows (uint32, list by list), then (aligned) all codes; 'VECS' when refining.
void IVFIndex::save_impl(ContainerWriter& out) const {
  ByteWriter meta;
  meta.u64(nlist_);
  meta.u8(local_transforms_ ? 1 : 0);
  meta.u32(uint32_t(transform_iterations_));
  meta.array(centroids_);
  meta.array(transforms_);
  out.section(fourcc("IVFC"), meta);
  ByteWriter codec;
  write_codec_section(*fine_, codec);
  out.section(fourcc("CODC"), codec);
  ByteWriter lists;
  const size_t base = out.next_payload_offset();
  std::vector<uint64_t> offsets(nlist_ + 1, 0);
  for (size_t l = 0; l < nlist_; ++l) offsets[l + 1] = offsets[l] + list_view(l).count;
  lists.align(base, 8);
  lists.array(offsets);
  lists.align(base, 8);
  lists.u64(offsets[nlist_]);
  for (size_t l = 0; l < nlist_; ++l) {
    const ListView v = list_view(l);
    lists.raw(v.rows, v.count * sizeof(uint32_t));
  }
  lists.align(base, 8);
  size_t code_bytes = 0;
  for (size_t l = 0; l < nlist_; ++l) code_bytes += list_code_bytes(list_view(l).count);
  lists.u64(code_bytes);
  for (size_t l = 0; l < nlist_; ++l) {
    const ListView v = list_view(l);
    lists.raw(v.codes, list_code_bytes(v.count));
  }
  out.section(fourcc("IVFL"), lists);
}

void IVFIndex::load_impl(const std::vector<Section>& sections, const std::shared_ptr<ByteSource>& source,
                         bool borrow) {
  const size_t d = dim(), rows = size();
  const Section& m = require_section(sections, fourcc("IVFC"), "IVF centroids");
  ByteReader meta(m.payload, m.size, "section IVFC");
  QV_CHECK(meta.u64() == nlist_, Corrupt, "IVF list count does not match the spec " << spec());
  QV_CHECK(meta.u8() == (local_transforms_ ? 1 : 0), Corrupt, "IVF transform flag does not match the spec");
  QV_CHECK(meta.u32() == uint32_t(transform_iterations_), Corrupt, "TRQ iterations do not match the spec");
  centroids_ = meta.array<float>(nlist_ * d, "IVF centroids");
  QV_CHECK(centroids_.size() == nlist_ * d, Corrupt, "IVF centroids: expected " << nlist_ * d << " floats");
  transforms_ = meta.array<float>(local_transforms_ ? nlist_ * d * d : 0, "IVF transforms");
  QV_CHECK(transforms_.size() == (local_transforms_ ? nlist_ * d * d : 0), Corrupt, "IVF transforms: wrong size");
  meta.expect_end();
  for (float v : centroids_) QV_CHECK(std::isfinite(v), Corrupt, "IVF centroids hold a non-finite value");
  for (float v : transforms_) QV_CHECK(std::isfinite(v), Corrupt, "IVF transforms hold a non-finite value");

  const Section& c = require_section(sections, fourcc("CODC"), "fine codec");
  ByteReader cr(c.payload, c.size, "section CODC");
  std::unique_ptr<Quantizer> fine = read_codec_section(cr);
  cr.expect_end();
  QV_CHECK(fine->spec() == fine_->spec() && fine->dim() == d, Corrupt,
           "fine codec " << fine->spec() << " does not match the index spec " << spec());
  fine_ = std::move(fine);

  const Section& ls = require_section(sections, fourcc("IVFL"), "IVF lists");
  ByteReader r(ls.payload, ls.size, "section IVFL");
  r.skip_alignment();
  std::vector<uint64_t> offsets = r.array<uint64_t>(nlist_ + 1, "IVF offsets");
  QV_CHECK(offsets.size() == nlist_ + 1 && offsets[0] == 0 && offsets[nlist_] == rows, Corrupt,
           "IVF offsets do not cover the " << rows << " rows");
  for (size_t l = 0; l < nlist_; ++l) QV_CHECK(offsets[l] <= offsets[l + 1], Corrupt, "IVF offsets decrease");
  r.skip_alignment();
  const size_t nrows = r.count(sizeof(uint32_t), rows, "IVF rows");
  QV_CHECK(nrows == rows, Corrupt, "IVF rows: expected " << rows);
  const uint8_t* row_bytes = r.take(nrows * sizeof(uint32_t));
  // Byte offset of each list's codes (fast-scan lists are padded to whole blocks).
  std::vector<uint64_t> code_offsets(nlist_ + 1, 0);
  for (size_t l = 0; l < nlist_; ++l)
    code_offsets[l + 1] = code_offsets[l] + list_code_bytes(size_t(offsets[l + 1] - offsets[l]));
  r.skip_alignment();
  const size_t expected_codes = size_t(code_offsets[nlist_]);
  const size_t ncode = r.count(1, expected_codes, "IVF codes");
  QV_CHECK(ncode == expected_codes, Corrupt, "IVF codes: expected " << expected_codes << " bytes");
  const uint8_t* code_bytes = r.take(ncode);
  r.expect_end();
  if (fast_scan_) {
    const size_t m_count = static_cast<const ProductQuantizer&>(*fine_).m();
    for (size_t l = 0; l < nlist_; ++l)
      QV_CHECK(fast_scan_padding_is_zero(code_bytes + code_offsets[l], (m_count + 1) / 2, m_count,
                                         size_t(offsets[l + 1] - offsets[l])),
               Corrupt, "IVF list " << l << ": fast-scan padding or phantom sub-code is not zero");
  }

  // Every row appears in exactly one list.
  std::vector<uint32_t> row_rows(rows);
  if (rows) std::memcpy(row_rows.data(), row_bytes, rows * sizeof(uint32_t));
  row_list_.assign(rows, std::numeric_limits<uint32_t>::max());
  for (size_t l = 0; l < nlist_; ++l)
    for (uint64_t s = offsets[l]; s < offsets[l + 1]; ++s) {
      const uint32_t row = row_rows[s];
      QV_CHECK(row < rows && row_list_[row] == std::numeric_limits<uint32_t>::max(), Corrupt,
               "IVF list " << l << " names row " << row << " twice or out of range");
      row_list_[row] = uint32_t(l);
    }

  rebuild_coarse();
  trained_ = true;
  rebuild_precomputed();
  if (borrow && reinterpret_cast<uintptr_t>(row_bytes) % alignof(uint32_t) == 0) {
    borrowed_ = true;
    all_rows_ = reinterpret_cast<const uint32_t*>(row_bytes);
    all_codes_ = code_bytes;
    offsets_ = std::move(offsets);
    code_offsets_ = std::move(code_offsets);
    keepalive_ = source;
  } else {
    for (size_t l = 0; l < nlist_; ++l) {
      list_rows_[l].assign(row_rows.begin() + long(offsets[l]), row_rows.begin() + long(offsets[l + 1]));
      list_codes_[l].assign(code_bytes + code_offsets[l], code_bytes + code_offsets[l + 1]);
    }
  }
}

}  // namespace quiver
