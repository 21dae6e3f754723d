// The backups' side of replication: a primary's rows, dense ranges and
// operation ids arrive in batches, and promotion moves them into the
// server's own tables.
#include "server/replica_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "protocols/codec.h"
#include "tests/testing/status_matchers.h"

namespace tessera::server {
namespace {

constexpr uint32_t kDim = 3;
constexpr uint64_t kDenseSize = 40;

std::vector<TableConfig> Configs() {
  TableConfig emb;
  emb.id = 1;
  emb.name = "emb";
  emb.dim = kDim;
  emb.optimizer.type = OptimizerType::kAdagrad;
  TableConfig dense = emb;
  dense.id = 2;
  dense.name = "mlp";
  dense.kind = TableKind::kDense;
  dense.size = kDenseSize;
  return {emb, dense};
}

// A batch holding what `primary` has (rows, its dense ranges) plus `ops`,
// encoded and decoded as the wire would.
protocol::DecodedMessage Batch(const TableSet& primary, bool reset, std::vector<Key> deleted,
                               std::vector<uint64_t> ops) {
  protocol::ReplicateBatch batch;
  batch.epoch = 1;
  batch.reset = reset;
  protocol::ReplicaRows rows;
  rows.table = 1;
  primary.Find(1)->sparse->CopyAllRows(rows.records);
  rows.deleted = std::move(deleted);
  batch.rows.push_back(std::move(rows));
  primary.Find(2)->dense->ForEachRange([&](const DenseShard::RangeView& r) {
    batch.dense.push_back({2, r.begin, r.end, r.step, {r.values.begin(), r.values.end()},
                           {r.state.begin(), r.state.end()}});
  });
  batch.op_ids = std::move(ops);
  protocol::Header h;
  h.sender = NodeId{Role::kServer, 0};
  return std::move(protocol::DecodedMessage::Decode(protocol::EncodeReplicate(h, batch))).value();
}

TEST(ReplicaStoreTest, PromotionRestoresThePrimarysStateExactly) {
  const ShardMap before = ShardMap::Uniform(64, 2);
  TableSet primary, backup;
  ASSERT_OK(primary.Apply(Configs(), before, 0));
  ASSERT_OK(backup.Apply(Configs(), before, 1));
  std::vector<Key> keys;
  for (Key k = 0; keys.size() < 50; ++k) {
    if (before.OwnerOfKey(k) == 0) keys.push_back(k);
  }
  const std::vector<float> grads(keys.size() * kDim, 0.5f);
  primary.Find(1)->sparse->Push(keys, grads, 100);
  const std::vector<DenseRange> owned = before.DenseRangesOf(0, kDenseSize);
  const std::vector<float> dense_grads(owned[0].end - owned[0].begin, 0.25f);
  ASSERT_OK(primary.Find(2)->dense->Push(owned[0].begin, dense_grads));

  ReplicaStore store;
  protocol::DecodedMessage m = Batch(primary, true, {}, {11, 12});
  ASSERT_OK_AND_ASSIGN(protocol::ReplicateView view, m.AsReplicate());
  ASSERT_OK(store.Apply(0, view, backup));
  EXPECT_EQ(store.num_rows(0), keys.size());

  // A later batch erases one key.
  primary.Find(1)->sparse->Erase(keys[0]);
  protocol::DecodedMessage m2 = Batch(primary, false, {keys[0]}, {13});
  ASSERT_OK_AND_ASSIGN(protocol::ReplicateView view2, m2.AsReplicate());
  ASSERT_OK(store.Apply(0, view2, backup));
  EXPECT_EQ(store.num_rows(0), keys.size() - 1);

  // Server 0 dies: server 1 owns everything and takes the copy over.
  const ShardMap after = PromoteBackups(before, {false, true});
  ASSERT_OK(backup.ReshardDense(after, 1));
  backup.Find(1)->sparse->Capture(true);  // change tracking on: promoted rows go in the next delta
  AppliedOps ops;
  auto owned_by_1 = [&](Key k) { return after.OwnerOfKey(k) == 1; };
  ASSERT_OK_AND_ASSIGN(size_t moved, store.PromoteInto(0, owned_by_1, backup, ops));
  EXPECT_EQ(moved, keys.size() - 1);
  EXPECT_FALSE(store.Has(0));
  EXPECT_TRUE(ops.Contains(11) && ops.Contains(12) && ops.Contains(13));

  std::vector<float> want(keys.size() * kDim), got(keys.size() * kDim);
  primary.Find(1)->sparse->Pull(keys, want);
  backup.Find(1)->sparse->Pull(keys, got);
  EXPECT_EQ(got, want);
  EXPECT_EQ(backup.Find(1)->sparse->Capture(false).num_rows(), keys.size() - 1);
  std::vector<float> dense_want(owned[0].end - owned[0].begin), dense_got(dense_want.size());
  ASSERT_OK(primary.Find(2)->dense->Pull(owned[0].begin, owned[0].end, dense_want));
  ASSERT_OK(backup.Find(2)->dense->Pull(owned[0].begin, owned[0].end, dense_got));
  EXPECT_EQ(dense_got, dense_want);
  // Optimizer state too: one more identical push gives identical rows.
  primary.Find(1)->sparse->Push(keys, grads, 101);
  backup.Find(1)->sparse->Push(keys, grads, 101);
  primary.Find(1)->sparse->Pull(keys, want);
  backup.Find(1)->sparse->Pull(keys, got);
  EXPECT_EQ(got, want);
}

TEST(ReplicaStoreTest, ResetStartsTheCopyOverAndBadRecordsAreRefused) {
  const ShardMap map = ShardMap::Uniform(64, 2);
  TableSet primary, backup;
  ASSERT_OK(primary.Apply(Configs(), map, 0));
  ASSERT_OK(backup.Apply(Configs(), map, 1));
  const std::vector<Key> keys = {1, 2, 3};
  primary.Find(1)->sparse->Push(keys, std::vector<float>(keys.size() * kDim, 1.0f), 5);
  ReplicaStore store;
  protocol::DecodedMessage m = Batch(primary, false, {}, {});
  ASSERT_OK(store.Apply(0, *m.AsReplicate(), backup));
  EXPECT_EQ(store.num_rows(0), 3u);
  TableSet empty;
  ASSERT_OK(empty.Apply(Configs(), map, 0));
  protocol::DecodedMessage reset = Batch(empty, true, {}, {});
  ASSERT_OK(store.Apply(0, *reset.AsReplicate(), backup));
  EXPECT_EQ(store.num_rows(0), 0u);

  protocol::ReplicateView bad;
  bad.epoch = 1;
  std::vector<std::byte> odd(7);
  bad.rows.push_back({1, odd, {}});
  EXPECT_FALSE(store.Apply(0, bad, backup).ok());
  protocol::ReplicateView unknown;
  unknown.epoch = 1;
  unknown.rows.push_back({99, {}, {}});
  EXPECT_FALSE(store.Apply(0, unknown, backup).ok());
}

// One message of batch `batch_id` (epoch 1) with the current rows of `keys`
// (keys without a row: deleted), as the primary's Replicator builds it.
protocol::DecodedMessage RowsMessage(const TableSet& primary, std::vector<Key> keys,
                                     uint64_t batch_id, bool reset, bool captured = false) {
  protocol::ReplicateBatch batch;
  batch.epoch = 1;
  batch.batch_id = batch_id;
  batch.reset = reset;
  batch.captured = captured;
  protocol::ReplicaRows rows;
  rows.table = 1;
  std::sort(keys.begin(), keys.end());
  primary.Find(1)->sparse->CopyRows(keys, rows.records, rows.deleted);
  batch.rows.push_back(std::move(rows));
  protocol::Header h;
  h.sender = NodeId{Role::kServer, 0};
  return std::move(protocol::DecodedMessage::Decode(protocol::EncodeReplicate(h, batch))).value();
}

// The rows the copy of primary 0 in `store` holds for `keys` (promoted into
// a fresh table set).
std::vector<float> CopiedRows(ReplicaStore& store, const std::vector<Key>& keys) {
  TableSet tables;
  EXPECT_OK(tables.Apply(Configs(), ShardMap::Uniform(64, 1), 0));
  AppliedOps ops;
  EXPECT_OK(store.PromoteInto(0, [](Key) { return true; }, tables, ops).status());
  std::vector<float> rows(keys.size() * kDim);
  tables.Find(1)->sparse->Pull(keys, rows);
  return rows;
}

// Resent messages: a late copy of an older batch must not roll rows back.
TEST(ReplicaStoreTest, LateCopiesOfOlderBatchesAreIgnored) {
  const ShardMap map = ShardMap::Uniform(64, 2);
  TableSet primary, backup;
  ASSERT_OK(primary.Apply(Configs(), map, 0));
  ASSERT_OK(backup.Apply(Configs(), map, 1));
  const std::vector<Key> keys = {1, 2, 3, 4};
  const std::vector<float> grads(keys.size() * kDim, 1.0f);
  primary.Find(1)->sparse->Push(keys, grads, 5);
  protocol::DecodedMessage first = RowsMessage(primary, keys, 1, false);
  primary.Find(1)->sparse->Push(keys, grads, 6);
  protocol::DecodedMessage second = RowsMessage(primary, keys, 2, false);
  std::vector<float> want(keys.size() * kDim);
  primary.Find(1)->sparse->Pull(keys, want);

  ReplicaStore store;
  ASSERT_OK(store.Apply(0, *first.AsReplicate(), backup));
  ASSERT_OK(store.Apply(0, *second.AsReplicate(), backup));
  ASSERT_OK(store.Apply(0, *first.AsReplicate(), backup));  // late copy of batch 1
  EXPECT_EQ(store.stale_messages(), 1u);
  EXPECT_EQ(CopiedRows(store, keys), want);
}

// The parts of a full copy may arrive in any order, and twice: only the
// first to arrive starts the copy over.
TEST(ReplicaStoreTest, FullCopyPartsArriveInAnyOrder) {
  const ShardMap map = ShardMap::Uniform(64, 2);
  TableSet primary, backup;
  ASSERT_OK(primary.Apply(Configs(), map, 0));
  ASSERT_OK(backup.Apply(Configs(), map, 1));
  const std::vector<Key> keys = {1, 2, 3, 4, 9};
  primary.Find(1)->sparse->Push(keys, std::vector<float>(keys.size() * kDim, 1.0f), 5);
  ReplicaStore store;
  ASSERT_OK(store.Apply(0, *RowsMessage(primary, keys, 1, false).AsReplicate(), backup));
  EXPECT_EQ(store.num_rows(0), 5u);

  primary.Find(1)->sparse->Erase(9);
  const std::vector<Key> kept = {1, 2, 3, 4};
  primary.Find(1)->sparse->Push(kept, std::vector<float>(kept.size() * kDim, 0.5f), 6);
  protocol::DecodedMessage part1 = RowsMessage(primary, {1, 2}, 2, true);
  protocol::DecodedMessage part2 = RowsMessage(primary, {3, 4}, 2, true);
  ASSERT_OK(store.Apply(0, *part2.AsReplicate(), backup));
  ASSERT_OK(store.Apply(0, *part1.AsReplicate(), backup));
  ASSERT_OK(store.Apply(0, *part2.AsReplicate(), backup));
  EXPECT_EQ(store.num_rows(0), kept.size());  // key 9 went with the reset
  EXPECT_EQ(store.stale_messages(), 0u);
  std::vector<float> want(kept.size() * kDim);
  primary.Find(1)->sparse->Pull(kept, want);
  EXPECT_EQ(CopiedRows(store, kept), want);
}

// Rows a primary evicts after its last capture are in no published version
// yet: the backup keeps their tombstones (from the first batch marked as a
// capture point) and promotion puts them in its own next delta; those
// replicated before a later capture point are dropped (that version has
// them).
TEST(ReplicaStoreTest, TombstonesSinceTheLastCapturePointReachTheNextDelta) {
  const ShardMap before = ShardMap::Uniform(64, 2);
  TableSet primary, backup;
  ASSERT_OK(primary.Apply(Configs(), before, 0));
  ASSERT_OK(backup.Apply(Configs(), before, 1));
  EmbeddingTable& rows = *primary.Find(1)->sparse;
  const std::vector<Key> keys = {1, 2, 3, 4, 5, 6};
  rows.Push(keys, std::vector<float>(keys.size() * kDim, 1.0f), 5);
  ReplicaStore store;
  ASSERT_OK(store.Apply(0, *RowsMessage(primary, keys, 1, false).AsReplicate(), backup));
  EXPECT_TRUE(rows.Erase(1));  // Not tracking yet: no version will need it.
  ASSERT_OK(store.Apply(0, *RowsMessage(primary, {1}, 2, false).AsReplicate(), backup));
  EXPECT_THAT(store.tombstones(0, 1), ::testing::IsEmpty());

  (void)rows.Capture(true);  // Version 1 (full); the next batch says so.
  EXPECT_TRUE(rows.Erase(2));
  ASSERT_OK(store.Apply(0, *RowsMessage(primary, {2}, 3, false, true).AsReplicate(), backup));
  EXPECT_THAT(store.tombstones(0, 1), ::testing::ElementsAre(2));
  (void)rows.Capture(false);  // Version 2 holds the tombstone of 2.
  EXPECT_TRUE(rows.Erase(3));
  EXPECT_TRUE(rows.Erase(5));
  ASSERT_OK(store.Apply(0, *RowsMessage(primary, {3, 5}, 4, false, true).AsReplicate(), backup));
  EXPECT_THAT(store.tombstones(0, 1), ::testing::ElementsAre(3, 5));
  // Batch 4 again (its ack was lost): the same tombstones.
  ASSERT_OK(store.Apply(0, *RowsMessage(primary, {3, 5}, 4, false, true).AsReplicate(), backup));
  EXPECT_THAT(store.tombstones(0, 1), ::testing::ElementsAre(3, 5));
  rows.Push(std::vector<Key>{5}, std::vector<float>(kDim, 1.0f), 6);  // 5 trained again
  EXPECT_TRUE(rows.Erase(4));
  ASSERT_OK(store.Apply(0, *RowsMessage(primary, {4, 5}, 5, false).AsReplicate(), backup));
  EXPECT_THAT(store.tombstones(0, 1), ::testing::ElementsAre(3, 4));
  // What the primary's next delta would have held.
  EmbeddingTable::Captured lost = rows.Capture(false);
  EXPECT_THAT(lost.deleted, ::testing::UnorderedElementsAre(3, 5, 4));

  // The primary dies before publishing it: its backup does.
  const ShardMap after = PromoteBackups(before, {false, true});
  ASSERT_OK(backup.ReshardDense(after, 1));
  EmbeddingTable& promoted = *backup.Find(1)->sparse;
  (void)promoted.Capture(true);  // the backup's own version 2
  AppliedOps ops;
  ASSERT_OK(store.PromoteInto(0, [&](Key k) { return after.OwnerOfKey(k) == 1; }, backup, ops)
                .status());
  EmbeddingTable::Captured next = promoted.Capture(false);
  EXPECT_THAT(next.deleted, ::testing::UnorderedElementsAre(3, 4));
  std::vector<Key> copied;
  for (size_t i = 0; i < next.num_rows(); ++i) {
    Key k;
    std::memcpy(&k, next.rows.data() + i * next.record_bytes(), sizeof(k));
    copied.push_back(k);
  }
  EXPECT_THAT(copied, ::testing::UnorderedElementsAre(5, 6));  // 5 as a row, not a tombstone
}

// Without a capture (no versions published) nothing is kept; a full copy
// from a primary that tracks changes carries its pending tombstones, and
// forgetting rows of a tracked copy leaves tombstones too.
TEST(ReplicaStoreTest, FullCopiesCarryTombstonesAndUntrackedCopiesKeepNone) {
  const ShardMap map = ShardMap::Uniform(64, 2);
  TableSet primary, backup;
  ASSERT_OK(primary.Apply(Configs(), map, 0));
  ASSERT_OK(backup.Apply(Configs(), map, 1));
  EmbeddingTable& rows = *primary.Find(1)->sparse;
  const std::vector<Key> keys = {1, 2, 3, 4};
  rows.Push(keys, std::vector<float>(keys.size() * kDim, 1.0f), 5);
  ReplicaStore store;
  ASSERT_OK(store.Apply(0, *RowsMessage(primary, keys, 1, false).AsReplicate(), backup));
  EXPECT_TRUE(rows.Erase(1));
  ASSERT_OK(store.Apply(0, *RowsMessage(primary, {1}, 2, false).AsReplicate(), backup));
  EXPECT_EQ(store.Erase(1, std::vector<Key>{2}), 1u);
  EXPECT_THAT(store.tombstones(0, 1), ::testing::IsEmpty());

  // A full copy in two parts; the tombstones ride in the first.
  (void)rows.Capture(true);
  EXPECT_TRUE(rows.Erase(2));
  protocol::ReplicateBatch part1;
  part1.epoch = 1;
  part1.batch_id = 3;
  part1.reset = true;
  part1.captured = true;
  protocol::ReplicaRows tombstones;
  tombstones.table = 1;
  tombstones.deleted = rows.Tombstones();
  part1.rows.push_back(std::move(tombstones));
  protocol::Header h;
  h.sender = NodeId{Role::kServer, 0};
  protocol::DecodedMessage m1 =
      std::move(protocol::DecodedMessage::Decode(protocol::EncodeReplicate(h, part1))).value();
  protocol::DecodedMessage m2 = RowsMessage(primary, {3, 4}, 3, true, true);
  ASSERT_OK(store.Apply(0, *m1.AsReplicate(), backup));
  ASSERT_OK(store.Apply(0, *m2.AsReplicate(), backup));
  EXPECT_EQ(store.num_rows(0), 2u);
  EXPECT_THAT(store.tombstones(0, 1), ::testing::ElementsAre(2));
  EXPECT_EQ(store.Erase(1, std::vector<Key>{3}), 1u);  // `tessera forget`
  EXPECT_THAT(store.tombstones(0, 1), ::testing::ElementsAre(2, 3));
}

}  // namespace
}  // namespace tessera::server
