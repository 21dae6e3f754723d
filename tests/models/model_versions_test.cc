#include "models/model_versions.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "models/feature_hash.h"
#include "tests/models/publish_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::models {
namespace {

namespace fs = std::filesystem;
using ::tessera::testing::TempDir;
using ::testing::HasSubstr;
using testing::MutateRefModel;
using testing::RefChanges;
using testing::RefModel;
using testing::WriteRefVersion;

ModelConfig DeepFm() {
  ModelConfig c;
  c.type = "deepfm";
  c.embedding_dim = 3;
  c.hidden = {4};
  return c;
}

std::vector<std::vector<Key>> SomeKeys(int n) {
  std::vector<std::vector<Key>> keys(2);
  for (int k = 0; k < n; ++k) {
    keys[0].push_back(HashFeature(0, absl::StrCat("u", k)));
    keys[1].push_back(HashFeature(1, absl::StrCat("i", k)));
  }
  return keys;
}

// Expects `got` to hold exactly the reference's rows, state and counters
// (with_state) and dense tables.
void ExpectEqualsRef(const SavedModel& got, const RefModel& ref, bool with_state) {
  ASSERT_EQ(got.sparse.size(), ref.sparse.size());
  for (size_t t = 0; t < ref.sparse.size(); ++t) {
    const SparseParams& p = got.sparse[t];
    ASSERT_EQ(p.num_rows(), ref.sparse[t].size()) << "table " << t;
    ASSERT_EQ(p.keys.size(), p.num_rows());
    ASSERT_EQ(p.arena.size(), p.num_rows() * (p.config.dim + p.state_floats));
    for (const auto& [key, row] : ref.sparse[t]) {
      const std::span<const float> v = p.Value(key);
      ASSERT_EQ(std::vector<float>(v.begin(), v.end()), row.value)
          << "table " << t << " key " << key;
      if (!with_state) continue;
      const std::span<const float> s = p.State(key);
      EXPECT_EQ(std::vector<float>(s.begin(), s.end()), row.state);
      const uint64_t r = p.index.at(key);
      EXPECT_EQ(p.keys[r], key);
      EXPECT_EQ(p.update_counts[r], row.update_count);
      EXPECT_EQ(p.last_updates[r], row.last_update);
    }
  }
  ASSERT_EQ(got.dense.size(), ref.dense.size());
  for (size_t d = 0; d < ref.dense.size(); ++d) EXPECT_EQ(got.dense[d].values, ref.dense[d]);
}

class ModelVersionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path().string();
    ASSERT_OK_AND_ASSIGN(ref_, testing::NewRefModel(DeepFm(), SomeKeys(40), 7));
  }
  // Publishes version `v`: full, or a delta of random changes on v - 1.
  void Publish(uint64_t v, bool full) {
    if (full) {
      ASSERT_OK(WriteRefVersion(dir_, v, ref_, nullptr, 0, 2));
      return;
    }
    const RefChanges changes = MutateRefModel(&ref_, rng_, 5, 3, 4);
    ASSERT_OK(WriteRefVersion(dir_, v, ref_, &changes, v - 1, 2));
  }

  TempDir tmp_;
  std::string dir_;
  RefModel ref_;
  std::mt19937_64 rng_{42};
};

TEST_F(ModelVersionsTest, ListsCompleteVersionsAndIgnoresOtherNames) {
  Publish(1, true);
  Publish(2, false);
  Publish(10, false);                    // base 9 is missing: listed all the same
  fs::create_directories(dir_ + "/11");  // being written: no manifest
  fs::create_directories(dir_ + "/.deleting-5");
  fs::create_directories(dir_ + "/7.tmp");
  fs::create_directories(dir_ + "/007");
  std::ofstream(dir_ + "/3") << "a file";
  ASSERT_OK_AND_ASSIGN(auto versions, ListVersions(dir_));
  EXPECT_EQ(versions, (std::vector<VersionInfo>{{1, true, 0}, {2, false, 1}, {10, false, 9}}));
  ASSERT_OK_AND_ASSIGN(auto numbers, ListVersionNumbers(dir_));
  EXPECT_EQ(numbers, (std::vector<uint64_t>{1, 2, 10}));
  EXPECT_EQ(ListVersions(dir_ + "/nope").status().code(), StatusCode::kNotFound);
  uint64_t v = 0;
  EXPECT_TRUE(ParseVersionName("18446744073709551615", &v));
  EXPECT_EQ(v, 18446744073709551615u);
  EXPECT_FALSE(ParseVersionName("18446744073709551616", &v));
  EXPECT_FALSE(ParseVersionName("0", &v));
  EXPECT_FALSE(ParseVersionName("", &v));
  EXPECT_FALSE(ParseVersionName("1e3", &v));
}

