#include "scheduler/failure_detector.h"

#include <gtest/gtest.h>

namespace tessera::scheduler {
namespace {

using std::chrono::milliseconds;

TEST(FailureDetectorTest, ReportsSilentNodesOnceAfterTimeout) {
  SimulatedClock clock;
  FailureDetector d(&clock, milliseconds(300));
  const NodeId a{Role::kServer, 0}, b{Role::kWorker, 0};
  d.Watch(a);
  d.Watch(b);
  clock.AdvanceTime(milliseconds(200));
  d.Beat(a);
  EXPECT_TRUE(d.CheckNewlyDead().empty());
  clock.AdvanceTime(milliseconds(200));  // b silent for 400 ms, a for 200 ms
  std::vector<NodeId> dead = d.CheckNewlyDead();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0], b);
  EXPECT_TRUE(d.IsDead(b));
  EXPECT_FALSE(d.IsDead(a));
  EXPECT_TRUE(d.CheckNewlyDead().empty());
  d.Beat(b);  // a dead node stays dead
  EXPECT_TRUE(d.IsDead(b));
  EXPECT_EQ(d.SinceLastBeat(a), milliseconds(200));
}

TEST(FailureDetectorTest, ExactlyTimeoutIsStillAlive) {
  SimulatedClock clock;
  FailureDetector d(&clock, milliseconds(300));
  d.Watch({Role::kServer, 1});
  clock.AdvanceTime(milliseconds(300));
  EXPECT_TRUE(d.CheckNewlyDead().empty());
  clock.AdvanceTime(milliseconds(1));
  EXPECT_EQ(d.CheckNewlyDead().size(), 1u);
}

}  // namespace
}  // namespace tessera::scheduler
