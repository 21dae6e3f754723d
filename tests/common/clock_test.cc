#include "common/clock.h"

#include <gtest/gtest.h>

namespace tessera {
namespace {

TEST(ClockTest, SimulatedClockMovesOnlyWhenAdvanced) {
  SimulatedClock clock;
  auto t0 = clock.Now();
  int64_t w0 = clock.UnixSeconds();
  EXPECT_EQ(clock.Now(), t0);
  clock.AdvanceTime(std::chrono::milliseconds(1500));
  EXPECT_EQ(clock.Now() - t0, std::chrono::milliseconds(1500));
  EXPECT_EQ(clock.UnixSeconds(), w0 + 1);
}

TEST(ClockTest, RealClockIsMonotonic) {
  RealClock clock;
  auto a = clock.Now();
  auto b = clock.Now();
  EXPECT_LE(a, b);
  EXPECT_GT(clock.UnixSeconds(), 1'600'000'000);
}

}  // namespace
}  // namespace tessera
