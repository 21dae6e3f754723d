// Error vocabulary for every role: absl::Status / absl::StatusOr under
// Tessera names, plus the propagation macros. Codes cross the wire as their
// integer value (see protocols/README.md), so in-process and remote calls share
// one vocabulary.
#ifndef TESSERA_COMMON_STATUS_H_
#define TESSERA_COMMON_STATUS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tessera {

using Status = absl::Status;
using StatusCode = absl::StatusCode;
template <typename T>
using StatusOr = absl::StatusOr<T>;

using absl::AbortedError;
using absl::CancelledError;
using absl::DataLossError;
using absl::DeadlineExceededError;
using absl::FailedPreconditionError;
using absl::InternalError;
using absl::InvalidArgumentError;
using absl::NotFoundError;
using absl::OkStatus;
using absl::OutOfRangeError;
using absl::ResourceExhaustedError;
using absl::UnavailableError;
using absl::UnimplementedError;
using absl::AlreadyExistsError;
using absl::UnknownError;

// Maps an integer received from the network to a StatusCode; unknown values
// become kUnknown so a hostile peer cannot inject an out-of-range enum.
StatusCode StatusCodeFromWire(int code);

}  // namespace tessera

#define TESSERA_STATUS_CONCAT_INNER_(a, b) a##b
#define TESSERA_STATUS_CONCAT_(a, b) TESSERA_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define TESSERA_RETURN_IF_ERROR(expr)              \
  do {                                             \
    ::tessera::Status _tessera_status = (expr);    \
    if (!_tessera_status.ok()) return _tessera_status; \
  } while (0)

// `lhs = value of expr` (a StatusOr), or returns its error.
#define TESSERA_ASSIGN_OR_RETURN(lhs, expr) \
  TESSERA_ASSIGN_OR_RETURN_IMPL_(TESSERA_STATUS_CONCAT_(_tessera_or_, __LINE__), lhs, expr)
#define TESSERA_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()

#endif  // TESSERA_COMMON_STATUS_H_
