// EmbeddingTable change tracking: full and delta captures, tombstones, and
// restoring rows with InsertRow.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "server/embedding_table.h"
#include "server/optimizer/optimizer.h"
#include "tests/testing/status_matchers.h"

namespace tessera::server {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr uint32_t kDim = 3;
constexpr int64_t kNow = 1'700'000'000;

struct Row {
  uint32_t update_count;
  uint32_t last_update;
  std::vector<float> value;
  std::vector<float> state;
  friend bool operator==(const Row&, const Row&) = default;
};

// key -> row, decoded from a capture.
std::map<Key, Row> Rows(const EmbeddingTable::Captured& c) {
  std::map<Key, Row> out;
  for (size_t i = 0; i < c.num_rows(); ++i) {
    const std::byte* rec = c.rows.data() + i * c.record_bytes();
    EmbeddingTable::RowHeader h;
    std::memcpy(&h, rec, sizeof(h));
    const float* f = reinterpret_cast<const float*>(rec + sizeof(h));
    EXPECT_TRUE(out.emplace(h.key, Row{h.update_count, h.last_update_unix_s,
                                       std::vector<float>(f, f + c.dim),
                                       std::vector<float>(f + c.dim, f + c.dim + c.state_floats)})
                    .second)
        << "key captured twice: " << h.key;
  }
  return out;
}

// The table's rows as ForEachRow sees them.
std::map<Key, Row> Rows(const EmbeddingTable& t) {
  std::map<Key, Row> out;
  t.ForEachRow([&](const EmbeddingTable::RowView& r) {
    out[r.key()] = Row{r.update_count(), r.last_update_unix_s(),
                       std::vector<float>(r.value().begin(), r.value().end()),
                       std::vector<float>(r.state().begin(), r.state().end())};
  });
  return out;
}

class TableCaptureTest : public ::testing::TestWithParam<int> {
 protected:
  TableCaptureTest() {
    OptimizerConfig c;
    c.type = OptimizerType::kAdagrad;
    c.learning_rate = 0.1f;
    optimizer_ = std::move(NewOptimizer(c)).value();
  }
  EmbeddingTable::Options Opts() const {
    return {.id = 2, .dim = kDim, .optimizer = optimizer_.get(), .initializer = {},
            .num_stripes = GetParam()};
  }
  static void Push(EmbeddingTable& t, std::vector<Key> keys, int64_t now = kNow) {
    t.Push(keys, std::vector<float>(keys.size() * kDim, 0.5f), now);
  }
  std::unique_ptr<Optimizer> optimizer_;
};

TEST_P(TableCaptureTest, FullCaptureEqualsTheTableAndHidesTheMark) {
  EmbeddingTable t(Opts());
  Push(t, {1, 2, 3, 2});
  EmbeddingTable::Captured full = t.Capture(true);
  EXPECT_EQ(full.num_rows(), 3u);
  EXPECT_THAT(full.deleted, IsEmpty());
  EXPECT_EQ(Rows(full), Rows(t));
  EXPECT_EQ(Rows(full).at(2).update_count, 2u);
}

TEST_P(TableCaptureTest, DeltaHoldsOnlyRowsChangedSinceThePreviousCapture) {
  EmbeddingTable t(Opts());
  Push(t, {1, 2, 3});
  (void)t.Capture(true);
  EXPECT_EQ(t.Capture(false).num_rows(), 0u);  // Nothing changed.
  Push(t, {2, 9, 2}, kNow + 5);
  EmbeddingTable::Captured delta = t.Capture(false);
  std::map<Key, Row> rows = Rows(delta);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows.at(2), Rows(t).at(2));
  EXPECT_EQ(rows.at(2).update_count, 3u);  // Mark bit not leaked.
  EXPECT_EQ(rows.at(9).last_update, static_cast<uint32_t>(kNow + 5));
  EXPECT_EQ(t.Capture(false).num_rows(), 0u);  // Marks were reset.
}

TEST_P(TableCaptureTest, ErasedAndEvictedKeysAreTombstonesOnce) {
  EmbeddingTable::Options o = Opts();
  o.eviction.ttl_s = 10;
  EmbeddingTable t(o);
  Push(t, {1, 2, 3});
  EXPECT_TRUE(t.Erase(1));  // Before tracking: no tombstone.
  (void)t.Capture(true);
  EXPECT_TRUE(t.Erase(2));
  EXPECT_FALSE(t.Erase(2));
  Push(t, {4}, kNow + 20);
  EXPECT_EQ(t.Evict(kNow + 20), 1u);  // Key 3.
  EmbeddingTable::Captured delta = t.Capture(false);
  EXPECT_THAT(delta.deleted, UnorderedElementsAre(2, 3));
  EXPECT_THAT(Rows(delta), ElementsAre(::testing::Key(4)));
  EXPECT_THAT(t.Capture(false).deleted, IsEmpty());
}

