// Eviction across a failover, with versions published: rows a primary
// evicted after its last published version reach the next version as
// tombstones even though the primary died before publishing them (its
// promoted backup publishes them), and the state a server of models builds
// by applying the version chain no longer holds them.
//
// The test publishes as the scheduler does (every live server captures,
// then writes), calling the servers itself while no push is in flight: a
// consistent cut at a moment the test chooses.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "common/deadline.h"
#include "common/row_file.h"
#include "tests/testing/in_proc_cluster.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera {
namespace {

using testing::ClusterTransport;
using testing::InProcCluster;
using testing::InProcClusterOptions;

constexpr auto kWait = std::chrono::seconds(20);
constexpr TableId kEmb = 0;
constexpr uint32_t kDim = 4;
constexpr int kKeys = 3000;

std::vector<Key> Range(Key first, Key last) {
  std::vector<Key> keys(last - first + 1);
  std::iota(keys.begin(), keys.end(), first);
  return keys;
}

// A published version as serving applies it: per table, the tombstones of
// every server's file, then their rows (models::ApplyReadDelta's order).
struct Part {
  std::vector<Key> deleted;
  std::map<Key, std::vector<float>> rows;
};

class EvictionFailoverTest : public ::testing::TestWithParam<ClusterTransport> {
 protected:
  InProcClusterOptions Options() {
    TableConfig emb;
    emb.id = kEmb;
    emb.name = "emb";
    emb.dim = kDim;
    emb.optimizer.type = OptimizerType::kSgd;
    emb.optimizer.learning_rate = 1.0f;
    emb.initializer = {InitializerType::kZeros, 0.0f, 1};
    emb.eviction.ttl_s = 10;
    InProcClusterOptions o;
    o.num_servers = 3;
    o.num_workers = 1;
    o.replication = 2;
    o.tables = {emb};
    o.transport = GetParam();
    return o;
  }

  void Push(InProcCluster& c, const std::vector<Key>& keys) {
    const std::vector<float> grads(keys.size() * kDim, 0.25f);
    ASSERT_OK_AND_ASSIGN(auto t, c.worker(0).kv().Push(kEmb, keys, grads));
    ASSERT_OK(c.worker(0).kv().Wait(t, DeadlineIn(kWait)));
  }

  std::vector<float> Pull(InProcCluster& c, const std::vector<Key>& keys) {
    std::vector<float> out(keys.size() * kDim);
    StatusOr<worker::KvClient::Ticket> t = c.worker(0).kv().Pull(kEmb, keys, out);
    EXPECT_OK(t);
    if (t.ok()) EXPECT_OK(c.worker(0).kv().Wait(*t, DeadlineIn(kWait)));
    return out;
  }

  // Version `version` of the publish directory from `servers`: each
  // captures (SnapshotRequest), then each writes (SnapshotFlushRequest).
  void Publish(InProcCluster& c, uint64_t version, bool full, const std::vector<int>& servers) {
    const std::string dir = VersionDir(version);
    for (int phase = 0; phase < 2; ++phase) {
      for (int s : servers) {
        StatusOr<protocol::DecodedMessage> reply = c.worker(0).member().Call(
            NodeId{Role::kServer, s},
            [&](const protocol::Header& h) {
              return phase == 0 ? protocol::EncodeSnapshotRequest(h, {version, dir, full})
                                : protocol::EncodeSnapshotFlushRequest(h, version);
            },
            DeadlineIn(kWait));
        SCOPED_TRACE("server " + std::to_string(s) + ", phase " + std::to_string(phase));
        ASSERT_OK(reply);
        ASSERT_OK(reply->header().status);
      }
    }
  }

  std::string VersionDir(uint64_t version) const {
    return publish_.File(std::to_string(version));
  }

  // The table's files of a version, from `servers`.
  Part Read(uint64_t version, const std::vector<int>& servers) {
    Part part;
    for (int s : servers) {
      const std::string path = VersionDir(version) + "/" + RowFileRelativePath("emb", s);
      StatusOr<std::unique_ptr<RowFileReader>> reader = RowFileReader::Open(path);
      EXPECT_OK(reader.status());
      if (!reader.ok()) continue;
      SparseRecord row;
      while (true) {
        StatusOr<bool> more = (*reader)->NextRow(&row);
        EXPECT_OK(more.status());
        if (!more.ok() || !*more) break;
        part.rows[row.key].assign(row.value.begin(), row.value.end());
      }
      Key key;
      while (true) {
        StatusOr<bool> more = (*reader)->NextDeletedKey(&key);
        EXPECT_OK(more.status());
        if (!more.ok() || !*more) break;
        part.deleted.push_back(key);
      }
      EXPECT_OK((*reader)->Finish());
    }
    std::sort(part.deleted.begin(), part.deleted.end());
    return part;
  }

  // Applies a version to `state`, as serving does.
  static void Apply(const Part& part, bool full, std::map<Key, std::vector<float>>& state) {
    if (full) state.clear();
    for (Key key : part.deleted) state.erase(key);
    for (const auto& [key, value] : part.rows) state[key] = value;
  }

  // Declares server `dead` dead: the others keep beating while the
  // simulated clock passes the timeout.
  void DeclareDead(InProcCluster& c, int dead) {
    for (int i = 0; i < 10; ++i) {
      clock_.AdvanceTime(std::chrono::milliseconds(300));
      c.SendHeartbeats();
      for (NodeId n : c.scheduler().CheckLiveness()) {
        if (n == NodeId{Role::kServer, dead}) return;
      }
    }
    FAIL() << "server " << dead << " was never declared dead";
  }

