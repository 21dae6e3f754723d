#include "models/saved_model.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/initializer.h"
#include "models/feature_hash.h"
#include "tests/models/saved_model_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::models {
namespace {

using ::tessera::testing::TempDir;
using testing::HandModel;
using testing::WriteHandModel;

ModelConfig DeepFm() {
  ModelConfig c;
  c.type = "deepfm";
  c.embedding_dim = 3;
  c.hidden = {4};
  c.seed = 9;
  return c;
}

std::vector<std::vector<Key>> SomeKeys() {
  std::vector<std::vector<Key>> keys(2);
  for (Key k = 0; k < 50; ++k) {
    keys[0].push_back(HashFeature(0, absl::StrCat("u", k)));
    keys[1].push_back(HashFeature(1, absl::StrCat("i", k)));
  }
  return keys;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
void Spit(const std::string& path, const std::string& text) {
  std::filesystem::remove(path);
  std::ofstream(path, std::ios::binary) << text;
}
void Replace(const std::string& path, const std::string& from, const std::string& to) {
  std::string text = Slurp(path);
  const size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  text.replace(at, from.size(), to);
  Spit(path, text);
}

TEST(SavedModelTest, ManifestRoundTrips) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(HandModel hand, WriteHandModel(dir.path().string(), DeepFm(), 2, SomeKeys()));
  ASSERT_OK_AND_ASSIGN(ModelManifest m, ReadManifest(dir.path().string()));
  EXPECT_EQ(m.format_version, kSavedModelFormatVersion);
  EXPECT_EQ(m.feature_hash_version, kFeatureHashVersion);
  EXPECT_EQ(m.created_unix_s, 1700000000);
  EXPECT_TRUE(m.has_optimizer_state);
  EXPECT_EQ(m.model.type, "deepfm");
  EXPECT_EQ(m.model.embedding_dim, 3u);
  EXPECT_EQ(m.model.hidden, std::vector<uint32_t>{4});
  EXPECT_EQ(m.model.seed, 9u);
  EXPECT_EQ(m.group_field, "user_id");
  EXPECT_EQ(m.num_servers, 2);
  ASSERT_OK_AND_ASSIGN(Schema schema, Schema::Parse(m.schema_yaml, "manifest"));
  ASSERT_OK_AND_ASSIGN(Schema original, Schema::Parse(testing::kTestSchema, "test"));
  EXPECT_EQ(schema, original);
  ASSERT_EQ(m.tables.size(), hand.tables.size());
  for (size_t i = 0; i < m.tables.size(); ++i) {
    EXPECT_EQ(m.tables[i].config, hand.tables[i]) << i;  // every field, floats exactly
    EXPECT_EQ(m.tables[i].files,
              (std::vector<std::string>{RowFileRelativePath(hand.tables[i].name, 0),
                                        RowFileRelativePath(hand.tables[i].name, 1)}));
  }
  EXPECT_FALSE(std::filesystem::exists(dir.File("manifest.json.tmp")));
}

TEST(SavedModelTest, ManifestKeepsTheSequenceModelConfig) {
  TempDir dir;
  ModelManifest m;
  m.model = {.type = "bst", .embedding_dim = 8, .hidden = {16}, .seed = 3,
             .attention = {{.sequence = "hist", .target = "item"}}, .fm = true,
             .attention_hidden = {32, 8}, .attention_weights = "raw", .layers = 2, .heads = 4,
             .ffn_dim = 24, .dropout = 0.25f, .bst_output = "mean", .bst_norm = "post"};
  m.schema_yaml = testing::kTestSchema;
  m.num_servers = 1;
  ASSERT_OK(WriteManifest(dir.path().string(), m));
  ASSERT_OK_AND_ASSIGN(ModelManifest read, ReadManifest(dir.path().string()));
  const ModelConfig& r = read.model;
  EXPECT_EQ(r.type, "bst");
  EXPECT_EQ(r.attention, m.model.attention);
  EXPECT_TRUE(r.fm);
  EXPECT_EQ(r.attention_hidden, m.model.attention_hidden);
  EXPECT_EQ(r.attention_weights, "raw");
  EXPECT_EQ(r.layers, 2u);
  EXPECT_EQ(r.heads, 4u);
  EXPECT_EQ(r.ffn_dim, 24u);
  EXPECT_FLOAT_EQ(r.dropout, 0.25f);
  EXPECT_EQ(r.bst_output, "mean");
  EXPECT_EQ(r.bst_norm, "post");
}

TEST(SavedModelTest, ManifestKeepsAdmissionAndEvictionAndMissingKeysFollowThem) {
  TempDir dir;
  ModelManifest m;
  m.schema_yaml = testing::kTestSchema;
  m.num_servers = 1;
  TableConfig t;
  t.id = 0;
  t.name = "item";
  t.dim = 2;
  t.admission = {.min_count = 3, .unadmitted_zeros = true};
  t.eviction = {.ttl_s = 30, .max_rows = 7};
  m.tables.push_back({t, {}});
  ASSERT_OK(WriteManifest(dir.path().string(), m));
  ASSERT_OK_AND_ASSIGN(ModelManifest read, ReadManifest(dir.path().string()));
  ASSERT_EQ(read.tables.size(), 1u);
  EXPECT_EQ(read.tables[0].config, t);
  // A key the model has no row for reads as zeros, as a server answers.
  std::vector<float> row(2, 5.0f);
  MissingRowValue(read.tables[0].config, 42, row);
  EXPECT_EQ(row, std::vector<float>(2, 0.0f));
  read.tables[0].config.admission.unadmitted_zeros = false;
  MissingRowValue(read.tables[0].config, 42, row);
  EXPECT_NE(row, std::vector<float>(2, 0.0f));
}

TEST(SavedModelTest, ManifestErrorsNameTheProblem) {
  TempDir dir;
  const std::string d = dir.path().string();
  EXPECT_EQ(ReadManifest(d).status().code(), StatusCode::kNotFound);
  ASSERT_OK(WriteHandModel(d, DeepFm(), 1, SomeKeys()).status());
  const std::string path = dir.File("manifest.json");
  const std::string good = Slurp(path);

  Spit(path, "{not json");
  Status s = ReadManifest(d).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  Spit(path, good);
  Replace(path, "\"format_version\": 1", "\"format_version\": 2");
  EXPECT_EQ(ReadManifest(d).status().code(), StatusCode::kUnimplemented);
  Spit(path, good);
  Replace(path, "\"kind\": \"full\"", "\"kind\": \"delta\"");  // base_version 0
  EXPECT_EQ(ReadManifest(d).status().code(), StatusCode::kInvalidArgument);
  Spit(path, good);
  Replace(path, "\"kind\": \"full\"", "\"kind\": \"diff\"");
  EXPECT_EQ(ReadManifest(d).status().code(), StatusCode::kInvalidArgument);
  Spit(path, good);
  Replace(path, "\"version\": 0", "\"version\": \"7\"");
  s = ReadManifest(d).status();
  EXPECT_NE(s.message().find("version: expected an unsigned integer"), std::string::npos) << s;
  Spit(path, good);
  Replace(path, "\"created_unix_ms\"", "\"training_state\": [], \"created_unix_ms\"");
  s = ReadManifest(d).status();
  EXPECT_NE(s.message().find("training_state: expected an object"), std::string::npos) << s;
  Spit(path, good);
  Replace(path, "\"feature_hash_version\": 1", "\"feature_hash_version\": 77");
  EXPECT_EQ(ReadManifest(d).status().code(), StatusCode::kFailedPrecondition);
  Spit(path, good);
  Replace(path, "\"l2\"", "\"l3\"");
  s = ReadManifest(d).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("tables[0].optimizer.l2: missing"), std::string::npos) << s;
  Spit(path, good);
  Replace(path, "\"user_id/part-00000.rows\"", "\"../../etc/passwd\"");
  EXPECT_EQ(ReadManifest(d).status().code(), StatusCode::kInvalidArgument);
  Spit(path, good);
  Replace(path, "\"embedding_dim\": 3", "\"embedding_dim\": -3");
  EXPECT_EQ(ReadManifest(d).status().code(), StatusCode::kInvalidArgument);

