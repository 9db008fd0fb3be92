// GPU benchmark (issue #8): ADC scan throughput with top-k over ≥ 10 M codes, encoding throughput, k-means time
// and IVF search QPS against recall on real data, each beside the CPU path on the same machine.
//
// Usage: quiver_gpu_bench [--codes N] [--sift DIR] [--fashion DIR] [--out FILE] [--quick]
//   --sift DIR     folder with bigann10k_heldout_{base,query}.bvecs and _groundtruth.ivecs (default data/bigann10k)
//   --fashion DIR  folder with train-images-idx3-ubyte (raw idx, 60 000 × 784 uint8), queries.u8 (nq × 784 uint8)
//                  and groundtruth.ivecs (their 100 nearest training images); skipped when absent
// Prints Markdown tables (and writes them to --out). Timings: scans by CUDA events (median of repeats, after a
// warm-up); everything else by the host clock around complete calls (uploads and downloads included).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "../cuda_api.h"
#include "gpu.h"
#include "index.h"
#include "kmeans.h"
#include "random.h"
#include "spec.h"
#include "thread_pool.h"

using namespace quiver;

namespace {

std::ostringstream report;

void out(const std::string& line) {
  std::cout << line << "\n" << std::flush;
  report << line << "\n";
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string fmt(double v, int precision = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, v);
  return buf;
}

// TEXMEX files: per vector an int32 dimension, then that many elements of T (uint8 for .bvecs, int32 for .ivecs).
template <typename T, typename Out>
bool read_vecs(const std::string& path, std::vector<Out>* v, size_t* n, size_t* d) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  v->clear();
  *n = 0;
  for (;;) {
    int32_t dim;
    if (!in.read(reinterpret_cast<char*>(&dim), 4)) break;
    std::vector<T> row(static_cast<size_t>(dim));
    in.read(reinterpret_cast<char*>(row.data()), std::streamsize(dim * sizeof(T)));
    v->insert(v->end(), row.begin(), row.end());
    *d = size_t(dim);
    ++*n;
  }
  return *n > 0;
}

bool read_bvecs(const std::string& path, std::vector<float>* v, size_t* n, size_t* d) {
  return read_vecs<uint8_t>(path, v, n, d);
}

bool read_ivecs(const std::string& path, std::vector<int32_t>* v, size_t* n, size_t* d) {
  return read_vecs<int32_t>(path, v, n, d);
}

bool read_u8(const std::string& path, size_t skip, size_t d, std::vector<float>* v, size_t* n) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < skip) return false;
  *n = (bytes.size() - skip) / d;
  v->resize(*n * d);
  for (size_t i = 0; i < *n * d; ++i) (*v)[i] = float(uint8_t(bytes[skip + i]));
  return *n > 0;
}

struct Dataset {
  std::string name;
  std::vector<float> base, queries;
  std::vector<int32_t> gt;
  size_t n = 0, nq = 0, d = 0, gt_k = 0;
};

double recall_at(const Dataset& ds, const std::vector<int64_t>& ids, size_t k) {
  size_t hits = 0;
  for (size_t q = 0; q < ds.nq; ++q)
    for (size_t j = 0; j < k; ++j) {
      const int64_t id = ids[q * k + j];
      for (size_t t = 0; t < k; ++t)
        if (ds.gt[q * ds.gt_k + t] == id) {
          ++hits;
          break;
        }
    }
  return double(hits) / double(ds.nq * k);
}

void bench_scan(size_t n) {
  out("");
  out("### ADC scan with top-k, " + std::to_string(n / 1000000) + " M random codes, float32 tables in shared memory");
  out("");
  out("| M | queries | k | threads/block | queries per block | median ms | G code-evals/s | target |");
  out("|---|---|---|---|---|---|---|---|");
  for (size_t m : {size_t(8), size_t(16)}) {
    std::unique_ptr<cuda::ResidentCodes> codes = cuda::random_resident_codes(n, m, 42 + m);
    for (size_t nq : {size_t(32), size_t(128)}) {
      Rng rng(7 + nq);
      std::vector<float> luts(nq * m * 256);
      for (float& v : luts) v = float(rng.uniform() * 1000.0);
      for (size_t k : {size_t(10), size_t(100)})
      for (int threads : {0, 256, 512, 1024}) {
        std::vector<int64_t> rows(nq * k);
        std::vector<float> scores(nq * k);
        const cuda::ScanTiming t =
            cuda::time_adc_scan(*codes, nq, luts.data(), k, 7, rows.data(), scores.data(), threads);
        // Sanity: every query got k sorted, valid rows.
        bool ok = true;
        for (size_t q = 0; q < nq; ++q)
          for (size_t j = 0; j < k; ++j) {
            ok &= rows[q * k + j] >= 0 && size_t(rows[q * k + j]) < n;
            if (j) ok &= scores[q * k + j] >= scores[q * k + j - 1];
          }
        const double rate = double(n) * double(nq) / (t.median_ms * 1e-3) / 1e9;
        out("| " + std::to_string(m) + " | " + std::to_string(nq) + " | " + std::to_string(k) + " | " +
            (threads == 0 ? "**default** " : "") + std::to_string(t.threads) + " | " + std::to_string(t.queries_per_block) + " | " + fmt(t.median_ms) + " | " + fmt(rate, 1) + (ok ? "" : " (INVALID)") +
            " | " + (m == 8 ? "≥ 250" : "≥ 130") + " |");
      }
    }
  }
}

