// Dense linear algebra: products, symmetric eigen-decomposition, Jacobi SVD, Procrustes, PCA, bit packing.
#include <algorithm>
#include <chrono>
#include <cmath>

#include "bitpack.h"
#include "check.h"
#include "error.h"
#include "linalg.h"
#include "random.h"
#include "simd.h"
#include "test_util.h"

using namespace quiver;

namespace {

std::vector<double> random_doubles(size_t count, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> out(count);
  for (double& v : out) v = rng.uniform() * 2 - 1;
  return out;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

}  // namespace

TEST_CASE("bitpack: round trip at every width, exact byte count, same layout as PQ") {
  for (unsigned nbits = 1; nbits <= 16; ++nbits) {
    for (size_t count : {1, 3, 7, 8, 13}) {
      Rng rng(nbits * 100 + count);
      std::vector<uint32_t> values(count), back(count);
      for (auto& v : values) v = uint32_t(rng.below(size_t(1) << nbits));
      const size_t bytes = packed_bytes(count, nbits);
      // A guard byte after the code must stay untouched by the writer and unread by the reader.
      std::vector<uint8_t> buf(bytes + 1, 0xAB);
      pack_bits(values.data(), count, nbits, buf.data());
      CHECK(buf[bytes] == 0xAB);
      unpack_bits(buf.data(), count, nbits, back.data());
      CHECK(values == back);
    }
  }
  // LSB first: values 1 and 2 at 4 bits make the byte 0x21.
  const uint32_t two[2] = {1, 2};
  uint8_t byte = 0;
  pack_bits(two, 2, 4, &byte);
  CHECK(byte == 0x21);
}

TEST_CASE("linalg: matmul, aᵀb and row transforms match naive loops") {
  const size_t m = 37, k = 29, n = 45;
  const auto a = qvtest::random_floats(m * k, 1), b = qvtest::random_floats(k * n, 2);
  std::vector<float> c(m * n);
  matmul(m, k, n, a.data(), b.data(), c.data());
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      double s = 0;
      for (size_t t = 0; t < k; ++t) s += double(a[i * k + t]) * b[t * n + j];
      CHECK_NEAR(c[i * n + j], s, 1e-4);
    }
  const size_t rows = 5000, p = 13, q = 9;
  const auto x = qvtest::random_floats(rows * p, 3), y = qvtest::random_floats(rows * q, 4);
  std::vector<double> atb(p * q), atb1(p * q);
  matmul_at_b(rows, p, q, x.data(), y.data(), atb.data());
  matmul_at_b(rows, p, q, x.data(), y.data(), atb1.data(), 1);
  CHECK(atb == atb1);  // independent of the thread count
  for (size_t i = 0; i < p; ++i)
    for (size_t j = 0; j < q; ++j) {
      double s = 0;
      for (size_t r = 0; r < rows; ++r) s += double(x[r * p + i]) * y[r * q + j];
      CHECK_NEAR(atb[i * q + j], s, 1e-3);
    }
  // transform_rows: y_i = M x_i; matvec and matvec_transposed agree with it.
  const auto mat = qvtest::random_floats(q * p, 5);
  std::vector<float> out(10 * q), one(q), back(p);
  transform_rows(10, p, q, mat.data(), x.data(), out.data());
  for (size_t i = 0; i < 10; ++i) {
    matvec(q, p, mat.data(), &x[i * p], one.data());
    for (size_t j = 0; j < q; ++j) CHECK_NEAR(out[i * q + j], one[j], 1e-5);
  }
  matvec_transposed(q, p, mat.data(), one.data(), back.data());
  for (size_t j = 0; j < p; ++j) {
    double s = 0;
    for (size_t i = 0; i < q; ++i) s += double(mat[i * p + j]) * one[i];
    CHECK_NEAR(back[j], s, 1e-5);
  }
}

