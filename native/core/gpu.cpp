// The GPU seam (see gpu.h). With QUIVER_WITH_CUDA the hooks call native/cuda; without it they report "not
// compiled" and return false, so CPU-only builds carry no CUDA dependency.
#include "gpu.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "error.h"
#include "index.h"
#include "pq.h"
#include "rq.h"
#include "simd.h"
#include "trq.h"

#ifdef QUIVER_WITH_CUDA
#include "../cuda/cuda_api.h"
#endif

namespace quiver {

namespace {
thread_local Device t_device = Device::Cpu;
std::atomic<uint64_t> g_searches{0};
}

uint64_t gpu_search_count() { return g_searches.load(); }

DeviceScope::DeviceScope(Device device) : previous_(t_device) { t_device = device; }
DeviceScope::~DeviceScope() { t_device = previous_; }
Device current_device() { return t_device; }

#ifndef QUIVER_WITH_CUDA

GpuStatus gpu_status() {
  GpuStatus s;
  s.reason =
      "this build has no CUDA kernels (the default node-gyp build is CPU-only; build with "
      "`npx cmake-js compile -O build-cuda --CDQUIVER_CUDA=ON` where nvcc is installed, then set "
      "QUIVER_ADDON=build-cuda/Release/quiver.node)";
  return s;
}
bool gpu_usable(Device) { return false; }
bool gpu_assign_nearest(size_t, size_t, const float*, size_t, const float*, int32_t*, float*) { return false; }
bool gpu_update_centroids(size_t, size_t, const float*, const int32_t*, size_t, float*, double*) { return false; }
bool gpu_encode(const Quantizer&, size_t, const float*, uint8_t*) { return false; }
struct GpuResident {};
void GpuResidentDeleter::operator()(GpuResident* p) const { delete p; }
bool gpu_codec_search(const Quantizer&, Metric, const uint8_t*, size_t, GpuResidentPtr&, std::mutex&, size_t,
                      const float*, size_t, const RowFilter&, std::vector<std::vector<Candidate>>&) {
  return false;
}
bool gpu_ivf_search(const IvfGpuView&, Metric, GpuResidentPtr&, std::mutex&, size_t, const float*, size_t, size_t,
                    const RowFilter&, std::vector<std::vector<Candidate>>&) {
  return false;
}

#else  // QUIVER_WITH_CUDA

GpuStatus gpu_status() {
  static const GpuStatus status = [] {
    GpuStatus s;
    s.compiled = true;
    const cuda::DeviceInfo info = cuda::device_info();
    s.available = info.available;
    s.name = info.name;
    s.total_memory = info.total_memory;
    s.free_memory = info.free_memory;
    s.major = info.major;
    s.minor = info.minor;
    s.multiprocessors = info.multiprocessors;
    s.runtime_version = info.runtime_version;
    s.driver_version = info.driver_version;
    s.reason = info.reason;
    return s;
  }();
  return status;
}

bool gpu_usable(Device device) { return device == Device::Cuda && gpu_status().available; }

namespace {
bool active() { return gpu_usable(t_device); }
}  // namespace

bool gpu_assign_nearest(size_t n, size_t d, const float* x, size_t k, const float* centroids, int32_t* labels,
                        float* dists) {
  if (!active() || n == 0) return false;
  cuda::assign_nearest(n, d, x, d, k, centroids, labels, dists);
  return true;
}

bool gpu_update_centroids(size_t n, size_t d, const float* x, const int32_t* labels, size_t k, float* centroids,
                          double* counts) {
  if (!active() || n == 0) return false;
  cuda::update_centroids(n, d, x, labels, k, centroids, counts);
  return true;
}

namespace {

// A PQ's sub-spaces as the kernels take them: first dimension and width of each.
struct SubSpaces {
  std::vector<size_t> offsets, dims;
  explicit SubSpaces(const ProductQuantizer& pq) : offsets(pq.m()), dims(pq.m()) {
    for (size_t m = 0; m < pq.m(); ++m) {
      offsets[m] = pq.sub_offset(m);
      dims[m] = pq.sub_dim(m);
    }
  }
};

void encode_pq(const ProductQuantizer& pq, size_t n, const float* x, uint8_t* codes) {
  const size_t M = pq.m(), d = pq.dim();
  const SubSpaces sub_spaces(pq);
  std::vector<uint32_t> sub(n * M);
  cuda::pq_encode(n, d, x, M, sub_spaces.offsets.data(), sub_spaces.dims.data(), pq.ksub(), pq.all_centroids().data(),
                  sub.data());
  for (size_t i = 0; i < n; ++i) pq.pack(&sub[i * M], codes + i * pq.code_size());
}

void encode_rq(const ResidualQuantizer& rq, size_t n, const float* x, uint8_t* codes) {
  const size_t L = rq.stages();
  std::vector<uint32_t> paths(n * L);
  std::vector<float> norms(n);
  cuda::rq_encode(n, rq.dim(), x, L, rq.ksub(), rq.all_codebooks().data(), rq.options().beam, paths.data(),
                  norms.data(), nullptr);
  for (size_t i = 0; i < n; ++i) rq.pack(&paths[i * L], norms[i], codes + i * rq.code_size());
}

bool encode_trq(const TransformedResidualQuantizer& trq, size_t n, const float* x, uint8_t* codes) {
  if (trq.options().beam != 1) return false;  // joint first-level beam: CPU
  if (trq.subspace_transforms()) return false;  // the kernel applies full d × d transforms: CPU
  const size_t d = trq.dim(), k1 = trq.first_count();
  std::vector<int32_t> slots(k1);
  std::vector<float> transforms;
  size_t slot_count = 0;
  for (size_t k = 0; k < k1; ++k) {
    const float* rot = trq.transform(k);
    if (!rot) {
      slots[k] = -1;
      continue;
    }
    slots[k] = int32_t(slot_count++);
    transforms.insert(transforms.end(), rot, rot + d * d);
  }
  std::vector<float> first(k1 * d);
  for (size_t k = 0; k < k1; ++k) std::memcpy(&first[k * d], trq.first_centroid(k), d * sizeof(float));
  std::vector<uint32_t> clusters(n);
  std::vector<float> y(n * d);
  cuda::trq_transform(n, d, x, k1, first.data(), slots.data(), slot_count, transforms.data(), clusters.data(), y.data());
  const size_t count = trq.fine_count(), cs = trq.code_size();
  std::vector<uint32_t> fine(n * count);
  std::vector<float> norms;
  if (const ResidualQuantizer* rq = trq.fine_rq()) {
    norms.resize(n);
    cuda::rq_encode(n, d, y.data(), count, rq->ksub(), rq->all_codebooks().data(), rq->options().beam, fine.data(),
                    norms.data(), nullptr);
  } else {
    const ProductQuantizer& pq = *trq.fine_pq();
    const SubSpaces sub_spaces(pq);
    cuda::pq_encode(n, d, y.data(), count, sub_spaces.offsets.data(), sub_spaces.dims.data(), pq.ksub(),
                    pq.all_centroids().data(), fine.data());
  }
  for (size_t i = 0; i < n; ++i) trq.pack(clusters[i], &fine[i * count], norms.empty() ? 0.f : norms[i], codes + i * cs);
  return true;
}

}  // namespace

bool gpu_encode(const Quantizer& codec, size_t n, const float* x, uint8_t* codes) {
  if (!active() || n == 0) return false;
  if (const auto* pq = dynamic_cast<const ProductQuantizer*>(&codec)) {
    if (pq->nbits() > 8) return false;
    encode_pq(*pq, n, x, codes);
    return true;
  }
  if (const auto* rq = dynamic_cast<const ResidualQuantizer*>(&codec)) {
    if (rq->ksub() > 65536 || rq->options().beam > 256) return false;
    encode_rq(*rq, n, x, codes);
    return true;
  }
  if (const auto* trq = dynamic_cast<const TransformedResidualQuantizer*>(&codec)) return encode_trq(*trq, n, x, codes);
  return false;
}

struct GpuResident {
  std::unique_ptr<cuda::ResidentCodes> codes;
  std::unique_ptr<cuda::ResidentLists> lists;
};
void GpuResidentDeleter::operator()(GpuResident* p) const { delete p; }

namespace {

void to_candidates(size_t nq, size_t k, const std::vector<int64_t>& rows, const std::vector<float>& scores,
                   std::vector<std::vector<Candidate>>& found) {
  found.assign(nq, {});
  for (size_t q = 0; q < nq; ++q) {
    found[q].reserve(k);
    for (size_t j = 0; j < k; ++j)
      if (rows[q * k + j] >= 0) found[q].push_back(Candidate{scores[q * k + j], rows[q * k + j]});
  }
}

const uint64_t* allow_bits(const RowFilter& filter) { return filter.active ? filter.bits.data() : nullptr; }

}  // namespace

bool gpu_codec_search(const Quantizer& codec, Metric metric, const uint8_t* codes, size_t n, GpuResidentPtr& cache,
                      std::mutex& lock, size_t nq, const float* queries, size_t shortlist, const RowFilter& filter,
                      std::vector<std::vector<Candidate>>& found) {
  // The caller checked params.device (search does not use the thread's DeviceScope).
  if (!gpu_status().available || n == 0 || shortlist > cuda::kMaxK || n >= (size_t(1) << 32) - 1) return false;
  const bool ip = metric == Metric::InnerProduct;
  const auto* pq = dynamic_cast<const ProductQuantizer*>(&codec);
  const auto* rq = dynamic_cast<const ResidualQuantizer*>(&codec);
  if (pq && (pq->nbits() != 8 || pq->m() > 64)) return false;
  if (rq && (rq->nbits() != 8 || rq->stages() > 64 || rq->norm_codec().storage() != NormStorage::Float32)) return false;
  if (!pq && !rq) return false;
  const size_t m = pq ? pq->m() : rq->stages();
  const bool use_norm = rq && !ip;
  const size_t d = codec.dim();
  std::vector<int64_t> rows(nq * shortlist);
  std::vector<float> scores(nq * shortlist);
  std::vector<float> luts, bias;
  if (rq) {
    // RQ: entry (l, j) = −2⟨q, c_lj⟩ (L2, plus ‖q‖² as bias and ‖x̂‖² from the code) or −⟨q, c_lj⟩.
    luts.resize(nq * m * 256);
    bias.assign(nq, 0.f);
    const Kernels& kern = kernels();
    for (size_t q = 0; q < nq; ++q) {
      const float* qv = queries + q * d;
      if (!ip) bias[q] = kern.dot(qv, qv, d);
      for (size_t l = 0; l < m; ++l)
        for (size_t j = 0; j < 256; ++j)
          luts[(q * m + l) * 256 + j] = (ip ? -1.f : -2.f) * kern.dot(qv, rq->codebook(l) + j * d, d);
    }
  }
  {
    std::lock_guard<std::mutex> guard(lock);
    if (!cache || !cache->codes) {
      GpuResidentPtr fresh(new GpuResident);
      fresh->codes = std::make_unique<cuda::ResidentCodes>(codes, n, codec.code_size(), m, use_norm);
      cache = std::move(fresh);
    }
    if (pq) {
      // PQ tables are built on the device, in the scan's layout.
      const SubSpaces sub_spaces(*pq);
      cuda::pq_adc_search(*cache->codes, nq, queries, d, sub_spaces.offsets.data(), sub_spaces.dims.data(),
                          pq->all_centroids().data(), ip, allow_bits(filter), shortlist, rows.data(), scores.data());
    } else {
      cuda::adc_search(*cache->codes, nq, luts.data(), bias.data(), use_norm, allow_bits(filter), shortlist,
                       rows.data(), scores.data());
    }
  }
  to_candidates(nq, shortlist, rows, scores, found);
  g_searches.fetch_add(1);
  return true;
}

bool gpu_ivf_search(const IvfGpuView& view, Metric metric, GpuResidentPtr& cache, std::mutex& lock, size_t nq,
                    const float* queries, size_t nprobe, size_t shortlist, const RowFilter& filter,
                    std::vector<std::vector<Candidate>>& found) {
  if (!gpu_status().available || shortlist > cuda::kMaxK || nprobe > 1024 || !view.pq || view.pq->nbits() != 8 ||
      view.pq->m() > 64)
    return false;
  const bool ip = metric == Metric::InnerProduct;
  std::vector<int64_t> rows(nq * shortlist);
  std::vector<float> scores(nq * shortlist);
  {
    std::lock_guard<std::mutex> guard(lock);
    if (!cache || !cache->lists) {
      std::vector<uint64_t> offsets;
      std::vector<uint8_t> codes;
      std::vector<uint32_t> list_rows;
      view.gather(offsets, codes, list_rows);
      const ProductQuantizer& pq = *view.pq;
      const SubSpaces sub_spaces(pq);
      GpuResidentPtr fresh(new GpuResident);
      fresh->lists = std::make_unique<cuda::ResidentLists>(
          view.nlist, offsets.data(), codes.data(), list_rows.data(), pq.code_size(), pq.m(), view.dim, view.centroids,
          sub_spaces.offsets.data(), sub_spaces.dims.data(), pq.all_centroids().data());
      cache = std::move(fresh);
    }
    cuda::ivf_search(*cache->lists, nq, queries, ip, nprobe, allow_bits(filter),
                     filter.active ? filter.bits.size() : 0, shortlist, rows.data(), scores.data());
  }
  to_candidates(nq, shortlist, rows, scores, found);
  g_searches.fetch_add(1);
  return true;
}

#endif  // QUIVER_WITH_CUDA

}  // namespace quiver
