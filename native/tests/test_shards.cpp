// Scale-out support: nearest-centroid choices (and so codes) identical at every SIMD level and thread count,
// merging of separately encoded shards into the bytes of a one-machine build, and the merge's refusals.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <unistd.h>

#include "check.h"
#include "error.h"
#include "index.h"
#include "io.h"
#include "kmeans.h"
#include "shards.h"
#include "simd.h"
#include "spec.h"
#include "test_data.h"
#include "test_util.h"

using namespace quiver;

namespace {

// Restores the SIMD level a test changed, even when a REQUIRE throws.
struct SimdGuard {
  SimdLevel before = simd_level();
  ~SimdGuard() { set_simd_level(before); }
};

// The exact nearest centroid by a double-precision reference (ties to the lower index).
size_t reference_nearest(size_t k, size_t d, const float* centroids, const float* x) {
  size_t best = 0;
  double best_score = std::numeric_limits<double>::infinity();
  for (size_t j = 0; j < k; ++j) {
    double norm = 0, dot = 0;
    for (size_t i = 0; i < d; ++i) {
      norm += double(centroids[j * d + i]) * centroids[j * d + i];
      dot += double(x[i]) * centroids[j * d + i];
    }
    if (norm - 2 * dot < best_score) {
      best_score = norm - 2 * dot;
      best = j;
    }
  }
  return best;
}

// The embedded SIFT slice (data/bigann10k in the repository), found from the repository root or build/cpp.
bool load_embedded_sift(std::vector<float>* x, size_t* n, size_t* d) {
  for (const char* dir : {"data/bigann10k", "../../data/bigann10k", "../data/bigann10k"})
    if (qvtest::read_bvecs(std::string(dir) + "/bigann10k_heldout_base.bvecs", x, n, d)) return true;
  std::printf("    SKIP: the embedded data/bigann10k slice was not found\n");
  return false;
}

std::string temp_path(const std::string& name) {
  return "/tmp/quiver-shards-" + std::to_string(getpid()) + "-" + name;
}

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::unique_ptr<Index> trained(const std::string& spec, size_t d, size_t n, const float* x, Metric metric) {
  auto index = make_index(spec, d, metric);
  TrainContext ctx;
  ctx.iterations = 5;
  ctx.seed = 3;
  index->train(n, x, ctx);
  return index;
}

// A fresh copy of a trained (usually empty) index: what a worker gets by loading the codebook file.
std::unique_ptr<Index> copy_of(const Index& index) {
  return Index::deserialize(owned_bytes(index.serialize()), false);
}

}  // namespace

TEST_CASE("shards: nearest centroid agrees with the double reference at every SIMD level, near-ties included") {
  SimdGuard guard;
  const size_t d = 8, k = 64;
  auto centroids = qvtest::random_floats(k * d, 91);
  // Exact duplicates and near-duplicates (one ulp apart), the cases where float rounding decides.
  for (size_t i = 0; i < d; ++i) {
    centroids[5 * d + i] = centroids[3 * d + i];
    centroids[9 * d + i] = std::nextafter(centroids[7 * d + i], 2.0f);
  }
  std::vector<float> points = qvtest::random_floats(2000 * d, 92);
  // Points on the perpendicular bisector of two centroids (mid-points), and at the centroids themselves.
  for (size_t p = 0; p + 1 < k; p += 2) {
    std::vector<float> mid(d);
    for (size_t i = 0; i < d; ++i) mid[i] = 0.5f * (centroids[p * d + i] + centroids[(p + 1) * d + i]);
    points.insert(points.end(), mid.begin(), mid.end());
    points.insert(points.end(), centroids.begin() + long(p * d), centroids.begin() + long((p + 1) * d));
  }
  const size_t n = points.size() / d;
  const CentroidTable table(k, d, centroids.data());
  std::vector<float> scratch(k);
  for (SimdLevel level : supported_simd_levels()) {
    set_simd_level(level);
    size_t mismatches = 0;
    for (size_t i = 0; i < n; ++i)
      mismatches += table.nearest(&points[i * d], scratch.data()) != reference_nearest(k, d, centroids.data(), &points[i * d]);
    CHECK_MSG(mismatches == 0, simd_level_name(level) << ": " << mismatches << " of " << n << " choices differ");
  }
}

