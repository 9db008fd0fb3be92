// Codec benchmark on the SIFT slice (9 900 × 128): reconstruction MSE on the training set (what an index over
// these vectors sees) and on held-out vectors (trained on rows 0 … 8 899, measured on rows 8 900 … 9 899),
// training time, encoding time (best of 3 runs with all threads, wall clock; best of 5 on one thread, in
// that thread's CPU time so a busy machine does not inflate it) and encoding time relative to
// the first plain PQ spec listed (PQ8x8 by default). Heavy by design: it is not part of the test suite.
//
// Build (after the CMake build of the core):
//   g++ -O3 -std=c++17 -Inative/core -Inative/tests bench/cpp/codecs.cpp build/cpp/libquiver_core.a
//       -lpthread -o build/cpp/bench_codecs
// Run from the repository root (QUIVER_DATA_DIR overrides ../shared/data):
//   ./build/cpp/bench_codecs [--iters N] [--no-heldout] [spec …]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <time.h>

#include "simd.h"
#include "spec.h"
#include "test_data.h"
#include "thread_pool.h"

using namespace quiver;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double mse(const Quantizer& q, size_t n, const float* x) {
  std::vector<uint8_t> codes(n * q.code_size());
  std::vector<float> rec(n * q.dim());
  q.encode(n, x, codes.data(), 0);
  q.decode(n, codes.data(), rec.data(), 0);
  double s = 0;
  for (size_t i = 0; i < n * q.dim(); ++i) s += double(x[i] - rec[i]) * (x[i] - rec[i]);
  return s / double(n);
}

// CPU time of the calling thread: with threads = 1 the encoder runs on it alone, and unlike wall time this
// does not count the time other processes of a shared machine hold the core.
double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Best of `rounds` runs: wall time with all threads, or the thread's CPU time with one.
double best_encode_seconds(const Quantizer& q, size_t n, const float* x, int threads, int rounds) {
  std::vector<uint8_t> codes(n * q.code_size());
  double best = 1e30;
  for (int round = 0; round < rounds; ++round) {
    const double start = threads == 1 ? thread_cpu_seconds() : now();
    q.encode(n, x, codes.data(), threads);
    best = std::min(best, (threads == 1 ? thread_cpu_seconds() : now()) - start);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  TrainContext ctx;
  ctx.seed = 1;
  bool heldout = true;
  std::vector<std::string> specs;
  for (int a = 1; a < argc; ++a) {
    if (!std::strcmp(argv[a], "--iters") && a + 1 < argc) ctx.iterations = std::atoi(argv[++a]);
    else if (!std::strcmp(argv[a], "--no-heldout")) heldout = false;
    else specs.push_back(argv[a]);
  }
  if (specs.empty())
    specs = {"PQ8x8",          "OPQ8,PQ8x8",   "RQ8x8",          "RQ8x8,beam=4",       "RQ8x8,beam=8",
             "RQ8x8,beam=8,refit=2", "TRQ8x8", "TRQ8x8,beam=4",  "TRQ8x8,reg=0",       "RQ1x8,PQ14x4",
             "TRQ1x8,PQ14x4",  "PRQ2x4x8",     "PRQ2x4x8,beam=4"};
  std::vector<float> x;
  size_t n = 0, d = 0;
  if (!qvtest::load_sift_heldout_base(&x, &n, &d)) return 1;
  const size_t n_train = n - 1000;
  std::printf("SIFT slice %zu x %zu, %d Lloyd iterations, seed %llu, SIMD %s, %zu threads\n\n", n, d, ctx.iterations,
              (unsigned long long)ctx.seed, simd_level_name(simd_level()), effective_threads(0));
  // Encode times are compared with the first plain PQ spec of the list (PQ8x8 by default).
  std::string baseline = "PQ8x8";
  for (const std::string& spec : specs)
    if (spec.rfind("PQ", 0) == 0) {
      baseline = spec;
      break;
    }
  std::printf("| codec | bytes | MSE (base) | MSE (held-out) | train s | encode s | encode µs/vec, 1 thread (CPU) | encode vs %s |\n",
              baseline.c_str());
  std::printf("|---|---|---|---|---|---|---|---|\n");
  double pq_encode = 0;
  for (const std::string& spec : specs) {
    const auto codec = make_codec(spec, d);
    double start = now();
    codec->train(n, x.data(), ctx);
    const double train_s = now() - start;
    const double base = mse(*codec, n, x.data());
    const double enc = best_encode_seconds(*codec, n, x.data(), 0, 3);
    const double enc1 = best_encode_seconds(*codec, n, x.data(), 1, 5);
    if (spec == baseline) pq_encode = enc1;
    double held = 0;
    if (heldout) {
      const auto split = make_codec(spec, d);
      split->train(n_train, x.data(), ctx);
      held = mse(*split, n - n_train, x.data() + n_train * d);
    }
    std::printf("| %s | %zu | %.0f | %s | %.2f | %.3f | %.1f | %s |\n", codec->spec().c_str(), codec->code_size(), base,
                heldout ? std::to_string(int(held + 0.5)).c_str() : "-", train_s, enc, enc1 / double(n) * 1e6,
                pq_encode > 0 ? (std::to_string(enc1 / pq_encode).substr(0, 4) + "x").c_str() : "-");
    std::fflush(stdout);
  }
  return 0;
}
