// Dense kernels: the tiled score product (a rows × b rows, fp32 SIMT, 64 × 64 tiles, each thread a 4 × 4 block),
// fused with either an arg-min per row (k-means assignment, PQ encoding) or a key per (row, column) for the
// selections (beam search, probes, exact k-NN); the block-wide selection of the w smallest keys.
#include "kernels.cuh"

namespace quiver {
namespace cuda {
namespace detail {
namespace {

constexpr int kTile = 64;    // rows of A and of B per block tile
constexpr int kDepth = 16;   // dimensions per shared-memory step
constexpr int kPad = 4;      // keeps float4 rows aligned, shifts banks between rows
constexpr size_t kMaxRowsPerLaunch = size_t(65535) * kTile;

template <bool kArgmin>
__global__ void __launch_bounds__(256) tile_kernel(const float* __restrict__ a, int n, size_t lda,
                                                   const float* __restrict__ b, int m, int d,
                                                   const float* __restrict__ b_norms,
                                                   const float* __restrict__ row_bias, int group,
                                                   uint64_t* __restrict__ keys, int32_t* __restrict__ labels,
                                                   float* __restrict__ scores) {
  __shared__ __align__(16) float as[kDepth][kTile + kPad];
  __shared__ __align__(16) float bs[kDepth][kTile + kPad];
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
  const int row0 = blockIdx.y * kTile;
  float best[4];
  int best_index[4];
  for (int i = 0; i < 4; ++i) {
    best[i] = INFINITY;
    best_index[i] = 0x7fffffff;
  }
  const int col_begin = kArgmin ? 0 : blockIdx.x * kTile;
  const int col_end = kArgmin ? m : min(m, col_begin + kTile);
  for (int col0 = col_begin; col0 < col_end; col0 += kTile) {
    float acc[4][4];
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;
    for (int k0 = 0; k0 < d; k0 += kDepth) {
      for (int e = tid; e < kTile * kDepth; e += 256) {
        const int r = e / kDepth, kk = e % kDepth;
        const int gr = row0 + r, gk = k0 + kk, gc = col0 + r;
        as[kk][r] = (gr < n && gk < d) ? a[size_t(gr) * lda + gk] : 0.f;
        bs[kk][r] = (gc < m && gk < d) ? b[size_t(gc) * d + gk] : 0.f;
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < kDepth; ++kk) {
        const float4 av = *reinterpret_cast<const float4*>(&as[kk][ty * 4]);
        const float4 bv = *reinterpret_cast<const float4*>(&bs[kk][tx * 4]);
        const float ar[4] = {av.x, av.y, av.z, av.w};
        const float br[4] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(ar[i], br[j], acc[i][j]);
      }
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int r = row0 + ty * 4 + i;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int c = col0 + tx * 4 + j;
        if (c >= m) continue;
        if (kArgmin) {
          const float s = b_norms[c] - 2.f * acc[i][j];
          if (s < best[i]) {  // columns arrive in increasing order per thread: strict < keeps the lower index
            best[i] = s;
            best_index[i] = c;
          }
        } else if (r < n) {
          const float s = b_norms ? (row_bias ? row_bias[r] : 0.f) + b_norms[c] - 2.f * acc[i][j] : -acc[i][j];
          keys[size_t(r) * m + c] = make_key(s, uint32_t((r % group) * m + c));
        }
      }
    }
  }
  if (kArgmin) {
    // The 16 threads sharing rows (same ty) are 16 consecutive lanes of one warp.
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      for (int off = 8; off > 0; off >>= 1) {
        const float os = __shfl_xor_sync(0xffffffffu, best[i], off);
        const int oi = __shfl_xor_sync(0xffffffffu, best_index[i], off);
        if (os < best[i] || (os == best[i] && oi < best_index[i])) {
          best[i] = os;
          best_index[i] = oi;
        }
      }
      const int r = row0 + ty * 4 + i;
      if (tx == 0 && r < n) {
        labels[r] = best_index[i];
        scores[r] = best[i];
      }
    }
  }
}

__global__ void row_norms_kernel(const float* __restrict__ a, size_t n, size_t d, size_t lda, float* out,
                                 size_t out_stride) {
  const size_t row = size_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= n) return;
  const int lane = threadIdx.x & 31;
  float s = 0.f;
  for (size_t t = lane; t < d; t += 32) {
    const float v = a[row * lda + t];
    s = fmaf(v, v, s);
  }
  for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
  if (lane == 0) out[row * out_stride] = s;
}

constexpr int kSelectThreads = 256;
constexpr int kMaxSelect = 1024;

__device__ __forceinline__ int segment_count(const Segments& sg, size_t q, int s) {
  return sg.counts ? sg.counts[q * sg.count_query_stride + size_t(s) * sg.count_seg_stride] : sg.fixed_count;
}

// Visits every candidate key of query q as f(key), spreading all segments' keys over the block's threads at
// once (segments hold at most `span` keys each: fixed_count, or max_count when counts vary), so that many short
// segments cost no more than one long one.
template <typename F>
__device__ __forceinline__ void for_each_key(const Segments& sg, size_t q, F&& f) {
  const uint64_t* base = sg.keys + q * sg.key_query_stride;
  if (sg.nseg == 1) {
    const int cnt = segment_count(sg, q, 0);
    for (int i = threadIdx.x; i < cnt; i += kSelectThreads) f(base[i]);
    return;
  }
  const int span = sg.counts ? sg.max_count : sg.fixed_count;
  const int total = span * sg.nseg;
  for (int flat = threadIdx.x; flat < total; flat += kSelectThreads) {
    const int s = flat / span, i = flat - s * span;
    if (i < segment_count(sg, q, s)) f(base[size_t(s) * sg.key_seg_stride + i]);
  }
}

// Block-wide sum with one barrier: three rotating counters, so a counter is cleared two passes before it is
// written again and after everyone has read it.
__device__ __forceinline__ int block_sum(int value, unsigned long long* counters, int& pass) {
  value = __reduce_add_sync(0xffffffffu, value);
  unsigned long long* slot = &counters[pass % 3];
  if ((threadIdx.x & 31) == 0 && value) atomicAdd(slot, (unsigned long long)value);
  __syncthreads();
  const int total = int(*slot);
  if (threadIdx.x == 0) counters[(pass + 2) % 3] = 0;
  ++pass;
  return total;
}

// Block per query: the w smallest keys over its segments. Bisection on the score half of the keys, then (only
// among keys tying the w-th score) on the index half; then a rank sort of the w winners.
__global__ void __launch_bounds__(kSelectThreads) select_kernel(Segments sg, int w, uint64_t* __restrict__ out) {
  const size_t q = blockIdx.x;
  __shared__ unsigned int s_lo, s_hi;
  __shared__ unsigned long long s_counters[3];
  __shared__ int s_total, s_taken;
  __shared__ uint64_t s_sel[kMaxSelect];
  if (threadIdx.x == 0) {
    s_lo = 0xffffffffu;
    s_hi = 0;
    s_total = 0;
    s_taken = 0;
    s_counters[0] = s_counters[1] = s_counters[2] = 0;
  }
  __syncthreads();
  unsigned lo = 0xffffffffu, hi = 0;
  int total = 0;
  for_each_key(sg, q, [&](uint64_t v) {
    const unsigned h = unsigned(v >> 32);
    lo = min(lo, h);
    hi = max(hi, h);
    ++total;
  });
  lo = __reduce_min_sync(0xffffffffu, lo);
  hi = __reduce_max_sync(0xffffffffu, hi);
  total = __reduce_add_sync(0xffffffffu, total);
  if ((threadIdx.x & 31) == 0) {
    atomicMin(&s_lo, lo);
    atomicMax(&s_hi, hi);
    atomicAdd(&s_total, total);
  }
  __syncthreads();
  total = s_total;
  lo = s_lo;
  hi = s_hi;
  int pass = 0;
  uint64_t limit = kNoKey;
  if (total > w) {
    while (lo < hi) {
      const unsigned mid = lo + ((hi - lo) >> 1);
      int count = 0;
      for_each_key(sg, q, [&](uint64_t v) { count += unsigned(v >> 32) <= mid; });
      if (block_sum(count, s_counters, pass) >= w)
        hi = mid;
      else
        lo = mid + 1;
    }
    const unsigned score = lo;
    int below = 0;
    unsigned lo2 = 0xffffffffu, hi2 = 0;
    for_each_key(sg, q, [&](uint64_t v) {
      const unsigned h = unsigned(v >> 32);
      below += h < score;
      if (h == score) {
        lo2 = min(lo2, unsigned(v));
        hi2 = max(hi2, unsigned(v));
      }
    });
    const int need = w - block_sum(below, s_counters, pass);
    __shared__ unsigned s_lo2, s_hi2;
    if (threadIdx.x == 0) {
      s_lo2 = 0xffffffffu;
      s_hi2 = 0;
    }
    __syncthreads();
    lo2 = __reduce_min_sync(0xffffffffu, lo2);
    hi2 = __reduce_max_sync(0xffffffffu, hi2);
    if ((threadIdx.x & 31) == 0) {
      atomicMin(&s_lo2, lo2);
      atomicMax(&s_hi2, hi2);
    }
    __syncthreads();
    lo2 = s_lo2;
    hi2 = s_hi2;
    while (lo2 < hi2) {
      const unsigned mid = lo2 + ((hi2 - lo2) >> 1);
      int count = 0;
      for_each_key(sg, q, [&](uint64_t v) { count += unsigned(v >> 32) == score && unsigned(v) <= mid; });
      if (block_sum(count, s_counters, pass) >= need)
        hi2 = mid;
      else
        lo2 = mid + 1;
    }
    limit = (uint64_t(score) << 32) | lo2;
  }
  for_each_key(sg, q, [&](uint64_t v) {
    if (v <= limit) {
      const int slot = atomicAdd(&s_taken, 1);
      if (slot < w) s_sel[slot] = v;  // only kNoKey padding can tie past w
    }
  });
  __syncthreads();
  const int taken = min(s_taken, w);
  for (int i = threadIdx.x; i < taken; i += kSelectThreads) {
    const uint64_t v = s_sel[i];
    int rank = 0;
    for (int j = 0; j < taken; ++j) rank += s_sel[j] < v || (s_sel[j] == v && j < i);
    out[q * w + rank] = v;
  }
  for (int i = taken + threadIdx.x; i < w; i += kSelectThreads) out[q * w + i] = kNoKey;
}

}  // namespace

