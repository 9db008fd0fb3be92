#include "index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <typeinfo>
#include <unordered_set>

#include "error.h"
#include "simd.h"
#include "spec.h"
#include "thread_pool.h"

namespace quiver {

namespace {

// Rows scored per call: large enough to amortise the virtual call, small enough to stay in L1.
constexpr size_t kScanBlock = 1024;

// When one query would scan fewer rows than this, splitting it across threads costs more than it saves.
constexpr size_t kMinRowsPerThread = 16384;

// Limits for loading: far above any real index, low enough that a hostile header cannot make us allocate
// absurd amounts before the byte-count checks (which bound everything by the file size anyway).
constexpr size_t kMaxDim = 1 << 16;
constexpr size_t kMaxRows = size_t(1) << 40;

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
  const DeviceScope device_scope(ctx.device);
  if (metric_ == Metric::Cosine) {
    const std::vector<float> normalized = normalized_copy(n, dim_, x);
    train_impl(n, normalized.data(), ctx);
    refine_.train(n, normalized.data());
  } else {
    train_impl(n, x, ctx);
    refine_.train(n, x);
  }
}

void Index::add(size_t n, const float* x, const int64_t* ids, const int32_t* categories, bool upsert,
                int threads) {
  drop_gpu_copy();
  QV_CHECK(fully_trained(), State, "add: the index " << spec() << " is not trained yet");
  if (n == 0) return;
  std::vector<int64_t> new_ids(n);
  for (size_t i = 0; i < n; ++i) new_ids[i] = ids ? ids[i] : next_id_ + int64_t(i);
  if (ids) {
    std::unordered_set<int64_t> seen;
    seen.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      QV_CHECK(seen.insert(new_ids[i]).second, InvalidArgument,
               "ids: id " << new_ids[i] << " appears twice in the same call (at " << i << ")");
      QV_CHECK(upsert || !has(new_ids[i]), InvalidArgument,
               "ids: id " << new_ids[i] << " is already in the index; pass { upsert: true } to replace it");
    }
  }
  if (categories)
    for (size_t i = 0; i < n; ++i)
      QV_CHECK(categories[i] >= 0, InvalidArgument,
               "categories: expected integers >= 0, got " << categories[i] << " at " << i);
  if (upsert && ids) remove(n, ids);

  const size_t first = ids_.size();
  // Reserve the bookkeeping first so that a failed allocation leaves the index as it was.
  ids_.reserve(first + n);
  if (categories || has_categories()) categories_.reserve(first + n);
  id_rows_.reserve(first + n);
  refine_.reserve_more(n);
  if (metric_ == Metric::Cosine) {
    const std::vector<float> normalized = normalized_copy(n, dim_, x);
    add_impl(n, normalized.data(), threads);
    refine_.append(n, normalized.data());
  } else {
    add_impl(n, x, threads);
    refine_.append(n, x);
  }
  if (categories && !has_categories()) categories_.assign(first, kNoCategory);
  for (size_t i = 0; i < n; ++i) {
    ids_.push_back(new_ids[i]);
    id_rows_[new_ids[i]] = first + i;
    if (has_categories() || categories) categories_.push_back(categories ? categories[i] : kNoCategory);
    next_id_ = std::max(next_id_, new_ids[i] == std::numeric_limits<int64_t>::max() ? new_ids[i] : new_ids[i] + 1);
  }
}

size_t Index::remove(size_t n, const int64_t* ids) {
  drop_gpu_copy();
  std::vector<bool> keep(size(), true);
  size_t removed = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto it = id_rows_.find(ids[i]);
    if (it == id_rows_.end() || !keep[it->second]) continue;
    keep[it->second] = false;
    ++removed;
  }
  if (removed == 0) return 0;
  compact_impl(keep);
  refine_.compact(keep);
  size_t out = 0;
  id_rows_.clear();
  for (size_t row = 0; row < keep.size(); ++row) {
    if (!keep[row]) continue;
    ids_[out] = ids_[row];
    if (has_categories()) categories_[out] = categories_[row];
    id_rows_[ids_[out]] = out;
    ++out;
  }
  ids_.resize(out);
  if (has_categories()) categories_.resize(out);
  return removed;
}

