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

// The same order as a function object: the standard heap algorithms inline it, where a function pointer is
// called through (a call per comparison showed as 8 % of an IVF search with refine).
struct CandidateBetter {
  bool operator()(const Candidate& a, const Candidate& b) const { return candidate_better(a, b); }
};

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
      std::push_heap(heap_.begin(), heap_.end(), CandidateBetter());  // max-heap: worst on top
    } else if (candidate_better(c, heap_.front())) {
      replace_worst(c);
    }
  }

  void merge(const TopK& other) {
    for (const Candidate& c : other.heap_) push(c.score, c.id);
  }

  // Best first. Leaves the object empty.
  std::vector<Candidate> take_sorted() {
    std::sort_heap(heap_.begin(), heap_.end(), CandidateBetter());
    std::vector<Candidate> out;
    out.swap(heap_);
    return out;
  }

 private:
  // Puts c in place of the worst held candidate (the heap's top) and sifts it down: one pass, where pop_heap
  // then push_heap take two. Which candidates are held, and so take_sorted(), does not depend on the heap's
  // inner order.
  void replace_worst(const Candidate& c) {
    const size_t n = heap_.size();
    size_t at = 0;
    for (;;) {
      size_t child = 2 * at + 1;
      if (child >= n) break;
      if (child + 1 < n && candidate_better(heap_[child], heap_[child + 1])) ++child;  // the worse child
      if (!candidate_better(c, heap_[child])) break;
      heap_[at] = heap_[child];
      at = child;
    }
    heap_[at] = c;
  }

  size_t k_;
  std::vector<Candidate> heap_;
};

}  // namespace quiver
