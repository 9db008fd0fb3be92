// ADC scans with top-k on the device: exhaustive (a batch of queries over resident codes) and IVF (each query
// over its probed lists).
//
// Exhaustive scan layout. A block holds the look-up tables of QB queries in shared memory (QB ∈ {1, 2, 4, …, 32},
// as many as fit) and scans a contiguous chunk of rows; the grid is chunks × query groups. Inside a warp, lane =
// (query qi = lane mod QB, code slot ci = lane / QB): a warp loads 32 codes coalesced (one per lane) and then, in
// QB steps, each group of QB lanes takes one code by shuffle and adds up its QB queries' table entries. Table
// rows of consecutive queries are QB·(M·256) + 1 floats apart, so the QB lanes reading one code hit QB distinct
// banks: the look-ups are (nearly) conflict-free, unlike one-code-per-thread scans whose random sub-codes collide
// in banks. Padding sub-codes (M rounded up to whole 32-bit words) index table rows of zeros.
//
// Top-k. Each (block, query) keeps a pool of candidate keys in shared memory (cap ≥ k + 256 entries) and a
// threshold, the k-th best key so far. A lane appends a candidate only when it beats the threshold, so after the
// first tiles appends are rare. After every tile of 256 rows the block checks (one barrier, __syncthreads_or)
// whether some pool may overflow during the next tile; if so one warp per such query shrinks its pool to the k
// best by bisection on the key (warp_kth_key_split) and raises the threshold. At the end each pool is cut to k and
// written out; a second kernel selects each query's k best over all chunks' pools.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda_api.h"
#include "kernels.cuh"

