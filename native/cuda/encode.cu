// Host entry points for training and encoding on the device: k-means assignment and update, PQ, RQ (beam
// search) and the TRQ first level + local transforms, exact k-NN, and the device query.
//
// Work is cut into chunks of rows so that device memory stays bounded whatever n is (kChunkBytes of scores or
// residuals at a time); every chunk is uploaded, processed and downloaded before the next.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda_api.h"
#include "kernels.cuh"

namespace quiver {
namespace cuda {

namespace {
constexpr size_t kChunkBytes = size_t(256) << 20;
}

DeviceInfo device_info() {
  DeviceInfo info;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  cudaRuntimeGetVersion(&info.runtime_version);
  cudaDriverGetVersion(&info.driver_version);
  if (err != cudaSuccess) {
    cudaGetLastError();
    info.reason = std::string("no usable CUDA device: ") + cudaGetErrorString(err);
    return info;
  }
  if (count == 0) {
    info.reason = "no CUDA device found";
    return info;
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    cudaGetLastError();
    info.reason = "cudaGetDeviceProperties failed";
    return info;
  }
  info.name = prop.name;
  info.total_memory = prop.totalGlobalMem;
  info.major = prop.major;
  info.minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
    info.free_memory = free_bytes;
  } else {
    cudaGetLastError();
  }
  if (prop.major < 7) {
    info.reason = "compute capability " + std::to_string(prop.major) + "." + std::to_string(prop.minor) +
                  " is below the 7.0 this build needs";
    return info;
  }
  info.available = true;
  return info;
}

void require_device() {
  static const DeviceInfo info = device_info();
  QV_CHECK(info.available, Unsupported, "no CUDA GPU: " << info.reason);
}

namespace {

// Rows per chunk so that `per_row` bytes of device scratch per row stay within kChunkBytes (at least `minimum`).
size_t rows_per_chunk(size_t per_row, size_t minimum = 64) {
  return std::max(minimum, kChunkBytes / std::max<size_t>(per_row, 1));
}

__global__ void accumulate_kernel(const float* __restrict__ x, size_t n, size_t d, const int32_t* __restrict__ labels,
                                  double* __restrict__ sums, double* __restrict__ counts) {
  const size_t i = size_t(blockIdx.x) * blockDim.y + threadIdx.y;
  if (i >= n) return;
  const size_t c = size_t(labels[i]);
  for (size_t t = threadIdx.x; t < d; t += blockDim.x) atomicAdd(&sums[c * d + t], double(x[i * d + t]));
  if (threadIdx.x == 0) atomicAdd(&counts[c], 1.0);
}

__global__ void finish_means_kernel(const double* __restrict__ sums, const double* __restrict__ counts, size_t k,
                                    size_t d, float* __restrict__ centroids) {
  const size_t e = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= k * d) return;
  const double cnt = counts[e / d];
  if (cnt > 0) centroids[e] = float(sums[e] / cnt);
}

// Beam step bookkeeping, one block per vector: the selected keys (w per vector, ascending) name (parent entry,
// codeword); the new entries get parent residual − codeword, the score as squared error, the parent's path
// plus the codeword.
__global__ void beam_advance_kernel(const uint64_t* __restrict__ selected, int w, int K, int d, int L, int stage,
                                    int beam, const float* __restrict__ codebook, const float* __restrict__ residuals,
                                    const uint32_t* __restrict__ paths, float* __restrict__ next_residuals,
                                    float* __restrict__ next_errors, uint32_t* __restrict__ next_paths,
                                    int* __restrict__ next_count) {
  const size_t v = blockIdx.x;
  __shared__ int s_valid;
  if (threadIdx.x == 0) s_valid = 0;
  __syncthreads();
  for (int e = 0; e < w; ++e) {
    const uint64_t key = selected[v * w + e];
    if (key == kNoKey) break;
    const uint32_t low = uint32_t(key);
    const int parent = int(low / uint32_t(K)), word = int(low % uint32_t(K));
    const float* src = residuals + (v * beam + parent) * size_t(d);
    float* dst = next_residuals + (v * beam + e) * size_t(d);
    const float* c = codebook + size_t(word) * d;
    for (int t = threadIdx.x; t < d; t += blockDim.x) dst[t] = src[t] - c[t];
    const uint32_t* psrc = paths + (v * beam + parent) * size_t(L);
    uint32_t* pdst = next_paths + (v * beam + e) * size_t(L);
    for (int t = threadIdx.x; t < stage; t += blockDim.x) pdst[t] = psrc[t];
    if (threadIdx.x == 0) {
      pdst[stage] = uint32_t(word);
      next_errors[v * beam + e] = fmaxf(0.f, key_score(key));
      s_valid = e + 1;
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) next_count[v] = s_valid;
}

// Final outputs of the beam search: entry 0 of each vector is the best.
__global__ void beam_finish_kernel(const float* __restrict__ x, const float* __restrict__ residuals,
                                   const uint32_t* __restrict__ paths, size_t n, int d, int L, int beam,
                                   uint32_t* __restrict__ out_paths, float* __restrict__ xhat_norms,
                                   float* __restrict__ errors) {
  const size_t v = size_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (v >= n) return;
  const int lane = threadIdx.x & 31;
  const float* r = residuals + v * beam * size_t(d);
  float xn = 0.f, er = 0.f;
  for (int t = lane; t < d; t += 32) {
    const float xh = x[v * d + t] - r[t];
    xn = fmaf(xh, xh, xn);
    er = fmaf(r[t], r[t], er);
  }
  for (int off = 16; off > 0; off >>= 1) {
    xn += __shfl_xor_sync(0xffffffffu, xn, off);
    er += __shfl_xor_sync(0xffffffffu, er, off);
  }
  if (lane < L) out_paths[v * L + lane] = paths[v * beam * size_t(L) + lane];
  for (int t = lane + 32; t < L; t += 32) out_paths[v * L + t] = paths[v * beam * size_t(L) + t];
  if (lane == 0) {
    xhat_norms[v] = xn;
    errors[v] = er;
  }
}

// y_i = R_{c_i}(x_i − centroid_{c_i}), one block (4 warps) per vector; warp-per-output-row dot products read
// the transform rows coalesced.
__global__ void transform_kernel(const float* __restrict__ x, size_t n, int d, const int32_t* __restrict__ labels,
                                 const float* __restrict__ centroids, const int32_t* __restrict__ slots,
                                 const float* __restrict__ transforms, float* __restrict__ y) {
  extern __shared__ float residual[];
  const size_t v = blockIdx.x;
  const int c = labels[v];
  for (int t = threadIdx.x; t < d; t += blockDim.x) residual[t] = x[v * d + t] - centroids[size_t(c) * d + t];
  __syncthreads();
  const int slot = slots[c];
  if (slot < 0) {
    for (int t = threadIdx.x; t < d; t += blockDim.x) y[v * d + t] = residual[t];
    return;
  }
  const float* rot = transforms + size_t(slot) * d * d;
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31, warps = blockDim.x / 32;
  for (int row = warp; row < d; row += warps) {
    float s = 0.f;
    for (int t = lane; t < d; t += 32) s = fmaf(rot[size_t(row) * d + t], residual[t], s);
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0) y[v * d + row] = s;
  }
}

__global__ void gather_sub_kernel(const float* __restrict__ x, size_t n, size_t d, size_t offset, size_t width,
                                  float* __restrict__ out) {
  const size_t e = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n * width) return;
  out[e] = x[(e / width) * d + offset + e % width];
}

}  // namespace