TEST_CASE("shards: encoding the SIFT slice gives the same bytes at every SIMD level and thread count") {
  SimdGuard guard;
  std::vector<std::vector<float>> sets;
  std::vector<float> x;
  size_t n = 0, d = 0;
  if (load_embedded_sift(&x, &n, &d)) sets.push_back(x);
  if (qvtest::read_bvecs(qvtest::data_dir() + "/bigann10k/bigann10k_base.bvecs", &x, &n, &d))
    sets.push_back(x);
  else
    std::printf("    SKIP (shared copy): %s/bigann10k/bigann10k_base.bvecs not found\n", qvtest::data_dir().c_str());
  if (sets.empty()) return;
  set_simd_level(best_supported_simd_level());
  for (const auto& data : sets) {
    const size_t rows = data.size() / 128;
    for (const char* spec : {"IVF16,PQ16x8", "PQ16x8", "PQ16x4fs", "IVF16,TRQ,PQ16x8", "IVF16,PQ16x4fs,Refine,store=int8"}) {
      std::unique_ptr<Index> codebook;
      try {
        codebook = trained(spec, 128, rows, data.data(), Metric::L2);
      } catch (const Error& e) {
        CHECK_MSG(false, spec << ": " << e.what());
        continue;
      }
      std::vector<uint8_t> want;
      for (SimdLevel level : supported_simd_levels()) {
        for (int threads : {1, 0}) {
          set_simd_level(level);
          auto index = copy_of(*codebook);
          index->add(rows, data.data(), nullptr, threads);
          const std::vector<uint8_t> bytes = index->serialize();
          if (want.empty())
            want = bytes;
          else
            CHECK_MSG(bytes == want, spec << " at " << simd_level_name(level) << ", threads " << threads
                                          << ": the encoded file differs from the first level's");
        }
      }
    }
  }
}

TEST_CASE("shards: merging shards gives the bytes of a one-machine build, for every index type") {
  const size_t d = 12, n = 1000;
  const auto x = qvtest::random_floats(n * d, 61);
  std::vector<int64_t> ids(n);
  std::vector<int32_t> cats(n);
  for (size_t i = 0; i < n; ++i) {
    ids[i] = int64_t(n - i) * 7;  // not in row order: the merge keeps rows, not id order
    cats[i] = int32_t(i % 5);
  }
  for (const char* spec : {"Flat", "PQ4x8", "PQ5x4fs", "PQ3x4fs,Refine", "IVF8,PQ4x8", "IVF6,TRQ,PQ4x8,Refine",
                           "IVF8,PQ5x4fs,Refine,store=fp16", "IVF6,TRQ,PQ4x4fs,Refine,store=int8"}) {
    for (Metric metric : {Metric::L2, Metric::Cosine}) {
      const auto codebook = trained(spec, d, n, x.data(), metric);
      // One machine: every vector in one add. Categories only on the second half, to check the fill.
      auto whole = copy_of(*codebook);
      whole->add(500, x.data(), ids.data(), nullptr, false, 0);
      whole->add(n - 500, &x[500 * d], &ids[500], &cats[500], false, 0);
      const std::vector<uint8_t> want = whole->serialize();
      // Shards of uneven sizes (not multiples of 32, one empty), encoded separately and merged in order.
      const size_t cuts[] = {0, 37, 37, 500, 733, n};
      std::unique_ptr<Index> merged;
      for (size_t s = 0; s + 1 < std::size(cuts); ++s) {
        auto shard = copy_of(*codebook);
        const size_t a = cuts[s], b = cuts[s + 1];
        if (b > a) shard->add(b - a, &x[a * d], &ids[a], a >= 500 ? &cats[a] : nullptr, false, 0);
        // Through a file image, borrowed, as merge_index_files reads shards.
        auto loaded = Index::deserialize(owned_bytes(shard->serialize()), true);
        if (!merged)
          merged = std::move(loaded);
        else
          merged->merge_from(*loaded);
      }
      CHECK_MSG(merged->serialize() == want, spec << " (" << metric_name(metric) << "): merged bytes differ");
      // The merged index answers like the whole one.
      const auto q = qvtest::random_floats(4 * d, 62);
      std::vector<int64_t> la(40), lb(40);
      std::vector<float> da(40), db(40);
      SearchParams p;
      p.nprobe = 3;
      whole->search(4, q.data(), 10, p, la.data(), da.data());
      merged->search(4, q.data(), 10, p, lb.data(), db.data());
      CHECK(la == lb);
      CHECK(da == db);
    }
  }
}