bool Index::reconstruct(int64_t id, float* out) const {
  const auto it = id_rows_.find(id);
  if (it == id_rows_.end()) return false;
  reconstruct_row(it->second, out);
  return true;
}

bool Index::reconstruct_refined(int64_t id, float* out) const {
  const auto it = id_rows_.find(id);
  if (it == id_rows_.end() || !refine_.enabled()) return false;
  refine_.decode(it->second, out);
  return true;
}

RowFilter Index::build_filter(const SearchParams& params) const {
  RowFilter filter;
  const size_t words = (size() + 63) / 64;
  if (params.allow_ids) {
    filter.active = true;
    filter.bits.assign(words, 0);
    for (size_t i = 0; i < params.allow_count; ++i) {
      const auto it = id_rows_.find(params.allow_ids[i]);
      if (it != id_rows_.end()) filter.bits[it->second >> 6] |= uint64_t(1) << (it->second & 63);
    }
  }
  if (params.categories) {
    std::unordered_set<int32_t> wanted(params.categories, params.categories + params.category_count);
    std::vector<uint64_t> bits(words, 0);
    if (has_categories())
      for (size_t row = 0; row < size(); ++row)
        if (wanted.count(categories_[row])) bits[row >> 6] |= uint64_t(1) << (row & 63);
    if (filter.active)
      for (size_t w = 0; w < words; ++w) filter.bits[w] &= bits[w];
    else
      filter.bits = std::move(bits);
    filter.active = true;
  }
  return filter;
}

void Index::check_search(size_t k, const SearchParams& params) const {
  QV_CHECK(fully_trained(), State, "search: the index " << spec() << " is not trained yet");
  QV_CHECK(k >= 1, InvalidArgument, "k must be >= 1, got " << k);
  QV_CHECK(params.refine >= 1, InvalidArgument, "refine must be >= 1, got " << params.refine);
  QV_CHECK(params.refine == 1 || refine_.enabled() || exact_scores(), InvalidArgument,
           "refine=" << params.refine << " needs stored vectors: build the index with spec '" << spec()
                     << ",Refine'");
}

const float* Index::prepare_queries(size_t nq, const float* queries, std::vector<float>& scratch) const {
  if (metric_ != Metric::Cosine) return queries;
  scratch = normalized_copy(nq, dim_, queries);
  return scratch.data();
}

