// Small dense linear algebra of our own (no BLAS): the products, decompositions and rotations that OPQ, TRQ
// and PCA need at training time.
//
// Layout: every matrix is row-major and dense; element (i, j) of an r × c matrix is at [i·c + j]. Buffers are
// caller-owned and must hold exactly the sizes named in each comment (no leading dimensions, no padding).
// Products over many rows take float inputs and use the SIMD kernels; decompositions work in double on
// d × d matrices (d up to about 1024: they cost O(d³) and belong to training, never to per-query work).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace quiver {

// c (m × n) = a (m × k) · b (k × n). Rows of c in parallel; each row is one dot_transposed call (b read as
// k rows of n floats). threads: 0 = all.
void matmul(size_t m, size_t k, size_t n, const float* a, const float* b, float* c, int threads = 0);

// c (p × q, double) = aᵀ · b with a: n × p, b: n × q (sums over the n rows). Partial sums over blocks of rows
// run in float with the SIMD kernels and are added in double, which keeps 1e-6-level relative accuracy for
// the covariance and Procrustes sums of a few hundred thousand rows.
void matmul_at_b(size_t n, size_t p, size_t q, const float* a, const float* b, double* c, int threads = 0);

// y (n × d_out) = x (n × d_in) · mᵀ, i.e. y_i = M x_i for the d_out × d_in matrix M: the rows of x are
// transformed by M (a rotation, a projection). Parallel over rows.
void transform_rows(size_t n, size_t d_in, size_t d_out, const float* m, const float* x, float* y,
                    int threads = 0);

// y (d_out) = M (d_out × d_in) · x (d_in).
void matvec(size_t d_out, size_t d_in, const float* m, const float* x, float* y);
// matvec for `count` vectors (x: count rows of d_in floats at stride ldx; y: count rows of d_out at stride ldy),
// bit-identical to a matvec per vector. Row by row of M across the vectors, so each row is read once while it
// is in L1 rather than M streaming from L2 once per vector.
void matvec_many(size_t d_out, size_t d_in, const float* m, size_t count, const float* x, size_t ldx, float* y,
                 size_t ldy);
// y (d_in) = Mᵀ · x for M: d_out × d_in, x: d_out floats (rotating back with an orthogonal M).
void matvec_transposed(size_t d_out, size_t d_in, const float* m, const float* x, float* y);

// out (c × r) = transpose of a (r × c).
void transpose(size_t r, size_t c, const double* a, double* out);
void transpose(size_t r, size_t c, const float* a, float* out);

// d × d identity, in float.
std::vector<float> identity_matrix(size_t d);

// Eigen-decomposition of a symmetric d × d matrix a (only symmetric input is meaningful; the lower triangle
// is read): eigenvalues (d) in decreasing order, eigenvectors (d × d) with ROW j the unit eigenvector of
// eigenvalue j — so the eigenvector matrix is itself the rotation onto the eigenbasis (y = E x).
// Householder tridiagonalisation followed by implicit symmetric QR steps with Wilkinson shifts.
void symmetric_eigen(size_t d, const double* a, double* eigenvalues, double* eigenvectors);

// Thin singular value decomposition of a (m × n, m ≥ n) by one-sided Jacobi rotations (Hestenes), which is
// accurate even for tiny singular values: a = U · diag(s) · Vᵀ with u: m × n (orthonormal columns),
// s: n values in decreasing order, vt: n × n (row j = right singular vector j). Columns of U that belong to
// zero singular values are completed to an orthonormal set.
void svd_jacobi(size_t m, size_t n, const double* a, double* u, double* s, double* vt);

// Orthogonal Procrustes. Given the correlation a = Σ_i r_i ŷ_iᵀ (d × d, double) of sources r_i and targets
// ŷ_i, writes the rotation r_out (d × d float, orthogonal) that minimises Σ‖R r_i − ŷ_i‖², i.e. maximises
// tr(R a): with a = U S Vᵀ, R = V Uᵀ. Rank-deficient a (fewer pairs than d) still yields an orthogonal R
// (the free directions are completed arbitrarily but orthonormally).
// Computed from the eigen-decomposition of aᵀa (V, S²) and U = a V S⁻¹ re-orthonormalised in decreasing
// order of singular value: several times faster than Jacobi SVD, and the directions whose U it may blur
// are those with the smallest singular values, which move the objective least.
void procrustes_rotation(size_t d, const double* a, float* r_out);

// Principal component analysis of x (n × d).
struct PcaResult {
  std::vector<float> mean;          // d
  std::vector<double> eigenvalues;  // d, decreasing: variance along each component
  std::vector<float> components;    // d × d, row j = component j (a rotation: y = C (x − mean))
};
PcaResult pca(size_t n, size_t d, const float* x, int threads = 0);

// Fills q (d × d) with a uniformly random orthogonal matrix (Gram–Schmidt of a Gaussian matrix), seeded.
void random_orthogonal(size_t d, uint64_t seed, float* q);

// max |(M Mᵀ − I)_ij| for a rows × cols matrix (row-major): how far its rows are from orthonormal.
double orthonormal_rows_error(size_t rows, size_t cols, const float* m);
// The same for a d × d matrix: how far M is from orthogonal (tests and sanity checks).
double orthogonality_error(size_t d, const float* m);

}  // namespace quiver
