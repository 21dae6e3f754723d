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

}  // namespace
}  // namespace tessera::scheduler