namespace quiver {
namespace cuda {

struct ResidentCodes::Impl {
  DeviceBuffer<uint32_t> words;  // n × row_words
  size_t row_words = 0;          // code words (⌈m/4⌉) + 1 when has_norm
  size_t code_words = 0;         // ⌈m/4⌉
};

namespace {

// Threads per exhaustive-scan block (= rows per tile: one code per thread per tile). More warps per
// multiprocessor hide the shared-memory latency of the look-ups; the pools grow with the tile (cap = k + 2 tiles).
// Measured on an H100 (bench/results/gpu.md, run 3): 512 is best except for short codes (≤ 8 sub-codes) with
// k > 32, where 1024 threads with 8 queries per block beat 512 with 16 (258 against 216 G code-evals/s at
// M = 8, k = 100). QUIVER_GPU_SCAN_THREADS (256, 512 or 1024) overrides the choice, for experiments.
constexpr int kMaxScanThreads = 1024;
constexpr size_t kSharedBudget = 220 * 1024;
int g_scan_threads = 0;  // forced by time_adc_scan for one call; 0 = choose per call

int scan_threads(size_t words, size_t k) {
  if (g_scan_threads) return g_scan_threads;
  static const int forced = [] {
    const char* env = std::getenv("QUIVER_GPU_SCAN_THREADS");
    const int v = env ? std::atoi(env) : 0;
    return v == 256 || v == 512 || v == 1024 ? v : 0;
  }();
  if (forced) return forced;
  return words <= 2 && k > 32 ? 1024 : 512;
}

int shared_limit() {
  static int limit = [] {
    int device = 0, value = 0;
    if (cudaGetDevice(&device) != cudaSuccess || cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlockOptin,
                                                                       device) != cudaSuccess) {
      cudaGetLastError();
      return 48 * 1024;
    }
    return value;
  }();
  return limit;
}

__device__ __forceinline__ bool allowed(const uint64_t* allow, uint32_t row) {
  return !allow || ((allow[row >> 6] >> (row & 63)) & 1ull);
}

// Pool maintenance for one query by one warp: keep the k best keys, return the new threshold (k-th key) or
// kNoKey while fewer than k candidates exist.
__device__ __forceinline__ void shrink_pool(uint64_t* pool, int* count, uint64_t* threshold, int k) {
  const int n = *count;
  if (n < k) return;
  const uint64_t kth = warp_kth_key_split(pool, n, k);
  const int kept = warp_compact(pool, n, kth);
  if ((threadIdx.x & 31) == 0) {
    *count = kept;
    *threshold = kth;
  }
  __syncwarp();
}

template <int kWords, bool kNorm>
__global__ void __launch_bounds__(kMaxScanThreads, 1)
    adc_scan_kernel(const uint32_t* __restrict__ codes, uint32_t n, uint32_t chunk_rows, const float* __restrict__ luts,
                    const float* __restrict__ bias, int nq, int qb, int k, int cap, const uint64_t* __restrict__ allow,
                    uint64_t* __restrict__ pools, int* __restrict__ pool_counts) {
  constexpr int kRowWords = kWords + (kNorm ? 1 : 0);
  constexpr int kSubcodes = kWords * 4;
  constexpr int kTable = kSubcodes * 256;
  extern __shared__ __align__(16) unsigned char smem[];
  const int stride = kTable + 1;
  float* lut = reinterpret_cast<float*>(smem);
  uint64_t* pool = reinterpret_cast<uint64_t*>(smem + ((size_t(qb) * stride * 4 + 15) / 16) * 16);
  uint64_t* threshold = pool + size_t(qb) * cap;
  int* count = reinterpret_cast<int*>(threshold + qb);

  const int group = blockIdx.y;
  const int q0 = group * qb;
  for (int i = threadIdx.x; i < qb * kTable; i += blockDim.x) {
    const int qi = i / kTable, e = i % kTable;
    lut[qi * stride + e] = q0 + qi < nq ? luts[size_t(q0 + qi) * kTable + e] : 0.f;
  }
  if (threadIdx.x < qb) {
    count[threadIdx.x] = 0;
    threshold[threadIdx.x] = kNoKey;
  }
  __syncthreads();

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int tile_rows = blockDim.x;
  const int qi = lane % qb, slot = lane / qb, codes_per_step = 32 / qb;
  const bool query_valid = q0 + qi < nq;
  const float q_bias = query_valid && bias ? bias[q0 + qi] : 0.f;
  const float* my_lut = lut + qi * stride;
  uint64_t thr = kNoKey;
  float thr_score = INFINITY;

  const uint32_t begin = blockIdx.x * chunk_rows;
  const uint32_t end = min(n, begin + chunk_rows);
  // Codes of the next tile are loaded while this one is scored (the tile barrier would otherwise expose the
  // memory latency once per tile, all warps waiting together).
  uint32_t next[kRowWords];
  auto load_tile = [&](uint32_t tile, uint32_t* dst) {
    const uint32_t row = tile + warp * 32 + lane;
    if (tile < end && row < end) {
      const uint32_t* src = codes + size_t(row) * kRowWords;
#pragma unroll
      for (int w = 0; w < kRowWords; ++w) dst[w] = __ldg(src + w);
    } else {
#pragma unroll
      for (int w = 0; w < kRowWords; ++w) dst[w] = 0;
    }
  };
  load_tile(begin, next);
  for (uint32_t tile = begin; tile < end; tile += tile_rows) {
    const uint32_t warp_row0 = tile + warp * 32;
    uint32_t words[kRowWords];
#pragma unroll
    for (int w = 0; w < kRowWords; ++w) words[w] = next[w];
    load_tile(tile + tile_rows, next);
    bool need_shrink = false;
    for (int step = 0; step < qb; ++step) {
      const int source = step * codes_per_step + slot;
      uint32_t code[kRowWords];
#pragma unroll
      for (int w = 0; w < kRowWords; ++w) code[w] = __shfl_sync(0xffffffffu, words[w], source);
      float score = q_bias;
#pragma unroll
      for (int m = 0; m < kSubcodes; ++m) {
        const uint32_t sub = (code[m >> 2] >> ((m & 3) * 8)) & 0xffu;
        score += my_lut[m * 256 + sub];
      }
      if (kNorm) score += __uint_as_float(code[kWords]);
      const uint32_t row = warp_row0 + source;
      if (query_valid && row < end && score <= thr_score) {
        const uint64_t key = make_key(score, row);
        if (key < thr && allowed(allow, row)) {
          const int at = atomicAdd(&count[qi], 1);
          pool[size_t(qi) * cap + at] = key;
          need_shrink |= at + 1 > cap - tile_rows;
        }
      }
    }
    if (__syncthreads_or(need_shrink)) {
      for (int q = warp; q < qb; q += warps)
        if (count[q] > cap - tile_rows) shrink_pool(pool + size_t(q) * cap, &count[q], &threshold[q], k);
      __syncthreads();
      thr = threshold[qi];
      thr_score = thr == kNoKey ? INFINITY : key_score(thr);
    }
  }
  __syncthreads();
  for (int q = warp; q < qb; q += warps) {
    if (count[q] > k) shrink_pool(pool + size_t(q) * cap, &count[q], &threshold[q], k);
  }
  __syncthreads();
  // Out: pools[(chunk · groups + group) · qb + qi][0 … k), counts likewise.
  for (int q = 0; q < qb; ++q) {
    const size_t out = (size_t(blockIdx.x) * gridDim.y + group) * qb + q;
    const int c = min(count[q], k);
    for (int i = threadIdx.x; i < c; i += blockDim.x) pools[out * k + i] = pool[size_t(q) * cap + i];
    if (threadIdx.x == 0) pool_counts[out] = c;
  }
}

using ScanKernel = void (*)(const uint32_t*, uint32_t, uint32_t, const float*, const float*, int, int, int, int,
                            const uint64_t*, uint64_t*, int*);

template <bool kNorm>
ScanKernel pick_kernel(size_t words) {
  switch (words) {
    case 1: return adc_scan_kernel<1, kNorm>;
    case 2: return adc_scan_kernel<2, kNorm>;
    case 3: return adc_scan_kernel<3, kNorm>;
    case 4: return adc_scan_kernel<4, kNorm>;
    case 6: return adc_scan_kernel<6, kNorm>;
    case 8: return adc_scan_kernel<8, kNorm>;
    case 12: return adc_scan_kernel<12, kNorm>;
    case 16: return adc_scan_kernel<16, kNorm>;
    default: return nullptr;
  }
}

// Code words the kernels are built for (sub-codes rounded up to one of these × 4).
size_t padded_words(size_t m) {
  const size_t words = (m + 3) / 4;
  for (size_t w : {1, 2, 3, 4, 6, 8, 12, 16})
    if (words <= w) return w;
  return 0;
}

struct ScanPlan {
  int qb = 1, cap = 0, threads = 512;
  size_t shared = 0;
};

ScanPlan plan_scan(size_t words, size_t k) {
  ScanPlan plan;
  plan.threads = scan_threads(words, k);
  const size_t table = words * 4 * 256 + 1;
  const size_t limit = std::min<size_t>(kSharedBudget, size_t(shared_limit()));
  const int k_pad = int(((k + 31) / 32) * 32);
  // Most queries per block first (each code load serves them all); then pools with two tiles of headroom
  // (a pool is cut back to k only after a full tile of appends) where they fit, else one.
  for (int qb = 32; qb >= 1; qb /= 2)
    for (int margin : {2, 1}) {
      const int cap = k_pad + margin * plan.threads;
      const size_t bytes = ((size_t(qb) * table * 4 + 15) / 16) * 16 + size_t(qb) * cap * 8 + size_t(qb) * 12 + 16;
      if (bytes <= limit) {
        plan.qb = qb;
        plan.cap = cap;
        plan.shared = bytes;
        return plan;
      }
    }
  QV_THROW(Unsupported, "GPU scan: the tables of one query (" << table * 4 << " bytes) and k = " << k
                                                              << " do not fit in shared memory");
}

struct ScanBuffers {
  DeviceBuffer<uint64_t> pools, best;
  DeviceBuffer<int> counts;
};

// Runs the scan + merge for device tables dluts (nq × words·4 × 256) into dbest (nq × k keys).
void run_scan(const ResidentCodes& codes, size_t nq, const float* dluts, const float* dbias, const uint64_t* dallow,
              size_t k, ScanBuffers& buffers, ScanPlan* plan_out = nullptr, cudaStream_t stream = 0) {
  const ResidentCodes::Impl& impl = *codes.impl();
  const size_t words = impl.code_words;
  const ScanPlan plan = plan_scan(words, k);
  if (plan_out) *plan_out = plan;
  ScanKernel kernel = codes.has_norm() ? pick_kernel<true>(words) : pick_kernel<false>(words);
  QV_CHECK(kernel != nullptr, Internal, "no scan kernel for " << words << " code words");
  QV_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(plan.shared)));
  const size_t groups = (nq + plan.qb - 1) / plan.qb;
  int sms = 0, device = 0;
  QV_CUDA(cudaGetDevice(&device));
  QV_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  // Chunks per query group: one block per multiprocessor at a time (the tables fill its shared memory), so the
  // grid should be whole waves; among 1 … 4 waves' worth, the count with the least idle tail, fewest first.
  const size_t n = codes.size();
  size_t chunks = 1;
  {
    double best = -1;
    const size_t lo = std::max<size_t>(1, (size_t(sms) + groups - 1) / groups), hi = std::max(lo, 4 * size_t(sms) / groups);
    for (size_t c = lo; c <= hi; ++c) {
      const size_t blocks = c * groups, waves = (blocks + sms - 1) / sms;
      const double use = double(blocks) / double(waves * sms);
      if (use > best + 1e-9) {
        best = use;
        chunks = c;
      }
    }
  }
  const size_t tile = size_t(plan.threads);
  size_t chunk_rows = ((n + chunks - 1) / chunks + tile - 1) / tile * tile;
  chunk_rows = std::max<size_t>(chunk_rows, tile);
  chunks = (n + chunk_rows - 1) / chunk_rows;
  QV_CHECK(groups <= 65535, InvalidArgument, "GPU scan of " << nq << " queries at once (at most " << 65535 * plan.qb << ")");
  const size_t slots = chunks * groups * plan.qb;
  if (buffers.pools.size() < slots * k) buffers.pools.allocate(slots * k);
  if (buffers.counts.size() < slots) buffers.counts.allocate(slots);
  if (buffers.best.size() < nq * k) buffers.best.allocate(nq * k);
  kernel<<<dim3(unsigned(chunks), unsigned(groups)), unsigned(plan.threads), plan.shared, stream>>>(
      impl.words.get(), uint32_t(n), uint32_t(chunk_rows), dluts, dbias, int(nq), plan.qb, int(k), plan.cap, dallow,
      buffers.pools.get(), buffers.counts.get());
  QV_LAUNCHED("adc_scan");
  // Query q's pools: slot (chunk · groups + group) · qb + qi = chunk · groups · qb + q.
  detail::Segments sg;
  sg.keys = buffers.pools.get();
  sg.key_query_stride = k;
  sg.key_seg_stride = groups * plan.qb * k;
  sg.counts = buffers.counts.get();
  sg.count_query_stride = 1;
  sg.count_seg_stride = groups * plan.qb;
  sg.max_count = int(k);
  sg.nseg = int(chunks);
  detail::select_smallest(sg, nq, k, buffers.best.get());
}