void assign_nearest(size_t n, size_t d, const float* x, size_t ldx, size_t k, const float* centroids,
                    int32_t* labels, float* dists) {
  require_device();
  if (n == 0) return;
  DeviceBuffer<float> dc(k * d), dnorm(k);
  dc.upload(centroids, k * d);
  detail::row_norms(dc.get(), k, d, d, dnorm.get());
  const size_t chunk = rows_per_chunk(d * sizeof(float) + 12);
  DeviceBuffer<float> dx(std::min(n, chunk) * d), dscore(std::min(n, chunk)), dxn(std::min(n, chunk));
  DeviceBuffer<int32_t> dl(std::min(n, chunk));
  std::vector<float> host_rows, scores(std::min(n, chunk)), xn(std::min(n, chunk));
  for (size_t begin = 0; begin < n; begin += chunk) {
    const size_t count = std::min(chunk, n - begin);
    if (ldx == d) {
      dx.upload(x + begin * d, count * d);
    } else {
      host_rows.resize(count * d);
      for (size_t i = 0; i < count; ++i)
        std::copy(x + (begin + i) * ldx, x + (begin + i) * ldx + d, host_rows.begin() + i * d);
      dx.upload(host_rows.data(), count * d);
    }
    detail::argmin_rows(dx.get(), count, d, dc.get(), k, d, dnorm.get(), dl.get(), dscore.get());
    dl.download(labels + begin, count);
    if (dists) {
      detail::row_norms(dx.get(), count, d, d, dxn.get());
      dscore.download(scores.data(), count);
      dxn.download(xn.data(), count);
      for (size_t i = 0; i < count; ++i) dists[begin + i] = std::max(0.0f, scores[i] + xn[i]);
    }
  }
  QV_CUDA(cudaDeviceSynchronize());
}