void Index::search(size_t nq, const float* queries, size_t k, const SearchParams& params, int64_t* labels,
                   float* distances) const {
  check_search(k, params);
  std::vector<float> scratch;
  queries = prepare_queries(nq, queries, scratch);
  const RowFilter filter = build_filter(params);
  const size_t n = size();
  // Candidates kept before refine: k·refine, saturating instead of overflowing, and never more than the rows
  // that exist (so a huge k costs no memory here).
  size_t shortlist = k;
  if (params.refine > 1) shortlist = k > size_t(-1) / params.refine ? size_t(-1) : k * params.refine;
  shortlist = std::max<size_t>(std::min(shortlist, n), 1);

  // Scores of rows [first_row, first_row + count) into a top-k, honouring the filter.
  const auto push_scores = [&](const float* scores, size_t first_row, size_t count, TopK& out) {
    for (size_t i = 0; i < count; ++i)
      if (scores[i] <= out.threshold() && filter.allows(first_row + i)) out.push(scores[i], int64_t(first_row + i));
  };
  auto scan = [&](const RowScorer& scorer, size_t begin, size_t end, TopK& out) {
    if (scorer.scan(begin, end, out, filter)) return;
    float scores[kScanBlock];
    for (size_t block = begin; block < end; block += kScanBlock) {
      const size_t count = std::min(kScanBlock, end - block);
      scorer.score(block, count, scores);
      push_scores(scores, block, count, out);
    }
  };

  const size_t threads = effective_threads(params.threads);
  // Candidate lists from the GPU or an index's own search (IVF): refine and id mapping per query, in parallel.
  auto finish_all = [&](std::vector<std::vector<Candidate>>& found) {
    default_pool().parallel_for(
        nq, 16,
        [&](size_t begin, size_t end) {
          for (size_t q = begin; q < end; ++q)
            finish_query(queries + q * dim_, std::move(found[q]), k, params, labels + q * k, distances + q * k);
        },
        threads);
  };
  if (gpu_usable(params.device)) {
    std::vector<std::vector<Candidate>> found;
    if (gpu_candidates(nq, queries, shortlist, params, filter, found)) return finish_all(found);
  }
  if (custom_search()) {
    std::vector<std::vector<Candidate>> found(nq);
    search_custom(nq, queries, shortlist, params, filter, nullptr, 1, found);
    return finish_all(found);
  }
  // Many queries: one thread per query. Few queries over many rows: split each query's rows instead.
  if (nq < threads && n >= 2 * kMinRowsPerThread) {
    const size_t grain = std::max(kMinRowsPerThread, (n + threads - 1) / threads);
    for (size_t q = 0; q < nq; ++q) {
      const float* query = queries + q * dim_;
      const std::unique_ptr<RowScorer> scorer = make_scorer(query);
      std::vector<TopK> partial((n + grain - 1) / grain, TopK(shortlist));
      default_pool().parallel_for(
          n, grain, [&](size_t begin, size_t end) { scan(*scorer, begin, end, partial[begin / grain]); }, threads);
      TopK best(shortlist);
      for (const TopK& p : partial) best.merge(p);
      finish_query(query, best.take_sorted(), k, params, labels + q * k, distances + q * k);
    }
    return;
  }
  // Indexes that score query groups (Flat) read each stored row once per group of queries instead of once per
  // query. Groups of up to 64 (Fashion-MNIST Flat, 60 000 × 784, 188 MB, one thread: 119 q/s query by query,
  // 230–270 in groups of 8, 330–370 of 32, 360–400 of 64), but at least four per thread so that a slow thread
  // (a shared machine) does not hold up the call: with 100 queries on two threads, two groups of 50 ran at 0.7×
  // the query-by-query path. A block of kGroupRows rows keeps a group's scores (group × kGroupRows floats) in L2.
  constexpr size_t kMaxGroup = 64, kGroupRows = 256;
  if (nq >= 2 && scores_query_groups()) {
    const size_t group = std::clamp<size_t>((nq + 4 * threads - 1) / (4 * threads), kMaxQueryGroup, kMaxGroup);
    default_pool().parallel_for(
        nq, group,
        [&](size_t begin, size_t end) {
          const size_t g = end - begin;
          std::vector<TopK> best(g, TopK(shortlist));
          std::vector<float> scores(g * kGroupRows);
          for (size_t block = 0; block < n; block += kGroupRows) {
            const size_t count = std::min(kGroupRows, n - block);
            score_queries(queries + begin * dim_, g, block, count, scores.data());
            for (size_t q = 0; q < g; ++q) push_scores(&scores[q * count], block, count, best[q]);
          }
          for (size_t q = 0; q < g; ++q)
            finish_query(queries + (begin + q) * dim_, best[q].take_sorted(), k, params, labels + (begin + q) * k,
                         distances + (begin + q) * k);
        },
        threads);
    return;
  }
  default_pool().parallel_for(
      nq, 1,
      [&](size_t begin, size_t end) {
        for (size_t q = begin; q < end; ++q) {
          const float* query = queries + q * dim_;
          TopK best(shortlist);
          scan(*make_scorer(query), 0, n, best);
          finish_query(query, best.take_sorted(), k, params, labels + q * k, distances + q * k);
        }
      },
      threads);
}

