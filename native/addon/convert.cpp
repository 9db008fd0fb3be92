#include "convert.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <sstream>

#include "error.h"

namespace qvnode {

ErrorInfo capture_current_exception() {
  ErrorInfo info;
  try {
    throw;
  } catch (const quiver::Error& e) {
    info.message = e.what();
    info.code = quiver::error_code_name(e.code());
    info.range = e.code() == quiver::ErrorCode::InvalidArgument || e.code() == quiver::ErrorCode::NonFinite;
    if (e.code() == quiver::ErrorCode::Internal) {
      std::ostringstream where;
      where << " (at " << e.file() << ":" << e.line() << ")";
      info.message += where.str();
    }
  } catch (const std::bad_alloc&) {
    info.message = "out of memory";
    info.code = "ERR_QUIVER_OUT_OF_MEMORY";
  } catch (const std::exception& e) {
    info.message = e.what();
    info.code = "ERR_QUIVER_INTERNAL";
  } catch (...) {
    info.message = "unknown native failure";
    info.code = "ERR_QUIVER_INTERNAL";
  }
  return info;
}

Napi::Error make_js_error(Napi::Env env, const ErrorInfo& info) {
  Napi::Error error = info.range ? Napi::Error(Napi::RangeError::New(env, info.message))
                                 : Napi::Error::New(env, info.message);
  error.Set("code", Napi::String::New(env, info.code));
  return error;
}

namespace {

[[noreturn]] void type_error(const char* name, const std::string& expected) {
  QV_THROW(InvalidArgument, name << ": expected " << expected);
}

}  // namespace

std::vector<float> read_vectors(const Napi::Value& value, const char* name, size_t dim, size_t* count) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    type_error(name, "a Float32Array");
  const Napi::Float32Array array = value.As<Napi::Float32Array>();
  const size_t length = array.ElementLength();
  QV_CHECK(dim > 0 && length % dim == 0, InvalidArgument,
           name << ": expected a length that is a multiple of dim " << dim << ", got " << length);
  *count = length / dim;
  return std::vector<float>(array.Data(), array.Data() + length);
}

std::vector<int64_t> read_ids(const Napi::Value& value, const char* name, size_t expected) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_bigint64_array)
    type_error(name, "a BigInt64Array");
  const Napi::BigInt64Array array = value.As<Napi::BigInt64Array>();
  QV_CHECK(array.ElementLength() == expected, InvalidArgument,
           name << ": expected " << expected << " ids, got " << array.ElementLength());
  return std::vector<int64_t>(array.Data(), array.Data() + expected);
}

std::vector<uint8_t> read_bytes(const Napi::Value& value, const char* name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    type_error(name, "a Uint8Array");
  const Napi::Uint8Array array = value.As<Napi::Uint8Array>();
  return std::vector<uint8_t>(array.Data(), array.Data() + array.ElementLength());
}

std::vector<int32_t> read_int32s(const Napi::Value& value, const char* name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    type_error(name, "an Int32Array");
  const Napi::Int32Array array = value.As<Napi::Int32Array>();
  return std::vector<int32_t>(array.Data(), array.Data() + array.ElementLength());
}

int64_t read_bigint(const Napi::Value& value, const char* name) {
  if (!value.IsBigInt()) type_error(name, "a bigint");
  bool lossless = false;
  const int64_t v = value.As<Napi::BigInt>().Int64Value(&lossless);
  QV_CHECK(lossless, InvalidArgument, name << ": expected a bigint within the signed 64-bit range");
  return v;
}

std::string read_string(const Napi::Value& value, const char* name) {
  if (!value.IsString()) type_error(name, "a string");
  return value.As<Napi::String>().Utf8Value();
}

size_t read_size(const Napi::Value& value, const char* name, size_t max) {
  if (!value.IsNumber()) type_error(name, "a number");
  const double v = value.As<Napi::Number>().DoubleValue();
  QV_CHECK(std::isfinite(v) && v >= 0 && v <= double(max) && std::floor(v) == v, InvalidArgument,
           name << ": expected an integer from 0 to " << max << ", got " << v);
  return size_t(v);
}

int read_int(const Napi::Value& value, const char* name, int min, int max) {
  if (!value.IsNumber()) type_error(name, "a number");
  const double v = value.As<Napi::Number>().DoubleValue();
  QV_CHECK(std::isfinite(v) && v >= min && v <= max && std::floor(v) == v, InvalidArgument,
           name << ": expected an integer from " << min << " to " << max << ", got " << v);
  return int(v);
}

void check_finite(const float* x, size_t count, size_t dim, const char* name) {
  // Fast path: a float is infinite or NaN exactly when its exponent bits are all set; OR-ing that test over a
  // chunk has no branch per element, so it vectorises (std::isfinite per element does not), and only a chunk
  // that holds a bad value is searched again for the message.
  constexpr uint32_t kExponent = 0x7F800000u;
  size_t first_bad_chunk = count;
  constexpr size_t kChunk = 1024;
  for (size_t begin = 0; begin < count && first_bad_chunk == count; begin += kChunk) {
    const size_t end = std::min(count, begin + kChunk);
    uint32_t bad = 0;
    for (size_t i = begin; i < end; ++i) {
      uint32_t bits;
      std::memcpy(&bits, x + i, sizeof bits);
      bad |= uint32_t((bits & kExponent) == kExponent);
    }
    if (bad) first_bad_chunk = begin;
  }
  for (size_t i = first_bad_chunk; i < count; ++i) {
    if (std::isfinite(x[i])) continue;
    QV_THROW(NonFinite, name << ": expected finite numbers, got " << x[i] << " at element " << i << " (vector "
                             << i / dim << ", component " << i % dim << ")");
  }
}

Napi::Float32Array to_float32_array(Napi::Env env, const std::vector<float>& data) {
  Napi::Float32Array out = Napi::Float32Array::New(env, data.size());
  if (!data.empty()) std::memcpy(out.Data(), data.data(), data.size() * sizeof(float));
  return out;
}

Napi::BigInt64Array to_bigint64_array(Napi::Env env, const std::vector<int64_t>& data) {
  Napi::BigInt64Array out = Napi::BigInt64Array::New(env, data.size());
  if (!data.empty()) std::memcpy(out.Data(), data.data(), data.size() * sizeof(int64_t));
  return out;
}

Napi::Uint8Array to_uint8_array(Napi::Env env, const std::vector<uint8_t>& data) {
  Napi::Uint8Array out = Napi::Uint8Array::New(env, data.size());
  if (!data.empty()) std::memcpy(out.Data(), data.data(), data.size());
  return out;
}

}  // namespace qvnode
