#include "common/sharding.h"

#include <gtest/gtest.h>

#include <vector>

namespace tessera {
namespace {

TEST(ShardingTest, SlotOfKeyIsStableAndInRange) {
  // Golden values: the slot function decides where rows live; changing it
  // breaks resharding of saved models.
  EXPECT_EQ(SlotOfKey(0, 4096), SlotOfKey(0, 4096));
  EXPECT_EQ(Mix64(0), 0xe220a8397b1dcdafULL);
  for (Key k = 0; k < 10000; ++k) EXPECT_LT(SlotOfKey(k * 7919, 4096), 4096u);
}

TEST(ShardingTest, SlotsSpreadSequentialKeys) {
  std::vector<int> count(16);
  for (Key k = 0; k < 160000; ++k) ++count[SlotOfKey(k, 16)];
  for (int c : count) {
    EXPECT_GT(c, 9000);
    EXPECT_LT(c, 11000);
  }
}

TEST(ShardingTest, UniformMapGivesContiguousEqualRanges) {
  ShardMap map = ShardMap::Uniform(4096, 3);
  EXPECT_EQ(map.OwnerOfSlot(0), 0);
  EXPECT_EQ(map.OwnerOfSlot(4095), 2);
  std::vector<int> per(3);
  for (uint32_t s = 0; s < 4096; ++s) ++per[map.OwnerOfSlot(s)];
  EXPECT_EQ(per[0] + per[1] + per[2], 4096);
  EXPECT_LE(per[0] - per[2], 1);
}

TEST(ShardingTest, DenseRangesCoverEveryElementOnce) {
  for (uint64_t size : {0ull, 1ull, 7ull, 4096ull, 10000ull, 123457ull}) {
    ShardMap map = ShardMap::Uniform(4096, 2);
    auto runs = map.DenseRanges(size);
    uint64_t next = 0;
    for (const DenseRange& r : runs) {
      EXPECT_EQ(r.begin, next);
      EXPECT_LT(r.begin, r.end);
      next = r.end;
    }
    EXPECT_EQ(next, size);
    if (size >= 2) {
      EXPECT_EQ(runs.size(), 2u) << size;
    }
  }
}

TEST(ShardingTest, DenseRangesFollowSlotOwnership) {
  std::vector<int32_t> owner(8, 0);
  owner[2] = 1;
  owner[3] = 1;
  owner[6] = 1;
  ShardMap map(owner, 2);
  auto runs = map.DenseRanges(80);
  ASSERT_EQ(runs.size(), 5u);
  EXPECT_EQ(runs[1], (DenseRange{1, 20, 40}));
  EXPECT_EQ(map.DenseRangesOf(1, 80).size(), 2u);
}

}  // namespace
}  // namespace tessera

namespace tessera {
namespace {

TEST(ReplicaPlacementTest, BackupsAreTheNextLiveServersWrappingAround) {
  const std::vector<bool> all(4, true);
  EXPECT_EQ(BackupsOf(0, all, 1), std::vector<int32_t>{});
  EXPECT_EQ(BackupsOf(0, all, 2), std::vector<int32_t>{1});
  EXPECT_EQ(BackupsOf(3, all, 2), std::vector<int32_t>{0});
  EXPECT_EQ(BackupsOf(2, all, 3), (std::vector<int32_t>{3, 0}));
  const std::vector<bool> one_dead = {true, false, true, true};
  EXPECT_EQ(BackupsOf(0, one_dead, 2), std::vector<int32_t>{2});
  EXPECT_EQ(BackupsOf(3, one_dead, 3), (std::vector<int32_t>{0, 2}));
  // Fewer live servers than copies: as many as there are.
  EXPECT_EQ(BackupsOf(0, {true, false}, 2), std::vector<int32_t>{});
}

TEST(ReplicaPlacementTest, PromotionHandsADeadServersSlotsToItsFirstBackup) {
  const ShardMap map = ShardMap::Uniform(12, 4);
  const std::vector<bool> live = {true, false, true, true};
  const ShardMap promoted = PromoteBackups(map, live);
  for (SlotId s = 0; s < 12; ++s) {
    const int32_t before = map.OwnerOfSlot(s);
    EXPECT_EQ(promoted.OwnerOfSlot(s), before == 1 ? 2 : before) << "slot " << s;
    if (before == 1) {
      EXPECT_EQ(promoted.OwnerOfSlot(s), BackupsOf(1, {true, true, true, true}, 2)[0]);
    }
  }
  // The last server's slots wrap to server 0.
  const ShardMap wrapped = PromoteBackups(map, {true, true, true, false});
  EXPECT_EQ(wrapped.OwnerOfSlot(11), 0);
}

}  // namespace
}  // namespace tessera