void row_norms(const float* a, size_t n, size_t d, size_t lda, float* out, size_t out_stride) {
  if (n == 0) return;
  const int per_block = 8;
  row_norms_kernel<<<unsigned((n + per_block - 1) / per_block), per_block * 32>>>(a, n, d, lda, out, out_stride);
  QV_LAUNCHED("row_norms");
}

void argmin_rows(const float* a, size_t n, size_t lda, const float* b, size_t m, size_t d, const float* b_norms,
                 int32_t* labels, float* scores) {
  QV_CHECK(m >= 1 && m < (size_t(1) << 31) && d >= 1 && d < (size_t(1) << 31), InvalidArgument,
           "argmin over " << m << " rows of dimension " << d);
  for (size_t begin = 0; begin < n; begin += kMaxRowsPerLaunch) {
    const size_t count = std::min(kMaxRowsPerLaunch, n - begin);
    const dim3 grid(1, unsigned((count + kTile - 1) / kTile));
    tile_kernel<true><<<grid, dim3(16, 16)>>>(a + begin * lda, int(count), lda, b, int(m), int(d), b_norms, nullptr,
                                              1, nullptr, labels + begin, scores + begin);
    QV_LAUNCHED("argmin_rows");
  }
}

void score_keys(const float* a, size_t n, size_t lda, const float* b, size_t m, size_t d, const float* b_norms,
                const float* row_bias, size_t group, uint64_t* keys) {
  QV_CHECK(group >= 1 && group * m <= (size_t(1) << 32) && d >= 1, InvalidArgument,
           "score keys for " << group << " × " << m << " candidates");
  for (size_t begin = 0; begin < n; begin += kMaxRowsPerLaunch) {
    const size_t count = std::min(kMaxRowsPerLaunch, n - begin);
    QV_CHECK(begin % group == 0, Internal, "row chunk splits a group");
    const dim3 grid(unsigned((m + kTile - 1) / kTile), unsigned((count + kTile - 1) / kTile));
    tile_kernel<false><<<grid, dim3(16, 16)>>>(a + begin * lda, int(count), lda, b, int(m), int(d), b_norms,
                                               row_bias ? row_bias + begin : nullptr, int(group),
                                               keys + begin * m, nullptr, nullptr);
    QV_LAUNCHED("score_keys");
  }
}

void select_smallest(const Segments& segments, size_t nq, size_t w, uint64_t* out) {
  QV_CHECK(w >= 1 && w <= size_t(kMaxSelect), InvalidArgument, "selection of " << w << " (1 … " << kMaxSelect << ")");
  for (size_t begin = 0; begin < nq; begin += 65535u * 16) {
    const size_t count = std::min<size_t>(65535u * 16, nq - begin);
    Segments part = segments;
    part.keys += begin * segments.key_query_stride;
    if (part.counts) part.counts += begin * segments.count_query_stride;
    select_kernel<<<unsigned(count), kSelectThreads>>>(part, int(w), out + begin * w);
    QV_LAUNCHED("select_smallest");
  }
}

}  // namespace detail
}  // namespace cuda
}  // namespace quiver