TEST_CASE("shards: merge refuses id collisions, other codebooks and other specs, leaving the index unchanged") {
  const size_t d = 8, n = 400;
  const auto x = qvtest::random_floats(n * d, 71);
  const auto codebook = trained("IVF4,PQ2x8", d, n, x.data(), Metric::L2);
  auto a = copy_of(*codebook), b = copy_of(*codebook);
  std::vector<int64_t> ids_a(200), ids_b(200);
  for (size_t i = 0; i < 200; ++i) {
    ids_a[i] = int64_t(i);
    ids_b[i] = int64_t(i + 199);  // 199 collides
  }
  a->add(200, x.data(), ids_a.data(), 0);
  b->add(200, &x[200 * d], ids_b.data(), 0);
  const std::vector<uint8_t> before = a->serialize();
  CHECK_THROWS_CODE(a->merge_from(*b), InvalidArgument);
  CHECK(a->serialize() == before);
  CHECK_THROWS_CODE(a->merge_from(*a), InvalidArgument);

  auto other = trained("IVF4,PQ2x8", d, n, &x[0], Metric::L2);
  TrainContext ctx;
  ctx.seed = 99;
  other->train(n, x.data(), ctx);  // same spec, another codebook
  CHECK_THROWS_CODE(a->merge_from(*other), InvalidArgument);
  CHECK(a->serialize() == before);
  auto pq = trained("PQ2x8", d, n, x.data(), Metric::L2);
  CHECK_THROWS_CODE(a->merge_from(*pq), InvalidArgument);
  auto ip = trained("IVF4,PQ2x8", d, n, x.data(), Metric::InnerProduct);
  CHECK_THROWS_CODE(a->merge_from(*ip), InvalidArgument);
  auto untrained = make_index("IVF4,PQ2x8", d, Metric::L2);
  CHECK_THROWS_CODE(a->merge_from(*untrained), State);
}

TEST_CASE("shards: merge_index_files writes the merged file and names the file that fails") {
  const size_t d = 8, n = 300;
  const auto x = qvtest::random_floats(n * d, 81);
  const auto codebook = trained("IVF4,PQ2x8", d, n, x.data(), Metric::L2);
  std::vector<int64_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = int64_t(i);
  auto whole = copy_of(*codebook);
  whole->add(n, x.data(), ids.data(), 0);
  std::vector<std::string> files;
  for (size_t s = 0; s < 3; ++s) {
    auto shard = copy_of(*codebook);
    shard->add(100, &x[s * 100 * d], &ids[s * 100], 0);
    files.push_back(temp_path("shard" + std::to_string(s)));
    write_file_atomic(files.back(), shard->serialize());
  }
  const std::string out = temp_path("merged");
  merge_index_files(files, out);
  CHECK(file_bytes(out) == whole->serialize());
  // One shard alone: the output is that shard's bytes again (the format is canonical).
  merge_index_files({files[1]}, out);
  CHECK(file_bytes(out) == file_bytes(files[1]));
  // A shard listed twice collides with itself; a missing file is Io; a truncated one Corrupt.
  CHECK_THROWS_CODE(merge_index_files({files[0], files[0]}, out), InvalidArgument);
  try {
    merge_index_files({files[0], files[1], temp_path("missing")}, out);
    CHECK(false);
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::Io);
    CHECK(std::string(e.what()).find("files[2]") != std::string::npos);
  }
  std::vector<uint8_t> cut = file_bytes(files[2]);
  cut.resize(cut.size() / 2);
  write_file_atomic(files[2], cut);
  CHECK_THROWS_CODE(merge_index_files(files, out), Corrupt);
  CHECK_THROWS_CODE(merge_index_files({}, out), InvalidArgument);
  for (const auto& f : files) std::remove(f.c_str());
  std::remove(out.c_str());
}

