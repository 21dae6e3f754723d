// Versions captured by 2 servers (a full snapshot, then a delta) restore
// exactly into 3 servers with another shard map.
#include "server/version_snapshot.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <vector>

#include "common/row_file.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::server {
namespace {

using testing::TempDir;

constexpr uint64_t kDenseSize = 500;
constexpr int64_t kNow = 1'700'000'000;

std::vector<TableConfig> Configs() {
  TableConfig user;
  user.id = 0;
  user.name = "user";
  user.dim = 4;
  user.optimizer.type = OptimizerType::kAdagrad;
  TableConfig dense;
  dense.id = 1;
  dense.name = "dense.w";
  dense.kind = TableKind::kDense;
  dense.size = kDenseSize;
  dense.optimizer.type = OptimizerType::kAdam;
  return {user, dense};
}

ShardMap Map(int servers) {
  std::vector<int32_t> owners(16);
  for (size_t s = 0; s < owners.size(); ++s) owners[s] = static_cast<int32_t>(s % servers);
  return ShardMap(owners, servers);
}

struct Row {
  uint32_t updates, last;
  std::vector<float> value, state;
  friend bool operator==(const Row&, const Row&) = default;
};

// A small cluster of TableSets under one shard map.
struct Cluster {
  explicit Cluster(int n) : map(Map(n)), servers(n) {
    for (int r = 0; r < n; ++r) EXPECT_OK(servers[r].Apply(Configs(), map, r));
  }
  EmbeddingTable& Sparse(Key key) { return *servers[map.OwnerOfKey(key)].Find(0)->sparse; }
  void Push(Key key, float g, int64_t now) {
    const std::vector<float> grad(4, g);
    Sparse(key).Push({&key, 1}, grad, now);
  }
  void PushDense(float g) {
    for (size_t r = 0; r < servers.size(); ++r) {
      const ServerTable* t = servers[r].Find(1);
      for (const DenseRange& range : t->dense->ranges()) {
        EXPECT_OK(t->dense->Push(range.begin, std::vector<float>(range.end - range.begin, g)));
      }
    }
  }
  std::map<Key, Row> Rows() const {
    std::map<Key, Row> rows;
    for (const TableSet& s : servers) {
      s.Find(0)->sparse->ForEachRow([&](const EmbeddingTable::RowView& r) {
        rows[r.key()] = {r.update_count(), r.last_update_unix_s(),
                         {r.value().begin(), r.value().end()}, {r.state().begin(), r.state().end()}};
      });
    }
    return rows;
  }
  std::vector<float> Dense() const {
    std::vector<float> out(kDenseSize);
    for (const TableSet& s : servers) {
      s.Find(1)->dense->ForEachRange([&](const DenseShard::RangeView& r) {
        std::copy(r.values.begin(), r.values.end(), out.begin() + r.begin);
      });
    }
    return out;
  }
  // Captures and writes version `v` on every server; returns each table's files.
  std::map<TableId, std::vector<std::string>> Publish(const std::string& dir, uint64_t v,
                                                      bool full) {
    std::map<TableId, std::vector<std::string>> files;
    for (size_t r = 0; r < servers.size(); ++r) {
      StatusOr<CapturedVersion> c =
          CaptureVersion(servers[r], static_cast<int32_t>(r), {v, dir, full});
      EXPECT_OK(c.status());
      EXPECT_OK(WriteCapturedVersion(*c));
      for (const TableConfig& t : Configs()) {
        files[t.id].push_back(dir + "/" + RowFileRelativePath(t.name, static_cast<int32_t>(r)));
      }
    }
    return files;
  }