void update_centroids(size_t n, size_t d, const float* x, const int32_t* labels, size_t k, float* centroids,
                      double* counts) {
  require_device();
  DeviceBuffer<double> sums(k * d), dcounts(k);
  sums.fill_zero();
  dcounts.fill_zero();
  DeviceBuffer<float> dc(k * d);
  dc.upload(centroids, k * d);
  const size_t chunk = rows_per_chunk(d * sizeof(float) + 4);
  DeviceBuffer<float> dx(std::min(n, chunk) * d);
  DeviceBuffer<int32_t> dl(std::min(n, chunk));
  for (size_t begin = 0; begin < n; begin += chunk) {
    const size_t count = std::min(chunk, n - begin);
    dx.upload(x + begin * d, count * d);
    dl.upload(labels + begin, count);
    const dim3 block(32, 8);
    accumulate_kernel<<<unsigned((count + 7) / 8), block>>>(dx.get(), count, d, dl.get(), sums.get(), dcounts.get());
    QV_LAUNCHED("accumulate");
  }
  finish_means_kernel<<<unsigned((k * d + 255) / 256), 256>>>(sums.get(), dcounts.get(), k, d, dc.get());
  QV_LAUNCHED("finish_means");
  dc.download(centroids, k * d);
  dcounts.download(counts, k);
}

void pq_encode(size_t n, size_t d, const float* x, size_t M, const size_t* offsets, const size_t* dims, size_t ksub,
               const float* centroids, uint32_t* sub_codes) {
  require_device();
  if (n == 0) return;
  DeviceBuffer<float> dc(ksub * d), dnorm(ksub * M);
  dc.upload(centroids, ksub * d);
  for (size_t m = 0; m < M; ++m)
    detail::row_norms(dc.get() + offsets[m] * ksub, ksub, dims[m], dims[m], dnorm.get() + m * ksub);
  const size_t chunk = rows_per_chunk(d * sizeof(float) * 2 + 16);
  const size_t rows = std::min(n, chunk);
  DeviceBuffer<float> dx(rows * d), dsub(rows * d), dscore(rows);
  DeviceBuffer<int32_t> dl(rows);
  std::vector<int32_t> labels(rows);
  for (size_t begin = 0; begin < n; begin += chunk) {
    const size_t count = std::min(chunk, n - begin);
    dx.upload(x + begin * d, count * d);
    for (size_t m = 0; m < M; ++m) {
      // Sub-vectors contiguous, so the score product reads full rows.
      gather_sub_kernel<<<unsigned((count * dims[m] + 255) / 256), 256>>>(dx.get(), count, d, offsets[m], dims[m],
                                                                           dsub.get());
      QV_LAUNCHED("gather_sub");
      detail::argmin_rows(dsub.get(), count, dims[m], dc.get() + offsets[m] * ksub, ksub, dims[m],
                          dnorm.get() + m * ksub, dl.get(), dscore.get());
      dl.download(labels.data(), count);
      for (size_t i = 0; i < count; ++i) sub_codes[(begin + i) * M + m] = uint32_t(labels[i]);
    }
  }
}

