// SPLIT<P>,<codec> (split.h): each part is its codec on its columns, round trips, ADC against the decoded
// vectors, persistence, use in indexes, hostile state and spec errors.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "error.h"
#include "index.h"
#include "io.h"
#include "spec.h"
#include "split.h"
#include "test_codecs.h"
#include "test_util.h"

using namespace quiver;

namespace {

// n × d vectors whose halves differ in scale and offset (so that parts trained on the wrong columns would show).
std::vector<float> uneven_data(size_t n, size_t d, uint64_t seed) {
  std::vector<float> x = qvtest::random_floats(n * d, seed);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) x[i * d + j] = x[i * d + j] * (j < d / 2 ? 10.0f : 2.0f) + float(j % 5);
  return x;
}

std::unique_ptr<Quantizer> trained(const std::string& spec, size_t d, size_t n, const float* x, uint64_t seed = 1234) {
  auto codec = make_codec(spec, d);
  TrainContext ctx;
  ctx.iterations = 8;
  ctx.seed = seed;
  codec->train(n, x, ctx);
  return codec;
}

// The columns [offset, offset + width) of x (n × d).
std::vector<float> columns(const std::vector<float>& x, size_t n, size_t d, size_t offset, size_t width) {
  std::vector<float> out(n * width);
  for (size_t i = 0; i < n; ++i) std::memcpy(&out[i * width], &x[i * d + offset], width * sizeof(float));
  return out;
}

}  // namespace

TEST_CASE("split: each part is its own codec on its columns (uneven cut); decoding and ADC sum the parts") {
  const size_t n = 700, d = 20;  // parts of 7, 7 and 6 dimensions; 700 rows span three 256-row scan blocks
  const std::vector<float> x = uneven_data(n, d, 3);
  const auto codec = trained("SPLIT3,PQ2x5", d, n, x.data());
  CHECK(codec->spec() == "SPLIT3,PQ2x5");
  const auto& split = static_cast<const SplitQuantizer&>(*codec);
  CHECK(split.parts() == 3 && split.part_dim(0) == 7 && split.part_dim(1) == 7 && split.part_dim(2) == 6);
  CHECK(split.part_offset(2) == 14);
  const size_t pcs = make_codec("PQ2x5", 7)->code_size();
  CHECK(codec->code_size() == 3 * pcs);
  std::vector<uint8_t> codes;
  const std::vector<float> decoded = qvtest::round_trip(*codec, n, x.data(), &codes);
  // Part p is trained like a codec of its own on its columns with the seed 1234 + 7919 (p + 1): same codes,
  // same reconstruction of those columns.
  for (size_t p = 0; p < 3; ++p) {
    const size_t dp = split.part_dim(p), off = split.part_offset(p);
    const std::vector<float> part_x = columns(x, n, d, off, dp);
    const auto alone = trained("PQ2x5", dp, n, part_x.data(), 1234 + 7919 * (p + 1));
    std::vector<uint8_t> part_codes;
    const std::vector<float> part_decoded = qvtest::round_trip(*alone, n, part_x.data(), &part_codes);
    size_t code_mismatches = 0, value_mismatches = 0;
    for (size_t i = 0; i < n; ++i) {
      if (std::memcmp(&codes[i * codec->code_size() + p * pcs], &part_codes[i * pcs], pcs) != 0) ++code_mismatches;
      for (size_t j = 0; j < dp; ++j)
        if (decoded[i * d + off + j] != part_decoded[i * dp + j]) ++value_mismatches;
    }
    CHECK_MSG(code_mismatches == 0 && value_mismatches == 0,
              "part " << p << ": " << code_mismatches << " codes and " << value_mismatches << " values differ");
  }
  // ADC: the sum of the parts' scores is the distance to the whole reconstruction (L2 and inner product).
  const std::vector<float> queries = qvtest::random_floats(2 * d, 9);
  qvtest::check_adc_matches_decoded(*codec, n, codes, decoded, queries.data(), 1e-5);
  qvtest::check_adc_matches_decoded(*codec, n, codes, decoded, x.data() + 5 * d, 1e-5);
  // Splitting pays where the parts differ: three codes of 10 bits beat one of PQ2x5's 10 bits by far.
  const auto single = trained("PQ2x5", d, n, x.data());
  std::vector<uint8_t> single_codes;
  const double err_single = qvtest::mean_squared_error(x, qvtest::round_trip(*single, n, x.data(), &single_codes), n);
  const double err_split = qvtest::mean_squared_error(x, decoded, n);
  CHECK_MSG(err_split < 0.8 * err_single, "SPLIT3,PQ2x5 MSE " << err_split << " against PQ2x5's " << err_single);
}

