#include "linalg.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "error.h"
#include "random.h"
#include "simd.h"
#include "thread_pool.h"

namespace quiver {

void matmul(size_t m, size_t k, size_t n, const float* a, const float* b, float* c, int threads) {
  const Kernels& kern = kernels();
  default_pool().parallel_for(
      m, 16,
      [&](size_t begin, size_t end) {
        // Several rows per pass over b (bit-identical to a dot_transposed per row): b is read from L2 once per
        // group of rows instead of once per row, which is what bounds projections such as PCA's (b: d × p).
        kern.dot_transposed_batch(a + begin * k, end - begin, k, b, k, n, n, c + begin * n, n);
      },
      effective_threads(threads));
}

void matmul_at_b(size_t n, size_t p, size_t q, const float* a, const float* b, double* c, int threads) {
  std::fill(c, c + p * q, 0.0);
  if (n == 0) return;
  // Rows are cut into a number of parts that depends on n only (not on the thread count), each summed on
  // its own and then added in order: the result is the same whatever the number of threads.
  constexpr size_t kBlockRows = 256;  // float partial sums over at most this many rows
  const size_t part_rows = std::max<size_t>(4096, (n + 63) / 64);
  const size_t parts = (n + part_rows - 1) / part_rows;
  std::vector<std::vector<double>> partial(parts);
  const Kernels& kern = kernels();
  default_pool().parallel_for(
      parts, 1,
      [&](size_t begin, size_t end) {
        std::vector<float> at(p * kBlockRows), row(q);
        for (size_t part = begin; part < end; ++part) {
          std::vector<double>& sum = partial[part];
          sum.assign(p * q, 0.0);
          const size_t r_end = std::min(n, (part + 1) * part_rows);
          for (size_t r0 = part * part_rows; r0 < r_end; r0 += kBlockRows) {
            const size_t rows = std::min(kBlockRows, r_end - r0);
            // aᵀ of the block (p × rows): row i holds column i of a over the block's rows.
            for (size_t r = 0; r < rows; ++r)
              for (size_t i = 0; i < p; ++i) at[i * rows + r] = a[(r0 + r) * p + i];
            for (size_t i = 0; i < p; ++i) {
              kern.dot_transposed(&at[i * rows], b + r0 * q, rows, q, q, row.data());
              double* out = &sum[i * q];
              for (size_t j = 0; j < q; ++j) out[j] += row[j];
            }
          }
        }
      },
      effective_threads(threads));
  for (const std::vector<double>& sum : partial)
    for (size_t i = 0; i < p * q; ++i) c[i] += sum[i];
}

void transform_rows(size_t n, size_t d_in, size_t d_out, const float* m, const float* x, float* y,
                    int threads) {
  std::vector<float> mt(d_in * d_out);
  transpose(d_out, d_in, m, mt.data());
  matmul(n, d_in, d_out, x, mt.data(), y, threads);
}

void matvec(size_t d_out, size_t d_in, const float* m, const float* x, float* y) {
  matvec_many(d_out, d_in, m, 1, x, d_in, y, d_out);
}

void matvec_many(size_t d_out, size_t d_in, const float* m, size_t count, const float* x, size_t ldx, float* y,
                 size_t ldy) {
  const Kernels& kern = kernels();
  for (size_t i = 0; i < d_out; ++i)
    for (size_t p = 0; p < count; ++p) y[p * ldy + i] = kern.dot(m + i * d_in, x + p * ldx, d_in);
}

void matvec_transposed(size_t d_out, size_t d_in, const float* m, const float* x, float* y) {
  // (Mᵀ x)_j = Σ_i x_i M_ij: exactly the transposed-layout product of the kernels, with M as the table.
  kernels().dot_transposed(x, m, d_out, d_in, d_in, y);
}

void transpose(size_t r, size_t c, const double* a, double* out) {
  for (size_t i = 0; i < r; ++i)
    for (size_t j = 0; j < c; ++j) out[j * r + i] = a[i * c + j];
}

void transpose(size_t r, size_t c, const float* a, float* out) {
  for (size_t i = 0; i < r; ++i)
    for (size_t j = 0; j < c; ++j) out[j * r + i] = a[i * c + j];
}

std::vector<float> identity_matrix(size_t d) {
  std::vector<float> m(d * d, 0.0f);
  for (size_t i = 0; i < d; ++i) m[i * d + i] = 1.0f;
  return m;
}

namespace {

// Rotates rows i and j of a row-major matrix with `len` columns: (x, y) ← (c·x + s·y, −s·x + c·y).
inline void rotate_rows(double* x, double* y, size_t len, double c, double s) {
  for (size_t t = 0; t < len; ++t) {
    const double xi = x[t], yi = y[t];
    x[t] = c * xi + s * yi;
    y[t] = c * yi - s * xi;
  }
}

// Four independent partial sums: a single accumulator makes the loop wait on the add latency each step.
inline double dot_d(const double* a, const double* b, size_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

// Makes the rows of v (count × len) orthonormal in order. Rows flagged invalid, and rows that lose more than
// half their length to the previous ones, are replaced by unit vectors orthogonal to every row before them
// (taken from the standard basis), so the result is always a full orthonormal set. count ≤ len.
void orthonormalize_rows(size_t count, size_t len, double* v, std::vector<bool> valid) {
  std::vector<double> candidate(len);
  for (size_t i = 0; i < count; ++i) {
    double* row = v + i * len;
    bool ok = valid[i];
    if (ok) {
      const double before = std::sqrt(dot_d(row, row, len));
      ok = before > 0;
      if (ok) {
        // One pass of modified Gram–Schmidt, and a second only when the first removed a large part of the row
        // (cancellation then leaves rounding errors along earlier rows): "twice is enough" (Kahan–Parlett).
        double after = before;
        for (int pass = 0; pass < 2; ++pass) {
          const double norm_in = after;
          for (size_t j = 0; j < i; ++j) {
            const double proj = dot_d(row, v + j * len, len);
            for (size_t t = 0; t < len; ++t) row[t] -= proj * v[j * len + t];
          }
          after = std::sqrt(dot_d(row, row, len));
          if (after > 0.7 * norm_in) break;
        }
        ok = after > 0.5 * before;
        if (ok)
          for (size_t t = 0; t < len; ++t) row[t] /= after;
      }
    }
    if (ok) continue;
    // Completion: the basis vector with the largest component left after projecting out rows 0..i−1.
    // Among len basis vectors, their squared residual lengths sum to len − i ≥ 1, so the best keeps ≥ 1/len.
    size_t best = 0;
    double best_norm = -1;
    for (size_t e = 0; e < len; ++e) {
      double norm2 = 1;
      for (size_t j = 0; j < i; ++j) norm2 -= v[j * len + e] * v[j * len + e];
      if (norm2 > best_norm) {
        best_norm = norm2;
        best = e;
      }
    }
    std::fill(candidate.begin(), candidate.end(), 0.0);
    candidate[best] = 1;
    for (int pass = 0; pass < 2; ++pass)
      for (size_t j = 0; j < i; ++j) {
        const double proj = dot_d(candidate.data(), v + j * len, len);
        for (size_t t = 0; t < len; ++t) candidate[t] -= proj * v[j * len + t];
      }
    const double norm = std::sqrt(dot_d(candidate.data(), candidate.data(), len));
    QV_CHECK(norm > 0, Internal, "orthonormal completion failed");
    for (size_t t = 0; t < len; ++t) row[t] = candidate[t] / norm;
  }
}

// Householder reduction of the symmetric matrix a (n × n, overwritten) to tridiagonal form T = Qᵀ a Q.
// Returns diag (n) and off (n − 1, off[i] = T(i, i+1)); q (n × n) receives Q.
void tridiagonalize(size_t n, double* a, double* diag, double* off, double* q) {
  std::fill(q, q + n * n, 0.0);
  for (size_t i = 0; i < n; ++i) q[i * n + i] = 1;
  std::vector<double> v(n), p(n);
  for (size_t k = 0; k + 2 < n; ++k) {
    const size_t m = n - k - 1;  // length of the column below the diagonal
    const size_t o = k + 1;      // first row/column of the trailing block
    double norm2 = 0;
    for (size_t i = 0; i < m; ++i) {
      v[i] = a[(o + i) * n + k];
      norm2 += v[i] * v[i];
    }
    const double norm = std::sqrt(norm2);
    if (norm == 0) continue;
    // Reflect x onto alpha·e1 with alpha of the opposite sign to x0, which avoids cancellation in v0.
    const double alpha = v[0] >= 0 ? -norm : norm;
    v[0] -= alpha;
    const double vtv = dot_d(v.data(), v.data(), m);
    if (vtv == 0) continue;
    const double beta = 2 / vtv;
    // H A22 H = A22 − v wᵀ − w vᵀ with p = β A22 v and w = p − (β pᵀv / 2) v.
    for (size_t i = 0; i < m; ++i) p[i] = beta * dot_d(a + (o + i) * n + o, v.data(), m);
    const double kk = beta * dot_d(p.data(), v.data(), m) / 2;
    for (size_t i = 0; i < m; ++i) p[i] -= kk * v[i];  // p now holds w
    for (size_t i = 0; i < m; ++i) {
      double* row = a + (o + i) * n + o;
      const double vi = v[i], wi = p[i];
      for (size_t j = 0; j < m; ++j) row[j] -= vi * p[j] + wi * v[j];
    }
    a[k * n + o] = a[o * n + k] = alpha;
    for (size_t i = 1; i < m; ++i) a[k * n + o + i] = a[(o + i) * n + k] = 0;
    // Q ← Q H.
    for (size_t r = 0; r < n; ++r) {
      double* row = q + r * n + o;
      const double t = beta * dot_d(row, v.data(), m);
      for (size_t j = 0; j < m; ++j) row[j] -= t * v[j];
    }
  }
  for (size_t i = 0; i < n; ++i) diag[i] = a[i * n + i];
  for (size_t i = 0; i + 1 < n; ++i) off[i] = a[i * n + i + 1];
}

}  // namespace

void symmetric_eigen(size_t d, const double* a, double* eigenvalues, double* eigenvectors) {
  QV_CHECK(d >= 1, InvalidArgument, "symmetric_eigen needs d >= 1");
  std::vector<double> work(d * d), q(d * d), diag(d), off(d, 0.0);
  for (size_t i = 0; i < d; ++i)
    for (size_t j = 0; j <= i; ++j) {
      QV_CHECK(std::isfinite(a[i * d + j]), NonFinite, "symmetric_eigen: non-finite matrix entry");
      work[i * d + j] = work[j * d + i] = a[i * d + j];
    }
  tridiagonalize(d, work.data(), diag.data(), off.data(), q.data());
  // z = Qᵀ: row i is column i of Q, so each QR rotation updates two contiguous rows.
  std::vector<double>& z = work;
  transpose(d, d, q.data(), z.data());

  const double eps = std::numeric_limits<double>::epsilon();
  size_t steps = 0;
  const size_t max_steps = 50 * d + 100;
  size_t hi = d - 1;
  while (hi > 0) {
    // Deflate: a negligible off-diagonal entry splits off the eigenvalue at hi.
    if (std::fabs(off[hi - 1]) <= eps * (std::fabs(diag[hi - 1]) + std::fabs(diag[hi]))) {
      off[hi - 1] = 0;
      --hi;
      continue;
    }
    size_t lo = hi - 1;
    while (lo > 0 && std::fabs(off[lo - 1]) > eps * (std::fabs(diag[lo - 1]) + std::fabs(diag[lo]))) --lo;
    QV_CHECK(++steps <= max_steps, Internal, "symmetric_eigen did not converge");
    // One implicit QR step with the Wilkinson shift on the unreduced block [lo, hi]: the first rotation is
    // chosen from the shifted first column, the rest chase the bulge down the band.
    const double delta = (diag[hi - 1] - diag[hi]) / 2;
    const double e = off[hi - 1];
    const double root = std::hypot(delta, e);
    const double mu = diag[hi] - e * e / (delta + (delta >= 0 ? root : -root));
    double x = diag[lo] - mu, y = off[lo];
    for (size_t k = lo; k < hi; ++k) {
      const double r = std::hypot(x, y);
      const double c = r == 0 ? 1 : x / r, s = r == 0 ? 0 : y / r;
      if (k > lo) off[k - 1] = r;
      const double p0 = diag[k], q0 = off[k], t0 = diag[k + 1];
      diag[k] = c * c * p0 + 2 * c * s * q0 + s * s * t0;
      diag[k + 1] = s * s * p0 - 2 * c * s * q0 + c * c * t0;
      off[k] = c * s * (t0 - p0) + (c * c - s * s) * q0;
      if (k + 1 < hi) {
        y = s * off[k + 1];  // the bulge at (k, k+2)
        off[k + 1] *= c;
        x = off[k];
      }
      rotate_rows(&z[k * d], &z[(k + 1) * d], d, c, s);
    }
  }
  std::vector<size_t> order(d);
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) { return diag[i] > diag[j]; });
  for (size_t i = 0; i < d; ++i) {
    eigenvalues[i] = diag[order[i]];
    std::memcpy(eigenvectors + i * d, &z[order[i] * d], d * sizeof(double));
  }
}

