#include "scheduler/cut_gate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tessera::scheduler {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Waiters are ints naming the report (worker * 100 + step).
bool Hold(CutGate<int>& gate, int w, uint64_t step) {
  int waiter = w * 100 + static_cast<int>(step);
  return gate.Hold(w, step, waiter);
}

TEST(CutGateTest, NothingIsHeldWithoutACut) {
  CutGate<int> gate(2, false);
  EXPECT_FALSE(Hold(gate, 0, 1));
  EXPECT_FALSE(gate.reached());
  EXPECT_THAT(gate.Release(), IsEmpty());
}

TEST(CutGateTest, AsyncStopsEachWorkerAtItsNextBoundary) {
  CutGate<int> gate(3, false);
  EXPECT_FALSE(Hold(gate, 0, 7));
  gate.Request();
  EXPECT_TRUE(Hold(gate, 0, 8));
  EXPECT_FALSE(gate.reached());
  EXPECT_TRUE(Hold(gate, 2, 3));  // A slow worker stops at its own step.
  EXPECT_FALSE(gate.reached());
  EXPECT_THAT(gate.Remove(1), IsEmpty());  // Worker 1 finished its data.
  EXPECT_TRUE(gate.reached());
  EXPECT_THAT(gate.Release(), ElementsAre(8, 203));
  EXPECT_FALSE(gate.pending());
  EXPECT_FALSE(Hold(gate, 0, 9));
}

TEST(CutGateTest, LockstepRunsEveryWorkerToTheHighestStartedStep) {
  CutGate<int> gate(2, true);
  // Both finished step 4; worker 0 was released and started step 5.
  EXPECT_FALSE(Hold(gate, 0, 4));
  gate.Request();
  // Worker 1's step-4 report is not held: it must reach step 5 too, or
  // worker 0 would wait for its push turn forever.
  EXPECT_FALSE(Hold(gate, 1, 4));
  EXPECT_TRUE(Hold(gate, 0, 5));
  EXPECT_FALSE(gate.reached());
  EXPECT_TRUE(Hold(gate, 1, 5));
  EXPECT_TRUE(gate.reached());
  EXPECT_THAT(gate.Release(), ElementsAre(5, 105));
}

TEST(CutGateTest, RemovingAHeldWorkerReturnsItsReply) {
  CutGate<int> gate(2, false);
  gate.Request();
  EXPECT_TRUE(Hold(gate, 0, 2));
  EXPECT_THAT(gate.Remove(0), ElementsAre(2));
  EXPECT_FALSE(gate.reached());
  EXPECT_TRUE(Hold(gate, 1, 9));
  EXPECT_TRUE(gate.reached());
}

}  // namespace
}  // namespace tessera::scheduler