TEST_CASE("linalg: symmetric eigen-decomposition reconstructs A, vectors orthonormal, values sorted") {
  for (size_t d : {1, 2, 3, 5, 16, 64, 130}) {
    auto g = random_doubles(d * d, d);
    std::vector<double> a(d * d);
    for (size_t i = 0; i < d; ++i)
      for (size_t j = 0; j < d; ++j) a[i * d + j] = g[i * d + j] + g[j * d + i];
    std::vector<double> values(d), vecs(d * d);
    symmetric_eigen(d, a.data(), values.data(), vecs.data());
    for (size_t i = 1; i < d; ++i) CHECK(values[i - 1] >= values[i]);
    // A = Σ λ_j e_j e_jᵀ and E Eᵀ = I.
    std::vector<double> rebuilt(d * d, 0.0), gram(d * d, 0.0), eye(d * d, 0.0);
    for (size_t j = 0; j < d; ++j)
      for (size_t r = 0; r < d; ++r)
        for (size_t c = 0; c < d; ++c) {
          rebuilt[r * d + c] += values[j] * vecs[j * d + r] * vecs[j * d + c];
          gram[j * d + r] += vecs[j * d + c] * vecs[r * d + c];
        }
    for (size_t i = 0; i < d; ++i) eye[i * d + i] = 1;
    CHECK_MSG(max_abs_diff(rebuilt, a) < 1e-10 * d, "d=" << d);
    CHECK_MSG(max_abs_diff(gram, eye) < 1e-12 * d, "d=" << d);
  }
  // Repeated eigenvalues and a rank-deficient matrix: diag(3, 3, 0, 0, 1) in a rotated basis.
  const size_t d = 5;
  std::vector<float> q(d * d);
  random_orthogonal(d, 9, q.data());
  const double lam[5] = {3, 3, 0, 0, 1};
  std::vector<double> a(d * d, 0.0);
  for (size_t j = 0; j < d; ++j)
    for (size_t r = 0; r < d; ++r)
      for (size_t c = 0; c < d; ++c) a[r * d + c] += lam[j] * double(q[j * d + r]) * q[j * d + c];
  std::vector<double> values(d), vecs(d * d);
  symmetric_eigen(d, a.data(), values.data(), vecs.data());
  const double want[5] = {3, 3, 1, 0, 0};
  for (size_t i = 0; i < d; ++i) CHECK_NEAR(values[i], want[i], 1e-6);
}

TEST_CASE("linalg: Jacobi SVD reconstructs U S Vᵀ with orthonormal factors, also rank-deficient") {
  for (auto shape : {std::pair<size_t, size_t>{6, 6}, {40, 17}, {128, 128}, {9, 1}}) {
    const size_t m = shape.first, n = shape.second;
    auto a = random_doubles(m * n, m * 31 + n);
    if (n >= 4)  // make column 3 a copy of column 1: rank n − 1
      for (size_t r = 0; r < m; ++r) a[r * n + 3] = a[r * n + 1];
    std::vector<double> u(m * n), s(n), vt(n * n);
    svd_jacobi(m, n, a.data(), u.data(), s.data(), vt.data());
    for (size_t i = 1; i < n; ++i) CHECK(s[i - 1] >= s[i]);
    if (n >= 4) CHECK(s[n - 1] < 1e-12);
    std::vector<double> rebuilt(m * n, 0.0);
    for (size_t r = 0; r < m; ++r)
      for (size_t c = 0; c < n; ++c)
        for (size_t j = 0; j < n; ++j) rebuilt[r * n + c] += u[r * n + j] * s[j] * vt[j * n + c];
    CHECK_MSG(max_abs_diff(rebuilt, a) < 1e-11 * m, m << "x" << n);
    double worst_u = 0, worst_v = 0;
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j) {
        double su = 0, sv = 0;
        for (size_t r = 0; r < m; ++r) su += u[r * n + i] * u[r * n + j];
        for (size_t c = 0; c < n; ++c) sv += vt[i * n + c] * vt[j * n + c];
        worst_u = std::max(worst_u, std::fabs(su - (i == j)));
        worst_v = std::max(worst_v, std::fabs(sv - (i == j)));
      }
    CHECK_MSG(worst_u < 1e-10 && worst_v < 1e-10, m << "x" << n << " " << worst_u << " " << worst_v);
  }
  // Known values: a diagonal matrix with a permutation has its entries as singular values.
  const double diag3[9] = {0, 2, 0, 5, 0, 0, 0, 0, -1};
  std::vector<double> u(9), s(3), vt(9);
  svd_jacobi(3, 3, diag3, u.data(), s.data(), vt.data());
  CHECK_NEAR(s[0], 5, 1e-12);
  CHECK_NEAR(s[1], 2, 1e-12);
  CHECK_NEAR(s[2], 1, 1e-12);
}

