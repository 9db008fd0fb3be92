// Device-pointer building blocks shared by the .cu files (not part of the host API in cuda_api.h).
// All pointers here are DEVICE pointers; every launch is checked by the caller's QV_LAUNCHED.
#pragma once

#include "common.cuh"

namespace quiver {
namespace cuda {
namespace detail {

// out[i · out_stride] = ‖a_i‖² for n rows of d floats at stride lda.
void row_norms(const float* a, size_t n, size_t d, size_t lda, float* out, size_t out_stride = 1);

// For each row a_i (n × d at stride lda) the best row b_j of B (m × d, contiguous), score ‖b_j‖² − 2⟨a_i, b_j⟩
// (b_norms = ‖b_j‖²), ties to the lower j: labels[i] = j, scores[i] = that score (add ‖a_i‖² for the distance).
void argmin_rows(const float* a, size_t n, size_t lda, const float* b, size_t m, size_t d, const float* b_norms,
                 int32_t* labels, float* scores);

// keys[i·m + j] = make_key(score, (i mod group)·m + j) with score = row_bias[i] + b_norms[j] − 2⟨a_i, b_j⟩ for
// L2 (b_norms not null; row_bias may be null = 0), or −⟨a_i, b_j⟩ for inner product (b_norms null).
void score_keys(const float* a, size_t n, size_t lda, const float* b, size_t m, size_t d, const float* b_norms,
                const float* row_bias, size_t group, uint64_t* keys);

// Candidate keys of one selection ("query") spread over segments: segment s of query q holds
// counts[q·count_query_stride + s·count_seg_stride] keys (or fixed_count when counts is null) starting at
// keys + q·key_query_stride + s·key_seg_stride.
struct Segments {
  const uint64_t* keys = nullptr;
  size_t key_query_stride = 0, key_seg_stride = 0;
  const int* counts = nullptr;
  size_t count_query_stride = 0, count_seg_stride = 0;
  int fixed_count = 0;
  int max_count = 0;  // with counts and nseg > 1: the most keys any segment can hold (≤ key_seg_stride)
  int nseg = 1;
};
// The w smallest keys of each of nq queries, ascending, into out (nq × w; kNoKey past the candidates).
void select_smallest(const Segments& segments, size_t nq, size_t w, uint64_t* out);

}  // namespace detail
}  // namespace cuda
}  // namespace quiver
