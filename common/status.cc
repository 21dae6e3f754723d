#include "common/status.h"

namespace tessera {

StatusCode StatusCodeFromWire(int code) {
  if (code < 0 || code > static_cast<int>(StatusCode::kUnauthenticated)) {
    return StatusCode::kUnknown;
  }
  return static_cast<StatusCode>(code);
}

}  // namespace tessera
