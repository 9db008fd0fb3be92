// Bounded top-k selection of the k smallest scores. Ties are broken by the smaller id, so results are
// deterministic whatever order candidates arrive in (and whatever thread split produced them).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace quiver {

struct Candidate {
  float score;
  int64_t id;
};

// Strict weak order: better (smaller score, then smaller id) comes first.
inline bool candidate_better(const Candidate& a, const Candidate& b) {
  return a.score < b.score || (a.score == b.score && a.id < b.id);
}

class TopK {
 public:
  explicit TopK(size_t k) : k_(k) { heap_.reserve(k); }

  size_t k() const { return k_; }
  size_t size() const { return heap_.size(); }

  // The score a candidate must beat to enter (infinity while fewer than k are held).
  float threshold() const {
    return heap_.size() < k_ ? std::numeric_limits<float>::infinity() : heap_.front().score;
  }

  void push(float score, int64_t id) {
    if (k_ == 0) return;
    const Candidate c{score, id};
    if (heap_.size() < k_) {
      heap_.push_back(c);
      std::push_heap(heap_.begin(), heap_.end(), candidate_better);  // max-heap: worst on top
    } else if (candidate_better(c, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), candidate_better);
      heap_.back() = c;
      std::push_heap(heap_.begin(), heap_.end(), candidate_better);
    }
  }

  void merge(const TopK& other) {
    for (const Candidate& c : other.heap_) push(c.score, c.id);
  }

  // Best first. Leaves the object empty.
  std::vector<Candidate> take_sorted() {
    std::sort_heap(heap_.begin(), heap_.end(), candidate_better);
    std::vector<Candidate> out;
    out.swap(heap_);
    return out;
  }

 private:
  size_t k_;
  std::vector<Candidate> heap_;
};

}  // namespace quiver
