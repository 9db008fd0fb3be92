// libFuzzer target for the loaders: any byte string given to Index::deserialize or deserialize_codec must either
// load or throw quiver::Error — never crash, hang, read out of bounds (ASan) or hit undefined behaviour (UBSan).
// Build and run: scripts/fuzz-loader.sh [seconds].
#include <cstdint>
#include <vector>

#include "error.h"
#include "index.h"
#include "io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto index = quiver::Index::deserialize(quiver::owned_bytes(std::vector<uint8_t>(data, data + size)), false);
    // A file that loads must also be searchable and re-serialisable.
    std::vector<float> query(index->dim(), 0.5f);
    std::vector<int64_t> labels(3);
    std::vector<float> distances(3);
    quiver::SearchParams params;
    params.threads = 1;
    index->search(1, query.data(), 3, params, labels.data(), distances.data());
    index->serialize();
  } catch (const quiver::Error&) {
  }
  try {
    auto codec = quiver::deserialize_codec(data, size);
    std::vector<float> x(codec->dim(), 0.25f);
    std::vector<uint8_t> code(codec->code_size());
    codec->encode(1, x.data(), code.data(), 1);
    codec->decode(1, code.data(), x.data(), 1);
  } catch (const quiver::Error&) {
  }
  return 0;
}
