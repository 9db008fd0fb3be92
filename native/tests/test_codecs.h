// Checks shared by the codec tests: round trips, ADC against exact distances to the decoded vectors, and a filled
// index of a spec.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "check.h"
#include "index.h"
#include "quantizer.h"
#include "simd.h"
#include "spec.h"

namespace qvtest {

inline double mean_squared_error(const std::vector<float>& a, const std::vector<float>& b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i] - b[i]) * (a[i] - b[i]);
  return s / double(n);
}

// Encodes x (n × dim), decodes, and returns the reconstructions; `codes` receives the codes.
inline std::vector<float> round_trip(const quiver::Quantizer& q, size_t n, const float* x, std::vector<uint8_t>* codes,
                                     int threads = 0) {
  codes->assign(n * q.code_size(), 0);
  q.encode(n, x, codes->data(), threads);
  std::vector<float> decoded(n * q.dim());
  q.decode(n, codes->data(), decoded.data(), threads);
  return decoded;
}

// An L2 index of `spec` trained on x (n × d, 8 Lloyd iterations) with every row of x added (ids 0 … n−1).
inline std::unique_ptr<quiver::Index> filled_index(const char* spec, size_t d, size_t n, const float* x) {
  auto index = quiver::make_index(spec, d, quiver::Metric::L2);
  quiver::TrainContext ctx;
  ctx.iterations = 8;
  index->train(n, x, ctx);
  index->add(n, x, nullptr, nullptr, false, 0);
  return index;
}

// ADC scores of every code equal the exact L2 / −inner product between the query and the decoded vector, up to
// `rel_tol` relative to the query–data scale plus `abs_tol` (the u8 norm error, for instance).
inline void check_adc_matches_decoded(const quiver::Quantizer& q, size_t n, const std::vector<uint8_t>& codes,
                                      const std::vector<float>& decoded, const float* query, double rel_tol,
                                      double abs_tol = 0) {
  const size_t d = q.dim();
  const quiver::Kernels& ref = quiver::kScalarKernels;
  const double scale = ref.dot(query, query, d) + ref.dot(decoded.data(), decoded.data(), d) + 1;
  for (quiver::Metric metric : {quiver::Metric::L2, quiver::Metric::InnerProduct}) {
    auto table = q.distance_table(query, metric);
    std::vector<float> scores(n);
    table->scan(codes.data(), n, scores.data());
    size_t bad = 0;
    double worst = 0;
    for (size_t i = 0; i < n; ++i) {
      const double want = metric == quiver::Metric::L2 ? ref.l2sqr(query, &decoded[i * d], d)
                                                       : -ref.dot(query, &decoded[i * d], d);
      const double tol = rel_tol * scale + (metric == quiver::Metric::L2 ? abs_tol : 0);
      const double err = std::fabs(scores[i] - want);
      worst = std::max(worst, err);
      if (err > tol) ++bad;
    }
    CHECK_MSG(bad == 0, q.spec() << (metric == quiver::Metric::L2 ? " L2" : " IP") << ": " << bad << " of " << n
                                 << " ADC scores off, worst error " << worst);
  }
}

}  // namespace qvtest
