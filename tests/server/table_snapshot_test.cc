#include "server/table_snapshot.h"

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

constexpr int kServers = 2;
constexpr uint64_t kDenseSize = 1000;

TableConfig Config(TableId id, const std::string& name, TableKind kind, OptimizerType optimizer) {
  TableConfig c;
  c.id = id;
  c.name = name;
  c.kind = kind;
  c.optimizer.type = optimizer;
  return c;
}

std::vector<TableConfig> Configs() {
  TableConfig user = Config(0, "user", TableKind::kSparse, OptimizerType::kAdagrad);
  user.dim = 4;
  TableConfig item = Config(1, "item", TableKind::kSparse, OptimizerType::kSgd);
  item.dim = 2;
  TableConfig dense = Config(2, "dense.w", TableKind::kDense, OptimizerType::kAdam);
  dense.size = kDenseSize;
  dense.initializer = {.type = InitializerType::kNormal, .scale = 0.1f, .seed = 3};
  return {user, item, dense};
}

// Slots alternate between the servers, so each owns several dense ranges.
ShardMap Map() {
  std::vector<int32_t> owners(16);
  for (size_t s = 0; s < owners.size(); ++s) owners[s] = static_cast<int32_t>(s % kServers);
  return ShardMap(owners, kServers);
}

// What a server's tables hold, collected through their own iteration.
struct Row {
  uint32_t updates, last;
  std::vector<float> value, state;
  friend bool operator==(const Row&, const Row&) = default;
};
using Rows = std::map<Key, Row>;
struct Range {
  uint64_t end;
  uint32_t step;
  std::vector<float> values, state;
  friend bool operator==(const Range&, const Range&) = default;
};
using Ranges = std::map<uint64_t, Range>;  // by begin

class TableSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::vector<TableConfig> configs = Configs();
    for (int r = 0; r < kServers; ++r) ASSERT_OK(servers_[r].Apply(configs, map_, r));
    // Train a little: each server pushes the keys it owns, some twice.
    for (TableId id : {0, 1}) {
      for (Key k = 1; k <= 300; ++k) {
        const Key key = k * 0x9E3779B97F4A7C15ull;
        const ServerTable* t = servers_[map_.OwnerOfKey(key)].Find(id);
        const std::vector<float> grad(t->config.dim, 0.01f * static_cast<float>(k % 17));
        t->sparse->Push({&key, 1}, grad, 1700000000 + k);
        if (k % 3 == 0) t->sparse->Push({&key, 1}, grad, 1700000500 + k);
      }
    }
    for (int r = 0; r < kServers; ++r) {
      const ServerTable* t = servers_[r].Find(2);
      for (const DenseRange& range : t->dense->ranges()) {
        const std::vector<float> grads(range.end - range.begin, 0.3f + r);
        ASSERT_OK(t->dense->Push(range.begin, grads));
      }
    }
  }

  Rows LiveRows(TableId id) const {
    Rows rows;
    for (const TableSet& s : servers_) {
      s.Find(id)->sparse->ForEachRow([&](const EmbeddingTable::RowView& r) {
        rows[r.key()] = {r.update_count(), r.last_update_unix_s(),
                         {r.value().begin(), r.value().end()}, {r.state().begin(), r.state().end()}};
      });
    }
    return rows;
  }

  Ranges LiveRanges(TableId id) const {
    Ranges ranges;
    for (const TableSet& s : servers_) {
      s.Find(id)->dense->ForEachRange([&](const DenseShard::RangeView& r) {
        ranges[r.begin] = {r.end, r.step, {r.values.begin(), r.values.end()},
                           {r.state.begin(), r.state.end()}};
      });
    }
    return ranges;
  }

  const ShardMap map_ = Map();
  TableSet servers_[kServers];
};

