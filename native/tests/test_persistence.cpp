// Persistence (round trips, mapped loading, every truncation and bit flip rejected), mutation and filters.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <set>
#include <unistd.h>

#include "check.h"
#include "error.h"
#include "index.h"
#include "io.h"
#include "simd.h"
#include "spec.h"
#include "test_util.h"

using namespace quiver;

namespace {

struct Results {
  std::vector<int64_t> labels;
  std::vector<float> distances;
};

Results run(const Index& index, const std::vector<float>& q, size_t k, const SearchParams& p = SearchParams{}) {
  const size_t nq = q.size() / index.dim();
  Results r{std::vector<int64_t>(nq * k), std::vector<float>(nq * k)};
  index.search(nq, q.data(), k, p, r.labels.data(), r.distances.data());
  return r;
}

std::unique_ptr<Index> build(const std::string& spec, size_t d, size_t n, Metric metric = Metric::L2) {
  const auto x = qvtest::random_floats(n * d, 77);
  auto index = make_index(spec, d, metric);
  TrainContext ctx;
  ctx.iterations = 4;
  index->train(n, x.data(), ctx);
  std::vector<int64_t> ids(n);
  std::vector<int32_t> cats(n);
  for (size_t i = 0; i < n; ++i) {
    ids[i] = int64_t(i * 10 + 5);
    cats[i] = int32_t(i % 4);
  }
  index->add(n, x.data(), ids.data(), cats.data(), false, 0);
  return index;
}

}  // namespace

TEST_CASE("persistence: every index type round-trips, copied or borrowed, with identical results") {
  const size_t d = 12, n = 300;
  const auto q = qvtest::random_floats(5 * d, 8);
  for (const char* spec : {"Flat", "PQ4x8", "PQ3x4,Refine", "PQ4x8,Refine"}) {
    for (Metric metric : {Metric::L2, Metric::Cosine}) {
      const auto index = build(spec, d, n, metric);
      const std::vector<uint8_t> bytes = index->serialize();
      SearchParams p;
      if (std::string(spec).find("Refine") != std::string::npos) p.refine = 4;
      const Results want = run(*index, q, 7, p);
      for (bool borrow : {false, true}) {
        auto loaded = Index::deserialize(owned_bytes(bytes), borrow);
        CHECK(loaded->spec() == index->spec() && loaded->size() == n && loaded->metric() == metric);
        const Results got = run(*loaded, q, 7, p);
        CHECK(got.labels == want.labels);
        CHECK(got.distances == want.distances);
        CHECK(loaded->serialize() == bytes);
        // Mutating a borrowed index copies its stores first; the source stays untouched.
        const auto extra = qvtest::random_floats(d, 3);
        loaded->add(1, extra.data(), nullptr, 0);
        CHECK(loaded->size() == n + 1 && loaded->has(int64_t((n - 1) * 10 + 6)));
      }
    }
  }
}

TEST_CASE("persistence: files written atomically and mapped back") {
  const auto index = build("PQ4x8,Refine", 12, 300);
  const std::string path = "/tmp/quiver-test-" + std::to_string(::getpid()) + ".qvr";
  write_file_atomic(path, index->serialize());
  write_file_atomic(path, index->serialize());  // replacing an existing file works too
  auto mapped = Index::deserialize(map_file(path), true);
  std::remove(path.c_str());  // the mapping outlives the directory entry
  const auto q = qvtest::random_floats(12 * 3, 4);
  CHECK(run(*mapped, q, 5).labels == run(*index, q, 5).labels);
  CHECK_THROWS_CODE(read_file("/nonexistent/quiver.qvr"), Io);
  CHECK_THROWS_CODE(write_file_atomic("/nonexistent-dir/x.qvr", {1, 2, 3}), Io);
}