TEST_CASE("linalg: Procrustes recovers a planted rotation and agrees with the SVD route") {
  for (size_t d : {3, 16, 128}) {
    std::vector<float> planted(d * d);
    random_orthogonal(d, 100 + d, planted.data());
    CHECK(orthogonality_error(d, planted.data()) < 1e-5);
    const size_t n = 4 * d + 50;
    const auto x = qvtest::random_floats(n * d, d);
    std::vector<float> y(n * d);
    transform_rows(n, d, d, planted.data(), x.data(), y.data());
    const auto noise = qvtest::random_floats(n * d, d + 1);
    for (size_t i = 0; i < n * d; ++i) y[i] += 0.01f * noise[i];
    std::vector<double> a(d * d);
    matmul_at_b(n, d, d, x.data(), y.data(), a.data());  // Σ x yᵀ
    std::vector<float> r(d * d);
    procrustes_rotation(d, a.data(), r.data());
    CHECK_MSG(orthogonality_error(d, r.data()) < 1e-5, "d=" << d);
    double worst = 0;
    for (size_t i = 0; i < d * d; ++i) worst = std::max(worst, double(std::fabs(r[i] - planted[i])));
    CHECK_MSG(worst < 0.02, "d=" << d << " max deviation " << worst);
    // Same rotation from the Jacobi SVD: R = V Uᵀ.
    std::vector<double> u(d * d), s(d), vt(d * d);
    svd_jacobi(d, d, a.data(), u.data(), s.data(), vt.data());
    double worst_svd = 0;
    for (size_t i = 0; i < d; ++i)
      for (size_t j = 0; j < d; ++j) {
        double v = 0;
        for (size_t t = 0; t < d; ++t) v += vt[t * d + i] * u[j * d + t];
        worst_svd = std::max(worst_svd, std::fabs(v - r[i * d + j]));
      }
    CHECK_MSG(worst_svd < 1e-4, "d=" << d << " eigen vs Jacobi route " << worst_svd);
  }
  // Fewer pairs than dimensions: still an orthogonal matrix, and still exact on the pairs' span.
  const size_t d = 32, n = 5;
  std::vector<float> planted(d * d);
  random_orthogonal(d, 77, planted.data());
  const auto x = qvtest::random_floats(n * d, 78);
  std::vector<float> y(n * d), r(d * d), ry(d);
  transform_rows(n, d, d, planted.data(), x.data(), y.data());
  std::vector<double> a(d * d);
  matmul_at_b(n, d, d, x.data(), y.data(), a.data());
  procrustes_rotation(d, a.data(), r.data());
  CHECK(orthogonality_error(d, r.data()) < 1e-5);
  for (size_t i = 0; i < n; ++i) {
    matvec(d, d, r.data(), &x[i * d], ry.data());
    for (size_t j = 0; j < d; ++j) CHECK_NEAR(ry[j], y[i * d + j], 1e-4);
  }
}