TEST_F(ModelVersionsTest, DeltaChainEqualsTheFullSnapshot) {
  Publish(1, true);
  for (uint64_t v = 2; v <= 6; ++v) Publish(v, false);
  // The same final parameters written as one full snapshot.
  TempDir other;
  ASSERT_OK(WriteRefVersion(other.path().string(), 6, ref_, nullptr, 0, 3));
  for (bool with_state : {false, true}) {
    ASSERT_OK_AND_ASSIGN(SavedModel chained, LoadModelVersion(dir_, 6, with_state));
    ASSERT_OK_AND_ASSIGN(SavedModel full,
                         LoadSavedModel(VersionDir(other.path().string(), 6), with_state));
    ExpectEqualsRef(chained, ref_, with_state);
    ExpectEqualsRef(full, ref_, with_state);
    EXPECT_EQ(chained.manifest.version, 6u);
    EXPECT_EQ(chained.manifest.kind, SnapshotKind::kDelta);
    EXPECT_EQ(chained.manifest.training_state_json, "{\"version\":6}");
    if (with_state) {
      EXPECT_EQ(chained.dense[0].state, full.dense[0].state);
    }
  }
  ASSERT_OK_AND_ASSIGN(auto chain, ResolveChain(dir_, 6));
  ASSERT_EQ(chain.size(), 6u);
  EXPECT_EQ(chain.front(), (VersionInfo{1, true, 0}));
  EXPECT_EQ(chain.back(), (VersionInfo{6, false, 5}));
}

TEST_F(ModelVersionsTest, TombstonesThenRowsAndDenseReplaced) {
  Publish(1, true);
  const Key gone = ref_.sparse[0].begin()->first;
  const Key back = std::next(ref_.sparse[0].begin())->first;
  const Key fresh = 12345;
  RefChanges changes;
  changes.changed = {{back, fresh}, {}};
  changes.deleted = {{gone, back, 999}, {}};  // 999: never had a row
  ref_.sparse[0].erase(gone);
  ref_.sparse[0][back] = testing::RandomRow(ref_.base.tables[0].config.dim, rng_);
  ref_.sparse[0][fresh] = testing::RandomRow(ref_.base.tables[0].config.dim, rng_);
  for (float& v : ref_.dense[0]) v = -v;
  ASSERT_OK(WriteRefVersion(dir_, 2, ref_, &changes, 1, 1));
  ASSERT_OK_AND_ASSIGN(SavedModel m, LoadModelVersion(dir_, 1, true));
  const size_t rows = m.sparse[0].num_rows();
  ASSERT_OK(ApplyDelta(VersionDir(dir_, 2), true, &m));
  EXPECT_TRUE(m.sparse[0].Value(gone).empty());
  EXPECT_EQ(m.sparse[0].num_rows(), rows);  // -gone +fresh, back kept
  ExpectEqualsRef(m, ref_, true);
}

TEST_F(ModelVersionsTest, MissingLinksAndMismatchesAreClearErrors) {
  Publish(1, true);
  Publish(2, false);
  Publish(3, false);
  fs::rename(dir_ + "/2", dir_ + "/.deleting-2");
  Status s = ResolveChain(dir_, 3).status();
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("version 2, the base of version 3, is missing"));
  EXPECT_EQ(LoadModelVersion(dir_, 3, false).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ResolveChain(dir_, 9).status().code(), StatusCode::kNotFound);
  fs::rename(dir_ + "/.deleting-2", dir_ + "/2");

  // A delta on the wrong version, or read as a whole model.
  ASSERT_OK_AND_ASSIGN(SavedModel m, LoadModelVersion(dir_, 1, false));
  s = ApplyDelta(VersionDir(dir_, 3), false, &m);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("applies to version 2, the model is at version 1"));
  EXPECT_EQ(ApplyDelta(VersionDir(dir_, 2), true, &m).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ApplyDelta(VersionDir(dir_, 1), false, &m).code(), StatusCode::kFailedPrecondition);
  s = LoadSavedModel(VersionDir(dir_, 2), false).status();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("a delta"));

  // A manifest copied under another version's name.
  fs::copy(dir_ + "/3", dir_ + "/4", fs::copy_options::recursive);
  EXPECT_EQ(ResolveChain(dir_, 4).status().code(), StatusCode::kDataLoss);
}