TEST_CASE("shards: an 8-bit ADC score does not depend on the code's position in the scanned batch") {
  // Shards and the merged index hold the same codes at different positions; their distances must be equal.
  const size_t n = 23;
  for (size_t m : {1, 7, 8, 16}) {
    std::vector<uint8_t> codes(n * m);
    const auto noise = qvtest::random_floats(n * m + m * 256, 101 + m);
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = uint8_t((noise[i] + 1) * 127.9f);
    std::vector<float> lut(m * 256);
    for (size_t i = 0; i < lut.size(); ++i) lut[i] = noise[codes.size() + i] * 1000.0f + 0.1f * float(i % 7);
    for (SimdLevel level : supported_simd_levels()) {
      const Kernels& k = kernels_for(level);
      std::vector<float> batch(n), alone(1);
      k.adc_scan_u8(codes.data(), n, m, lut.data(), batch.data());
      size_t differ = 0;
      for (size_t i = 0; i < n; ++i) {
        k.adc_scan_u8(codes.data() + i * m, 1, m, lut.data(), alone.data());
        differ += std::memcmp(&alone[0], &batch[i], sizeof(float)) != 0;
        std::vector<float> tail(n - i);
        k.adc_scan_u8(codes.data() + i * m, n - i, m, lut.data(), tail.data());
        differ += std::memcmp(tail.data(), &batch[i], tail.size() * sizeof(float)) != 0;
      }
      CHECK_MSG(differ == 0, simd_level_name(level) << ", M=" << m << ": " << differ << " scores depend on the position");
    }
  }
}

namespace {

// Peak resident memory (VmHWM, kB) of this process, after `reset` sets it back to the current RSS (Linux ≥ 4.0
// resets the peak when "5" is written to /proc/self/clear_refs). 0 where /proc is unavailable.
long peak_rss_kb(bool reset) {
  if (reset) {
    std::ofstream clear("/proc/self/clear_refs");
    if (clear) clear << "5";
  }
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

}  // namespace

TEST_CASE("shards: the streamed merge writes the bytes of merge_from + serialize, for every index type") {
  const size_t d = 12, n = 1000;
  const auto x = qvtest::random_floats(n * d, 91);
  std::vector<int64_t> ids(n);
  std::vector<int32_t> cats(n);
  for (size_t i = 0; i < n; ++i) {
    ids[i] = int64_t(i) * 13 - 500;  // negative ids too
    cats[i] = int32_t(i % 7);
  }
  // Shards of uneven sizes (one empty, none a multiple of 32, so fast-scan lists must re-block; the first large
  // enough that whole blocks are copied), categories on some shards only.
  const size_t cuts[] = {0, 300, 300, 337, 733, n};
  for (const char* spec : {"Flat", "PQ4x8", "PQ5x4fs", "PQ3x4fs,Refine", "PQ4x8,Refine,store=fp16",
                           "PQ4x8,Refine,store=int8", "IVF8,PQ4x8", "IVF8,PQ5x4fs", "IVF6,TRQ,PQ4x8,Refine",
                           "IVF8,PQ5x4fs,Refine,store=fp16", "IVF6,TRQ,PQ4x4fs,Refine,store=int8"}) {
    for (Metric metric : {Metric::L2, Metric::Cosine}) {
      const auto codebook = trained(spec, d, n, x.data(), metric);
      std::vector<std::string> files;
      std::unique_ptr<Index> merged;
      for (size_t s = 0; s + 1 < std::size(cuts); ++s) {
        auto shard = copy_of(*codebook);
        const size_t a = cuts[s], b = cuts[s + 1];
        if (b > a) shard->add(b - a, &x[a * d], &ids[a], s % 2 ? &cats[a] : nullptr, false, 0);
        files.push_back(temp_path("stream" + std::to_string(s)));
        write_file_atomic(files.back(), shard->serialize());
        auto loaded = Index::deserialize(map_file(files.back()), true);
        if (!merged)
          merged = std::move(loaded);
        else
          merged->merge_from(*loaded);
      }
      const std::string out = temp_path("stream-merged");
      MergeLimits limits;
      limits.id_check_ids = 150;  // several hash partitions: the multi-pass id check
      merge_index_files(files, out, limits);
      const std::vector<uint8_t> got = file_bytes(out);
      CHECK_MSG(got == merged->serialize(), spec << " (" << metric_name(metric) << "): streamed bytes differ");
      // And it loads and answers like the in-memory merge.
      auto back = Index::deserialize(map_file(out), true);
      const auto q = qvtest::random_floats(3 * d, 92);
      std::vector<int64_t> la(30), lb(30);
      std::vector<float> da(30), db(30);
      SearchParams p;
      p.nprobe = 3;
      merged->search(3, q.data(), 10, p, la.data(), da.data());
      back->search(3, q.data(), 10, p, lb.data(), db.data());
      CHECK(la == lb);
      CHECK(da == db);
      for (const auto& f : files) std::remove(f.c_str());
      std::remove(out.c_str());
    }
  }
}

TEST_CASE("shards: the streamed merge finds collisions in any id partition and leaves the output untouched") {
  const size_t d = 8, n = 400;
  const auto x = qvtest::random_floats(n * d, 93);
  const auto codebook = trained("IVF4,PQ2x8", d, n, x.data(), Metric::L2);
  std::vector<std::string> files;
  for (size_t s = 0; s < 3; ++s) {
    auto shard = copy_of(*codebook);
    std::vector<int64_t> ids(100);
    for (size_t i = 0; i < 100; ++i) ids[i] = int64_t(s * 100 + i);
    if (s == 2) ids[57] = 123;  // also in shard 1
    shard->add(100, &x[s * 100 * d], ids.data(), 0);
    files.push_back(temp_path("collide" + std::to_string(s)));
    write_file_atomic(files.back(), shard->serialize());
  }
  const std::string out = temp_path("collide-out");
  write_file_atomic(out, {1, 2, 3});
  for (size_t budget : {size_t(1), size_t(16), size_t(1000)}) {
    MergeLimits limits;
    limits.id_check_ids = budget;
    try {
      merge_index_files(files, out, limits);
      CHECK(false);
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::InvalidArgument);
      CHECK_MSG(std::string(e.what()).find("files[2]") != std::string::npos &&
                    std::string(e.what()).find("id 123 is in both") != std::string::npos,
                e.what());
    }
    CHECK(file_bytes(out) == std::vector<uint8_t>({1, 2, 3}));
  }
  for (const auto& f : files) std::remove(f.c_str());
  std::remove(out.c_str());
}

