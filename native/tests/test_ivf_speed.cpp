// IVF speed paths (ivf.h): precomputed tables (where they apply; same ids as the per-list tables, distances
// equal up to float rounding, swaps only between near-equal distances) and fast-scan lists (IVF…,PQ<M>x4fs:
// the results of IVF…,PQ<M>x4 through every operation: filters, categories, refine, remove, save/load, merge).
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "check.h"
#include "error.h"
#include "ivf.h"
#include "spec.h"
#include "test_data.h"
#include "test_util.h"

using namespace quiver;

namespace {

// Runs the same search with and without the precomputed tables and compares: every position holds the same
// id, or ids whose distances are within `tol` (relative) of each other; distances always within `tol`.
void compare_paths(IVFIndex& index, size_t nq, const float* q, size_t k, size_t nprobe, float tol,
                   const std::string& what) {
  REQUIRE(index.precomputed_tables());
  SearchParams p;
  p.nprobe = nprobe;
  p.threads = 1;
  std::vector<int64_t> la(nq * k), lb(nq * k);
  std::vector<float> da(nq * k), db(nq * k);
  index.search(nq, q, k, p, la.data(), da.data());
  index.set_precomputed_tables(false);
  REQUIRE(!index.precomputed_tables());
  index.search(nq, q, k, p, lb.data(), db.data());
  index.set_precomputed_tables(true);
  size_t same = 0;
  for (size_t i = 0; i < nq * k; ++i) {
    const float scale = std::max(1.0f, std::fabs(db[i]));
    CHECK_MSG(std::fabs(da[i] - db[i]) <= tol * scale, what << " at " << i << ": " << da[i] << " vs " << db[i]);
    same += la[i] == lb[i];
  }
  // Near-ties may swap two neighbours; anything more would be a bug.
  CHECK_MSG(same + nq * k / 50 >= nq * k, what << ": " << same << " of " << nq * k << " ids agree");
  std::printf("    %s nprobe %zu: %zu/%zu ids identical\n", what.c_str(), nprobe, same, nq * k);
}

}  // namespace

TEST_CASE("ivf tables: precomputed only for L2 with a plain PQ fine codec and no TRQ") {
  const size_t d = 30, n = 1500;
  const auto x = qvtest::random_floats(n * d, 5);
  TrainContext ctx;
  ctx.seed = 2;
  ctx.iterations = 4;
  const struct {
    const char* spec;
    Metric metric;
    bool expected;
  } cases[] = {{"IVF8,PQ7x6", Metric::L2, true},         {"IVF8,PQ5x4,Refine", Metric::L2, true},
               {"IVF8,PQ7x6", Metric::InnerProduct, false}, {"IVF8,PQ7x6", Metric::Cosine, false},
               {"IVF8,TRQ,PQ5x6", Metric::L2, false},     {"IVF8,OPQ5,PQ5x6", Metric::L2, false},
               {"IVF8,RQ2x6", Metric::L2, false}};
  for (const auto& c : cases) {
    auto index = make_index(c.spec, d, c.metric);
    auto* ivf = dynamic_cast<IVFIndex*>(index.get());
    REQUIRE(ivf);
    CHECK(!ivf->precomputed_tables());
    index->train(n, x.data(), ctx);
    CHECK_MSG(ivf->precomputed_tables() == c.expected, c.spec);
    index->add(n, x.data(), nullptr, 1);
    // Loading rebuilds them (they are not stored in the file), also from a borrowed file.
    auto loaded = Index::deserialize(owned_bytes(index->serialize()), true);
    CHECK_MSG(dynamic_cast<IVFIndex*>(loaded.get())->precomputed_tables() == c.expected, c.spec);
    if (!c.expected) continue;
    const auto q = qvtest::random_floats(20 * d, 6);
    compare_paths(*ivf, 20, q.data(), 10, 3, 1e-4f, c.spec);
    compare_paths(*dynamic_cast<IVFIndex*>(loaded.get()), 20, q.data(), 10, 8, 1e-4f, c.spec);
  }
}

