// Shared CUDA helpers: checked calls, owning device buffers, the order-preserving float key and the selection
// primitives every kernel file uses.
//
// Keys: a score s (float, smaller is better) maps to order_key(s), a uint32 whose unsigned order is the float
// order (negative scores included). Candidates travel as 64-bit keys (order_key(s) << 32) | index, so that
// comparing keys compares scores and breaks ties by the lower index — the CPU's tie rule — and every key of one
// selection is distinct.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "error.h"

namespace quiver {
namespace cuda {

#define QV_CUDA(call)                                                                                     \
  do {                                                                                                    \
    const cudaError_t qv_err_ = (call);                                                                   \
    if (qv_err_ != cudaSuccess) {                                                                         \
      cudaGetLastError(); /* clear the sticky-free error so the next call starts clean */                 \
      if (qv_err_ == cudaErrorMemoryAllocation)                                                          \
        QV_THROW(Unsupported, "CUDA: out of device memory in " #call);                                    \
      QV_THROW(Internal, "CUDA call " #call " failed: " << cudaGetErrorName(qv_err_) << " ("              \
                                                          << cudaGetErrorString(qv_err_) << ")");        \
    }                                                                                                     \
  } while (0)

// After every launch: launch-configuration errors surface here; faults inside kernels at the next sync.
#define QV_LAUNCHED(what) QV_CUDA(cudaPeekAtLastError())

// Throws Unsupported when no device is usable (callers fall back to the CPU before they get here).
void require_device();

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) { allocate(count); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept : ptr_(other.ptr_), count_(other.count_) {
    other.ptr_ = nullptr;
    other.count_ = 0;
  }
  void allocate(size_t count) {
    release();
    if (count == 0) return;
    QV_CHECK(count <= size_t(-1) / sizeof(T), InvalidArgument, "device buffer of " << count << " elements");
    QV_CUDA(cudaMalloc(reinterpret_cast<void**>(&ptr_), count * sizeof(T)));
    count_ = count;
  }
  void release() {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    count_ = 0;
  }
  T* get() const { return ptr_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }
  void upload(const T* host, size_t count, size_t offset = 0) {
    if (count) QV_CUDA(cudaMemcpy(ptr_ + offset, host, count * sizeof(T), cudaMemcpyHostToDevice));
  }
  void download(T* host, size_t count, size_t offset = 0) const {
    if (count) QV_CUDA(cudaMemcpy(host, ptr_ + offset, count * sizeof(T), cudaMemcpyDeviceToHost));
  }
  void fill_zero() {
    if (count_) QV_CUDA(cudaMemset(ptr_, 0, bytes()));
  }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

__host__ __device__ __forceinline__ uint32_t order_key(float score) {
#ifdef __CUDA_ARCH__
  const uint32_t bits = __float_as_uint(score);
#else
  uint32_t bits;
  std::memcpy(&bits, &score, 4);
#endif
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

__host__ __device__ __forceinline__ float key_score(uint64_t key) {
  const uint32_t k = uint32_t(key >> 32);
  const uint32_t bits = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
#ifdef __CUDA_ARCH__
  return __uint_as_float(bits);
#else
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
#endif
}

__host__ __device__ __forceinline__ uint64_t make_key(float score, uint32_t index) {
  return (uint64_t(order_key(score)) << 32) | index;
}

constexpr uint64_t kNoKey = ~uint64_t(0);  // sorts after every real key

// ---- Selection primitives (device) ----

// The k-th smallest of n distinct keys (1 ≤ k ≤ n), found by one warp (every lane returns it): bisection on the
// score half of the keys (32 bits) first, then, only among keys whose score ties the k-th, on the index half
// (usually no pass at all: one key ties). Keys may live in shared or global memory.
__device__ __forceinline__ uint64_t warp_kth_key_split(const uint64_t* keys, int n, int k) {
  const int lane = threadIdx.x & 31;
  uint32_t lo = 0xffffffffu, hi = 0;
  for (int i = lane; i < n; i += 32) {
    const uint32_t h = uint32_t(keys[i] >> 32);
    lo = min(lo, h);
    hi = max(hi, h);
  }
  lo = __reduce_min_sync(0xffffffffu, lo);
  hi = __reduce_max_sync(0xffffffffu, hi);
  while (lo < hi) {
    const uint32_t mid = lo + ((hi - lo) >> 1);
    int count = 0;
    for (int i = lane; i < n; i += 32) count += uint32_t(keys[i] >> 32) <= mid;
    if (__reduce_add_sync(0xffffffffu, count) >= k)
      hi = mid;
    else
      lo = mid + 1;
  }
  const uint32_t score = lo;
  int below = 0;
  uint32_t lo2 = 0xffffffffu, hi2 = 0;
  for (int i = lane; i < n; i += 32) {
    const uint64_t v = keys[i];
    const uint32_t h = uint32_t(v >> 32);
    below += h < score;
    if (h == score) {
      lo2 = min(lo2, uint32_t(v));
      hi2 = max(hi2, uint32_t(v));
    }
  }
  const int need = k - __reduce_add_sync(0xffffffffu, below);
  lo2 = __reduce_min_sync(0xffffffffu, lo2);
  hi2 = __reduce_max_sync(0xffffffffu, hi2);
  while (lo2 < hi2) {
    const uint32_t mid = lo2 + ((hi2 - lo2) >> 1);
    int count = 0;
    for (int i = lane; i < n; i += 32) {
      const uint64_t v = keys[i];
      count += uint32_t(v >> 32) == score && uint32_t(v) <= mid;
    }
    if (__reduce_add_sync(0xffffffffu, count) >= need)
      hi2 = mid;
    else
      lo2 = mid + 1;
  }
  return (uint64_t(score) << 32) | lo2;
}

// Keeps, in place and in their current order, the keys ≤ limit; returns how many are kept (one warp).
__device__ __forceinline__ int warp_compact(uint64_t* keys, int n, uint64_t limit) {
  const int lane = threadIdx.x & 31;
  int kept = 0;
  for (int base = 0; base < n; base += 32) {
    const int i = base + lane;
    const uint64_t v = i < n ? keys[i] : kNoKey;
    const bool keep = i < n && v <= limit;
    const unsigned mask = __ballot_sync(0xffffffffu, keep);
    __syncwarp();
    if (keep) keys[kept + __popc(mask & ((1u << lane) - 1u))] = v;
    kept += __popc(mask);
    __syncwarp();
  }
  return kept;
}

}  // namespace cuda
}  // namespace quiver