void keys_to_results(const std::vector<uint64_t>& keys, size_t nq, size_t k, int64_t* rows, float* scores,
                     const uint32_t* row_map = nullptr) {
  for (size_t i = 0; i < nq * k; ++i) {
    const uint64_t key = keys[i];
    rows[i] = key == kNoKey ? -1 : int64_t(row_map ? row_map[uint32_t(key)] : uint32_t(key));
    scores[i] = key == kNoKey ? INFINITY : key_score(key);
  }
}

__global__ void random_codes_kernel(uint32_t* words, size_t count, uint64_t seed) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= count) return;
  // splitmix64 of (seed, i): cheap, well mixed, reproducible.
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (i + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  words[i] = uint32_t(z ^ (z >> 31));
}

}  // namespace

ResidentCodes::ResidentCodes(const uint8_t* codes, size_t n, size_t code_size, size_t m, bool has_norm)
    : n_(n), m_(m), has_norm_(has_norm), impl_(new Impl) {
  require_device();
  QV_CHECK(n < (size_t(1) << 32) - 1, InvalidArgument, "GPU scans hold below 2^32 rows, got " << n);
  QV_CHECK(code_size >= m + (has_norm ? 4 : 0), InvalidArgument, "code size " << code_size << " for " << m << " sub-codes");
  const size_t words = padded_words(m);
  QV_CHECK(words != 0, Unsupported, "GPU scans take at most 64 sub-codes, got " << m);
  impl_->code_words = words;
  impl_->row_words = words + (has_norm ? 1 : 0);
  impl_->words.allocate(std::max<size_t>(n, 1) * impl_->row_words);
  if (!codes) return;  // filled by the caller (random codes)
  // Re-pack rows to whole words on the host, in slices, so the host copy stays small.
  const size_t slice = std::max<size_t>(1, (size_t(64) << 20) / (impl_->row_words * 4));
  std::vector<uint32_t> host;
  for (size_t begin = 0; begin < n; begin += slice) {
    const size_t count = std::min(slice, n - begin);
    host.assign(count * impl_->row_words, 0);
    for (size_t i = 0; i < count; ++i) {
      const uint8_t* src = codes + (begin + i) * code_size;
      uint32_t* dst = &host[i * impl_->row_words];
      std::memcpy(dst, src, m);
      if (has_norm) std::memcpy(dst + words, src + m, 4);
    }
    impl_->words.upload(host.data(), host.size(), begin * impl_->row_words);
  }
}