TEST_CASE("ivf tables: SIFT IVF64,PQ16x8 gives the per-list tables' results at nprobe 4 and 16") {
  std::vector<float> x;
  size_t n = 0, d = 0;
  if (!qvtest::load_sift_heldout_base(&x, &n, &d)) return;
  const size_t nq = 100, nb = n - nq;
  auto index = make_index("IVF64,PQ16x8", d, Metric::L2);
  TrainContext ctx;
  ctx.seed = 1;
  ctx.iterations = 6;
  index->train(nb, x.data(), ctx);
  index->add(nb, x.data(), nullptr, 0);
  auto* ivf = dynamic_cast<IVFIndex*>(index.get());
  REQUIRE(ivf);
  for (const size_t nprobe : {4, 16})
    compare_paths(*ivf, nq, x.data() + nb * d, 10, nprobe, 1e-4f, "SIFT IVF64,PQ16x8");
}

namespace {

struct Run {
  std::vector<int64_t> labels;
  std::vector<float> distances;
};

Run run(const Index& index, size_t nq, const float* q, size_t k, SearchParams p) {
  Run r;
  r.labels.resize(nq * k);
  r.distances.resize(nq * k);
  index.search(nq, q, k, p, r.labels.data(), r.distances.data());
  return r;
}

void expect_same(const Run& a, const Run& b, const std::string& what) {
  CHECK_MSG(a.labels == b.labels, what);
  for (size_t i = 0; i < a.distances.size(); ++i)
    CHECK_MSG(std::fabs(a.distances[i] - b.distances[i]) <= 1e-5f * std::fabs(b.distances[i]) + 1e-4f,
              what << " at " << i << ": " << a.distances[i] << " vs " << b.distances[i]);
}

}  // namespace

TEST_CASE("ivf fast-scan: IVF,PQ<M>x4fs answers as IVF,PQ<M>x4 through search, filters, refine, mutation, files") {
  const size_t d = 20, n = 1000, nq = 12, k = 10;
  std::vector<float> centres;
  const auto x = qvtest::blobs(n, d, 40, 5, &centres);
  const auto q = qvtest::random_floats(nq * d, 6);
  std::vector<int32_t> cats(n);
  for (size_t i = 0; i < n; ++i) cats[i] = int32_t(i % 3);
  for (const char* ivf : {"IVF8", "IVF8,TRQ"}) {
    for (const size_t m : {5, 8}) {
      for (const Metric metric : {Metric::L2, Metric::InnerProduct, Metric::Cosine}) {
        const std::string plain_spec = std::string(ivf) + ",PQ" + std::to_string(m) + "x4";
        const std::string what = plain_spec + "fs " + metric_name(metric);
        auto fs = make_index(plain_spec + "fs,Refine,store=int8", d, metric);
        auto plain = make_index(plain_spec + ",Refine,store=int8", d, metric);
        CHECK(fs->spec() == plain_spec + "fs,Refine,store=int8" && fs->code_size() == (m + 1) / 2);
        REQUIRE(dynamic_cast<IVFIndex*>(fs.get())->fast_scan());
        TrainContext ctx;
        ctx.iterations = 6;
        fs->train(n, x.data(), ctx);
        plain->train(n, x.data(), ctx);
        // Two adds: the second fills partly filled last blocks.
        fs->add(n / 2, x.data(), nullptr, cats.data(), false, 0);
        fs->add(n - n / 2, x.data() + (n / 2) * d, nullptr, cats.data() + n / 2, false, 0);
        plain->add(n, x.data(), nullptr, cats.data(), false, 0);
        SearchParams p;
        p.nprobe = 3;
        expect_same(run(*fs, nq, q.data(), k, p), run(*plain, nq, q.data(), k, p), what);
        p.nprobe = 8;
        expect_same(run(*fs, nq, q.data(), k, p), run(*plain, nq, q.data(), k, p), what + " nprobe 8");
        std::vector<int64_t> allow;
        for (int64_t i = 0; i < int64_t(n); i += 2) allow.push_back(i);
        SearchParams f = p;
        f.allow_ids = allow.data();
        f.allow_count = allow.size();
        const Run filtered = run(*fs, nq, q.data(), k, f);
        expect_same(filtered, run(*plain, nq, q.data(), k, f), what + " filtered");
        for (int64_t id : filtered.labels) CHECK(id == -1 || id % 2 == 0);
        SearchParams r = p;
        r.refine = 6;
        expect_same(run(*fs, nq, q.data(), k, r), run(*plain, nq, q.data(), k, r), what + " refine");
        // Per category: one top-k per listed category.
        const int32_t two[] = {0, 2};
        SearchParams per = p;
        per.categories = two;
        per.category_count = 2;
        std::vector<int64_t> la(nq * 2 * k), lb(nq * 2 * k);
        std::vector<float> da(nq * 2 * k), db(nq * 2 * k);
        fs->search_per_category(nq, q.data(), k, per, la.data(), da.data());
        plain->search_per_category(nq, q.data(), k, per, lb.data(), db.data());
        CHECK_MSG(la == lb, what + " per category");
        // Remove, reconstruct, save and load (copied and borrowed).
        std::vector<int64_t> gone;
        for (int64_t i = 0; i < int64_t(n); i += 3) gone.push_back(i);
        fs->remove(gone.size(), gone.data());
        plain->remove(gone.size(), gone.data());
        const Run after = run(*fs, nq, q.data(), k, p);
        expect_same(after, run(*plain, nq, q.data(), k, p), what + " after remove");
        std::vector<float> a(d), b(d);
        CHECK(fs->reconstruct(4, a.data()) && plain->reconstruct(4, b.data()) && a == b);
        const std::vector<uint8_t> bytes = fs->serialize();
        for (const bool borrow : {false, true}) {
          auto loaded = Index::deserialize(owned_bytes(bytes), borrow);
          CHECK(loaded->spec() == fs->spec());
          const Run again = run(*loaded, nq, q.data(), k, p);
          CHECK_MSG(again.labels == after.labels && again.distances == after.distances, what + " loaded");
          CHECK(loaded->serialize() == bytes);
        }
        // Merging two halves gives the file of one index holding both.
        auto empty = make_index(fs->spec(), d, metric);
        empty->train(n, x.data(), ctx);
        const std::vector<uint8_t> trained = empty->serialize();
        auto first = Index::deserialize(owned_bytes(trained), false);
        auto second = Index::deserialize(owned_bytes(trained), true);
        auto whole = Index::deserialize(owned_bytes(trained), false);
        std::vector<int64_t> ids(n);
        for (size_t i = 0; i < n; ++i) ids[i] = int64_t(i) * 7;
        first->add(333, x.data(), ids.data(), 0);
        second->add(n - 333, x.data() + 333 * d, ids.data() + 333, 0);
        auto second_loaded = Index::deserialize(owned_bytes(second->serialize()), true);  // merge from a mapping
        first->merge_from(*second_loaded);
        whole->add(n, x.data(), ids.data(), 0);
        CHECK_MSG(first->serialize() == whole->serialize(), what + " merged");
      }
    }
  }
  CHECK_THROWS_CODE(make_index("IVF8,PQ8x8fs", d, Metric::L2), InvalidArgument);
  CHECK_THROWS_CODE(make_index("IVF8,OPQ4,PQ4x4fs", d, Metric::L2), InvalidArgument);
}

