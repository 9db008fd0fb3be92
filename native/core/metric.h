#pragma once

#include <cstddef>
#include <string>

namespace quiver {

// Scores inside the engine are always "smaller is better": L2 uses the squared distance, inner product and
// cosine use the negated inner product. Results are converted back (see to_user_distance) at the boundary,
// so users see squared L2 ascending, or inner product / cosine similarity descending, as faiss reports them.
enum class Metric { L2 = 0, InnerProduct = 1, Cosine = 2 };

Metric parse_metric(const std::string& name);  // "l2" | "ip" | "cosine"; throws InvalidArgument otherwise
const char* metric_name(Metric metric);

inline bool metric_is_similarity(Metric metric) { return metric != Metric::L2; }

inline float to_user_distance(Metric metric, float internal_score) {
  return metric_is_similarity(metric) ? -internal_score : internal_score;
}

// Divides each of the n rows of x (n × d) by its L2 norm in place; zero rows stay zero.
void normalize_rows(size_t n, size_t d, float* x);

}  // namespace quiver