namespace {

// Beam search over the stages for rows already on the device (dx: count × d).
void rq_encode_device(const float* dx, size_t count, size_t d, size_t L, size_t K, const float* dcodebooks,
                      const float* dnorms, size_t beam, DeviceBuffer<float>* res, DeviceBuffer<float>* err,
                      DeviceBuffer<uint32_t>* paths, DeviceBuffer<uint64_t>& keys, DeviceBuffer<uint64_t>& selected,
                      DeviceBuffer<int>& counts, int& current) {
  // Entry 0 of every vector: residual x, error ‖x‖².
  QV_CUDA(cudaMemcpy2D(res[0].get(), beam * d * sizeof(float), dx, d * sizeof(float), d * sizeof(float), count,
                       cudaMemcpyDeviceToDevice));
  // ‖x‖² of entry 0 of every vector: residual rows and errors are both indexed v·beam + e.
  detail::row_norms(res[0].get(), count, d, beam * d, err[0].get(), beam);
  current = 0;
  size_t entries = 1;
  for (size_t l = 0; l < L; ++l) {
    const size_t w = std::min(beam, entries * K);
    // Scores of every (entry, codeword) pair: rows are entries v·beam + e; only e < entries are read.
    detail::score_keys(res[current].get(), count * beam, d, dcodebooks + l * K * d, K, d, dnorms + l * K,
                       err[current].get(), beam, keys.get());
    detail::Segments sg;
    sg.keys = keys.get();
    sg.key_query_stride = beam * K;
    sg.fixed_count = int(entries * K);
    detail::select_smallest(sg, count, w, selected.get());
    const int next = 1 - current;
    beam_advance_kernel<<<unsigned(count), 128>>>(selected.get(), int(w), int(K), int(d), int(L), int(l), int(beam),
                                                  dcodebooks + l * K * d, res[current].get(), paths[current].get(),
                                                  res[next].get(), err[next].get(), paths[next].get(), counts.get());
    QV_LAUNCHED("beam_advance");
    current = next;
    entries = w;
  }
}

}  // namespace

void rq_encode(size_t n, size_t d, const float* x, size_t L, size_t K, const float* codebooks, size_t beam,
               uint32_t* out_paths, float* xhat_sq_norms, float* sq_errors) {
  require_device();
  QV_CHECK(beam >= 1 && beam <= 256 && K >= 1 && K <= 65536 && L >= 1, InvalidArgument,
           "GPU RQ encoding: beam " << beam << ", " << K << " codewords, " << L << " stages");
  if (n == 0) return;
  DeviceBuffer<float> dcb(L * K * d), dnorms(L * K);
  dcb.upload(codebooks, L * K * d);
  detail::row_norms(dcb.get(), L * K, d, d, dnorms.get());
  const size_t per_vector = beam * (2 * d * sizeof(float) + 2 * sizeof(float) + 2 * L * sizeof(uint32_t) +
                                    K * sizeof(uint64_t) + sizeof(uint64_t)) + d * sizeof(float) + 16;
  const size_t chunk = rows_per_chunk(per_vector, 32);
  const size_t rows = std::min(n, chunk);
  DeviceBuffer<float> dx(rows * d), res[2], err[2], dxn(rows), derr(rows);
  DeviceBuffer<uint32_t> paths[2], dout(rows * L);
  for (int i = 0; i < 2; ++i) {
    res[i].allocate(rows * beam * d);
    err[i].allocate(rows * beam);
    paths[i].allocate(rows * beam * L);
  }
  DeviceBuffer<uint64_t> keys(rows * beam * K), selected(rows * beam);
  DeviceBuffer<int> counts(rows);
  std::vector<float> tmp_norm(rows), tmp_err(rows);
  for (size_t begin = 0; begin < n; begin += chunk) {
    const size_t count = std::min(chunk, n - begin);
    dx.upload(x + begin * d, count * d);
    int current = 0;
    rq_encode_device(dx.get(), count, d, L, K, dcb.get(), dnorms.get(), beam, res, err, paths, keys, selected, counts,
                     current);
    beam_finish_kernel<<<unsigned((count + 7) / 8), 256>>>(dx.get(), res[current].get(), paths[current].get(), count,
                                                          int(d), int(L), int(beam), dout.get(), dxn.get(), derr.get());
    QV_LAUNCHED("beam_finish");
    dout.download(out_paths + begin * L, count * L);
    if (xhat_sq_norms) dxn.download(xhat_sq_norms + begin, count);
    if (sq_errors) derr.download(sq_errors + begin, count);
  }
}

void trq_transform(size_t n, size_t d, const float* x, size_t k1, const float* first_centroids, const int32_t* slots,
                   size_t slot_count, const float* transforms, uint32_t* clusters, float* y) {
  require_device();
  if (n == 0) return;
  DeviceBuffer<float> dc(k1 * d), dcn(k1), dt(std::max<size_t>(slot_count, 1) * d * d);
  DeviceBuffer<int32_t> dslots(k1);
  dc.upload(first_centroids, k1 * d);
  dslots.upload(slots, k1);
  if (slot_count) dt.upload(transforms, slot_count * d * d);
  detail::row_norms(dc.get(), k1, d, d, dcn.get());
  const size_t chunk = rows_per_chunk(2 * d * sizeof(float) + 8);
  const size_t rows = std::min(n, chunk);
  DeviceBuffer<float> dx(rows * d), dy(rows * d), dscore(rows);
  DeviceBuffer<int32_t> dl(rows);
  std::vector<int32_t> labels(rows);
  for (size_t begin = 0; begin < n; begin += chunk) {
    const size_t count = std::min(chunk, n - begin);
    dx.upload(x + begin * d, count * d);
    detail::argmin_rows(dx.get(), count, d, dc.get(), k1, d, dcn.get(), dl.get(), dscore.get());
    transform_kernel<<<unsigned(count), 128, d * sizeof(float)>>>(dx.get(), count, int(d), dl.get(), dc.get(),
                                                                   dslots.get(), dt.get(), dy.get());
    QV_LAUNCHED("transform");
    dl.download(labels.data(), count);
    for (size_t i = 0; i < count; ++i) clusters[begin + i] = uint32_t(labels[i]);
    dy.download(y + begin * d, count * d);
  }
}