TEST_CASE("persistence: every truncation and every single bit flip is rejected as Corrupt") {
  const auto index = build("PQ2x4", 4, 40);
  const std::vector<uint8_t> bytes = index->serialize();
  for (size_t len = 0; len < bytes.size(); ++len) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + long(len));
    CHECK_THROWS_CODE(Index::deserialize(owned_bytes(cut), false), Corrupt);
  }
  for (size_t byte = 0; byte < bytes.size(); ++byte) {
    for (int bit = 0; bit < 8; bit += 3) {
      std::vector<uint8_t> flipped = bytes;
      flipped[byte] ^= uint8_t(1 << bit);
      CHECK_THROWS_CODE(Index::deserialize(owned_bytes(flipped), false), Corrupt);
    }
  }
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  CHECK_THROWS_CODE(Index::deserialize(owned_bytes(longer), false), Corrupt);
  const auto codec = deserialize_codec(serialize_codec(static_cast<const CodecIndex&>(*index).codec()).data(),
                                       serialize_codec(static_cast<const CodecIndex&>(*index).codec()).size());
  CHECK(codec->spec() == "PQ2x4");
  CHECK_THROWS_CODE(deserialize_codec(bytes.data(), bytes.size()), Corrupt);  // an index is not a codec
}

TEST_CASE("persistence: hostile counts with valid checksums are refused before allocating") {
  // A META section claiming 2^39 rows and an IDS section claiming 2^60 ids, both with correct CRCs.
  ContainerWriter out(fourcc("QVRI"));
  ByteWriter meta;
  meta.str("Flat");
  meta.u64(4);
  meta.u32(0);
  meta.u64(uint64_t(1) << 39);
  meta.u8(0);
  meta.i64(0);
  out.section(fourcc("META"), meta);
  ByteWriter ids;
  ids.align(out.next_payload_offset(), 8);
  ids.u64(uint64_t(1) << 60);
  out.section(fourcc("IDS "), ids);
  const auto bytes = out.finish();
  CHECK_THROWS_CODE(Index::deserialize(owned_bytes(bytes), false), Corrupt);
  // An unknown spec inside a valid container.
  ContainerWriter bad(fourcc("QVRI"));
  ByteWriter m2;
  m2.str("HNSW32");
  m2.u64(4);
  m2.u32(0);
  m2.u64(0);
  m2.u8(0);
  m2.i64(0);
  bad.section(fourcc("META"), m2);
  CHECK_THROWS_CODE(Index::deserialize(owned_bytes(bad.finish()), false), Corrupt);
}

TEST_CASE("mutation: remove, has, reconstruct, duplicate ids, upsert, default ids") {
  const size_t d = 6;
  auto index = make_index("Flat", d, Metric::L2);
  const auto x = qvtest::random_floats(10 * d, 1);
  std::vector<int64_t> ids = {100, 101, 102, 103, 104, 105, 106, 107, 108, 109};
  index->add(10, x.data(), ids.data(), 0);
  CHECK(index->has(104) && !index->has(4));
  std::vector<float> v(d);
  CHECK(index->reconstruct(104, v.data()) && std::equal(v.begin(), v.end(), x.begin() + 4 * d));
  CHECK(!index->reconstruct(5, v.data()));
  const int64_t gone[] = {104, 104, 999, 100};
  CHECK(index->remove(4, gone) == 2);
  CHECK(index->size() == 8 && !index->has(104) && index->has(105));
  CHECK(index->reconstruct(105, v.data()) && std::equal(v.begin(), v.end(), x.begin() + 5 * d));
  // Self-query of 105 finds 105 after compaction.
  std::vector<int64_t> label(1);
  std::vector<float> dist(1);
  index->search(1, x.data() + 5 * d, 1, SearchParams{}, label.data(), dist.data());
  CHECK(label[0] == 105);
  const int64_t dup[] = {105};
  CHECK_THROWS_CODE(index->add(1, x.data(), dup, 0), InvalidArgument);
  const int64_t twice[] = {500, 500};
  CHECK_THROWS_CODE(index->add(2, x.data(), twice, 0), InvalidArgument);
  CHECK(index->size() == 8);
  index->add(1, x.data(), dup, nullptr, true, 0);  // upsert: 105 now holds vector 0
  CHECK(index->size() == 8 && index->reconstruct(105, v.data()) && std::equal(v.begin(), v.end(), x.begin()));
  index->add(1, x.data(), nullptr, 0);  // default id follows the largest id so far
  CHECK(index->has(110));
}