void svd_jacobi(size_t m, size_t n, const double* a, double* u, double* s, double* vt) {
  QV_CHECK(n >= 1 && m >= n, InvalidArgument, "svd_jacobi needs m >= n >= 1, got " << m << " x " << n);
  // w = aᵀ: row j is column j of a. One-sided Jacobi rotates pairs of columns of a (rows of w) until all
  // are mutually orthogonal; the same rotations applied to the identity give V (kept as rows, i.e. Vᵀ).
  std::vector<double> w(n * m), v(n * n, 0.0);
  transpose(m, n, a, w.data());
  for (size_t i = 0; i < n; ++i) v[i * n + i] = 1;
  const double tol = 1e-15;
  for (int sweep = 0;; ++sweep) {
    QV_CHECK(sweep < 80, Internal, "svd_jacobi did not converge");
    bool rotated = false;
    for (size_t i = 0; i + 1 < n; ++i)
      for (size_t j = i + 1; j < n; ++j) {
        double* wi = &w[i * m];
        double* wj = &w[j * m];
        const double alpha = dot_d(wi, wi, m), beta = dot_d(wj, wj, m), gamma = dot_d(wi, wj, m);
        if (alpha == 0 || beta == 0 || std::fabs(gamma) <= tol * std::sqrt(alpha * beta)) continue;
        rotated = true;
        // Rotation that makes columns i and j orthogonal: t = tan θ is the smaller root of
        // t² + 2ζt − 1 = 0 with ζ = (β − α) / 2γ.
        const double zeta = (beta - alpha) / (2 * gamma);
        const double t = (zeta >= 0 ? 1.0 : -1.0) / (std::fabs(zeta) + std::sqrt(1 + zeta * zeta));
        const double c = 1 / std::sqrt(1 + t * t), sn = c * t;
        // (x, y) ← (c·x − s·y, s·x + c·y) is rotate_rows with −s.
        rotate_rows(wi, wj, m, c, -sn);
        rotate_rows(&v[i * n], &v[j * n], n, c, -sn);
      }
    if (!rotated) break;
  }
  std::vector<double> norms(n);
  for (size_t j = 0; j < n; ++j) norms[j] = std::sqrt(dot_d(&w[j * m], &w[j * m], m));
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) { return norms[i] > norms[j]; });
  std::vector<double> ucols(n * m);  // row j = column j of U
  std::vector<bool> valid(n);
  for (size_t k = 0; k < n; ++k) {
    const size_t j = order[k];
    s[k] = norms[j];
    std::memcpy(vt + k * n, &v[j * n], n * sizeof(double));
    valid[k] = norms[j] > 0;
    for (size_t r = 0; r < m; ++r) ucols[k * m + r] = valid[k] ? w[j * m + r] / norms[j] : 0;
  }
  orthonormalize_rows(n, m, ucols.data(), valid);
  transpose(n, m, ucols.data(), u);
}