void exact_knn(size_t nq, const float* queries, size_t nb, const float* base, size_t d, bool inner_product, size_t k,
               int64_t* out_rows, float* out_scores) {
  require_device();
  QV_CHECK(k >= 1 && k <= kMaxK, InvalidArgument, "k = " << k << " (GPU: 1 … " << kMaxK << ")");
  QV_CHECK(nb < (size_t(1) << 32), InvalidArgument, "GPU exact search over " << nb << " rows (below 2^32)");
  if (nq == 0) return;
  DeviceBuffer<float> db(nb * d), dbn(nb);
  db.upload(base, nb * d);
  detail::row_norms(db.get(), nb, d, d, dbn.get());
  // Rows are scored in column blocks of kBlock; each block's best k survive, then the blocks' winners merge.
  constexpr size_t kBlock = 4096;
  const size_t blocks = (nb + kBlock - 1) / kBlock;
  const size_t w = std::min(k, nb);
  const size_t qchunk = std::max<size_t>(1, std::min<size_t>(nq, kChunkBytes / (nb * sizeof(uint64_t) + 1)));
  DeviceBuffer<float> dq(qchunk * d), dqn(qchunk);
  DeviceBuffer<uint64_t> keys(qchunk * nb), partial(qchunk * blocks * w), best(qchunk * w);
  std::vector<uint64_t> host(qchunk * w);
  for (size_t begin = 0; begin < nq; begin += qchunk) {
    const size_t count = std::min(qchunk, nq - begin);
    dq.upload(queries + begin * d, count * d);
    detail::row_norms(dq.get(), count, d, d, dqn.get());
    detail::score_keys(dq.get(), count, d, db.get(), nb, d, inner_product ? nullptr : dbn.get(),
                       inner_product ? nullptr : dqn.get(), 1, keys.get());
    // Stage 1: per (query, column block). The last block may be short: its count differs, so use counts.
    std::vector<int> block_counts(count * blocks);
    for (size_t q = 0; q < count; ++q)
      for (size_t b = 0; b < blocks; ++b) block_counts[q * blocks + b] = int(std::min(kBlock, nb - b * kBlock));
    DeviceBuffer<int> dcounts(count * blocks);
    dcounts.upload(block_counts.data(), count * blocks);
    detail::Segments s1;
    s1.keys = keys.get();
    s1.key_query_stride = kBlock;  // query index = q·blocks + b, and q·nb + b·kBlock = (q·blocks + b)·kBlock
    s1.counts = dcounts.get();     // only when nb is a multiple of kBlock; otherwise see below
    s1.count_query_stride = 1;
    if (nb % kBlock == 0) {
      detail::select_smallest(s1, count * blocks, w, partial.get());
    } else {
      for (size_t q = 0; q < count; ++q) {
        detail::Segments s = s1;
        s.keys = keys.get() + q * nb;
        s.counts = dcounts.get() + q * blocks;
        detail::select_smallest(s, blocks, w, partial.get() + q * blocks * w);
      }
    }
    detail::Segments s2;
    s2.keys = partial.get();
    s2.key_query_stride = blocks * w;
    s2.fixed_count = int(blocks * w);
    detail::select_smallest(s2, count, w, best.get());
    best.download(host.data(), count * w);
    for (size_t q = 0; q < count; ++q)
      for (size_t j = 0; j < k; ++j) {
        const uint64_t key = j < w ? host[q * w + j] : kNoKey;
        out_rows[(begin + q) * k + j] = key == kNoKey ? -1 : int64_t(uint32_t(key));
        out_scores[(begin + q) * k + j] = key == kNoKey ? INFINITY : key_score(key);
      }
  }
}

}  // namespace cuda
}  // namespace quiver