  // Versions 1 (full) and 2 (delta) from all three servers, with
  // `before_v2_` evicted between them and `after_v2_` after version 2 (on
  // every server: server 1's part of it is published by nobody yet).
  void EvictAroundVersion2(InProcCluster& c) {
    const std::vector<Key> all = Range(1, kKeys);
    ASSERT_NO_FATAL_FAILURE(Push(c, all));
    ASSERT_NO_FATAL_FAILURE(Publish(c, 1, /*full=*/true, {0, 1, 2}));
    clock_.AdvanceTime(std::chrono::seconds(5));
    ASSERT_NO_FATAL_FAILURE(Push(c, Range(1, 2000)));
    clock_.AdvanceTime(std::chrono::seconds(6));
    ASSERT_NO_FATAL_FAILURE(Push(c, kept_));  // sweeps: `before_v2_` was pushed 11 s ago (ttl 10 s)
    const ShardMap map = c.worker(0).kv().view().shard_map;
    EXPECT_EQ(c.server(1).tables().Find(kEmb)->sparse->stats().evicted_ttl,
              static_cast<uint64_t>(std::count_if(before_v2_.begin(), before_v2_.end(),
                                                  [&](Key k) { return map.OwnerOfKey(k) == 1; })));
    ASSERT_NO_FATAL_FAILURE(Publish(c, 2, /*full=*/false, {0, 1, 2}));
    clock_.AdvanceTime(std::chrono::seconds(5));
    ASSERT_NO_FATAL_FAILURE(Push(c, kept_));  // sweeps `after_v2_`
    size_t on_server_1 = 0;
    for (Key k : after_v2_) on_server_1 += map.OwnerOfKey(k) == 1 ? 1 : 0;
    ASSERT_GT(on_server_1, 0u);
    EXPECT_EQ(c.server(1).tables().Find(kEmb)->sparse->stats().evicted_ttl,
              static_cast<uint64_t>(std::count_if(all.begin(), all.end(), [&](Key k) {
                return k > kept_.back() && map.OwnerOfKey(k) == 1;
              })));
  }

  // Version 3, written by `servers`, holds every row evicted since version
  // 2, server 1's too, and none of the tombstones version 2 published; the
  // chain 1, 2, 3 applied as serving does holds exactly `kept_`, with the
  // values `values` the cluster serves.
  void ExpectVersion3(const std::vector<float>& values, const std::vector<int>& servers) {
    const Part v3 = Read(3, servers);
    EXPECT_EQ(v3.deleted, after_v2_);
    std::map<Key, std::vector<float>> state;
    Apply(Read(1, {0, 1, 2}), true, state);
    Apply(Read(2, {0, 1, 2}), false, state);
    EXPECT_EQ(state.size(), static_cast<size_t>(kKeys) - before_v2_.size());
    Apply(v3, false, state);
    ASSERT_EQ(state.size(), kept_.size());
    ASSERT_EQ(values.size(), kept_.size() * kDim);
    for (size_t i = 0; i < kept_.size(); ++i) {
      auto it = state.find(kept_[i]);
      ASSERT_NE(it, state.end()) << "key " << kept_[i];
      const auto first = values.begin() + static_cast<ptrdiff_t>(i * kDim);
      EXPECT_EQ(it->second, std::vector<float>(first, first + kDim)) << "key " << kept_[i];
    }
  }

  const std::vector<Key> kept_ = Range(1, 1000);
  const std::vector<Key> after_v2_ = Range(1001, 2000);   // evicted after version 2
  const std::vector<Key> before_v2_ = Range(2001, 3000);  // evicted before it
  SimulatedClock clock_;
  testing::TempDir publish_;
};

TEST_P(EvictionFailoverTest, EvictionsSinceTheLastVersionReachTheNextOneAfterAPromotion) {
  InProcCluster c(Options(), &clock_);
  ASSERT_OK(c.Start());
  ASSERT_NO_FATAL_FAILURE(EvictAroundVersion2(c));
  c.KillServer(1);
  DeclareDead(c, 1);
  const std::vector<float> values = Pull(c, kept_);  // answered under the new view
  ASSERT_EQ(c.worker(0).kv().view().dead_servers, std::vector<int32_t>{1});
  Publish(c, 3, /*full=*/false, {0, 2});
  ExpectVersion3(values, {0, 2});
}

// The promoted server's new backup gets the tombstones in its full copy: a
// second death (once that copy is complete) loses none of them either.
TEST_P(EvictionFailoverTest, FullCopiesToNewBackupsCarryTheTombstones) {
  InProcCluster c(Options(), &clock_);
  ASSERT_OK(c.Start());
  ASSERT_NO_FATAL_FAILURE(EvictAroundVersion2(c));
  c.KillServer(1);
  DeclareDead(c, 1);
  // Acknowledged once the new backups have their full copies (this sweep
  // removes nothing: every kept row was pushed within the ttl); then the
  // servers report it, and server 2 may die too.
  Push(c, kept_);
  c.SendHeartbeats();
  c.KillServer(2);
  DeclareDead(c, 2);
  const std::vector<float> values = Pull(c, kept_);
  ASSERT_EQ(c.worker(0).kv().view().dead_servers, (std::vector<int32_t>{1, 2}));
  Publish(c, 3, /*full=*/false, {0});
  ExpectVersion3(values, {0});
}

INSTANTIATE_TEST_SUITE_P(Transports, EvictionFailoverTest,
                         ::testing::Values(ClusterTransport::kInProc, ClusterTransport::kZmqTcp),
                         [](const auto& info) {
                           return info.param == ClusterTransport::kInProc ? "InProc" : "Zmq";
                         });

}  // namespace
}  // namespace tessera
