#include "refine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "error.h"
#include "index.h"
#include "simd.h"

namespace quiver {

namespace {

constexpr uint32_t kRefineFormatVersion = 1;

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

const char* refine_storage_name(RefineStorage storage) {
  switch (storage) {
    case RefineStorage::None: return "none";
    case RefineStorage::Float32: return "f32";
    case RefineStorage::Float16: return "fp16";
    case RefineStorage::Int8: return "int8";
  }
  return "none";
}

bool parse_refine_storage(const std::string& name, RefineStorage* out) {
  if (name == "f32") *out = RefineStorage::Float32;
  else if (name == "fp16") *out = RefineStorage::Float16;
  else if (name == "int8") *out = RefineStorage::Int8;
  else return false;
  return true;
}

uint16_t float_to_half(float value) {
  const uint32_t u = float_bits(value);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return uint16_t(sign | 0x7E00u);  // NaN (quiet)
  // Clamp (infinities too): a refine distance should stay finite, and 65 504 is the largest half.
  if (abs >= 0x477FF000u) return uint16_t(sign | 0x7BFFu);  // ≥ 65 520 would round to infinity
  if (abs < 0x33000000u) return sign;                       // below half the smallest subnormal: ±0
  const int exponent = int(abs >> 23) - 127;
  uint32_t mantissa = (abs & 0x7FFFFFu) | 0x800000u;  // 24 bits with the implicit one
  int shift;                                          // bits dropped from the 24-bit mantissa
  uint32_t half_exponent;
  if (exponent < -14) {  // subnormal half: value = m · 2⁻²⁴
    shift = 13 + (-14 - exponent);
    half_exponent = 0;
  } else {
    shift = 13;
    half_exponent = uint32_t(exponent + 15);
  }
  uint32_t kept = mantissa >> shift;
  const uint32_t rest = mantissa & ((1u << shift) - 1), halfway = 1u << (shift - 1);
  if (rest > halfway || (rest == halfway && (kept & 1))) ++kept;  // round to nearest, ties to even
  // For normals kept holds the implicit bit at 2¹⁰; adding the exponent field lets a mantissa overflow carry
  // into the exponent, which is the correctly rounded result.
  const uint32_t bits = half_exponent == 0 ? kept : ((half_exponent - 1) << 10) + kept;
  return uint16_t(sign | bits);
}

float half_to_float(uint16_t half) {
  const uint32_t sign = uint32_t(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 31u, mantissa = half & 0x3FFu;
  if (exponent == 0) {
    // ±0 or a subnormal m · 2⁻²⁴ (exact in float).
    const float v = float(mantissa) * (1.0f / 16777216.0f);
    return bits_float(float_bits(v) | sign);
  }
  if (exponent == 31) return bits_float(sign | 0x7F800000u | (mantissa << 13));
  return bits_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

void RefineStore::configure(size_t dim, RefineStorage storage) {
  QV_CHECK(rows() == 0 && vmin_.empty(), Internal, "the refine store is configured after use");
  dim_ = dim;
  storage_ = storage;
}

size_t RefineStore::bytes_per_vector() const {
  switch (storage_) {
    case RefineStorage::None: return 0;
    case RefineStorage::Float32: return dim_ * sizeof(float);
    case RefineStorage::Float16: return dim_ * sizeof(uint16_t);
    case RefineStorage::Int8: return dim_;
  }
  return 0;
}

std::string RefineStore::spec_suffix() const {
  switch (storage_) {
    case RefineStorage::None: return "";
    case RefineStorage::Float32: return ",Refine";
    default: return std::string(",Refine,store=") + refine_storage_name(storage_);
  }
}

void RefineStore::train(size_t n, const float* x) {
  if (storage_ != RefineStorage::Int8 || n == 0) return;
  std::vector<float> lo(x, x + dim_), hi(x, x + dim_);
  for (size_t i = 1; i < n; ++i)
    for (size_t j = 0; j < dim_; ++j) {
      lo[j] = std::min(lo[j], x[i * dim_ + j]);
      hi[j] = std::max(hi[j], x[i * dim_ + j]);
    }
  std::vector<float> scale(dim_);
  for (size_t j = 0; j < dim_; ++j) scale[j] = hi[j] > lo[j] ? (hi[j] - lo[j]) / 255.0f : 0.0f;
  vmin_ = std::move(lo);
  scale_ = std::move(scale);
}

size_t RefineStore::rows() const {
  if (dim_ == 0) return 0;
  switch (storage_) {
    case RefineStorage::Float32: return f32_.size() / dim_;
    case RefineStorage::Float16: return f16_.size() / dim_;
    case RefineStorage::Int8: return sq8_.size() / dim_;
    default: return 0;
  }
}

void RefineStore::reserve_more(size_t extra) {
  switch (storage_) {
    case RefineStorage::Float32: f32_.reserve(f32_.size() + extra * dim_); break;
    case RefineStorage::Float16: f16_.reserve(f16_.size() + extra * dim_); break;
    case RefineStorage::Int8: sq8_.reserve(sq8_.size() + extra * dim_); break;
    default: break;
  }
}

void RefineStore::append(size_t n, const float* x) {
  const size_t count = n * dim_;
  switch (storage_) {
    case RefineStorage::Float32: f32_.append(x, count); break;
    case RefineStorage::Float16: {
      const size_t first = f16_.size();
      f16_.resize(first + count);
      uint16_t* out = f16_.mutable_data() + first;
      for (size_t i = 0; i < count; ++i) out[i] = float_to_half(x[i]);
      break;
    }
    case RefineStorage::Int8: {
      QV_CHECK(is_trained(), State, "the int8 refine store is not trained");
      const size_t first = sq8_.size();
      sq8_.resize(first + count);
      uint8_t* out = sq8_.mutable_data() + first;
      for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < dim_; ++j) {
          const float s = scale_[j];
          const float c = s > 0 ? std::nearbyint((x[i * dim_ + j] - vmin_[j]) / s) : 0.0f;
          // NaN compares false everywhere and becomes 0.
          out[i * dim_ + j] = c >= 255.0f ? uint8_t(255) : c > 0.0f ? uint8_t(c) : uint8_t(0);
        }
      break;
    }
    default: break;
  }
}

void RefineStore::compact(const std::vector<bool>& keep) {
  switch (storage_) {
    case RefineStorage::Float32: f32_.compact(keep, dim_); break;
    case RefineStorage::Float16: f16_.compact(keep, dim_); break;
    case RefineStorage::Int8: sq8_.compact(keep, dim_); break;
    default: break;
  }
}

void RefineStore::check_mergeable(const RefineStore& other) const {
  QV_CHECK(storage_ == other.storage_ && dim_ == other.dim_, InvalidArgument,
           "merge: the refine stores differ (" << refine_storage_name(storage_) << " vs "
                                               << refine_storage_name(other.storage_) << ")");
  QV_CHECK(vmin_ == other.vmin_ && scale_ == other.scale_, InvalidArgument,
           "merge: the int8 refine stores were trained separately (different ranges)");
}

void RefineStore::append_from(const RefineStore& other) {
  switch (storage_) {
    case RefineStorage::Float32: f32_.append(other.f32_.data(), other.f32_.size()); break;
    case RefineStorage::Float16: f16_.append(other.f16_.data(), other.f16_.size()); break;
    case RefineStorage::Int8: sq8_.append(other.sq8_.data(), other.sq8_.size()); break;
    default: break;
  }
}

RefineStore::Query RefineStore::prepare(const float* query, Metric metric) const {
  Query q;
  q.query = query;
  q.metric = metric == Metric::L2 ? Metric::L2 : Metric::InnerProduct;
  if (storage_ == RefineStorage::Int8) {
    q.weights.resize(dim_);
    if (q.metric == Metric::L2) {
      for (size_t j = 0; j < dim_; ++j) q.weights[j] = query[j] - vmin_[j];
    } else {
      for (size_t j = 0; j < dim_; ++j) {
        q.weights[j] = query[j] * scale_[j];
        q.bias += query[j] * vmin_[j];
      }
    }
  }
  return q;
}

float RefineStore::distance(const Query& q, size_t row) const {
  const Kernels& k = kernels();
  const bool l2 = q.metric == Metric::L2;
  switch (storage_) {
    case RefineStorage::Float32: {
      const float* v = f32_.data() + row * dim_;
      return l2 ? k.l2sqr(q.query, v, dim_) : -k.dot(q.query, v, dim_);
    }
    case RefineStorage::Float16: {
      const uint16_t* v = f16_.data() + row * dim_;
      return l2 ? k.l2sqr_f16(q.query, v, dim_) : -k.dot_f16(q.query, v, dim_);
    }
    case RefineStorage::Int8: {
      const uint8_t* c = sq8_.data() + row * dim_;
      return l2 ? k.l2sqr_sq8(q.weights.data(), scale_.data(), c, dim_)
                : -(q.bias + k.dot_sq8(q.weights.data(), c, dim_));
    }
    default: return 0;
  }
}

size_t RefineStore::row_bytes() const {
  switch (storage_) {
    case RefineStorage::Float32: return dim_ * sizeof(float);
    case RefineStorage::Float16: return dim_ * sizeof(uint16_t);
    case RefineStorage::Int8: return dim_;
    default: return 0;
  }
}

void RefineStore::prefetch(size_t row, Level level) const {
  const uint8_t* at = nullptr;
  switch (storage_) {
    case RefineStorage::Float32: at = reinterpret_cast<const uint8_t*>(f32_.data() + row * dim_); break;
    case RefineStorage::Float16: at = reinterpret_cast<const uint8_t*>(f16_.data() + row * dim_); break;
    case RefineStorage::Int8: at = sq8_.data() + row * dim_; break;
    default: return;
  }
  const size_t bytes = row_bytes();
  if (level == Level::L1) {
    for (size_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(at + offset, 0, 3);
  } else {
    for (size_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(at + offset, 0, 2);
  }
}

void RefineStore::decode(size_t row, float* out) const {
  switch (storage_) {
    case RefineStorage::Float32: std::memcpy(out, f32_.data() + row * dim_, dim_ * sizeof(float)); break;
    case RefineStorage::Float16:
      for (size_t j = 0; j < dim_; ++j) out[j] = half_to_float(f16_.data()[row * dim_ + j]);
      break;
    case RefineStorage::Int8:
      for (size_t j = 0; j < dim_; ++j) out[j] = vmin_[j] + scale_[j] * float(sq8_.data()[row * dim_ + j]);
      break;
    default: break;
  }
}

void RefineStore::save(ContainerWriter& out) const {
  if (storage_ == RefineStorage::None) return;
  if (storage_ == RefineStorage::Float32) {
    write_bulk(out, fourcc("VECS"), f32_.data(), f32_.size());
    return;
  }
  ByteWriter header;
  header.u32(kRefineFormatVersion);
  header.u8(uint8_t(storage_));
  header.u64(dim_);
  if (storage_ == RefineStorage::Int8) {
    header.raw(vmin_.data(), dim_ * sizeof(float));
    header.raw(scale_.data(), dim_ * sizeof(float));
  }
  out.section(fourcc("RFIN"), header);
  if (storage_ == RefineStorage::Float16) write_bulk(out, fourcc("RF16"), f16_.data(), f16_.size());
  else write_bulk(out, fourcc("RSQ8"), sq8_.data(), sq8_.size());
}

void RefineStore::load(const std::vector<Section>& sections, size_t rows, const std::shared_ptr<ByteSource>& source,
                       bool borrow) {
  if (storage_ == RefineStorage::None) return;
  QV_CHECK(rows <= size_t(-1) / 4 / std::max<size_t>(dim_, 1), Corrupt, "refine store size overflows");
  if (storage_ == RefineStorage::Float32) {
    read_bulk(sections, fourcc("VECS"), "vectors", rows * dim_, source, borrow, f32_);
    return;
  }
  const Section& s = require_section(sections, fourcc("RFIN"), "refine store header");
  ByteReader r(s.payload, s.size, "section RFIN");
  const uint32_t version = r.u32();
  QV_CHECK(version >= 1 && version <= kRefineFormatVersion, Corrupt,
           "refine store format version " << version << " is not supported by this build (it reads 1 to "
                                          << kRefineFormatVersion << ")");
  const uint8_t storage = r.u8();
  QV_CHECK(storage == uint8_t(storage_), Corrupt,
           "refine store kind " << unsigned(storage) << " does not match the spec's store="
                                << refine_storage_name(storage_));
  QV_CHECK(r.u64() == dim_, Corrupt, "refine store dimension does not match the index");
  if (storage_ == RefineStorage::Int8) {
    std::vector<float> lo(dim_), scale(dim_);
    std::memcpy(lo.data(), r.take(dim_ * sizeof(float)), dim_ * sizeof(float));
    std::memcpy(scale.data(), r.take(dim_ * sizeof(float)), dim_ * sizeof(float));
    for (size_t j = 0; j < dim_; ++j)
      QV_CHECK(std::isfinite(lo[j]) && std::isfinite(scale[j]) && scale[j] >= 0, Corrupt,
               "int8 refine store range " << j << " is not finite or has a negative scale");
    r.expect_end();
    read_bulk(sections, fourcc("RSQ8"), "int8 refine vectors", rows * dim_, source, borrow, sq8_);
    vmin_ = std::move(lo);
    scale_ = std::move(scale);
  } else {
    r.expect_end();
    read_bulk(sections, fourcc("RF16"), "fp16 refine vectors", rows * dim_, source, borrow, f16_);
  }
}

}  // namespace quiver
