// Replication messages, operation ids and the cluster view's liveness fields.
#include <gtest/gtest.h>

#include "tests/protocols/codec_test_util.h"
#include "tests/testing/status_matchers.h"

namespace tessera::protocol {
namespace {

using testing::MakeClusterView;
using testing::MakeHeader;

StatusOr<DecodedMessage> RoundTrip(Frame f) { return DecodedMessage::Decode(std::move(f)); }

TEST(CodecReplicationTest, ClusterViewCarriesReplicationAndDeadServers) {
  ClusterView want = MakeClusterView();  // slots owned by 0, 1 and 2
  want.shard_map = ShardMap({2, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0, 2, 0}, 3);
  want.replication = 2;
  want.dead_servers = {1};
  want.request_timeout_ms = 350;
  ASSERT_OK_AND_ASSIGN(DecodedMessage m, RoundTrip(EncodeClusterView(MakeHeader(), want)));
  ASSERT_OK_AND_ASSIGN(ClusterView got, m.AsClusterView());
  EXPECT_EQ(got.replication, 2u);
  EXPECT_EQ(got.request_timeout_ms, 350u);
  EXPECT_EQ(got.dead_servers, std::vector<int32_t>{1});
  EXPECT_EQ(got.LiveServers(), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(got.handoff_from, -1);

  want.handoff_from = 2;
  want.handoff_to = 0;
  ASSERT_OK_AND_ASSIGN(DecodedMessage h, RoundTrip(EncodeClusterView(MakeHeader(), want)));
  ASSERT_OK_AND_ASSIGN(ClusterView handoff, h.AsClusterView());
  EXPECT_EQ(handoff.handoff_from, 2);
  EXPECT_EQ(handoff.handoff_to, 0);
  want.handoff_to = 1;  // dead
  ASSERT_OK_AND_ASSIGN(DecodedMessage bad, RoundTrip(EncodeClusterView(MakeHeader(), want)));
  EXPECT_FALSE(bad.AsClusterView().ok());
}

TEST(CodecReplicationTest, ReplicaSyncRequest) {
  ASSERT_OK_AND_ASSIGN(DecodedMessage m, RoundTrip(EncodeReplicaSyncRequest(MakeHeader())));
  EXPECT_EQ(m.type(), MessageType::kReplicaSyncRequest);
}

TEST(CodecReplicationTest, ClusterViewRefusesSlotsOfDeadServersAndBadReplication) {
  ClusterView dead_owner = MakeClusterView();  // server 1 owns slots
  dead_owner.dead_servers = {1};
  ASSERT_OK_AND_ASSIGN(DecodedMessage a, RoundTrip(EncodeClusterView(MakeHeader(), dead_owner)));
  EXPECT_FALSE(a.AsClusterView().ok());

  ClusterView too_many = MakeClusterView();
  too_many.replication = 4;  // 3 servers
  ASSERT_OK_AND_ASSIGN(DecodedMessage b, RoundTrip(EncodeClusterView(MakeHeader(), too_many)));
  EXPECT_FALSE(b.AsClusterView().ok());

  ClusterView unsorted = MakeClusterView();
  unsorted.shard_map = ShardMap::Uniform(13, 3);
  unsorted.dead_servers = {2, 2};
  ASSERT_OK_AND_ASSIGN(DecodedMessage c, RoundTrip(EncodeClusterView(MakeHeader(), unsorted)));
  EXPECT_FALSE(c.AsClusterView().ok());
}

TEST(CodecReplicationTest, PushesCarryOperationIds) {
  const std::vector<Key> keys = {1, 2};
  const std::vector<float> grads = {0.5f, -0.5f};
  ASSERT_OK_AND_ASSIGN(DecodedMessage push,
                       RoundTrip(EncodePush(MakeHeader(), 4, keys, grads, 0xabcdef)));
  ASSERT_OK_AND_ASSIGN(PushView pv, push.AsPush());
  EXPECT_EQ(pv.op_id, 0xabcdefu);
  ASSERT_OK_AND_ASSIGN(DecodedMessage dense,
                       RoundTrip(EncodeDensePush(MakeHeader(), 5, 10, grads, 77)));
  ASSERT_OK_AND_ASSIGN(DensePushView dv, dense.AsDensePush());
  EXPECT_EQ(dv.op_id, 77u);
  ASSERT_OK_AND_ASSIGN(DecodedMessage plain, RoundTrip(EncodePush(MakeHeader(), 4, keys, grads)));
  ASSERT_OK_AND_ASSIGN(PushView none, plain.AsPush());
  EXPECT_EQ(none.op_id, 0u);
}

TEST(CodecReplicationTest, ReplicateRoundTrip) {
  ReplicateBatch batch;
  batch.epoch = 3;
  batch.reset = true;
  batch.batch_id = 41;
  batch.captured = true;
  ReplicaRows rows;
  rows.table = 2;
  rows.records = {std::byte{1}, std::byte{2}, std::byte{3}};
  rows.deleted = {9, 10};
  batch.rows.push_back(rows);
  ReplicaDense dense;
  dense.table = 7;
  dense.begin = 4;
  dense.end = 6;
  dense.step = 11;
  dense.values = {1.5f, 2.5f};
  dense.state = {0.1f, 0.2f, 0.3f, 0.4f};
  batch.dense.push_back(dense);
  batch.op_ids = {100, 200};
  ASSERT_OK_AND_ASSIGN(DecodedMessage m, RoundTrip(EncodeReplicate(MakeHeader(), batch)));
  ASSERT_OK_AND_ASSIGN(ReplicateView v, m.AsReplicate());
  EXPECT_EQ(v.epoch, 3u);
  EXPECT_TRUE(v.reset);
  EXPECT_EQ(v.batch_id, 41u);
  EXPECT_TRUE(v.captured);
  ASSERT_EQ(v.rows.size(), 1u);
  EXPECT_EQ(v.rows[0].table, 2u);
  EXPECT_EQ(std::vector<std::byte>(v.rows[0].records.begin(), v.rows[0].records.end()),
            rows.records);
  EXPECT_EQ(std::vector<Key>(v.rows[0].deleted.begin(), v.rows[0].deleted.end()), rows.deleted);
  ASSERT_EQ(v.dense.size(), 1u);
  EXPECT_EQ(v.dense[0].begin, 4u);
  EXPECT_EQ(v.dense[0].end, 6u);
  EXPECT_EQ(v.dense[0].step, 11u);
  EXPECT_EQ(std::vector<float>(v.dense[0].values.begin(), v.dense[0].values.end()), dense.values);
  EXPECT_EQ(std::vector<float>(v.dense[0].state.begin(), v.dense[0].state.end()), dense.state);
  EXPECT_EQ(std::vector<uint64_t>(v.op_ids.begin(), v.op_ids.end()), batch.op_ids);
}

TEST(CodecReplicationTest, ReplicateWithEmptyAndOddSizedVectors) {
  // Odd-sized byte vectors and empty key / id vectors in any order must not
  // misalign the 8-byte vectors that follow.
  for (size_t odd : {0u, 1u, 3u, 5u, 8u}) {
    ReplicateBatch batch;
    for (int t = 0; t < 3; ++t) {
      ReplicaRows rows;
      rows.table = static_cast<TableId>(t);
      rows.records.assign(odd + static_cast<size_t>(t), std::byte{7});
      if (t == 1) rows.deleted = {1, 2, 3};
      batch.rows.push_back(rows);
    }
    if (odd % 2 == 1) batch.op_ids = {5};
    ASSERT_OK_AND_ASSIGN(DecodedMessage m, RoundTrip(EncodeReplicate(MakeHeader(), batch)));
    ASSERT_OK_AND_ASSIGN(ReplicateView v, m.AsReplicate());
    ASSERT_EQ(v.rows.size(), 3u);
    EXPECT_EQ(v.rows[1].deleted.size(), 3u);
    EXPECT_EQ(v.rows[2].records.size(), odd + 2);
    EXPECT_EQ(v.op_ids.size(), odd % 2 == 1 ? 1u : 0u);
    EXPECT_FALSE(v.captured);
  }
}

TEST(CodecReplicationTest, ReplicateRefusesDenseRangeThatDoesNotMatchItsValues) {
  ReplicateBatch batch;
  ReplicaDense dense;
  dense.begin = 4;
  dense.end = 9;
  dense.values = {1.0f};
  batch.dense.push_back(dense);
  ASSERT_OK_AND_ASSIGN(DecodedMessage m, RoundTrip(EncodeReplicate(MakeHeader(), batch)));
  EXPECT_FALSE(m.AsReplicate().ok());
}

}  // namespace
}  // namespace tessera::protocol