TEST_P(TableCaptureTest, KeyErasedThenPushedAgainIsBothTombstoneAndRow) {
  EmbeddingTable t(Opts());
  Push(t, {5});
  (void)t.Capture(true);
  Push(t, {5});  // Marked dirty...
  EXPECT_TRUE(t.Erase(5));  // ...then removed...
  Push(t, {5});             // ...and created again.
  EmbeddingTable::Captured delta = t.Capture(false);
  EXPECT_THAT(delta.deleted, ElementsAre(5));
  std::map<Key, Row> rows = Rows(delta);
  ASSERT_EQ(rows.size(), 1u);  // Once, although its key is listed dirty twice.
  EXPECT_EQ(rows.at(5).update_count, 1u);
}

// What a full replication copy carries (Tombstones) and what a promoted
// backup adds for its dead primary (AddTombstones).
TEST_P(TableCaptureTest, PendingTombstonesAndAddedOnes) {
  EmbeddingTable t(Opts());
  Push(t, {1, 2, 3, 4});
  EXPECT_FALSE(t.tracking());
  t.AddTombstones(std::vector<Key>{8});  // Not tracking: dropped.
  EXPECT_TRUE(t.Erase(1));
  EXPECT_THAT(t.Tombstones(), IsEmpty());
  (void)t.Capture(true);
  EXPECT_TRUE(t.tracking());
  EXPECT_TRUE(t.Erase(3));
  EXPECT_TRUE(t.Erase(2));
  Push(t, {2});  // Created again: a row, so no pending tombstone to copy.
  EXPECT_TRUE(t.Erase(4));
  Push(t, {4});
  EXPECT_TRUE(t.Erase(4));  // Twice a tombstone, listed once.
  EXPECT_THAT(t.Tombstones(), ElementsAre(3, 4));
  t.AddTombstones(std::vector<Key>{9, 7});
  EXPECT_THAT(t.Tombstones(), ElementsAre(3, 4, 7, 9));
  EmbeddingTable::Captured delta = t.Capture(false);
  EXPECT_THAT(delta.deleted, UnorderedElementsAre(3, 2, 4, 4, 9, 7));
  EXPECT_THAT(t.Tombstones(), IsEmpty());
}

TEST_P(TableCaptureTest, FullSnapshotPlusDeltasReplayedWithInsertRowEqualsTheTable) {
  EmbeddingTable t(Opts());
  std::mt19937_64 rng(7);
  auto random_pushes = [&](int n, int64_t now) {
    std::vector<Key> keys(n);
    for (Key& k : keys) k = rng() % 200;
    Push(t, keys, now);
  };
  random_pushes(300, kNow);
  std::vector<EmbeddingTable::Captured> chain = {t.Capture(true)};
  for (int v = 1; v <= 4; ++v) {
    random_pushes(50, kNow + v);
    for (int e = 0; e < 3; ++e) t.Erase(rng() % 200);
    chain.push_back(t.Capture(false));
  }
  EmbeddingTable restored(Opts());
  for (const EmbeddingTable::Captured& c : chain) {
    for (Key k : c.deleted) restored.Erase(k);
    for (const auto& [key, row] : Rows(c)) {
      ASSERT_OK(restored.InsertRow(key, row.update_count, row.last_update, row.value, row.state));
    }
  }
  EXPECT_EQ(Rows(restored), Rows(t));
  // Restored rows are not marked: the restored table's first delta is empty.
  (void)restored.Capture(true);
  EXPECT_EQ(restored.Capture(false).num_rows(), 0u);
}

TEST_P(TableCaptureTest, InsertRowChecksSizesAndInitializesMissingState) {
  EmbeddingTable t(Opts());
  const std::vector<float> value = {1, 2, 3};
  EXPECT_EQ(t.InsertRow(1, 0, 0, {value.data(), 2}, {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.InsertRow(1, 0, 0, value, value).code(), StatusCode::kOk);  // 3 state floats.
  EXPECT_EQ(t.InsertRow(1, 0, 0, value, {value.data(), 1}).code(), StatusCode::kInvalidArgument);
  ASSERT_OK(t.InsertRow(2, 4, 9, value, {}));
  const Row row = Rows(t).at(2);
  EXPECT_EQ(row.value, value);
  EXPECT_EQ(row.update_count, 4u);
  EXPECT_EQ(row.state, std::vector<float>(kDim, 0.1f));  // Adagrad's initial accumulator.
}

INSTANTIATE_TEST_SUITE_P(Stripes, TableCaptureTest, ::testing::Values(1, 16));

}  // namespace
}  // namespace tessera::server
