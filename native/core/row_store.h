// RowStore: fixed-size records kept row-major, owned or borrowed from a memory-mapped file.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "io.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace quiver {

// std::allocator, except that blocks of kHugeMin bytes or more are 2 MiB-aligned and, on Linux, marked for
// transparent huge pages. Stores are read at random rows (refine re-scores candidates in score order): with 4 KiB
// pages nearly every row is a TLB miss and a page walk, which showed as a tenth of an IVF search with refine.
// Where the kernel's THP mode ignores the hint (or on other systems), it is plain aligned memory.
template <typename T>
struct HugePageAllocator {
  using value_type = T;
  static constexpr size_t kHuge = size_t(2) << 20, kHugeMin = size_t(4) << 20;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}
  T* allocate(size_t n) {
    if (n > size_t(-1) / sizeof(T)) throw std::bad_alloc();
    const size_t bytes = n * sizeof(T);
    if (bytes < kHugeMin) return std::allocator<T>().allocate(n);
    const size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
    void* p = std::aligned_alloc(kHuge, rounded);
    if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) {
    if (n * sizeof(T) < kHugeMin) return std::allocator<T>().deallocate(p, n);
    std::free(p);
  }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const HugePageAllocator<U>&) const { return false; }
};

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
  // Owns a copy of `count` records read from `bytes` (which need not be aligned for T).
  void assign_bytes(const uint8_t* bytes, size_t count) {
    borrow(nullptr, 0, nullptr);
    owned_.resize(count);
    if (count) std::memcpy(owned_.data(), bytes, count * sizeof(T));
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
  std::vector<T, HugePageAllocator<T>> owned_;
  const T* borrowed_ = nullptr;
  size_t borrowed_size_ = 0;
  std::shared_ptr<ByteSource> keepalive_;
};

}  // namespace quiver