TEST_CASE("filters: allow-list, categories and per-category top-k match brute force") {
  const size_t d = 8, n = 400, k = 5;
  const auto x = qvtest::random_floats(n * d, 21);
  auto index = make_index("Flat", d, Metric::L2);
  std::vector<int32_t> cats(n);
  for (size_t i = 0; i < n; ++i) cats[i] = int32_t(i % 7);
  index->add(n, x.data(), nullptr, cats.data(), false, 0);
  const auto q = qvtest::random_floats(2 * d, 22);
  auto brute = [&](size_t qi, const std::function<bool(size_t)>& ok) {
    std::vector<std::pair<float, int64_t>> all;
    for (size_t i = 0; i < n; ++i)
      if (ok(i)) all.push_back({kScalarKernels.l2sqr(&q[qi * d], &x[i * d], d), int64_t(i)});
    std::sort(all.begin(), all.end());
    std::vector<int64_t> out;
    for (size_t i = 0; i < std::min(k, all.size()); ++i) out.push_back(all[i].second);
    while (out.size() < k) out.push_back(-1);
    return out;
  };
  std::vector<int64_t> allow;
  for (int64_t i = 0; i < int64_t(n); i += 3) allow.push_back(i);
  allow.push_back(123456);  // unknown ids are ignored
  SearchParams p;
  p.allow_ids = allow.data();
  p.allow_count = allow.size();
  Results r = run(*index, q, k, p);
  for (size_t qi = 0; qi < 2; ++qi)
    CHECK(std::vector<int64_t>(r.labels.begin() + long(qi * k), r.labels.begin() + long((qi + 1) * k)) ==
          brute(qi, [](size_t i) { return i % 3 == 0; }));
  const int32_t wanted[] = {2, 5};
  SearchParams c;
  c.categories = wanted;
  c.category_count = 2;
  r = run(*index, q, k, c);
  for (size_t qi = 0; qi < 2; ++qi)
    CHECK(std::vector<int64_t>(r.labels.begin() + long(qi * k), r.labels.begin() + long((qi + 1) * k)) ==
          brute(qi, [](size_t i) { return i % 7 == 2 || i % 7 == 5; }));
  // Both filters intersect.
  c.allow_ids = allow.data();
  c.allow_count = allow.size();
  r = run(*index, q, k, c);
  CHECK(std::vector<int64_t>(r.labels.begin(), r.labels.begin() + long(k)) ==
        brute(0, [](size_t i) { return i % 3 == 0 && (i % 7 == 2 || i % 7 == 5); }));
  // Per category: nq × 2 × k.
  SearchParams per;
  per.categories = wanted;
  per.category_count = 2;
  std::vector<int64_t> labels(2 * 2 * k);
  std::vector<float> dists(2 * 2 * k);
  index->search_per_category(2, q.data(), k, per, labels.data(), dists.data());
  for (size_t qi = 0; qi < 2; ++qi)
    for (size_t ci = 0; ci < 2; ++ci) {
      const auto want = brute(qi, [&](size_t i) { return int32_t(i % 7) == wanted[ci]; });
      CHECK(std::vector<int64_t>(labels.begin() + long((qi * 2 + ci) * k), labels.begin() + long((qi * 2 + ci + 1) * k)) == want);
    }
  // An empty allow-list finds nothing; a category nobody has pads.
  SearchParams none;
  none.allow_ids = allow.data();
  none.allow_count = 0;
  r = run(*index, q, k, none);
  CHECK(r.labels[0] == -1);
}