TEST_CASE("split: wraps PCA, RQ and TRQ; save and load give the same codes; exhaustive and IVF indexes search") {
  const size_t n = 1500, d = 24;
  const std::vector<float> x = uneven_data(n, d, 5);
  for (const char* spec : {"SPLIT2,PCA8,TRQ3x5,beam=2,sub=4", "SPLIT2,RQ3x5,beam=2,norm=u8", "SPLIT4,PCA4,PQ2x4"}) {
    const auto codec = trained(spec, d, n, x.data());
    CHECK(codec->spec() == spec);
    std::vector<uint8_t> codes;
    const std::vector<float> decoded = qvtest::round_trip(*codec, n, x.data(), &codes);
    // One thread gives the codes all threads give.
    std::vector<uint8_t> one_thread(codes.size());
    codec->encode(n, x.data(), one_thread.data(), 1);
    CHECK_MSG(one_thread == codes, spec << ": codes depend on the thread count");
    const std::vector<uint8_t> saved = serialize_codec(*codec);
    const auto loaded = deserialize_codec(saved.data(), saved.size());
    CHECK(loaded->spec() == spec && same_codec_state(*codec, *loaded));
    std::vector<uint8_t> again(codes.size());
    loaded->encode(n, x.data(), again.data(), 0);
    CHECK_MSG(again == codes, spec << ": codes differ after a save and load");
    const double abs_tol = std::string(spec).find("u8") != std::string::npos ? 50.0 : 0.0;  // the u8 norms' error
    qvtest::check_adc_matches_decoded(*loaded, 300, codes, decoded, x.data() + 11 * d, 1e-5, abs_tol);
  }
  for (const char* spec : {"SPLIT2,RQ2x6", "IVF4,SPLIT2,PQ2x4", "SPLIT2,PCA6,RQ2x6,Refine"}) {
    const auto index = qvtest::filled_index(spec, d, n, x.data());
    CHECK(index->spec() == spec);
    std::vector<int64_t> labels(5);
    std::vector<float> distances(5);
    SearchParams params;
    params.nprobe = 4;
    index->search(1, x.data() + 3 * d, 5, params, labels.data(), distances.data());
    std::vector<float> decoded(d);
    index->reconstruct(labels[0], decoded.data());
    double exact = 0;
    for (size_t j = 0; j < d; ++j) exact += std::pow(double(x[3 * d + j]) - decoded[j], 2);
    // With Refine the score is the exact distance to the stored vector; otherwise to the reconstruction.
    if (std::string(spec).find("Refine") == std::string::npos) CHECK_NEAR(distances[0], exact, 1e-3 * (exact + 1));
    CHECK_MSG(labels[0] >= 0 && distances[0] <= distances[4], spec << ": results not ordered");
  }
}

TEST_CASE("split: hostile state is Corrupt; bad specs say what was expected") {
  const size_t d = 8;
  const std::vector<float> x = uneven_data(300, d, 7);
  const auto good = trained("SPLIT2,PQ2x4", d, 300, x.data());
  const auto& split = static_cast<const SplitQuantizer&>(*good);
  for (int variant = 0; variant < 3; ++variant) {
    ByteWriter state;
    state.u32(variant == 0 ? 3 : 2);  // variant 0: a part count that is not the spec's
    split.part(0).save_state(state);
    if (variant != 1) split.part(1).save_state(state);  // variant 1: the second part missing
    std::vector<uint8_t> bytes = state.bytes();
    if (variant == 2) bytes.resize(bytes.size() - 3);  // variant 2: truncated
    auto fresh = make_codec("SPLIT2,PQ2x4", d);
    ByteReader in(bytes.data(), bytes.size(), "test");
    CHECK_THROWS_CODE(fresh->load_state(in), Corrupt);
  }
  for (const char* spec : {"SPLIT0,PQ2x4", "SPLIT9,PQ1x4", "SPLIT2", "SPLIT2,SPLIT2,PQ1x4", "SPLIT2,iters=2,PQ2x4",
                           "SPLIT,PQ2x4", "SPLIT2x2,PQ2x4", "SPLIT2,PQ2x4fs", "SPLIT2,Flat", "SPLIT2,PCA5,PQ1x4",
                           "PCA4,SPLIT2,SPLIT2,PQ1x4"})
    CHECK_THROWS_CODE(make_codec(spec, d), InvalidArgument);
  try {
    make_codec("SPLIT9,PQ1x4", d);
    CHECK_MSG(false, "SPLIT9 on d = 8 was accepted");
  } catch (const Error& e) {
    CHECK_MSG(std::string(e.what()).find("between 1 and 8 parts") != std::string::npos, e.what());
  }
  try {
    make_codec("SPLIT2,PCA5,PQ1x4", d);  // parts of 4 dimensions cannot keep 5
    CHECK_MSG(false, "PCA5 on parts of 4 dimensions was accepted");
  } catch (const Error& e) {
    CHECK_MSG(std::string(e.what()).find("between 1 and d = 4") != std::string::npos, e.what());
  }
  // A split of a PCA of the whole vector is a valid spec (and PCA inside each part too).
  CHECK(make_codec("PCA6,SPLIT2,PQ1x4", d)->spec() == "PCA6,SPLIT2,PQ1x4");
}