ResidentCodes::~ResidentCodes() = default;

size_t ResidentCodes::device_bytes() const { return impl_->words.bytes(); }

std::unique_ptr<ResidentCodes> random_resident_codes(size_t n, size_t m, uint64_t seed) {
  auto codes = std::make_unique<ResidentCodes>(nullptr, n, m, m, false);
  const size_t count = n * codes->impl()->row_words;
  random_codes_kernel<<<unsigned((count + 255) / 256), 256>>>(codes->impl()->words.get(), count, seed);
  QV_LAUNCHED("random_codes");
  QV_CUDA(cudaDeviceSynchronize());
  return codes;
}

namespace {

// Tables padded to the kernel's sub-code count: rows past m are zeros (padding sub-codes are 0 → add 0).
std::vector<float> pad_tables(size_t nq, size_t m, size_t padded_m, const float* luts) {
  std::vector<float> out(nq * padded_m * 256, 0.f);
  for (size_t q = 0; q < nq; ++q) std::memcpy(&out[q * padded_m * 256], luts + q * m * 256, m * 256 * sizeof(float));
  return out;
}

}  // namespace

namespace {

// Scans with tables already on the device (dluts: nq × padded sub-codes × 256; dbias: nq floats or null), in
// batches of queries bounded so that the pools stay small.
void search_device_tables(const ResidentCodes& codes, size_t nq, const float* dluts, const float* dbias,
                          const uint64_t* allow, size_t k, int64_t* out_rows, float* out_scores) {
  const size_t padded_m = codes.impl()->code_words * 4;
  DeviceBuffer<uint64_t> dallow;
  if (allow) {
    dallow.allocate((codes.size() + 63) / 64);
    dallow.upload(allow, (codes.size() + 63) / 64);
  }
  ScanBuffers buffers;
  const size_t batch = 4096;
  std::vector<uint64_t> keys;
  for (size_t begin = 0; begin < nq; begin += batch) {
    const size_t count = std::min(batch, nq - begin);
    run_scan(codes, count, dluts + begin * padded_m * 256, dbias ? dbias + begin : nullptr,
             allow ? dallow.get() : nullptr, k, buffers);
    keys.resize(count * k);
    buffers.best.download(keys.data(), count * k);
    keys_to_results(keys, count, k, out_rows + begin * k, out_scores + begin * k);
  }
}

}  // namespace

