// faiss file interop without faiss: an index written in faiss's layout and read back searches exactly as the
// original (the codes, centroids and ids survive, including RQ codes re-packed around an unaligned norm field);
// every truncation is refused as Corrupt; what has no faiss form is refused as Unsupported. The comparison with
// faiss itself is in test/faiss-interop.test.ts.
#include <algorithm>
#include <cstring>

#include "check.h"
#include "error.h"
#include "faiss_io.h"
#include "index.h"
#include "spec.h"
#include "test_util.h"

using namespace quiver;

namespace {

std::unique_ptr<Index> build(const std::string& spec, Metric metric, const std::vector<float>& x, size_t d,
                             bool custom_ids) {
  std::unique_ptr<Index> index = make_index(spec, d, metric);
  TrainContext ctx;
  ctx.seed = 5;
  ctx.iterations = 4;
  const size_t n = x.size() / d;
  index->train(n, x.data(), ctx);
  std::vector<int64_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = custom_ids ? int64_t(i) * 5 - 40 : int64_t(i);
  index->add(n, x.data(), ids.data(), 0);
  return index;
}

ErrorCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::Internal;  // "nothing thrown" reads as a failure below
}

}  // namespace

TEST_CASE("faiss io: written and read back, indexes search exactly as before") {
  const size_t d = 16, n = 700;
  const std::vector<float> x = qvtest::random_floats(n * d, 21);
  const std::vector<float> q = qvtest::random_floats(20 * d, 22);
  struct Case {
    const char* spec;
    Metric metric;
    bool custom_ids;
  };
  for (const Case& c : {Case{"PQ4x8", Metric::L2, false}, Case{"PQ8x4", Metric::InnerProduct, true},
                        Case{"PQ4x6", Metric::L2, true}, Case{"OPQ4,PQ4x8", Metric::L2, true},
                        Case{"PQ8x4fs", Metric::L2, false}, Case{"RQ3x5", Metric::L2, false},
                        Case{"RQ3x7,norm=u8", Metric::InnerProduct, true}, Case{"IVF8,PQ4x8", Metric::L2, true},
                        Case{"IVF8,RQ3x5,norm=u8", Metric::L2, false}}) {
    const std::unique_ptr<Index> index = build(c.spec, c.metric, x, d, c.custom_ids);
    const std::vector<uint8_t> bytes = index_to_faiss(*index);
    const std::unique_ptr<Index> back = index_from_faiss(bytes.data(), bytes.size());
    CHECK_MSG(back->size() == n, c.spec);
    // IVF rows come back list by list (faiss keeps no global insertion order): the same ids, maybe reordered.
    std::vector<int64_t> ids_before = index->ids(), ids_after = back->ids();
    if (std::strncmp(c.spec, "IVF", 3) == 0) {
      std::sort(ids_before.begin(), ids_before.end());
      std::sort(ids_after.begin(), ids_after.end());
    }
    CHECK_MSG(ids_after == ids_before, c.spec);
    SearchParams params;
    params.nprobe = 3;
    const size_t k = 10;
    std::vector<int64_t> l1(20 * k), l2(20 * k);
    std::vector<float> d1(20 * k), d2(20 * k);
    index->search(20, q.data(), k, params, l1.data(), d1.data());
    back->search(20, q.data(), k, params, l2.data(), d2.data());
    if (std::strstr(c.spec, "fs")) {
      // Read back as plain 4-bit PQ: the same ranking up to rounding of the table sums.
      size_t same = 0;
      for (size_t i = 0; i < l1.size(); ++i) same += l1[i] == l2[i];
      CHECK_MSG(same >= l1.size() * 95 / 100, c.spec << ": " << same << " of " << l1.size());
      CHECK_MSG(back->spec() == "PQ8x4", back->spec());
    } else {
      CHECK_MSG(l1 == l2, c.spec);
      CHECK_MSG(d1 == d2, c.spec);
      CHECK_MSG(back->spec() == index->spec(), back->spec() << " vs " << index->spec());
    }
    // Every strict prefix is refused as Corrupt (stride keeps this fast).
    for (size_t len = 0; len < bytes.size(); len += 5)
      CHECK_MSG(code_of([&] { index_from_faiss(bytes.data(), len); }) == ErrorCode::Corrupt, c.spec << " prefix " << len);
  }
}

TEST_CASE("faiss io: what faiss cannot represent is Unsupported") {
  const size_t d = 16;
  const std::vector<float> x = qvtest::random_floats(600 * d, 23);
  for (const char* spec : {"PQ5x6", "IVF4,TRQ,PQ4x4", "TRQ2x4", "PRQ2x2x4", "PQ4x4,Refine", "Flat"}) {
    const std::unique_ptr<Index> index = build(spec, Metric::L2, x, d, false);
    CHECK_MSG(code_of([&] { index_to_faiss(*index); }) == ErrorCode::Unsupported, spec);
  }
  const std::unique_ptr<Index> cosine = build("PQ4x4", Metric::Cosine, x, d, false);
  CHECK(code_of([&] { index_to_faiss(*cosine); }) == ErrorCode::Unsupported);
  const std::unique_ptr<Index> ivf_ip = build("IVF4,PQ4x4", Metric::InnerProduct, x, d, false);
  CHECK(code_of([&] { index_to_faiss(*ivf_ip); }) == ErrorCode::Unsupported);
  const std::unique_ptr<Index> untrained = make_index("PQ4x4", d, Metric::L2);
  CHECK(code_of([&] { index_to_faiss(*untrained); }) == ErrorCode::State);
  const uint8_t junk[8] = {'I', 'x', 'S', 'Q', 0, 0, 0, 0};
  CHECK(code_of([&] { index_from_faiss(junk, sizeof junk); }) == ErrorCode::Unsupported);
}

TEST_CASE("faiss io: plain export holds the trained arrays") {
  const size_t d = 16;
  const std::vector<float> x = qvtest::random_floats(600 * d, 24);
  const std::unique_ptr<Index> index = build("IVF4,TRQ,RQ2x4,norm=u8", Metric::L2, x, d, false);
  const PlainExport e = export_plain(*index);
  REQUIRE(e.arrays.size() == 3);
  CHECK(e.arrays[0].name == "ivf_centroids" && e.arrays[0].data.size() == 4 * d);
  CHECK(e.arrays[1].name == "trq_transforms" && e.arrays[1].data.size() == 4 * d * d);
  CHECK(e.arrays[2].name == "rq_codebooks" && e.arrays[2].data.size() == 2 * 16 * d);
  CHECK(e.residual && e.norm == "u8" && e.norm_hi > e.norm_lo);
  const std::unique_ptr<Index> flat = build("Flat", Metric::L2, x, d, false);
  CHECK(code_of([&] { export_plain(*flat); }) == ErrorCode::Unsupported);
}