  ModelManifest bad;
  bad.tables.push_back({TableConfig{}, {"/abs/path.rows"}});
  bad.tables[0].config.name = "t";
  EXPECT_EQ(WriteManifest(d, bad).code(), StatusCode::kInvalidArgument);
}

// Manifests written before versions existed read with the defaults.
TEST(SavedModelTest, ManifestWithoutVersionKeysReadsDefaults) {
  TempDir dir;
  const std::string d = dir.path().string();
  ASSERT_OK(WriteHandModel(d, DeepFm(), 1, SomeKeys()).status());
  const std::string path = dir.File("manifest.json");
  Replace(path, ",\n  \"version\": 0", "");  // the last key
  Replace(path, "\"base_version\": 0,", "");
  Replace(path, "\"created_unix_ms\": 1700000000000,", "");
  ASSERT_EQ(Slurp(path).find("version\": 0"), std::string::npos);
  ASSERT_OK_AND_ASSIGN(ModelManifest m, ReadManifest(d));
  EXPECT_EQ(m.version, 0u);
  EXPECT_EQ(m.kind, SnapshotKind::kFull);
  EXPECT_EQ(m.base_version, 0u);
  EXPECT_EQ(m.created_unix_ms, 1700000000000);
  EXPECT_EQ(m.training_state_json, "");
  ASSERT_OK_AND_ASSIGN(SavedModel saved, LoadSavedModel(d, false));
  EXPECT_EQ(saved.sparse[0].num_rows(), 50u);
}