TEST_CASE("linalg: PCA finds planted axes and variances; d=512 eigen stays fast") {
  const size_t d = 8, n = 20000;
  std::vector<float> rot(d * d);
  random_orthogonal(d, 5, rot.data());
  const double sd[8] = {10, 6, 4, 3, 2, 1, 0.5, 0.1};
  Rng rng(6);
  std::vector<float> x(n * d);
  for (size_t i = 0; i < n; ++i) {
    std::vector<float> z(d);
    for (size_t j = 0; j < d; ++j) z[j] = float(sd[j] * std::sqrt(12.0) * (rng.uniform() - 0.5));
    // x = Rotᵀ z + offset, so the principal axes are the rows of Rot.
    for (size_t j = 0; j < d; ++j) {
      double v = 5;
      for (size_t t = 0; t < d; ++t) v += double(rot[t * d + j]) * z[t];
      x[i * d + j] = float(v);
    }
  }
  const PcaResult p = pca(n, d, x.data());
  for (size_t j = 0; j < d; ++j) {
    CHECK_NEAR(p.mean[j], 5, 0.2);
    CHECK_NEAR(std::sqrt(p.eigenvalues[j]), sd[j], 0.05 * sd[j] + 0.01);
    double cosine = 0;
    for (size_t t = 0; t < d; ++t) cosine += double(p.components[j * d + t]) * rot[j * d + t];
    CHECK_MSG(std::fabs(cosine) > 0.99, "component " << j << " cosine " << cosine);
  }
  // Scale check (d = 1024, the largest size the sketch plans for, takes about 8× longer).
  const size_t big = 512;
  auto g = random_doubles(big * big, 1);
  for (size_t i = 0; i < big; ++i)
    for (size_t j = 0; j < i; ++j) g[j * big + i] = g[i * big + j];
  std::vector<double> values(big), vecs(big * big);
  const auto start = std::chrono::steady_clock::now();
  symmetric_eigen(big, g.data(), values.data(), vecs.data());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "    symmetric_eigen d=512: " << seconds << " s\n";
  double resid = 0;  // ‖A e_0 − λ_0 e_0‖∞
  for (size_t r = 0; r < big; ++r) {
    double s = 0;
    for (size_t c = 0; c < big; ++c) s += g[r * big + c] * vecs[c];
    resid = std::max(resid, std::fabs(s - values[0] * vecs[r]));
  }
  CHECK_MSG(resid < 1e-9, "residual " << resid);
}

TEST_CASE("kernels: dot_transposed_batch is bit-identical to dot_transposed at every SIMD level") {
  for (SimdLevel level : supported_simd_levels()) {
    const Kernels& k = kernels_for(level);
    for (size_t d : {1, 7, 16, 33, 128}) {
      // 300 and 600: the one-vector wide passes (128 / 256 columns) with a tail after them.
      for (size_t count : {1, 5, 8, 15, 16, 17, 40, 64, 100, 256, 300, 600}) {
        for (size_t nx : {1, 2, 3, 4, 5, 9}) {
          const size_t ldc = count + 5, ldx = d + 3, ldo = count + 2;
          const auto ct = qvtest::random_floats(d * ldc, count + d);
          const auto x = qvtest::random_floats(nx * ldx, nx + 100 * d);
          std::vector<float> batch(nx * ldo, -7.0f), one(count), ref(count);
          k.dot_transposed_batch(x.data(), nx, ldx, ct.data(), d, count, ldc, batch.data(), ldo);
          for (size_t p = 0; p < nx; ++p) {
            k.dot_transposed(x.data() + p * ldx, ct.data(), d, count, ldc, one.data());
            kScalarKernels.dot_transposed(x.data() + p * ldx, ct.data(), d, count, ldc, ref.data());
            for (size_t j = 0; j < count; ++j) {
              CHECK(batch[p * ldo + j] == one[j]);
              CHECK_NEAR(batch[p * ldo + j], ref[j], 1e-4 * d);
            }
            for (size_t j = count; j < ldo; ++j) CHECK(batch[p * ldo + j] == -7.0f);  // padding untouched
          }
        }
      }
    }
  }
}