  ShardMap map;
  std::vector<TableSet> servers;
};

TEST(VersionSnapshotTest, FullPlusDeltaRestoresIntoAnotherShardMap) {
  TempDir dir;
  Cluster two(2);
  for (Key k = 1; k <= 200; ++k) two.Push(k * 0x9E3779B97F4A7C15ull, 0.1f, kNow);
  two.PushDense(0.5f);
  auto v1 = two.Publish((dir.path() / "1").string(), 1, /*full=*/true);
  for (Key k = 150; k <= 260; ++k) two.Push(k * 0x9E3779B97F4A7C15ull, -0.2f, kNow + 9);
  for (Key k = 1; k <= 10; ++k) two.Sparse(k * 0x9E3779B97F4A7C15ull).Erase(k * 0x9E3779B97F4A7C15ull);
  two.PushDense(-0.25f);
  auto v2 = two.Publish((dir.path() / "2").string(), 2, /*full=*/false);

  std::vector<protocol::RestoreTable> chain;
  for (TableId id : {0u, 1u}) {
    protocol::RestoreTable t{id, v1[id]};
    t.files.insert(t.files.end(), v2[id].begin(), v2[id].end());
    chain.push_back(t);
  }
  Cluster three(3);
  for (int r = 0; r < 3; ++r) ASSERT_OK(RestoreTables(three.servers[r], chain, three.map, r));
  EXPECT_EQ(three.Rows(), two.Rows());
  EXPECT_EQ(three.Rows().size(), 250u);
  EXPECT_EQ(three.Dense(), two.Dense());
  // Each restored row sits on the server that owns it under the new map.
  for (int r = 0; r < 3; ++r) {
    three.servers[r].Find(0)->sparse->ForEachRow([&](const EmbeddingTable::RowView& row) {
      EXPECT_EQ(three.map.OwnerOfKey(row.key()), r);
    });
  }
}

TEST(VersionSnapshotTest, DeltaFilesHoldOnlyChangesAndTombstones) {
  TempDir dir;
  Cluster one(1);
  for (Key k = 1; k <= 100; ++k) one.Push(k, 0.1f, kNow);
  (void)one.Publish((dir.path() / "1").string(), 1, true);
  one.Push(5, 0.1f, kNow + 1);
  one.Push(500, 0.1f, kNow + 1);
  one.Sparse(7).Erase(7);
  auto v2 = one.Publish((dir.path() / "2").string(), 2, false);
  ASSERT_OK_AND_ASSIGN(auto reader, RowFileReader::Open(v2[0][0]));
  EXPECT_TRUE(reader->info().is_delta);
  EXPECT_TRUE(reader->info().has_state);
  EXPECT_EQ(reader->record_count(), 2u);
  EXPECT_EQ(reader->deleted_count(), 1u);
}

TEST(VersionSnapshotTest, RestoreRefusesAFileOfAnotherTable) {
  TempDir dir;
  Cluster one(1);
  one.Push(1, 0.1f, kNow);
  auto v1 = one.Publish((dir.path() / "1").string(), 1, true);
  const std::vector<protocol::RestoreTable> wrong = {{1, v1[0]}};  // sparse file for dense table
  EXPECT_EQ(RestoreTables(one.servers[0], wrong, one.map, 0).code(),
            StatusCode::kFailedPrecondition);
  const std::vector<protocol::RestoreTable> unknown = {{9, v1[0]}};
  EXPECT_EQ(RestoreTables(one.servers[0], unknown, one.map, 0).code(), StatusCode::kNotFound);
}

TEST(VersionSnapshotTest, WriterReportsEachVersionOnce) {
  TempDir dir;
  Cluster one(1);
  one.Push(1, 0.1f, kNow);
  SnapshotWriter writer;
  ASSERT_OK_AND_ASSIGN(CapturedVersion c,
                       CaptureVersion(one.servers[0], 0, {1, (dir.path() / "1").string(), true}));
  writer.Enqueue(std::move(c));
  Notification done;
  Status result = InternalError("not called");
  writer.WhenWritten(1, [&](Status s) {
    result = s;
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_OK(result);
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "1" / RowFileRelativePath("user", 0)));
  Status unknown;
  writer.WhenWritten(7, [&](Status s) { unknown = s; });
  EXPECT_EQ(unknown.code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace tessera::server