TEST_F(TableSnapshotTest, EveryServerWritesEveryTableAndTheFilesHoldValuesAndState) {
  TempDir dir;
  for (int r = 0; r < kServers; ++r) ASSERT_OK(SaveTables(servers_[r], r, dir.path().string()));

  for (const TableConfig& config : Configs()) {
    Rows rows;
    Ranges ranges;
    for (int r = 0; r < kServers; ++r) {
      const std::string path = (dir.path() / RowFileRelativePath(config.name, r)).string();
      ASSERT_OK_AND_ASSIGN(auto reader, RowFileReader::Open(path));
      EXPECT_EQ(reader->info().table_id, config.id);
      EXPECT_TRUE(reader->info().has_state);
      EXPECT_FALSE(reader->info().is_delta);
      if (config.kind == TableKind::kSparse) {
        EXPECT_EQ(reader->info().dim, config.dim);
        SparseRecord rec;
        while (true) {
          ASSERT_OK_AND_ASSIGN(bool more, reader->NextRow(&rec));
          if (!more) break;
          EXPECT_EQ(map_.OwnerOfKey(rec.key), r);
          EXPECT_TRUE(rows.emplace(rec.key, Row{rec.update_count, rec.last_update_unix_s,
                                                {rec.value.begin(), rec.value.end()},
                                                {rec.state.begin(), rec.state.end()}})
                          .second);
        }
      } else {
        EXPECT_EQ(reader->info().table_size, kDenseSize);
        EXPECT_EQ(reader->info().state_floats, 2u);  // adam
        DenseRecord rec;
        while (true) {
          ASSERT_OK_AND_ASSIGN(bool more, reader->NextRange(&rec));
          if (!more) break;
          ranges[rec.begin] = {rec.end, rec.step, {rec.values.begin(), rec.values.end()},
                               {rec.state.begin(), rec.state.end()}};
        }
      }
      ASSERT_OK(reader->Finish());
    }
    if (config.kind == TableKind::kSparse) {
      EXPECT_EQ(rows.size(), 300u) << config.name;
      EXPECT_EQ(rows, LiveRows(config.id)) << config.name;
    } else {
      EXPECT_EQ(ranges, LiveRanges(config.id));
      uint64_t next = 0;  // the two servers' ranges tile the table
      for (const auto& [begin, range] : ranges) {
        EXPECT_EQ(begin, next);
        next = range.end;
        EXPECT_EQ(range.step, 1u);
      }
      EXPECT_EQ(next, kDenseSize);
      EXPECT_GT(ranges.size(), 2u);
    }
  }
  // Nothing but the row files (no temporaries).
  size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path())) {
    if (e.is_regular_file()) {
      ++files;
      EXPECT_EQ(e.path().extension(), ".rows") << e.path();
    }
  }
  EXPECT_EQ(files, Configs().size() * kServers);
}

TEST_F(TableSnapshotTest, SavingAgainReplacesTheFiles) {
  TempDir dir;
  ASSERT_OK(SaveTables(servers_[0], 0, dir.path().string()));
  const Key key = 42;
  const ServerTable* user = servers_[0].Find(0);
  const std::vector<float> grad(4, 1.0f);
  user->sparse->Push({&key, 1}, grad, 1);
  ASSERT_OK(SaveTables(servers_[0], 0, dir.path().string()));
  ASSERT_OK_AND_ASSIGN(auto reader,
                       RowFileReader::Open((dir.path() / "user/part-00000.rows").string()));
  EXPECT_EQ(reader->record_count(), user->sparse->num_rows());
}

TEST_F(TableSnapshotTest, RefusesAnUnassignedRankAndUnusableDirectories) {
  TempDir dir;
  EXPECT_EQ(SaveTables(servers_[0], kUnassignedRank, dir.path().string()).code(),
            StatusCode::kFailedPrecondition);
  const std::string file = dir.File("a-file");
  ASSERT_OK(WriteFileAtomically(file, "x"));
  EXPECT_FALSE(SaveTables(servers_[0], 0, file).ok());  // a file where a directory must be

  TableSet bad;
  const TableConfig c = Config(0, "..", TableKind::kSparse, OptimizerType::kSgd);
  ASSERT_OK(bad.Apply({&c, 1}, map_, 0));
  EXPECT_EQ(SaveTables(bad, 0, dir.path().string()).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::server