void bench_kmeans_and_encoding(const Dataset& ds) {
  out("");
  out("### Training and encoding on " + ds.name + " (" + std::to_string(ds.n) + " × " + std::to_string(ds.d) +
      "), GPU vs this machine's CPU (" + std::to_string(effective_threads(0)) + " threads)");
  out("");
  out("| work | CPU s | GPU s | speed-up | check |");
  out("|---|---|---|---|---|");
  {
    // k-means, k = 1024, 10 iterations, no subsampling: identical work on both paths.
    TrainContext ctx;
    ctx.iterations = 10;
    ctx.max_points_per_centroid = 0;
    auto t0 = std::chrono::steady_clock::now();
    const KMeansResult cpu = kmeans(ds.n, ds.d, ds.base.data(), 1024, ctx);
    const double tc = seconds_since(t0);
    ctx.device = Device::Cuda;
    t0 = std::chrono::steady_clock::now();
    const KMeansResult gpu = kmeans(ds.n, ds.d, ds.base.data(), 1024, ctx);
    const double tg = seconds_since(t0);
    out("| k-means k=1024, 10 iterations | " + fmt(tc) + " | " + fmt(tg) + " | " + fmt(tc / tg, 1) + "× | MSE CPU " +
        fmt(cpu.mse, 1) + ", GPU " + fmt(gpu.mse, 1) + " |");
  }
  for (const char* spec : {"PQ16x8", "PQ56x8", "RQ8x8", "RQ8x8,beam=8"}) {
    std::unique_ptr<Quantizer> codec = make_codec(spec, ds.d);
    TrainContext ctx;
    ctx.iterations = 10;
    ctx.device = Device::Cuda;
    {
      const DeviceScope scope(Device::Cuda);
      codec->train(std::min<size_t>(ds.n, 20000), ds.base.data(), ctx);
    }
    const size_t cs = codec->code_size();
    std::vector<uint8_t> cpu(ds.n * cs), gpu(ds.n * cs);
    // Medians of 5 complete calls each: a single host-clock sample of a 0.05 s call moved 2× between runs.
    const auto median_seconds = [&](uint8_t* codes) {
      std::vector<double> times;
      for (int rep = 0; rep < 5; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        codec->encode(ds.n, ds.base.data(), codes, 0);
        times.push_back(seconds_since(t0));
      }
      std::nth_element(times.begin(), times.begin() + 2, times.end());
      return times[2];
    };
    const double tc = median_seconds(cpu.data());
    double tg;
    {
      const DeviceScope scope(Device::Cuda);
      codec->encode(std::min<size_t>(ds.n, 1000), ds.base.data(), gpu.data(), 0);  // warm-up
      tg = median_seconds(gpu.data());
    }
    size_t same = 0;
    for (size_t i = 0; i < ds.n; ++i) same += std::memcmp(&cpu[i * cs], &gpu[i * cs], cs) == 0;
    out(std::string("| encode ") + spec + " (" + fmt(ds.n / tg / 1e6, 2) + " M vectors/s on GPU) | " + fmt(tc) + " | " +
        fmt(tg) + " | " + fmt(tc / tg, 1) + "× | codes equal " + fmt(100.0 * same / ds.n, 2) + "% |");
  }
}