void adc_search(const ResidentCodes& codes, size_t nq, const float* luts, const float* bias, bool use_norm,
                const uint64_t* allow, size_t k, int64_t* out_rows, float* out_scores) {
  QV_CHECK(k >= 1 && k <= kMaxK, InvalidArgument, "k = " << k << " (GPU: 1 … " << kMaxK << ")");
  QV_CHECK(use_norm == codes.has_norm(), InvalidArgument,
           use_norm ? "these codes carry no norm" : "codes with a norm are scanned with it");
  if (nq == 0) return;
  const size_t padded_m = codes.impl()->code_words * 4;
  const std::vector<float> tables = pad_tables(nq, codes.m(), padded_m, luts);
  DeviceBuffer<float> dluts(tables.size()), dbias;
  dluts.upload(tables.data(), tables.size());
  if (bias) {
    dbias.allocate(nq);
    dbias.upload(bias, nq);
  }
  search_device_tables(codes, nq, dluts.get(), bias ? dbias.get() : nullptr, allow, k, out_rows, out_scores);
}

ScanTiming time_adc_scan(const ResidentCodes& codes, size_t nq, const float* luts, size_t k, int repeats,
                         int64_t* out_rows, float* out_scores, int threads) {
  QV_CHECK(k >= 1 && k <= kMaxK, InvalidArgument, "k = " << k);
  const int saved = g_scan_threads;
  if (threads == 256 || threads == 512 || threads == 1024) g_scan_threads = threads;
  struct Restore {
    int value;
    ~Restore() { g_scan_threads = value; }
  } restore{saved};
  const size_t padded_m = codes.impl()->code_words * 4;
  const std::vector<float> tables = pad_tables(nq, codes.m(), padded_m, luts);
  DeviceBuffer<float> dluts(tables.size());
  dluts.upload(tables.data(), tables.size());
  ScanBuffers buffers;
  ScanPlan plan;
  run_scan(codes, nq, dluts.get(), nullptr, nullptr, k, buffers, &plan);  // warm-up
  QV_CUDA(cudaDeviceSynchronize());
  cudaEvent_t start, stop;
  QV_CUDA(cudaEventCreate(&start));
  QV_CUDA(cudaEventCreate(&stop));
  std::vector<double> times;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    QV_CUDA(cudaEventRecord(start));
    run_scan(codes, nq, dluts.get(), nullptr, nullptr, k, buffers);
    QV_CUDA(cudaEventRecord(stop));
    QV_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    QV_CUDA(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  std::vector<uint64_t> keys(nq * k);
  buffers.best.download(keys.data(), nq * k);
  keys_to_results(keys, nq, k, out_rows, out_scores);
  ScanTiming timing;
  timing.median_ms = times[times.size() / 2];
  timing.min_ms = times.front();
  timing.queries_per_block = plan.qb;
  timing.threads = plan.threads;
  return timing;
}

// ---------------------------------------------------------------- PQ tables

namespace {

__global__ void pq_lut_kernel(const float* __restrict__ queries, size_t d, const float* __restrict__ centroids,
                              const int* __restrict__ offsets, const int* __restrict__ dims, int M, int padded_m,
                              bool inner_product, float* __restrict__ luts) {
  const int q = blockIdx.x, m = blockIdx.y, j = threadIdx.x;
  const int off = offsets[m], dm = dims[m];
  const float* qs = queries + size_t(q) * d + off;
  const float* c = centroids + size_t(off) * 256 + size_t(j) * dm;
  float s = 0.f;
  for (int t = 0; t < dm; ++t) {
    if (inner_product) {
      s = fmaf(qs[t], c[t], s);
    } else {
      const float diff = qs[t] - c[t];
      s = fmaf(diff, diff, s);
    }
  }
  luts[(size_t(q) * padded_m + m) * 256 + j] = inner_product ? -s : s;
}

}  // namespace

void pq_adc_search(const ResidentCodes& codes, size_t nq, const float* queries, size_t d, const size_t* offsets,
                   const size_t* dims, const float* centroids, bool inner_product, const uint64_t* allow, size_t k,
                   int64_t* out_rows, float* out_scores) {
  QV_CHECK(k >= 1 && k <= kMaxK, InvalidArgument, "k = " << k << " (GPU: 1 … " << kMaxK << ")");
  QV_CHECK(!codes.has_norm(), InvalidArgument, "PQ codes carry no norm");
  if (nq == 0) return;
  const size_t M = codes.m(), padded_m = codes.impl()->code_words * 4;
  // Tables straight into the scan's layout: rows past M stay zero (padding sub-codes are 0 and add nothing).
  DeviceBuffer<float> dq(nq * d), dc(256 * d), dl(nq * padded_m * 256);
  DeviceBuffer<int> doff(M), ddim(M);
  std::vector<int> off(M), dim(M);
  for (size_t m = 0; m < M; ++m) {
    off[m] = int(offsets[m]);
    dim[m] = int(dims[m]);
  }
  dq.upload(queries, nq * d);
  dc.upload(centroids, 256 * d);
  doff.upload(off.data(), M);
  ddim.upload(dim.data(), M);
  dl.fill_zero();
  pq_lut_kernel<<<dim3(unsigned(nq), unsigned(M)), 256>>>(dq.get(), d, dc.get(), doff.get(), ddim.get(), int(M),
                                                         int(padded_m), inner_product, dl.get());
  QV_LAUNCHED("pq_lut");
  search_device_tables(codes, nq, dl.get(), nullptr, allow, k, out_rows, out_scores);
}

// ---------------------------------------------------------------- IVF

struct ResidentLists::Impl {
  DeviceBuffer<uint32_t> words;     // total × row_words (codes of every list back to back)
  DeviceBuffer<uint32_t> rows;      // total row numbers
  DeviceBuffer<uint64_t> offsets;   // nlist + 1
  DeviceBuffer<float> centroids;    // nlist × d
  DeviceBuffer<float> centroid_norms;
  DeviceBuffer<float> pq;           // 256 × d (ProductQuantizer layout)
  DeviceBuffer<int> sub_offsets, sub_dims;
  size_t m = 0, d = 0, code_words = 0, max_list = 0;
  std::vector<uint32_t> host_rows;  // position in the lists → row, for the results
};

ResidentLists::ResidentLists(size_t nlist, const uint64_t* offsets, const uint8_t* codes, const uint32_t* rows,
                             size_t code_size, size_t m, size_t d, const float* coarse_centroids,
                             const size_t* sub_offsets, const size_t* sub_dims, const float* pq_centroids)
    : nlist_(nlist), total_(offsets[nlist]), impl_(new Impl) {
  require_device();
  QV_CHECK(total_ < (size_t(1) << 32), InvalidArgument, "GPU IVF holds below 2^32 codes, got " << total_);
  QV_CHECK(code_size >= m && m >= 1 && m <= 64, Unsupported, "GPU IVF scans take 1 … 64 sub-codes, got " << m);
  Impl& im = *impl_;
  im.m = m;
  im.d = d;
  im.code_words = (m + 3) / 4;
  for (size_t l = 0; l < nlist; ++l) im.max_list = std::max<size_t>(im.max_list, offsets[l + 1] - offsets[l]);
  std::vector<uint32_t> host(std::max<size_t>(total_, 1) * im.code_words, 0);
  for (size_t i = 0; i < total_; ++i) std::memcpy(&host[i * im.code_words], codes + i * code_size, m);
  im.words.allocate(host.size());
  im.words.upload(host.data(), host.size());
  im.rows.allocate(std::max<size_t>(total_, 1));
  im.rows.upload(rows, total_);
  im.host_rows.assign(rows, rows + total_);
  im.offsets.allocate(nlist + 1);
  im.offsets.upload(offsets, nlist + 1);
  im.centroids.allocate(nlist * d);
  im.centroids.upload(coarse_centroids, nlist * d);
  im.centroid_norms.allocate(nlist);
  detail::row_norms(im.centroids.get(), nlist, d, d, im.centroid_norms.get());
  im.pq.allocate(256 * d);
  im.pq.upload(pq_centroids, 256 * d);
  std::vector<int> so(m), sd(m);
  for (size_t i = 0; i < m; ++i) {
    so[i] = int(sub_offsets[i]);
    sd[i] = int(sub_dims[i]);
  }
  im.sub_offsets.allocate(m);
  im.sub_offsets.upload(so.data(), m);
  im.sub_dims.allocate(m);
  im.sub_dims.upload(sd.data(), m);
  QV_CUDA(cudaDeviceSynchronize());
}

ResidentLists::~ResidentLists() = default;

size_t ResidentLists::device_bytes() const {
  return impl_->words.bytes() + impl_->rows.bytes() + impl_->centroids.bytes() + impl_->pq.bytes();
}

namespace {

constexpr int kIvfThreads = 256;

// Block per (probe p, query q): builds the list's table for q in shared memory (L2: ‖(q − c_l)_m − y_mj‖²;
// inner product: −⟨q_m, y_mj⟩ with bias −⟨q, c_l⟩) and scans the list, one code per thread, keeping the k best
// keys (key index = position in the concatenated lists, mapped to rows afterwards).
__global__ void __launch_bounds__(kIvfThreads)
    ivf_scan_kernel(const uint32_t* __restrict__ words, int code_words, const uint64_t* __restrict__ offsets,
                    const float* __restrict__ centroids, const float* __restrict__ pq, const int* __restrict__ sub_offsets,
                    const int* __restrict__ sub_dims, int m, int d, const float* __restrict__ queries,
                    const uint64_t* __restrict__ probes, int nprobe, bool inner_product, const uint32_t* __restrict__ rows,
                    const uint64_t* __restrict__ allow, int k, int cap, uint64_t* __restrict__ pools,
                    int* __restrict__ pool_counts) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int p = blockIdx.x, q = blockIdx.y;
  float* lut = reinterpret_cast<float*>(smem);                           // m × 256
  float* residual = lut + m * 256;                                        // d
  uint64_t* pool = reinterpret_cast<uint64_t*>(smem + ((size_t(m) * 256 + d) * 4 + 15) / 16 * 16);  // cap
  __shared__ int count;
  __shared__ uint64_t threshold;
  __shared__ float list_bias;
  const uint64_t probe_key = probes[size_t(q) * nprobe + p];
  const size_t out = size_t(q) * nprobe + p;
  if (probe_key == kNoKey) {
    if (threadIdx.x == 0) pool_counts[out] = 0;
    return;
  }
  const int list = int(uint32_t(probe_key));
  const float* qv = queries + size_t(q) * d;
  const float* c = centroids + size_t(list) * d;
  for (int t = threadIdx.x; t < d; t += kIvfThreads) residual[t] = inner_product ? qv[t] : qv[t] - c[t];
  if (threadIdx.x == 0) {
    count = 0;
    threshold = kNoKey;
  }
  if (threadIdx.x < 32) {
    float s = 0.f;
    if (inner_product)
      for (int t = threadIdx.x; t < d; t += 32) s = fmaf(qv[t], c[t], s);
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (threadIdx.x == 0) list_bias = -s;
  }
  __syncthreads();
  for (int e = threadIdx.x; e < m * 256; e += kIvfThreads) {
    const int sub = e / 256, j = e % 256;
    const int off = sub_offsets[sub], dm = sub_dims[sub];
    const float* y = pq + size_t(off) * 256 + size_t(j) * dm;
    float s = 0.f;
    for (int t = 0; t < dm; ++t) {
      if (inner_product) {
        s = fmaf(residual[off + t], y[t], s);
      } else {
        const float diff = residual[off + t] - y[t];
        s = fmaf(diff, diff, s);
      }
    }
    lut[e] = inner_product ? -s : s;
  }
  __syncthreads();
  const float bias = inner_product ? list_bias : 0.f;
  const uint64_t begin = offsets[list], end = offsets[list + 1];
  uint64_t thr = kNoKey;
  float thr_score = INFINITY;
  for (uint64_t tile = begin; tile < end; tile += kIvfThreads) {
    const uint64_t pos = tile + threadIdx.x;
    bool need_shrink = false;
    if (pos < end) {
      float score = bias;
      const uint32_t* code = words + pos * code_words;
      for (int w = 0; w < code_words; ++w) {
        const uint32_t word = __ldg(code + w);
        for (int b = 0; b < 4 && w * 4 + b < m; ++b) score += lut[(w * 4 + b) * 256 + ((word >> (8 * b)) & 0xffu)];
      }
      if (score <= thr_score) {
        const uint64_t key = make_key(score, uint32_t(pos));
        if (key < thr && allowed(allow, rows[pos])) {
          const int at = atomicAdd(&count, 1);
          pool[at] = key;
          need_shrink = at + 1 > cap - kIvfThreads;
        }
      }
    }
    if (__syncthreads_or(need_shrink)) {
      if (threadIdx.x < 32) shrink_pool(pool, &count, &threshold, k);
      __syncthreads();
      thr = threshold;
      thr_score = thr == kNoKey ? INFINITY : key_score(thr);
    }
  }
  __syncthreads();
  if (threadIdx.x < 32 && count > k) shrink_pool(pool, &count, &threshold, k);
  __syncthreads();
  const int c_out = min(count, k);
  for (int i = threadIdx.x; i < c_out; i += kIvfThreads) pools[out * k + i] = pool[i];
  if (threadIdx.x == 0) pool_counts[out] = c_out;
}

}  // namespace

