#include "scheduler/data_assigner.h"

#include <gtest/gtest.h>

#include <set>

namespace tessera::scheduler {
namespace {

std::vector<DataChunk> Chunks(int n) {
  std::vector<DataChunk> c;
  for (int i = 0; i < n; ++i) c.push_back({"f.tsv", i * 100ull, (i + 1) * 100ull});
  return c;
}

TEST(DataAssignerTest, DynamicHandsEveryChunkOncePerEpoch) {
  DataAssigner a(Chunks(5), 2, 3, false);
  EXPECT_EQ(a.total(), 10u);
  std::multiset<uint64_t> begins;
  std::optional<uint64_t> last[3];
  int w = 0;
  for (int i = 0; i < 20; ++i, w = (w + 1) % 3) {
    auto next = a.Next(w, last[w]);
    last[w] = next ? std::optional<uint64_t>(next->id) : std::nullopt;
    if (next) begins.insert(next->chunk.begin);
  }
  EXPECT_EQ(begins.size(), 10u);
  for (uint64_t b = 0; b < 500; b += 100) EXPECT_EQ(begins.count(b), 2u);
  EXPECT_TRUE(a.finished());
  EXPECT_EQ(a.bytes_completed(), 1000u);
}

TEST(DataAssignerTest, StaticOrderIsAFunctionOfWorkerCount) {
  DataAssigner a(Chunks(4), 1, 2, true);
  EXPECT_EQ(a.Next(1, std::nullopt)->chunk.begin, 100u);
  EXPECT_EQ(a.Next(0, std::nullopt)->chunk.begin, 0u);
  auto second_of_1 = a.Next(1, 1);
  ASSERT_TRUE(second_of_1);
  EXPECT_EQ(second_of_1->chunk.begin, 300u);
}

TEST(DataAssignerTest, RequeuedChunksOfADeadWorkerGoToOthers) {
  DataAssigner a(Chunks(2), 1, 2, false);
  auto lost = a.Next(1, std::nullopt);
  ASSERT_TRUE(lost);
  a.Requeue(1);
  auto again = a.Next(0, std::nullopt);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id, lost->id);
  EXPECT_FALSE(a.finished());
  auto last = a.Next(0, again->id);
  ASSERT_TRUE(last);
  EXPECT_FALSE(a.Next(0, last->id));
  EXPECT_TRUE(a.finished());
}

}  // namespace
}  // namespace tessera::scheduler
