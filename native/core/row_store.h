// RowStore: fixed-size records kept row-major, owned or borrowed from a memory-mapped file.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <vector>

#include "io.h"

namespace quiver {

// Rows fixed-size records, owned or borrowed from a mapped file (copied on the first mutation).
template <typename T>
class RowStore {
 public:
  const T* data() const { return borrowed_ ? borrowed_ : owned_.data(); }
  size_t size() const { return borrowed_ ? borrowed_size_ : owned_.size(); }  // in elements
  bool borrowed() const { return borrowed_ != nullptr; }
  void reserve(size_t elements) {
    materialize();
    owned_.reserve(elements);
  }
  void append(const T* values, size_t count) {
    materialize();
    owned_.insert(owned_.end(), values, values + count);
  }
  // Grows (zero-filled) or shrinks to `elements`, owning the data afterwards.
  void resize(size_t elements) {
    materialize();
    owned_.resize(elements, T());
  }
  T* mutable_data() {
    materialize();
    return owned_.data();
  }
  void borrow(const T* values, size_t count, std::shared_ptr<ByteSource> keepalive) {
    owned_.clear();
    owned_.shrink_to_fit();
    borrowed_ = count ? values : nullptr;
    borrowed_size_ = count;
    keepalive_ = count ? std::move(keepalive) : nullptr;
  }
  void assign(std::vector<T> values) {
    borrow(nullptr, 0, nullptr);
    owned_ = std::move(values);
  }
  // Keeps the records whose keep[row] is set, in order; record = `width` elements.
  void compact(const std::vector<bool>& keep, size_t width) {
    materialize();
    size_t out = 0;
    for (size_t row = 0; row < keep.size(); ++row) {
      if (!keep[row]) continue;
      if (out != row) std::memmove(&owned_[out * width], &owned_[row * width], width * sizeof(T));
      ++out;
    }
    owned_.resize(out * width);
  }

 private:
  void materialize() {
    if (!borrowed_) return;
    owned_.assign(borrowed_, borrowed_ + borrowed_size_);
    borrowed_ = nullptr;
    borrowed_size_ = 0;
    keepalive_.reset();
  }
  std::vector<T> owned_;
  const T* borrowed_ = nullptr;
  size_t borrowed_size_ = 0;
  std::shared_ptr<ByteSource> keepalive_;
};

}  // namespace quiver
