// Injected time. Everything that measures or compares time (heartbeats,
// deadlines of logical protocols, row timestamps) takes a Clock*, so tests can
// drive time with SimulatedClock instead of sleeping.
#ifndef TESSERA_COMMON_CLOCK_H_
#define TESSERA_COMMON_CLOCK_H_

#include <chrono>
#include <cstdint>

#include "common/mutex.h"

namespace tessera {

// Thread-safe.
class Clock {
 public:
  using Duration = std::chrono::nanoseconds;
  using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

  virtual ~Clock() = default;
  // Monotonic time.
  virtual TimePoint Now() const = 0;
  // Wall-clock seconds since the Unix epoch (row timestamps, logs).
  virtual int64_t UnixSeconds() const = 0;
  // Wall-clock milliseconds since the Unix epoch (version times, freshness).
  virtual int64_t UnixMillis() const = 0;
};

// The process's real clocks (steady_clock and system_clock). Thread-safe.
class RealClock final : public Clock {
 public:
  TimePoint Now() const override;
  int64_t UnixSeconds() const override;
  int64_t UnixMillis() const override;
};

// A clock that only moves when told to. Starts at an arbitrary fixed point
// (monotonic 1000 s, wall 1.7e9 s). Thread-safe.
class SimulatedClock final : public Clock {
 public:
  TimePoint Now() const override;
  int64_t UnixSeconds() const override;
  int64_t UnixMillis() const override;
  void AdvanceTime(Duration d);

 private:
  mutable Mutex mu_;
  Duration elapsed_ TESSERA_GUARDED_BY(mu_){0};
};

}  // namespace tessera

#endif  // TESSERA_COMMON_CLOCK_H_