void bench_ivf(const Dataset& ds, const std::string& spec, const std::vector<size_t>& nprobes) {
  out("");
  out("### " + spec + " on " + ds.name + ": QPS against 10-recall@10 (" + std::to_string(ds.nq) +
      " queries in one batch)");
  out("");
  std::unique_ptr<Index> index = make_index(spec, ds.d, Metric::L2);
  TrainContext ctx;
  ctx.iterations = 15;
  ctx.device = Device::Cuda;
  auto t0 = std::chrono::steady_clock::now();
  index->train(ds.n, ds.base.data(), ctx);
  {
    const DeviceScope scope(Device::Cuda);
    index->add(ds.n, ds.base.data(), nullptr, 0);
  }
  out("build on the GPU (train + add): " + fmt(seconds_since(t0), 2) + " s");
  out("");
  out("| nprobe | recall CPU | recall GPU | CPU QPS (" + std::to_string(effective_threads(0)) +
      " threads) | GPU QPS | GPU ÷ CPU |");
  out("|---|---|---|---|---|---|");
  const size_t k = 10;
  for (size_t nprobe : nprobes) {
    SearchParams params;
    params.nprobe = nprobe;
    std::vector<int64_t> ids(ds.nq * k);
    std::vector<float> dist(ds.nq * k);
    auto run = [&](Device device, int repeats) {
      params.device = device;
      index->search(ds.nq, ds.queries.data(), k, params, ids.data(), dist.data());  // warm-up (GPU upload)
      std::vector<double> times;
      for (int r = 0; r < repeats; ++r) {
        const auto s = std::chrono::steady_clock::now();
        index->search(ds.nq, ds.queries.data(), k, params, ids.data(), dist.data());
        times.push_back(seconds_since(s));
      }
      std::sort(times.begin(), times.end());
      return times[times.size() / 2];
    };
    const double tc = run(Device::Cpu, 3);
    const double rc = recall_at(ds, ids, k);
    const double tg = run(Device::Cuda, 5);
    const double rg = recall_at(ds, ids, k);
    out("| " + std::to_string(nprobe) + " | " + fmt(rc) + " | " + fmt(rg) + " | " + fmt(ds.nq / tc, 0) + " | " +
        fmt(ds.nq / tg, 0) + " | " + fmt(tc / tg, 1) + "× |");
  }
}

}  // namespace

int main(int argc, char** argv) {
  size_t codes = 10000000;
  std::string sift_dir = "data/bigann10k", fashion_dir, out_file;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--codes") codes = std::stoull(next());
    else if (a == "--sift") sift_dir = next();
    else if (a == "--fashion") fashion_dir = next();
    else if (a == "--out") out_file = next();
    else if (a == "--quick") quick = true;
    else {
      std::cerr << "unknown argument " << a << "\n";
      return 2;
    }
  }
  try {
    const GpuStatus s = gpu_status();
    if (!s.available) {
      std::cout << "no usable GPU: " << s.reason << "\n";
      return 0;
    }
    out("## GPU benchmark: " + s.name + " (" + std::to_string(s.total_memory >> 20) + " MiB, compute " +
        std::to_string(s.major) + "." + std::to_string(s.minor) + ", " + std::to_string(s.multiprocessors) +
        " SMs; CUDA runtime " + std::to_string(s.runtime_version) + ", driver " + std::to_string(s.driver_version) +
        "); CPU threads " + std::to_string(effective_threads(0)));
    bench_scan(codes);

    Dataset sift;
    sift.name = "SIFT slice (bigann10k held-out)";
    size_t gd = 0, qd = 0, gn = 0;
    if (read_bvecs(sift_dir + "/bigann10k_heldout_base.bvecs", &sift.base, &sift.n, &sift.d) &&
        read_bvecs(sift_dir + "/bigann10k_heldout_query.bvecs", &sift.queries, &sift.nq, &qd) &&
        read_ivecs(sift_dir + "/bigann10k_heldout_groundtruth.ivecs", &sift.gt, &gn, &gd)) {
      sift.gt_k = gd;
      bench_ivf(sift, "IVF64,PQ16x8", {1, 4, 16, 64});
    } else {
      out("(SIFT slice not found in " + sift_dir + ": skipped)");
    }

    Dataset fashion;
    fashion.name = "Fashion-MNIST";
    fashion.d = 784;
    size_t fq = 0;
    if (!fashion_dir.empty() &&
        read_u8(fashion_dir + "/train-images-idx3-ubyte", 16, 784, &fashion.base, &fashion.n) &&
        read_u8(fashion_dir + "/queries.u8", 0, 784, &fashion.queries, &fq) &&
        read_ivecs(fashion_dir + "/groundtruth.ivecs", &fashion.gt, &gn, &gd)) {
      fashion.nq = std::min(fq, gn);
      fashion.queries.resize(fashion.nq * 784);
      fashion.gt_k = gd;
      bench_kmeans_and_encoding(fashion);
      if (!quick) bench_ivf(fashion, "IVF1024,PQ56x8", {1, 4, 16, 64});
    } else {
      out("(Fashion-MNIST not found: kmeans/encoding/IVF on it skipped)");
      if (sift.n) bench_kmeans_and_encoding(sift);
    }
  } catch (const std::exception& e) {
    std::cerr << "benchmark failed: " << e.what() << "\n";
    if (!out_file.empty()) std::ofstream(out_file) << report.str() << "\nFAILED: " << e.what() << "\n";
    return 1;
  }
  if (!out_file.empty()) std::ofstream(out_file) << report.str();
  return 0;
}
