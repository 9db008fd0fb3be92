// Encoding time of two builds of the core in one process, one thread: each spec is trained once (by build A,
// seed 1, on the first --train images), loaded into both builds from the same serialized state, and the two
// encode the next --count images in alternating rounds (the order flips every round), so that the machine's
// drift falls on both alike. Reports the best and median run of each, their ratio, each build's ratio to the
// first spec's time (the reference, e.g. PQ16x8) and whether both builds wrote the same codes.
//
// Build and run through bench/encode-ab.sh (it builds the two revisions' cores as shared objects with
// encode_ab_shim.cpp):
//   bench/encode-ab.sh <rev A> <rev B> [--reps N] [--train N] [--count N] spec…
// Direct use: encode_ab A.so B.so IMAGES [--reps N] [--train N] [--count N] spec…  where IMAGES is an
// uncompressed idx3 image file (Fashion-MNIST's train-images-idx3-ubyte).
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

struct Build {
  std::string path;
  uint8_t* (*train)(const char*, size_t, size_t, const float*, uint64_t, size_t*);
  void (*free_bytes)(void*);
  void* (*load)(const uint8_t*, size_t);
  void (*release)(void*);
  size_t (*code_size)(void*);
  bool (*encode)(void*, size_t, const float*, uint8_t*);
};

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "encode_ab: %s\n", message.c_str());
  std::exit(2);
}

template <typename F>
void bind(void* handle, const char* name, F& out) {
  void* symbol = dlsym(handle, name);
  if (!symbol) fail(std::string("missing ") + name);
  out = reinterpret_cast<F>(symbol);
}

Build open_build(const std::string& path) {
  // RTLD_DEEPBIND: each object resolves the core's symbols to its own copy, not to the first build's.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (!handle) fail(dlerror());
  Build b;
  b.path = path;
  bind(handle, "qv_train", b.train);
  bind(handle, "qv_free", b.free_bytes);
  bind(handle, "qv_load", b.load);
  bind(handle, "qv_release", b.release);
  bind(handle, "qv_code_size", b.code_size);
  bind(handle, "qv_encode", b.encode);
  return b;
}

// The first `count` images of an uncompressed idx3 file (big-endian header: magic 0x803, count, rows, cols).
std::vector<float> read_idx3(const std::string& path, size_t count, size_t& dim) {
  std::ifstream in(path, std::ios::binary);
  unsigned char header[16];
  if (!in.read(reinterpret_cast<char*>(header), 16)) fail(path + ": cannot read an idx3 header");
  const auto be32 = [&](int at) {
    return uint32_t(header[at]) << 24 | uint32_t(header[at + 1]) << 16 | uint32_t(header[at + 2]) << 8 | header[at + 3];
  };
  if (be32(0) != 0x803) fail(path + ": not an idx3 image file");
  dim = size_t(be32(8)) * be32(12);
  if (be32(4) < count) fail(path + ": holds " + std::to_string(be32(4)) + " images, " + std::to_string(count) + " needed");
  std::vector<unsigned char> pixels(count * dim);
  if (!in.read(reinterpret_cast<char*>(pixels.data()), std::streamsize(pixels.size()))) fail(path + ": truncated");
  return std::vector<float>(pixels.begin(), pixels.end());
}

double seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

size_t count_option(const char* value, const char* name) {
  char* end = nullptr;
  const long long v = std::strtoll(value, &end, 10);
  if (!*value || *end || v < 1 || v > 10000000) fail(std::string(name) + " wants a positive integer, got " + value);
  return size_t(v);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) fail("usage: encode_ab A.so B.so IMAGES [--reps N] [--train N] [--count N] spec…");
  size_t reps = 15, train = 10000, count = 5000;
  std::vector<std::string> specs;
  for (int a = 4; a < argc; ++a) {
    const std::string arg = argv[a];
    if ((arg == "--reps" || arg == "--train" || arg == "--count") && a + 1 < argc) {
      const size_t v = count_option(argv[++a], arg.c_str());
      (arg == "--reps" ? reps : arg == "--train" ? train : count) = v;
    } else {
      specs.push_back(arg);
    }
  }
  if (specs.empty()) fail("no specs given");
  const Build builds[2] = {open_build(argv[1]), open_build(argv[2])};
  size_t dim = 0;
  const std::vector<float> images = read_idx3(argv[3], train + count, dim);
  const float* rows = images.data() + train * dim;

  struct Row {
    std::string spec;
    std::vector<double> runs[2];
    bool same = false;
  };
  std::vector<Row> table;
  for (const std::string& spec : specs) {
    std::fprintf(stderr, "%s: training…\n", spec.c_str());
    size_t size = 0;
    uint8_t* state = builds[0].train(spec.c_str(), dim, train, images.data(), 1, &size);
    if (!state) fail(spec + ": training failed");
    void* codecs[2] = {builds[0].load(state, size), builds[1].load(state, size)};
    builds[0].free_bytes(state);
    if (!codecs[0] || !codecs[1]) fail(spec + ": a build could not load the trained state");
    Row row;
    row.spec = spec;
    std::vector<uint8_t> codes[2];
    for (int b = 0; b < 2; ++b) codes[b].resize(count * builds[b].code_size(codecs[b]));
    for (size_t r = 0; r < reps; ++r)
      for (int i = 0; i < 2; ++i) {
        const int b = (r % 2 == 0) ? i : 1 - i;
        const double start = seconds();
        if (!builds[b].encode(codecs[b], count, rows, codes[b].data())) fail(spec + ": encoding failed");
        row.runs[b].push_back(seconds() - start);
      }
    row.same = codes[0] == codes[1];
    for (int b = 0; b < 2; ++b) builds[b].release(codecs[b]);
    table.push_back(row);
  }

  std::printf("Encoding %zu images (d = %zu) on one thread, trained on the first %zu, seed 1; %zu rounds alternating "
              "A and B. A = %s, B = %s.\n\n",
              count, dim, train, reps, builds[0].path.c_str(), builds[1].path.c_str());
  std::printf("| spec | A µs/vector (best) | B µs/vector (best) | A vs %s | B vs %s | B/A best | B/A median | same codes |\n",
              specs[0].c_str(), specs[0].c_str());
  std::printf("|---|---:|---:|---:|---:|---:|---:|---|\n");
  const auto best = [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); };
  for (const Row& row : table) {
    const double a = best(row.runs[0]), b = best(row.runs[1]);
    std::printf("| %s | %.1f | %.1f | %.2f× | %.2f× | %.3f | %.3f | %s |\n", row.spec.c_str(), a / count * 1e6,
                b / count * 1e6, a / best(table[0].runs[0]), b / best(table[0].runs[1]), b / a,
                median(row.runs[1]) / median(row.runs[0]), row.same ? "yes" : "NO");
  }
  return 0;
}