void procrustes_rotation(size_t d, const double* a, float* r_out) {
  QV_CHECK(d >= 1, InvalidArgument, "procrustes needs d >= 1");
  // aᵀa = V S² Vᵀ.
  std::vector<double> ata(d * d, 0.0);
  for (size_t r = 0; r < d; ++r) {
    const double* row = a + r * d;
    for (size_t i = 0; i < d; ++i) {
      const double ai = row[i];
      if (ai == 0) continue;
      double* out = &ata[i * d];
      for (size_t j = 0; j <= i; ++j) out[j] += ai * row[j];
    }
  }
  std::vector<double> lambda(d), v(d * d);
  symmetric_eigen(d, ata.data(), lambda.data(), v.data());
  // u_i = a v_i / s_i, row i of `u`. Directions with s_i below 1e-6·s_0 are noise in the eigen route (their
  // s_i² sits at the precision floor of s_0²) and are completed instead; they hardly move tr(R a).
  const double s0 = std::sqrt(std::max(lambda[0], 0.0));
  // w = a V (column i = a v_i) by the float SIMD product: its rounding only perturbs u_i slightly, and the
  // re-orthonormalisation below removes any loss of orthogonality. aᵀa above stays in double because the
  // eigenvalues of small singular directions sit at its precision floor.
  std::vector<float> af(d * d), vtf(d * d), wf(d * d);
  for (size_t i = 0; i < d * d; ++i) af[i] = float(a[i]);
  for (size_t i = 0; i < d; ++i)
    for (size_t c = 0; c < d; ++c) vtf[c * d + i] = float(v[i * d + c]);  // vtf = Vᵀ-layout: row c = (v_0[c], v_1[c], …)
  matmul(d, d, d, af.data(), vtf.data(), wf.data(), 1);
  std::vector<double> u(d * d, 0.0);
  std::vector<bool> valid(d, false);
  for (size_t i = 0; i < d; ++i) {
    const double si = std::sqrt(std::max(lambda[i], 0.0));
    if (!(si > 1e-6 * s0) || s0 == 0) continue;
    valid[i] = true;
    for (size_t r = 0; r < d; ++r) u[i * d + r] = double(wf[r * d + i]) / si;
  }
  orthonormalize_rows(d, d, u.data(), valid);
  // R = V Uᵀ: R[r][c] = Σ_i v_i[r] u_i[c], i.e. (the Vᵀ-layout matrix) · (u as rows), in float.
  std::vector<float> uf(d * d);
  for (size_t i = 0; i < d * d; ++i) uf[i] = float(u[i]);
  matmul(d, d, d, vtf.data(), uf.data(), r_out, 1);
}