TEST_CASE("shards: the streamed merge of 200 MB of codes keeps the peak memory flat") {
  if (peak_rss_kb(true) == 0) {
    std::printf("    SKIP: /proc/self/status is not available\n");
    return;
  }
  // Flat stores its codes as floats: 4 shards × 50 000 rows × 256 dims × 4 bytes = 205 MB, built one shard at a
  // time so that the test's own data never holds more than one shard.
  const size_t d = 256, rows = 50000, shards = 4;
  std::vector<std::string> files;
  uint64_t state = 7;
  for (size_t s = 0; s < shards; ++s) {
    auto shard = make_index("Flat", d, Metric::L2);
    std::vector<float> x(rows * d);
    for (float& v : x) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      v = float(state >> 40) / float(1 << 24);
    }
    std::vector<int64_t> ids(rows);
    for (size_t i = 0; i < rows; ++i) ids[i] = int64_t(s * rows + i);
    shard->add(rows, x.data(), ids.data(), 0);
    files.push_back(temp_path("big" + std::to_string(s)));
    write_file_atomic(files.back(), shard->serialize());
  }
  const std::string out = temp_path("big-merged");
  const long base = peak_rss_kb(true);
  merge_index_files(files, out);
  const long streamed = peak_rss_kb(false) - base;
  const double codes_mb = double(shards * rows * d * 4) / 1e6;
  std::printf("    streamed merge of %.0f MB of codes: peak RSS +%.1f MB\n", codes_mb, streamed / 1024.0);
  CHECK_MSG(streamed < 40 * 1024, "peak RSS grew by " << streamed << " kB");
  if (std::getenv("QUIVER_MERGE_COMPARE")) {  // the in-memory path, for the record (it needs ~2× the codes)
    const long base2 = peak_rss_kb(true);
    std::unique_ptr<Index> merged;
    for (const auto& f : files) {
      auto shard = Index::deserialize(map_file(f), true);
      if (!merged)
        merged = std::move(shard);
      else
        merged->merge_from(*shard);
    }
    const std::string out2 = temp_path("big-merged-memory");
    write_file_atomic(out2, merged->serialize());
    merged.reset();
    std::printf("    in-memory merge: peak RSS +%.1f MB\n", (peak_rss_kb(false) - base2) / 1024.0);
    CHECK(file_bytes(out2) == file_bytes(out));
    std::remove(out2.c_str());
  }
  for (const auto& f : files) std::remove(f.c_str());
  std::remove(out.c_str());
}

