// The C interface encode_ab.cpp loads from each build of the core: compiled with that build's headers and linked
// with its static library into one shared object per build (bench/encode-ab.sh), so that two builds can be timed
// in one process. Every call catches what the core throws and reports it on stderr.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <vector>

#include "index.h"
#include "spec.h"

using namespace quiver;

extern "C" {

// Trains `spec` on x (n × dim) with `seed` and all threads; returns its serialized state (malloc'd, *size bytes;
// free with qv_free) or null.
uint8_t* qv_train(const char* spec, size_t dim, size_t n, const float* x, uint64_t seed, size_t* size) {
  try {
    std::unique_ptr<Quantizer> codec = make_codec(spec, dim);
    TrainContext ctx;
    ctx.seed = seed;
    codec->train(n, x, ctx);
    const std::vector<uint8_t> bytes = serialize_codec(*codec);
    uint8_t* out = static_cast<uint8_t*>(std::malloc(bytes.size()));
    if (!out) return nullptr;
    std::memcpy(out, bytes.data(), bytes.size());
    *size = bytes.size();
    return out;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qv_train(%s): %s\n", spec, e.what());
    return nullptr;
  }
}

void qv_free(void* bytes) { std::free(bytes); }

// A codec from serialized state (owned by the caller; release with qv_release), or null.
void* qv_load(const uint8_t* bytes, size_t size) {
  try {
    return deserialize_codec(bytes, size).release();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qv_load: %s\n", e.what());
    return nullptr;
  }
}

void qv_release(void* codec) { delete static_cast<Quantizer*>(codec); }

size_t qv_code_size(void* codec) { return static_cast<Quantizer*>(codec)->code_size(); }

// Encodes n rows of x on one thread into codes (n × qv_code_size bytes); false if the core threw.
bool qv_encode(void* codec, size_t n, const float* x, uint8_t* codes) {
  try {
    static_cast<Quantizer*>(codec)->encode(n, x, codes, 1);
    return true;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qv_encode: %s\n", e.what());
    return false;
  }
}

}  // extern "C"
