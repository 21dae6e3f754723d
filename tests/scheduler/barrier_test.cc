#include "scheduler/barrier.h"

#include <gtest/gtest.h>

namespace tessera::scheduler {
namespace {

TEST(BarrierTest, ReleasesEveryoneWhenGroupCompletesThenResets) {
  Barrier<int> b;
  EXPECT_TRUE(b.Arrive(3, 1).empty());
  EXPECT_TRUE(b.Arrive(3, 2).empty());
  EXPECT_EQ(b.waiting(), 2);
  EXPECT_EQ(b.Arrive(3, 3), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(b.waiting(), 0);
  EXPECT_EQ(b.rounds(), 1);
  EXPECT_TRUE(b.Arrive(3, 4).empty());
}

TEST(BarrierTest, AGroupThatShrinksReleasesTheLiveWaitersWithoutTheDeadOnes) {
  Barrier<int> b;
  EXPECT_TRUE(b.Arrive(3, 0).empty());
  EXPECT_TRUE(b.Arrive(3, 1).empty());
  // Member 1 dies while waiting: its arrival no longer counts.
  b.RemoveIf([](int w) { return w == 1; });
  EXPECT_TRUE(b.Release(2).empty());  // only member 0 is waiting
  EXPECT_EQ(b.Arrive(2, 2), (std::vector<int>{0, 2}));
  // Member 2 dies while 0 waits at the next round: 0 is released alone.
  EXPECT_TRUE(b.Arrive(2, 0).empty());
  EXPECT_EQ(b.Release(1), (std::vector<int>{0}));
  EXPECT_EQ(b.rounds(), 2);
  EXPECT_TRUE(b.Release(1).empty());  // nobody waiting: no empty round
}

}  // namespace
}  // namespace tessera::scheduler