// Rows spread over any number of parts load into one table (re-sharding).
TEST(SavedModelTest, LoadsEveryPartWithAndWithoutState) {
  for (int parts : {1, 3}) {
    TempDir dir;
    ASSERT_OK_AND_ASSIGN(HandModel hand,
                         WriteHandModel(dir.path().string(), DeepFm(), parts, SomeKeys()));
    ASSERT_OK_AND_ASSIGN(SavedModel plain, LoadSavedModel(dir.path().string(), false));
    ASSERT_OK_AND_ASSIGN(SavedModel full, LoadSavedModel(dir.path().string(), true));
    ASSERT_EQ(plain.sparse.size(), 2u);
    for (const SparseParams& t : plain.sparse) {
      EXPECT_EQ(t.state_floats, 0u);
      EXPECT_EQ(t.arena.size(), t.num_rows() * t.config.dim);  // values only
      EXPECT_EQ(t.num_rows(), hand.values[t.config.id].size());
      for (const auto& [key, value] : hand.values[t.config.id]) {
        const std::span<const float> got = t.Value(key);
        EXPECT_EQ(std::vector<float>(got.begin(), got.end()), value);
      }
      EXPECT_TRUE(t.Value(12345).empty());
      EXPECT_TRUE(t.State(hand.values[t.config.id].begin()->first).empty());
    }
    for (const SparseParams& t : full.sparse) {
      EXPECT_EQ(t.state_floats, t.config.dim);
      for (const auto& [key, state] : hand.states[t.config.id]) {
        const std::span<const float> got = t.State(key);
        EXPECT_EQ(std::vector<float>(got.begin(), got.end()), state);
        const std::span<const float> value = t.Value(key);
        EXPECT_EQ(std::vector<float>(value.begin(), value.end()), hand.values[t.config.id][key]);
      }
      EXPECT_EQ(t.update_counts, std::vector<uint32_t>(t.num_rows(), 3u));
    }
    ASSERT_EQ(plain.dense.size(), full.dense.size());
    for (size_t b = 0; b < plain.dense.size(); ++b) {
      const TableId id = plain.dense[b].config.id;
      EXPECT_EQ(plain.dense[b].values, hand.dense_values[id]);
      EXPECT_TRUE(plain.dense[b].state.empty());
      EXPECT_EQ(full.dense[b].values, hand.dense_values[id]);
      EXPECT_EQ(full.dense[b].state, hand.dense_states[id]);
      EXPECT_EQ(full.dense[b].ranges.size(), (full.dense[b].config.size + 4) / 5);
    }
  }
}

