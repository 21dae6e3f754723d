#include "common/clock.h"

namespace tessera {
namespace {
constexpr std::chrono::seconds kSimulatedStart{1000};
constexpr int64_t kSimulatedWallStart = 1'700'000'000;
}  // namespace

Clock::TimePoint RealClock::Now() const {
  return std::chrono::time_point_cast<Duration>(std::chrono::steady_clock::now());
}

int64_t RealClock::UnixSeconds() const {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Clock::TimePoint SimulatedClock::Now() const {
  MutexLock lock(&mu_);
  return TimePoint(kSimulatedStart + elapsed_);
}

int64_t RealClock::UnixMillis() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t SimulatedClock::UnixMillis() const {
  MutexLock lock(&mu_);
  return kSimulatedWallStart * 1000 +
         std::chrono::duration_cast<std::chrono::milliseconds>(elapsed_).count();
}

int64_t SimulatedClock::UnixSeconds() const {
  MutexLock lock(&mu_);
  return kSimulatedWallStart +
         std::chrono::duration_cast<std::chrono::seconds>(elapsed_).count();
}

void SimulatedClock::AdvanceTime(Duration d) {
  MutexLock lock(&mu_);
  elapsed_ += d;
}

}  // namespace tessera
