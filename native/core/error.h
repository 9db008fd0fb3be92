// quiver::Error — the one exception type of the core. Every throw carries a machine-readable code and the
// file:line that raised it, so a JS error can say both what went wrong and where.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace quiver {

enum class ErrorCode {
  InvalidArgument,  // a caller passed something out of contract (maps to RangeError/TypeError in JS)
  NonFinite,        // input vectors hold NaN or Infinity
  State,            // call not valid in the object's current state (e.g. search before train)
  Corrupt,          // serialized data failed validation
  Io,               // file system failure
  Unsupported,      // valid request that this build or codec cannot serve
  Internal          // a bug: an invariant of ours broke
};

const char* error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message, const char* file, int line)
      : std::runtime_error(message), code_(code), file_(file), line_(line) {}
  ErrorCode code() const noexcept { return code_; }
  const char* file() const noexcept { return file_; }
  int line() const noexcept { return line_; }

 private:
  ErrorCode code_;
  const char* file_;
  int line_;
};

}  // namespace quiver

// QV_THROW(code, a << b << c): builds the message with a stream so callers can format values inline.
#define QV_THROW(code, stream_expr)                                           \
  do {                                                                        \
    std::ostringstream qv_msg_;                                               \
    qv_msg_ << stream_expr;                                                   \
    throw ::quiver::Error(::quiver::ErrorCode::code, qv_msg_.str(), __FILE__, \
                          __LINE__);                                          \
  } while (0)

#define QV_CHECK(cond, code, stream_expr) \
  do {                                    \
    if (!(cond)) QV_THROW(code, stream_expr); \
  } while (0)