void Index::finish_query(const float* query, std::vector<Candidate> found, size_t k, const SearchParams& params,
                         int64_t* labels, float* distances) const {
  const Metric metric = internal_metric();
  if (params.refine > 1 && refine_.enabled()) {
    const RefineStore::Query prepared = refine_.prepare(query, metric);
    TopK exact(std::max<size_t>(std::min(k, found.size()), 1));
    // Rows come in two waves. The first asks for every candidate row at once, into L2 (up to kL2Window bytes
    // ahead of the row being scored), so that their memory latencies overlap instead of adding up: the rows
    // are at random places in a store usually far larger than the caches. The second pulls each row into L1
    // kL1Ahead candidates before it is scored. With 100 int8 rows of 784 bytes (Fashion-MNIST, k = 10,
    // refine = 10) this halved the time spent re-scoring, against the L1 wave alone.
    constexpr size_t kL1Ahead = 4, kL2Window = size_t(256) << 10;
    const size_t l2_ahead = std::max(kL1Ahead, kL2Window / std::max<size_t>(refine_.row_bytes(), 1));
    for (size_t i = 0; i < std::min(l2_ahead, found.size()); ++i)
      refine_.prefetch(size_t(found[i].id), RefineStore::Level::L2);
    for (size_t i = 0; i < std::min(kL1Ahead, found.size()); ++i) refine_.prefetch(size_t(found[i].id));
    for (size_t i = 0; i < found.size(); ++i) {
      if (i + l2_ahead < found.size()) refine_.prefetch(size_t(found[i + l2_ahead].id), RefineStore::Level::L2);
      if (i + kL1Ahead < found.size()) refine_.prefetch(size_t(found[i + kL1Ahead].id));
      exact.push(refine_.distance(prepared, size_t(found[i].id)), found[i].id);
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

void Index::search_per_category(size_t nq, const float* queries, size_t k, const SearchParams& params,
                                int64_t* labels, float* distances) const {
  check_search(k, params);
  QV_CHECK(params.categories != nullptr && params.category_count > 0, InvalidArgument,
           "perCategory needs a non-empty list of categories");
  std::vector<float> scratch;
  queries = prepare_queries(nq, queries, scratch);
  const RowFilter filter = build_filter(params);
  const size_t ncat = params.category_count;
  std::unordered_map<int32_t, size_t> slot;
  for (size_t c = 0; c < ncat; ++c) slot.emplace(params.categories[c], c);  // duplicates keep the first slot
  const size_t n = size();
  size_t shortlist = k;
  if (params.refine > 1) shortlist = k > size_t(-1) / params.refine ? size_t(-1) : k * params.refine;
  shortlist = std::max<size_t>(std::min(shortlist, n), 1);
  if (custom_search()) {
    std::vector<int32_t> row_group(n, -1);
    if (has_categories())
      for (size_t row = 0; row < n; ++row) {
        const auto it = slot.find(categories_[row]);
        if (it != slot.end()) row_group[row] = int32_t(it->second);
      }
    std::vector<std::vector<Candidate>> found(nq * ncat);
    search_custom(nq, queries, shortlist, params, filter, row_group.data(), ncat, found);
    default_pool().parallel_for(
        nq * ncat, 16,
        [&](size_t begin, size_t end) {
          for (size_t i = begin; i < end; ++i)
            finish_query(queries + (i / ncat) * dim_, std::move(found[i]), k, params, labels + i * k,
                         distances + i * k);
        },
        effective_threads(params.threads));
    return;
  }
  default_pool().parallel_for(
      nq, 1,
      [&](size_t begin, size_t end) {
        float scores[kScanBlock];
        for (size_t q = begin; q < end; ++q) {
          const float* query = queries + q * dim_;
          const std::unique_ptr<RowScorer> scorer = make_scorer(query);
          std::vector<TopK> best(ncat, TopK(shortlist));
          for (size_t block = 0; block < n; block += kScanBlock) {
            const size_t count = std::min(kScanBlock, n - block);
            scorer->score(block, count, scores);
            for (size_t i = 0; i < count; ++i) {
              const size_t row = block + i;
              if (!filter.allows(row)) continue;
              TopK& top = best[slot.at(categories_[row])];
              if (scores[i] <= top.threshold()) top.push(scores[i], int64_t(row));
            }
          }
          for (size_t c = 0; c < ncat; ++c) {
            const size_t at = (q * ncat + c) * k;
            finish_query(query, best[c].take_sorted(), k, params, labels + at, distances + at);
          }
        }
      },
      effective_threads(params.threads));
}

// ------------------------------------------------------------------------------------------------- merging

void Index::merge_impl(const Index&) {
  QV_THROW(Unsupported, "merge: indexes of spec " << spec() << " cannot be merged");
}

void Index::merge_from(const Index& other) {
  drop_gpu_copy();
  QV_CHECK(&other != this, InvalidArgument, "merge: an index cannot be merged into itself");
  QV_CHECK(typeid(*this) == typeid(other) && spec() == other.spec() && dim_ == other.dim_ &&
               metric_ == other.metric_,
           InvalidArgument,
           "merge: the indexes differ (" << spec() << ", dim " << dim_ << ", " << metric_name(metric_) << " vs "
                                         << other.spec() << ", dim " << other.dim_ << ", "
                                         << metric_name(other.metric_) << ")");
  QV_CHECK(fully_trained() && other.fully_trained(), State, "merge: both indexes must be trained");
  refine_.check_mergeable(other.refine_);
  for (const int64_t id : other.ids_)
    QV_CHECK(!has(id), InvalidArgument, "merge: id " << id << " is in both indexes");
  const size_t first = size(), n = other.size();
  const bool categories = has_categories() || other.has_categories();
  // Reserve the bookkeeping first so that a failed allocation leaves this index as it was.
  ids_.reserve(first + n);
  id_rows_.reserve(first + n);
  if (categories) categories_.reserve(first + n);
  refine_.reserve_more(n);
  merge_impl(other);
  refine_.append_from(other.refine_);
  if (categories && !has_categories()) categories_.assign(first, kNoCategory);
  for (size_t row = 0; row < n; ++row) {
    ids_.push_back(other.ids_[row]);
    id_rows_[other.ids_[row]] = first + row;
    if (categories) categories_.push_back(other.has_categories() ? other.categories_[row] : kNoCategory);
  }
  next_id_ = std::max(next_id_, other.next_id_);
}

// -------------------------------------------------------------------------------------------- persistence
//
// Index file sections (after the container header, see io.h):
//   'META': str spec, u64 dim, u32 metric, u64 rows, u8 has_categories, i64 next_id
//   'IDS ': aligned, rows × i64
//   'CATS': aligned, rows × i32 (only when has_categories)
//   then the subclass's sections ('VECS', 'CODC', 'CODE').

std::vector<uint8_t> Index::serialize() const {
  ContainerWriter out(fourcc("QVRI"));
  ByteWriter meta;
  meta.str(spec());
  meta.u64(dim_);
  meta.u32(uint32_t(metric_));
  meta.u64(size());
  meta.u8(has_categories() ? 1 : 0);
  meta.i64(next_id_);
  out.section(fourcc("META"), meta);
  ByteWriter ids;
  ids.align(out.next_payload_offset(), 8);
  ids.array(ids_);
  out.section(fourcc("IDS "), ids);
  if (has_categories()) {
    ByteWriter cats;
    cats.align(out.next_payload_offset(), 8);
    cats.array(categories_);
    out.section(fourcc("CATS"), cats);
  }
  save_impl(out);
  refine_.save(out);
  return out.finish();
}

std::unique_ptr<Index> Index::deserialize(std::shared_ptr<ByteSource> source, bool borrow) {
  const std::vector<Section> sections = read_container(source->data(), source->size(), fourcc("QVRI"));
  const Section& meta_section = require_section(sections, fourcc("META"), "index metadata");
  ByteReader meta(meta_section.payload, meta_section.size, "section META");
  const std::string spec = meta.str(1024);
  const uint64_t dim = meta.u64();
  const uint32_t metric = meta.u32();
  const uint64_t rows = meta.u64();
  const uint8_t has_categories = meta.u8();
  const int64_t next_id = meta.i64();
  meta.expect_end();
  QV_CHECK(dim >= 1 && dim <= kMaxDim, Corrupt, "dimension " << dim << " is out of range");
  QV_CHECK(metric <= uint32_t(Metric::Cosine), Corrupt, "unknown metric " << metric);
  QV_CHECK(rows <= kMaxRows, Corrupt, "row count " << rows << " is out of range");
  QV_CHECK(has_categories <= 1, Corrupt, "bad category flag");
  std::unique_ptr<Index> index;
  try {
    index = make_index(spec, size_t(dim), Metric(metric));
  } catch (const Error& e) {
    QV_THROW(Corrupt, "the file's spec cannot be built: " << e.what());
  }

  const Section& ids_section = require_section(sections, fourcc("IDS "), "ids");
  ByteReader ids(ids_section.payload, ids_section.size, "section IDS");
  ids.skip_alignment();
  index->ids_ = ids.array<int64_t>(size_t(rows), "ids");
  ids.expect_end();
  QV_CHECK(index->ids_.size() == rows, Corrupt, "ids: expected " << rows << ", found " << index->ids_.size());
  index->id_rows_.reserve(size_t(rows));
  int64_t max_id = -1;
  for (size_t row = 0; row < rows; ++row) {
    QV_CHECK(index->id_rows_.emplace(index->ids_[row], row).second, Corrupt,
             "id " << index->ids_[row] << " appears twice");
    max_id = std::max(max_id, index->ids_[row]);
  }
  QV_CHECK(rows == 0 || next_id > max_id || max_id == std::numeric_limits<int64_t>::max(), Corrupt,
           "next id " << next_id << " does not follow the largest id " << max_id);
  index->next_id_ = next_id;
  if (has_categories) {
    const Section& cats_section = require_section(sections, fourcc("CATS"), "categories");
    ByteReader cats(cats_section.payload, cats_section.size, "section CATS");
    cats.skip_alignment();
    index->categories_ = cats.array<int32_t>(size_t(rows), "categories");
    cats.expect_end();
    QV_CHECK(index->categories_.size() == rows, Corrupt, "categories: expected " << rows);
    for (int32_t c : index->categories_) QV_CHECK(c >= kNoCategory, Corrupt, "category " << c);
  }
  index->load_impl(sections, source, borrow);
  index->refine_.load(sections, size_t(rows), source, borrow);
  return index;
}

namespace {

template <typename T>
void write_bulk_impl(ContainerWriter& out, uint32_t tag, const T* data, size_t count) {
  ByteWriter w;
  w.align(out.next_payload_offset(), 8);
  w.u64(count);  // 8 bytes: the elements stay 8-byte aligned in the file
  w.raw(data, count * sizeof(T));
  out.section(tag, w);
}

template <typename T>
void read_bulk_impl(const std::vector<Section>& sections, uint32_t tag, const char* name, size_t expected,
                    const std::shared_ptr<ByteSource>& source, bool borrow, RowStore<T>& store) {
  const Section& s = require_section(sections, tag, name);
  ByteReader r(s.payload, s.size, name);
  r.skip_alignment();
  const size_t count = r.count(sizeof(T), expected, name);
  QV_CHECK(count == expected, Corrupt, name << ": expected " << expected << " elements, found " << count);
  const uint8_t* p = r.take(count * sizeof(T));
  r.expect_end();
  if (borrow && reinterpret_cast<uintptr_t>(p) % alignof(T) == 0) {
    store.borrow(reinterpret_cast<const T*>(p), count, source);
  } else {
    store.assign_bytes(p, count);
  }
}

}  // namespace

void write_bulk(ContainerWriter& out, uint32_t tag, const uint8_t* data, size_t count) {
  write_bulk_impl(out, tag, data, count);
}
void write_bulk(ContainerWriter& out, uint32_t tag, const float* data, size_t count) {
  write_bulk_impl(out, tag, data, count);
}
void write_bulk(ContainerWriter& out, uint32_t tag, const uint16_t* data, size_t count) {
  write_bulk_impl(out, tag, data, count);
}
void read_bulk(const std::vector<Section>& sections, uint32_t tag, const char* name, size_t expected,
               const std::shared_ptr<ByteSource>& source, bool borrow, RowStore<uint8_t>& store) {
  read_bulk_impl(sections, tag, name, expected, source, borrow, store);
}
void read_bulk(const std::vector<Section>& sections, uint32_t tag, const char* name, size_t expected,
               const std::shared_ptr<ByteSource>& source, bool borrow, RowStore<float>& store) {
  read_bulk_impl(sections, tag, name, expected, source, borrow, store);
}
void read_bulk(const std::vector<Section>& sections, uint32_t tag, const char* name, size_t expected,
               const std::shared_ptr<ByteSource>& source, bool borrow, RowStore<uint16_t>& store) {
  read_bulk_impl(sections, tag, name, expected, source, borrow, store);
}

// ---------------------------------------------------------------------------------------------- FlatIndex

void FlatIndex::add_impl(size_t n, const float* x, int) { vectors_.append(x, n * dim()); }

void FlatIndex::reconstruct_row(size_t row, float* out) const {
  std::memcpy(out, vectors_.data() + row * dim(), dim() * sizeof(float));
}

void FlatIndex::save_impl(ContainerWriter& out) const {
  write_bulk(out, fourcc("VECS"), vectors_.data(), vectors_.size());
}

void FlatIndex::load_impl(const std::vector<Section>& sections, const std::shared_ptr<ByteSource>& source,
                          bool borrow) {
  read_bulk(sections, fourcc("VECS"), "vectors", size() * dim(), source, borrow, vectors_);
}

void FlatIndex::merge_impl(const Index& other) {
  const FlatIndex& o = static_cast<const FlatIndex&>(other);
  vectors_.append(o.vectors_.data(), o.vectors_.size());
}

namespace {

class FlatScorer : public RowScorer {
 public:
  FlatScorer(const float* vectors, size_t d, const float* query, Metric metric)
      : vectors_(vectors), d_(d), query_(query), metric_(metric) {}

  void score(size_t begin, size_t count, float* out) const override {
    const Kernels& kern = kernels();
    const float* v = vectors_ + begin * d_;
    if (metric_ == Metric::L2) {
      for (size_t i = 0; i < count; ++i) out[i] = kern.l2sqr(query_, v + i * d_, d_);
    } else {
      for (size_t i = 0; i < count; ++i) out[i] = -kern.dot(query_, v + i * d_, d_);
    }
  }

 private:
  const float* vectors_;
  size_t d_;
  const float* query_;
  Metric metric_;
};

class CodeScorer : public RowScorer {
 public:
  CodeScorer(const uint8_t* codes, size_t code_size, std::unique_ptr<DistanceTable> table)
      : codes_(codes), code_size_(code_size), table_(std::move(table)) {}

  void score(size_t begin, size_t count, float* out) const override {
    table_->scan(codes_ + begin * code_size_, count, out);
  }

  bool scan(size_t begin, size_t end, TopK& out, const RowFilter& filter) const override {
    return table_->scan_top(codes_, begin, end, out, filter);
  }

 private:
  const uint8_t* codes_;
  size_t code_size_;
  std::unique_ptr<DistanceTable> table_;
};

}  // namespace

std::unique_ptr<RowScorer> FlatIndex::make_scorer(const float* query) const {
  return std::make_unique<FlatScorer>(vectors_.data(), dim(), query, internal_metric());
}

void FlatIndex::score_queries(const float* queries, size_t nq, size_t begin, size_t count, float* out) const {
  // Rows outer, queries inner: each row comes from memory once and serves every query of the group from L1,
  // kMaxQueryGroup queries per kernel call (which share the row's loads). The kernels give the bits of the
  // level's l2sqr / dot, which FlatScorer uses, so scores are identical to a query-by-query scan.
  const Kernels& kern = kernels();
  const size_t d = dim();
  const bool l2 = internal_metric() == Metric::L2;
  const auto group_kernel = l2 ? kern.l2sqr_queries : kern.dot_queries;
  const float* v = vectors_.data() + begin * d;
  float scores[kMaxQueryGroup];
  for (size_t i = 0; i < count; ++i) {
    for (size_t first = 0; first < nq; first += kMaxQueryGroup) {
      const size_t g = std::min(kMaxQueryGroup, nq - first);
      group_kernel(queries + first * d, g, d, v + i * d, d, scores);
      for (size_t q = 0; q < g; ++q) out[(first + q) * count + i] = l2 ? scores[q] : -scores[q];
    }
  }
}

// --------------------------------------------------------------------------------------------- CodecIndex

CodecIndex::CodecIndex(size_t dim, Metric metric, std::unique_ptr<Quantizer> codec, bool store_vectors)
    : Index(dim, metric), codec_(std::move(codec)) {
  QV_CHECK(codec_ && codec_->dim() == dim, Internal, "codec dimension does not match the index");
  if (store_vectors) set_refine_storage(RefineStorage::Float32);
}

std::string CodecIndex::spec() const { return codec_->spec() + refine_suffix(); }

void CodecIndex::train_impl(size_t n, const float* x, const TrainContext& ctx) { codec_->train(n, x, ctx); }

void CodecIndex::add_impl(size_t n, const float* x, int threads) {
  const size_t cs = codec_->code_size();
  std::vector<uint8_t> codes(n * cs);
  codec_->encode(n, x, codes.data(), threads);
  codes_.append(codes.data(), codes.size());
}

void CodecIndex::compact_impl(const std::vector<bool>& keep) {
  codes_.compact(keep, codec_->code_size());
}

bool CodecIndex::gpu_candidates(size_t nq, const float* queries, size_t shortlist, const SearchParams& params,
                                const RowFilter& filter, std::vector<std::vector<Candidate>>& found) const {
  return gpu_codec_search(*codec_, internal_metric(), codes_.data(), size(), gpu_resident_, gpu_mutex_, nq, queries,
                          shortlist, filter, found);
}

std::unique_ptr<RowScorer> CodecIndex::make_scorer(const float* query) const {
  return std::make_unique<CodeScorer>(codes_.data(), codec_->code_size(),
                                      codec_->distance_table(query, internal_metric()));
}

void CodecIndex::reconstruct_row(size_t row, float* out) const {
  codec_->decode(1, codes_.data() + row * codec_->code_size(), out, 1);
}

void CodecIndex::save_impl(ContainerWriter& out) const {
  ByteWriter codec;
  write_codec_section(*codec_, codec);
  out.section(fourcc("CODC"), codec);
  write_bulk(out, fourcc("CODE"), codes_.data(), codes_.size());
}

void CodecIndex::load_impl(const std::vector<Section>& sections, const std::shared_ptr<ByteSource>& source,
                           bool borrow) {
  const Section& s = require_section(sections, fourcc("CODC"), "codec");
  ByteReader r(s.payload, s.size, "section CODC");
  std::unique_ptr<Quantizer> loaded = read_codec_section(r);
  r.expect_end();
  QV_CHECK(loaded->spec() == codec_->spec() && loaded->dim() == codec_->dim(), Corrupt,
           "codec " << loaded->spec() << " does not match the index spec " << spec());
  codec_ = std::move(loaded);
  QV_CHECK(size() <= size_t(-1) / std::max<size_t>(codec_->code_size(), 1), Corrupt, "code bytes overflow");
  read_bulk(sections, fourcc("CODE"), "codes", size() * codec_->code_size(), source, borrow, codes_);
}

void CodecIndex::merge_impl(const Index& other) {
  const CodecIndex& o = static_cast<const CodecIndex&>(other);
  QV_CHECK(same_codec_state(*codec_, *o.codec_), InvalidArgument,
           "merge: the indexes hold different codebooks (trained separately?)");
  codes_.append(o.codes_.data(), o.codes_.size());
}

bool same_codec_state(const Quantizer& a, const Quantizer& b) {
  ByteWriter wa, wb;
  write_codec_section(a, wa);
  write_codec_section(b, wb);
  return wa.bytes() == wb.bytes();
}

}  // namespace quiver