namespace {

// The container `bytes` with the payload of section `tag` changed by `mutate` (same length, CRC recomputed):
// damage that only the content checks can see.
std::vector<uint8_t> forge(const std::vector<uint8_t>& bytes, uint32_t tag, const std::function<void(uint8_t*, size_t)>& mutate) {
  const std::vector<Section> sections = read_container(bytes.data(), bytes.size(), fourcc("QVRI"));
  ContainerWriter out(fourcc("QVRI"));
  for (const Section& s : sections) {
    ByteWriter w;
    w.raw(s.payload, s.size);
    if (s.tag == tag) mutate(w.bytes().data(), w.size());
    out.section(s.tag, w);
  }
  return out.finish();
}

}  // namespace

TEST_CASE("shards: the streamed merge refuses what Index::deserialize refuses, naming the file") {
  const size_t d = 8, n = 300;
  const auto x = qvtest::random_floats(n * d, 95);
  std::vector<int64_t> ids(n);
  std::vector<int32_t> cats(n, 2);
  for (size_t i = 0; i < n; ++i) ids[i] = int64_t(i);
  const std::string good = temp_path("forge-good"), bad = temp_path("forge-bad"), out = temp_path("forge-out");
  struct Case {
    const char* spec;
    uint32_t tag;
    std::function<void(uint8_t*, size_t)> mutate;
  };
  const Case cases[] = {
      // IVFL: the first row number (after pad, offsets) repeated in place of the second.
      {"IVF4,PQ2x8", fourcc("IVFL"), [](uint8_t* p, size_t) {
         uint32_t pad;
         std::memcpy(&pad, p, 4);
         size_t at = 4 + pad + 8 + 5 * 8;  // offsets of 4 lists
         std::memcpy(&pad, p + at, 4);
         at += 4 + pad + 8;
         std::memcpy(p + at + 4, p + at, 4);
       }},
      // Fast-scan: a padding nibble of the last block set.
      {"PQ3x4fs", fourcc("FSCN"), [](uint8_t* p, size_t size) { p[size - 1] = 0x10; }},
      {"IVF4,PQ3x4fs", fourcc("IVFL"), [](uint8_t* p, size_t size) { p[size - 1] = 0x10; }},
      // A category below -1.
      {"PQ2x8", fourcc("CATS"), [](uint8_t* p, size_t size) { std::memset(p + size - 4, 0xF0, 4); }},
      // next id not after the largest id.
      {"Flat", fourcc("META"), [](uint8_t* p, size_t size) { std::memset(p + size - 8, 0, 8); }},
      // A repeated id within one file.
      {"Flat", fourcc("IDS "), [](uint8_t* p, size_t size) { std::memcpy(p + size - 8, p + size - 16, 8); }},
  };
  for (const Case& c : cases) {
    const auto codebook = trained(c.spec, d, n, x.data(), Metric::L2);
    auto a = copy_of(*codebook), b = copy_of(*codebook);
    a->add(150, x.data(), ids.data(), cats.data(), false, 0);
    b->add(150, &x[150 * d], &ids[150], cats.data(), false, 0);
    write_file_atomic(good, a->serialize());
    const std::vector<uint8_t> forged = forge(b->serialize(), c.tag, c.mutate);
    write_file_atomic(bad, forged);
    CHECK_THROWS_CODE(Index::deserialize(owned_bytes(forged), false), Corrupt);
    try {
      merge_index_files({good, bad}, out);
      CHECK_MSG(false, c.spec << ": the forged file was merged");
    } catch (const Error& e) {
      CHECK_MSG(e.code() == ErrorCode::Corrupt && std::string(e.what()).find("files[1]") != std::string::npos,
                c.spec << ": " << e.what());
    }
  }
  std::remove(good.c_str());
  std::remove(bad.c_str());
  std::remove(out.c_str());
}