void ivf_search(const ResidentLists& lists, size_t nq, const float* queries, bool inner_product, size_t nprobe,
                const uint64_t* allow, size_t allow_words, size_t k, int64_t* out_rows, float* out_scores) {
  QV_CHECK(k >= 1 && k <= kMaxK, InvalidArgument, "k = " << k << " (GPU: 1 … " << kMaxK << ")");
  if (nq == 0) return;
  const ResidentLists::Impl& im = *lists.impl();
  nprobe = std::max<size_t>(1, std::min(nprobe, lists.nlist()));
  QV_CHECK(nprobe <= 1024, InvalidArgument, "GPU nprobe " << nprobe << " (at most 1024)");
  const size_t d = im.d;
  const int cap = int(((k + 31) / 32) * 32 + kIvfThreads);
  const size_t shared = ((im.code_words * 4 * 256 + d) * 4 + 15) / 16 * 16 + size_t(cap) * 8;
  QV_CHECK(shared <= size_t(shared_limit()), Unsupported, "GPU IVF scan needs " << shared << " bytes of shared memory");
  QV_CUDA(cudaFuncSetAttribute(ivf_scan_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared)));
  DeviceBuffer<uint64_t> dallow;
  if (allow) {
    dallow.allocate(allow_words);
    dallow.upload(allow, allow_words);
  }
  const size_t batch = std::min<size_t>(nq, 8192);
  DeviceBuffer<float> dq(batch * d), dqn(batch);
  DeviceBuffer<uint64_t> coarse(batch * lists.nlist()), probes(batch * nprobe), pools(batch * nprobe * k),
      best(batch * k);
  DeviceBuffer<int> counts(batch * nprobe);
  std::vector<uint64_t> keys(batch * k);
  for (size_t begin = 0; begin < nq; begin += batch) {
    const size_t count = std::min(batch, nq - begin);
    dq.upload(queries + begin * d, count * d);
    detail::row_norms(dq.get(), count, d, d, dqn.get());
    // Probes: the nprobe best lists by ‖q − c_l‖² (L2) or −⟨q, c_l⟩ (inner product).
    detail::score_keys(dq.get(), count, d, im.centroids.get(), lists.nlist(), d,
                       inner_product ? nullptr : im.centroid_norms.get(), inner_product ? nullptr : dqn.get(), 1,
                       coarse.get());
    detail::Segments sp;
    sp.keys = coarse.get();
    sp.key_query_stride = lists.nlist();
    sp.fixed_count = int(lists.nlist());
    detail::select_smallest(sp, count, nprobe, probes.get());
    ivf_scan_kernel<<<dim3(unsigned(nprobe), unsigned(count)), kIvfThreads, shared>>>(
        im.words.get(), int(im.code_words), im.offsets.get(), im.centroids.get(), im.pq.get(), im.sub_offsets.get(),
        im.sub_dims.get(), int(im.m), int(d), dq.get(), probes.get(), int(nprobe), inner_product, im.rows.get(),
        allow ? dallow.get() : nullptr, int(k), cap, pools.get(), counts.get());
    QV_LAUNCHED("ivf_scan");
    detail::Segments sg;
    sg.keys = pools.get();
    sg.key_query_stride = nprobe * k;
    sg.key_seg_stride = k;
    sg.counts = counts.get();
    sg.count_query_stride = nprobe;
    sg.count_seg_stride = 1;
    sg.max_count = int(k);
    sg.nseg = int(nprobe);
    detail::select_smallest(sg, count, k, best.get());
    best.download(keys.data(), count * k);
    keys_to_results(keys, count, k, out_rows + begin * k, out_scores + begin * k, im.host_rows.data());
  }
}

}  // namespace cuda
}  // namespace quiver
