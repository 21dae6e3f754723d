// Deadlines: every blocking call takes one (a steady_clock time point).
#ifndef TESSERA_COMMON_DEADLINE_H_
#define TESSERA_COMMON_DEADLINE_H_

#include <chrono>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tessera {

using SteadyTime = std::chrono::steady_clock::time_point;

inline SteadyTime DeadlineIn(std::chrono::nanoseconds d) {
  return std::chrono::steady_clock::now() + d;
}

// The absl::Time equivalent of a steady deadline (for absl::Mutex waits).
inline absl::Time ToAbslTime(SteadyTime deadline) {
  auto remaining = deadline - std::chrono::steady_clock::now();
  if (remaining < decltype(remaining)::zero()) remaining = decltype(remaining)::zero();
  return absl::Now() +
         absl::FromChrono(std::chrono::duration_cast<std::chrono::nanoseconds>(remaining));
}

}  // namespace tessera

#endif  // TESSERA_COMMON_DEADLINE_H_
