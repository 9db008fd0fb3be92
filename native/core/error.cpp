#include "error.h"

namespace quiver {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument: return "ERR_QUIVER_INVALID_ARGUMENT";
    case ErrorCode::NonFinite: return "ERR_QUIVER_NON_FINITE";
    case ErrorCode::State: return "ERR_QUIVER_STATE";
    case ErrorCode::Corrupt: return "ERR_QUIVER_CORRUPT";
    case ErrorCode::Io: return "ERR_QUIVER_IO";
    case ErrorCode::Unsupported: return "ERR_QUIVER_UNSUPPORTED";
    case ErrorCode::Internal: return "ERR_QUIVER_INTERNAL";
  }
  return "ERR_QUIVER_INTERNAL";
}

}  // namespace quiver