TEST_CASE("ivf fast-scan: non-zero padding in a stored list is Corrupt") {
  const size_t d = 16, n = 300;
  std::vector<float> centres;
  const auto x = qvtest::blobs(n, d, 4, 8, &centres);
  auto index = make_index("IVF4,PQ5x4fs", d, Metric::L2);
  TrainContext ctx;
  index->train(n, x.data(), ctx);
  index->add(n - 1, x.data(), nullptr, 0);  // leaves padding rows in some list's last block
  const std::vector<uint8_t> bytes = index->serialize();
  const std::vector<Section> sections = read_container(bytes.data(), bytes.size(), fourcc("QVRI"));
  // The IVFL payload ends with the last non-empty list's last block; its last byte is the last pair of slot 31,
  // whose high nibble is M = 5's phantom sub-quantizer (or a padding row): never allowed to be non-zero.
  // Re-emitting keeps every section's size, so the CRCs are recomputed and only the content check can fail.
  ContainerWriter out(fourcc("QVRI"));
  bool damaged = false;
  for (const Section& s : sections) {
    ByteWriter w;
    std::vector<uint8_t> p(s.payload, s.payload + s.size);
    if (s.tag == fourcc("IVFL")) {
      p.back() |= 0x10;
      damaged = true;
    }
    w.raw(p.data(), p.size());
    out.section(s.tag, w);
  }
  REQUIRE(damaged);
  const std::vector<uint8_t> bad = out.finish();
  CHECK_THROWS_CODE(Index::deserialize(owned_bytes(bad), false), Corrupt);
}