TEST_F(ModelVersionsTest, CorruptDeltaIsDataLossAndLeavesTheModelUnchanged) {
  Publish(1, true);
  Publish(2, false);
  ASSERT_OK_AND_ASSIGN(SavedModel m, LoadModelVersion(dir_, 1, false));
  const SavedModel before = m;
  // Flip one byte in the body of the last row file of the item table (its
  // checksum fails once the file is read to its end).
  const std::string path = VersionDir(dir_, 2) + "/item/part-00001.rows";
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(kRowFileHeaderBytes + 20));
  f.put('\x7f');
  f.close();
  const Status s = ApplyDelta(VersionDir(dir_, 2), false, &m);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("part-00001.rows"));
  EXPECT_EQ(m.manifest.version, 1u);
  for (size_t t = 0; t < m.sparse.size(); ++t) {
    EXPECT_EQ(m.sparse[t].arena, before.sparse[t].arena);
    EXPECT_EQ(m.sparse[t].keys, before.sparse[t].keys);
  }
  EXPECT_EQ(m.dense[0].values, before.dense[0].values);
}

TEST_F(ModelVersionsTest, RemoveOldVersionsKeepsWhatTheKeptChainsNeed) {
  // 1 full, 2..4 deltas, 5 full, 6..9 deltas, 10 full, 11 delta.
  for (uint64_t v = 1; v <= 11; ++v) Publish(v, v == 1 || v == 5 || v == 10);
  fs::create_directories(dir_ + "/12");  // incomplete: untouched
  fs::create_directories(dir_ + "/.deleting-3/x");
  // Keeping 4 (8..11) needs 5..7 too (8 builds on full 5).
  ASSERT_OK_AND_ASSIGN(auto removed, RemoveOldVersions(dir_, 4));
  EXPECT_EQ(removed, (std::vector<uint64_t>{1, 2, 3, 4}));
  ASSERT_OK_AND_ASSIGN(auto left, ListVersionNumbers(dir_));
  EXPECT_EQ(left, (std::vector<uint64_t>{5, 6, 7, 8, 9, 10, 11}));
  EXPECT_TRUE(fs::exists(dir_ + "/12"));
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_NE(e.path().filename().string().rfind(".deleting-", 0), 0u) << e.path();
  }
  // Every kept version still loads.
  for (uint64_t v = 8; v <= 11; ++v) {
    EXPECT_TRUE(LoadModelVersion(dir_, v, false).ok()) << v;
  }
  // Keeping 2 (10, 11) needs only full 10.
  ASSERT_OK_AND_ASSIGN(removed, RemoveOldVersions(dir_, 2));
  EXPECT_EQ(removed, (std::vector<uint64_t>{5, 6, 7, 8, 9}));
  ASSERT_OK_AND_ASSIGN(removed, RemoveOldVersions(dir_, 1));
  EXPECT_TRUE(removed.empty());  // 11 needs 10
  ASSERT_OK_AND_ASSIGN(removed, RemoveOldVersions(dir_, 0));
  EXPECT_TRUE(removed.empty());
  ExpectEqualsRef(*LoadModelVersion(dir_, 11, true), ref_, true);
}

TEST_F(ModelVersionsTest, ManifestCarriesVersionsAndTrainingState) {
  Publish(1, true);
  ASSERT_OK_AND_ASSIGN(ModelManifest m, ReadManifest(VersionDir(dir_, 1)));
  EXPECT_EQ(m.version, 1u);
  EXPECT_EQ(m.kind, SnapshotKind::kFull);
  EXPECT_EQ(m.created_unix_ms, 1700000000000);
  m.kind = SnapshotKind::kDelta;
  m.version = 8;
  m.base_version = 7;
  m.created_unix_ms = 1700000000123;
  m.training_state_json = R"({"sources":[{"file":"a.tsv","offset":17}],"step":3})";
  TempDir other;
  ASSERT_OK(WriteManifest(other.path().string(), m));
  ASSERT_OK_AND_ASSIGN(ModelManifest read, ReadManifest(other.path().string()));
  EXPECT_EQ(read.kind, SnapshotKind::kDelta);
  EXPECT_EQ(read.version, 8u);
  EXPECT_EQ(read.base_version, 7u);
  EXPECT_EQ(read.created_unix_ms, 1700000000123);
  EXPECT_EQ(read.training_state_json, m.training_state_json);
  EXPECT_TRUE(SameModel(read, m));

  m.training_state_json = "[1, 2]";
  EXPECT_EQ(WriteManifest(other.path().string(), m).code(), StatusCode::kInvalidArgument);
  m.training_state_json = "{";
  EXPECT_EQ(WriteManifest(other.path().string(), m).code(), StatusCode::kInvalidArgument);
  m.training_state_json = "";
  m.base_version = 8;  // not before the version
  EXPECT_EQ(WriteManifest(other.path().string(), m).code(), StatusCode::kInvalidArgument);
  m.kind = SnapshotKind::kFull;
  m.base_version = 3;  // a full snapshot has no base
  EXPECT_EQ(WriteManifest(other.path().string(), m).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::models
