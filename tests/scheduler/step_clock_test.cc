#include "scheduler/step_clock.h"

#include <gtest/gtest.h>

namespace tessera::scheduler {
namespace {

TEST(StepClockTest, SyncReleasesAStepOnlyWhenEveryWorkerFinishedIt) {
  StepClock<int> clock(3, 0);
  EXPECT_TRUE(clock.Report(0, 1, false, 10).empty());
  EXPECT_TRUE(clock.Report(1, 1, false, 11).empty());
  EXPECT_EQ(clock.Report(2, 1, false, 12), (std::vector<int>{10, 11, 12}));
}

TEST(StepClockTest, SspLetsFastWorkersRunAheadByStaleness) {
  StepClock<int> clock(2, 2);
  EXPECT_EQ(clock.Report(0, 1, false, 1), std::vector<int>{1});
  EXPECT_EQ(clock.Report(0, 2, false, 2), std::vector<int>{2});
  EXPECT_TRUE(clock.Report(0, 3, false, 3).empty());  // worker 1 still at 0
  EXPECT_EQ(clock.spread(), 3u);
  EXPECT_EQ(clock.Report(1, 1, false, 4), (std::vector<int>{3, 4}));
}

TEST(StepClockTest, DoneAndRemovedWorkersStopHoldingOthersBack) {
  StepClock<int> clock(3, 0);
  EXPECT_TRUE(clock.Report(0, 5, false, 1).empty());
  EXPECT_TRUE(clock.Report(1, 2, true, 2).empty());  // done, but worker 2 is slow
  EXPECT_EQ(clock.Remove(2), (std::vector<int>{1, 2}));
  EXPECT_FALSE(clock.all_done());
  EXPECT_EQ(clock.Report(0, 6, true, 3), std::vector<int>{3});
  EXPECT_TRUE(clock.all_done());
}

TEST(StepClockTest, PushTurnsFollowRankOrderWithinAStep) {
  StepClock<int> clock(3, 0);
  EXPECT_TRUE(clock.RequestTurn(0, 1, 0).empty());   // worker 2 has not pulled yet
  EXPECT_TRUE(clock.RequestTurn(2, 1, 20).empty());  // waits for 0 and 1
  EXPECT_EQ(clock.RequestTurn(1, 1, 10), std::vector<int>{0});  // all pulled: rank 0 first
  EXPECT_EQ(clock.Report(0, 1, false, 100), std::vector<int>{10});
  EXPECT_EQ(clock.Report(1, 1, false, 101), std::vector<int>{20});
  EXPECT_EQ(clock.Report(2, 1, false, 102), (std::vector<int>{100, 101, 102}));
}

TEST(StepClockTest, ADoneWorkerNeverHoldsATurn) {
  StepClock<int> clock(2, 0);
  EXPECT_TRUE(clock.RequestTurn(1, 4, 1).empty());
  EXPECT_EQ(clock.Remove(0), std::vector<int>{1});
  EXPECT_EQ(clock.RequestTurn(1, 5, 2), std::vector<int>{2});  // alone now
}

}  // namespace
}  // namespace tessera::scheduler