PcaResult pca(size_t n, size_t d, const float* x, int threads) {
  QV_CHECK(n >= 1 && d >= 1, InvalidArgument, "pca needs at least one vector of dimension >= 1");
  PcaResult result;
  std::vector<double> mean(d, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) mean[j] += x[i * d + j];
  result.mean.resize(d);
  for (size_t j = 0; j < d; ++j) result.mean[j] = float(mean[j] / double(n));
  std::vector<float> centered(n * d);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) centered[i * d + j] = x[i * d + j] - result.mean[j];
  std::vector<double> cov(d * d);
  matmul_at_b(n, d, d, centered.data(), centered.data(), cov.data(), threads);
  for (double& c : cov) c /= double(n);
  result.eigenvalues.resize(d);
  std::vector<double> vecs(d * d);
  symmetric_eigen(d, cov.data(), result.eigenvalues.data(), vecs.data());
  result.components.resize(d * d);
  for (size_t i = 0; i < d * d; ++i) result.components[i] = float(vecs[i]);
  return result;
}

void random_orthogonal(size_t d, uint64_t seed, float* q) {
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  Rng rng(seed);
  std::vector<double> m(d * d);
  for (size_t i = 0; i < d * d; i += 2) {
    // Box–Muller: two independent standard normals from two uniforms.
    const double u1 = 1 - rng.uniform(), u2 = rng.uniform();
    const double radius = std::sqrt(-2 * std::log(u1));
    m[i] = radius * std::cos(kTwoPi * u2);
    if (i + 1 < d * d) m[i + 1] = radius * std::sin(kTwoPi * u2);
  }
  orthonormalize_rows(d, d, m.data(), std::vector<bool>(d, true));
  for (size_t i = 0; i < d * d; ++i) q[i] = float(m[i]);
}

double orthonormal_rows_error(size_t rows, size_t cols, const float* m) {
  double worst = 0;
  for (size_t i = 0; i < rows; ++i)
    for (size_t j = 0; j < rows; ++j) {
      double s = 0;
      for (size_t t = 0; t < cols; ++t) s += double(m[i * cols + t]) * m[j * cols + t];
      worst = std::max(worst, std::fabs(s - (i == j ? 1.0 : 0.0)));
    }
  return worst;
}

double orthogonality_error(size_t d, const float* m) { return orthonormal_rows_error(d, d, m); }

}  // namespace quiver