TEST(SavedModelTest, LoadRefusesMissingCorruptAndInconsistentFiles) {
  TempDir dir;
  const std::string d = dir.path().string();
  ASSERT_OK(WriteHandModel(d, DeepFm(), 2, SomeKeys()).status());
  const std::string part = dir.File("item/part-00001.rows");
  const std::string bytes = Slurp(part);
  const std::string manifest = Slurp(dir.File("manifest.json"));

  std::string flipped = bytes;
  flipped[100] ^= 0x10;
  Spit(part, flipped);
  Status s = LoadSavedModel(d, false).status();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("part-00001.rows"), std::string::npos) << s;

  std::filesystem::remove(part);
  EXPECT_EQ(LoadSavedModel(d, false).status().code(), StatusCode::kNotFound);

  // The same part listed twice: every key twice.
  Spit(part, bytes);
  Replace(dir.File("manifest.json"), "\"item/part-00000.rows\"", "\"item/part-00001.rows\"");
  EXPECT_EQ(LoadSavedModel(d, false).status().code(), StatusCode::kDataLoss);

  // A file of another table.
  Spit(dir.File("manifest.json"), manifest);
  Replace(dir.File("manifest.json"), "\"item/part-00000.rows\"", "\"user_id/part-00000.rows\"");
  EXPECT_EQ(LoadSavedModel(d, false).status().code(), StatusCode::kInvalidArgument);

  // A dense table missing one part leaves gaps.
  Spit(dir.File("manifest.json"), manifest);
  Replace(dir.File("manifest.json"), ",\n        \"dense.mlp.0.weight/part-00001.rows\"", "");
  s = LoadSavedModel(d, false).status();
  EXPECT_TRUE(s.code() == StatusCode::kDataLoss || s.code() == StatusCode::kNotFound) << s;

  // The model's tables must be the plan of its config.
  Spit(dir.File("manifest.json"), manifest);
  Replace(dir.File("manifest.json"), "\"embedding_dim\": 3", "\"embedding_dim\": 5");
  EXPECT_EQ(LoadSavedModel(d, false).status().code(), StatusCode::kInvalidArgument);

  Spit(dir.File("manifest.json"), manifest);
  Replace(dir.File("manifest.json"), "\"has_optimizer_state\": true",
          "\"has_optimizer_state\": false");
  EXPECT_EQ(LoadSavedModel(d, true).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_OK(LoadSavedModel(d, false));
}

TEST(SavedModelTest, FillBatchUsesSavedRowsAndInitialValuesForUnknownKeys) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(HandModel hand, WriteHandModel(dir.path().string(), DeepFm(), 2, SomeKeys()));
  ASSERT_OK_AND_ASSIGN(SavedModel saved, LoadSavedModel(dir.path().string(), false));
  const Key known = SomeKeys()[1][7];
  const Key unknown = HashFeature(1, "never-trained");
  Batch batch;
  batch.tables.resize(1);
  batch.tables[0].table = 1;
  batch.tables[0].keys = {unknown, known};
  ASSERT_OK_AND_ASSIGN(std::vector<std::span<const float>> dense, FillBatch(saved, &batch));
  const TableConfig& item = saved.sparse[1].config;
  ASSERT_EQ(batch.tables[0].values.rows(), 2);
  ASSERT_EQ(batch.tables[0].values.cols(), static_cast<Eigen::Index>(item.dim));
  std::vector<float> initial(item.dim);
  InitializeRow(item.initializer, item.id, unknown, initial);
  for (uint32_t d = 0; d < item.dim; ++d) {
    EXPECT_EQ(batch.tables[0].values(0, d), initial[d]);
    EXPECT_EQ(batch.tables[0].values(1, d), hand.values[1][known][d]);
  }
  EXPECT_NE(initial[0], 0.0f);  // uniform initializer: not zeros
  ASSERT_EQ(dense.size(), saved.dense.size());
  for (size_t b = 0; b < dense.size(); ++b) EXPECT_EQ(dense[b].data(), saved.dense[b].values.data());

  batch.tables[0].table = 5;
  EXPECT_EQ(FillBatch(saved, &batch).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::models
