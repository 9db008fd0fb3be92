#include "metric.h"

#include <cmath>

#include "error.h"

namespace quiver {

Metric parse_metric(const std::string& name) {
  if (name == "l2") return Metric::L2;
  if (name == "ip") return Metric::InnerProduct;
  if (name == "cosine") return Metric::Cosine;
  QV_THROW(InvalidArgument, "metric: expected 'l2', 'ip' or 'cosine', got '" << name << "'");
}

const char* metric_name(Metric metric) {
  switch (metric) {
    case Metric::L2: return "l2";
    case Metric::InnerProduct: return "ip";
    case Metric::Cosine: return "cosine";
  }
  return "l2";
}

void normalize_rows(size_t n, size_t d, float* x) {
  for (size_t i = 0; i < n; ++i) {
    float* row = x + i * d;
    double sum = 0;
    for (size_t j = 0; j < d; ++j) sum += double(row[j]) * row[j];
    if (sum <= 0) continue;
    const float inv = float(1.0 / std::sqrt(sum));
    for (size_t j = 0; j < d; ++j) row[j] *= inv;
  }
}

}  // namespace quiver
