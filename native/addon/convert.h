// Marshalling between JS values and the core, and the one place where C++ exceptions become JS errors.
//
// Every JS-facing function body runs inside guard(): a quiver::Error becomes a JS Error (RangeError for
// invalid arguments and non-finite input) carrying `code` (e.g. 'ERR_QUIVER_STATE'); std::bad_alloc becomes
// 'ERR_QUIVER_OUT_OF_MEMORY'; anything else 'ERR_QUIVER_INTERNAL'. Nothing escapes into Node-API.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace qvnode {

// A captured C++ failure, safe to carry from a worker thread to the main thread.
struct ErrorInfo {
  std::string message;
  std::string code;
  bool range = false;  // thrown to JS as RangeError
};

// Call only inside a catch block.
ErrorInfo capture_current_exception();
Napi::Error make_js_error(Napi::Env env, const ErrorInfo& info);

template <typename F>
auto guard(Napi::Env env, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;  // already a JS exception (e.g. thrown by a user callback)
  } catch (...) {
    throw make_js_error(env, capture_current_exception());
  }
}

// Argument readers. They re-check what protects memory (types, lengths); friendly validation is done in
// TypeScript first. Float32Array views at any byteOffset are honoured. Data is copied so that a worker thread
// never reads memory that JS could detach or resize meanwhile.
std::vector<float> read_vectors(const Napi::Value& value, const char* name, size_t dim, size_t* count);
std::vector<int64_t> read_ids(const Napi::Value& value, const char* name, size_t expected);
std::vector<uint8_t> read_bytes(const Napi::Value& value, const char* name);
std::vector<int32_t> read_int32s(const Napi::Value& value, const char* name);
int64_t read_bigint(const Napi::Value& value, const char* name);
std::string read_string(const Napi::Value& value, const char* name);
// A non-negative integer no larger than `max` (a JS number holding an integer).
size_t read_size(const Napi::Value& value, const char* name, size_t max);
int read_int(const Napi::Value& value, const char* name, int min, int max);

// Throws quiver::Error(NonFinite) naming the first NaN/±Infinity: element, vector and component.
void check_finite(const float* x, size_t count, size_t dim, const char* name);

Napi::Float32Array to_float32_array(Napi::Env env, const std::vector<float>& data);
Napi::BigInt64Array to_bigint64_array(Napi::Env env, const std::vector<int64_t>& data);
Napi::Uint8Array to_uint8_array(Napi::Env env, const std::vector<uint8_t>& data);

}  // namespace qvnode
