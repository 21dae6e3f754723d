// Test helpers for published versions (models/model_versions.h): a
// reference model held in std::maps, random changes to it, and writers of
// full and delta version directories (row files + manifest) from it, so a
// test can compare what a chain of deltas loads with what the reference
// says. Schema: tests/models/saved_model_test_util.h kTestSchema.
#ifndef TESSERA_TESTS_MODELS_PUBLISH_TEST_UTIL_H_
#define TESSERA_TESTS_MODELS_PUBLISH_TEST_UTIL_H_

#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/row_file.h"
#include "models/job_config.h"
#include "models/model.h"
#include "models/model_versions.h"
#include "models/saved_model.h"
#include "models/schema.h"
#include "models/table_plan.h"
#include "tests/models/saved_model_test_util.h"

namespace tessera::models::testing {

struct RefRow {
  std::vector<float> value, state;
  uint32_t update_count = 0;
  uint32_t last_update = 0;
};

// What a model holds, by key. `base` carries the schema, model and tables
// (its files and versions are filled by the writers).
struct RefModel {
  ModelManifest base;
  std::vector<std::map<Key, RefRow>> sparse;  // per sparse table
  std::vector<std::vector<float>> dense, dense_state;
};

// What a delta changes: per sparse table, keys whose rows it carries and
// keys it deletes (a key re-created after its deletion is in both).
struct RefChanges {
  std::vector<std::set<Key>> changed, deleted;
};

inline constexpr uint32_t kRefStatePerDim = 1;  // as adagrad

inline RefRow RandomRow(uint32_t dim, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 0.3f);
  RefRow row;
  for (uint32_t d = 0; d < dim; ++d) row.value.push_back(normal(rng));
  for (uint32_t d = 0; d < dim * kRefStatePerDim; ++d) row.state.push_back(std::abs(normal(rng)));
  row.update_count = static_cast<uint32_t>(rng() % 100);
  row.last_update = 1700000000 + static_cast<uint32_t>(rng() % 1000);
  return row;
}

// A model of `config` on kTestSchema with rows for `keys[t]` in sparse
// table t, random values from `seed`.
inline StatusOr<RefModel> NewRefModel(const ModelConfig& config,
                                      const std::vector<std::vector<Key>>& keys, uint64_t seed) {
  RefModel ref;
  JobConfig job;
  job.model = config;
  job.data.group_field = "user_id";
  TESSERA_ASSIGN_OR_RETURN(Schema schema, Schema::Parse(kTestSchema, "test schema"));
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, NewModel(config, schema));
  ref.base.schema_yaml = schema.ToYaml();
  ref.base.model = config;
  ref.base.group_field = "user_id";
  ref.base.created_unix_s = 1700000000;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  for (const TableConfig& t : PlanTables(job, schema, *model)) {
    ref.base.tables.push_back({t, {}});
    if (t.kind == TableKind::kSparse) {
      ref.sparse.emplace_back();
      for (Key k : keys.at(ref.sparse.size() - 1)) ref.sparse.back()[k] = RandomRow(t.dim, rng);
    } else {
      ref.dense.emplace_back();
      ref.dense_state.emplace_back();
      for (uint64_t i = 0; i < t.size; ++i) ref.dense.back().push_back(normal(rng));
      for (uint64_t i = 0; i < t.size; ++i) ref.dense_state.back().push_back(std::abs(normal(rng)));
    }
  }
  return ref;
}

// Changes `ref` at random: `change` existing rows get new values, `remove`
// rows are deleted, `add` new keys appear, one deleted key comes back at
// once, a key the model never had is deleted too, and every dense value
// moves.
inline RefChanges MutateRefModel(RefModel* ref, std::mt19937_64& rng, int change, int remove,
                                 int add) {
  RefChanges changes;
  changes.changed.resize(ref->sparse.size());
  changes.deleted.resize(ref->sparse.size());
  for (size_t t = 0; t < ref->sparse.size(); ++t) {
    std::map<Key, RefRow>& rows = ref->sparse[t];
    const uint32_t dim = ref->base.tables[t].config.dim;
    auto pick = [&]() { return std::next(rows.begin(), static_cast<long>(rng() % rows.size())); };
    for (int i = 0; i < remove && !rows.empty(); ++i) {
      auto it = pick();
      changes.deleted[t].insert(it->first);
      changes.changed[t].erase(it->first);
      rows.erase(it);
    }
    for (int i = 0; i < change && !rows.empty(); ++i) {
      auto it = pick();
      it->second = RandomRow(dim, rng);
      changes.changed[t].insert(it->first);
    }
    for (int i = 0; i < add; ++i) {
      const Key key = rng();
      rows[key] = RandomRow(dim, rng);
      changes.changed[t].insert(key);
    }
    if (!changes.deleted[t].empty()) {  // evicted and re-created
      const Key key = *changes.deleted[t].begin();
      rows[key] = RandomRow(dim, rng);
      changes.changed[t].insert(key);
    }
    changes.deleted[t].insert(rng());  // evicted before it was ever published
  }
  std::normal_distribution<float> normal(0.0f, 0.05f);
  for (std::vector<float>& d : ref->dense) {
    for (float& v : d) v += normal(rng);
  }
  return changes;
}

// Writes version `version` of `publish_dir` from `ref`: a full snapshot if
// `changes` is null, else a delta on `base_version` carrying `changes`.
// Rows are dealt to `parts` files by key; dense ranges of 7 round-robin.
inline Status WriteRefVersion(const std::string& publish_dir, uint64_t version, const RefModel& ref,
                              const RefChanges* changes, uint64_t base_version, int parts,
                              int64_t created_unix_ms = 0) {
  const std::string dir = VersionDir(publish_dir, version);
  ModelManifest m = ref.base;
  m.version = version;
  m.kind = changes ? SnapshotKind::kDelta : SnapshotKind::kFull;
  m.base_version = changes ? base_version : 0;
  m.num_servers = parts;
  m.created_unix_ms = created_unix_ms;
  if (created_unix_ms != 0) m.created_unix_s = created_unix_ms / 1000;
  m.training_state_json = "{\"version\":" + std::to_string(version) + "}";
  for (size_t t = 0; t < m.tables.size(); ++t) {
    SavedTable& saved = m.tables[t];
    const TableConfig& c = saved.config;
    const bool dense = c.kind == TableKind::kDense;
    std::filesystem::create_directories(std::filesystem::path(dir) / c.name);
    std::vector<std::unique_ptr<RowFileWriter>> writers;
    for (int p = 0; p < parts; ++p) {
      saved.files.push_back(RowFileRelativePath(c.name, p));
      RowFileInfo info{.table_id = c.id,
                       .kind = dense ? RowFileKind::kDense : RowFileKind::kSparse,
                       .dim = dense ? 0 : c.dim,
                       .state_floats = dense ? kRefStatePerDim : kRefStatePerDim * c.dim,
                       .has_state = true,
                       .is_delta = changes != nullptr && !dense,
                       .table_size = c.size};
      TESSERA_ASSIGN_OR_RETURN(
          auto w,
          RowFileWriter::Create((std::filesystem::path(dir) / saved.files.back()).string(), info));
      writers.push_back(std::move(w));
    }
    if (dense) {
      const size_t d = t - ref.sparse.size();
      const std::vector<float>& v = ref.dense[d];
      const std::vector<float>& s = ref.dense_state[d];
      for (uint64_t b = 0, r = 0; b < c.size; b += 7, ++r) {
        const uint64_t e = std::min<uint64_t>(b + 7, c.size);
        TESSERA_RETURN_IF_ERROR(writers[r % parts]->AddRange(b, e, static_cast<uint32_t>(r),
                                                             std::span(v).subspan(b, e - b),
                                                             std::span(s).subspan(b, e - b)));
      }
    } else {
      const std::map<Key, RefRow>& rows = ref.sparse[t];
      auto write = [&](Key key) {
        const RefRow& row = rows.at(key);
        return writers[key % parts]->AddRow(key, row.update_count, row.last_update, row.value,
                                            row.state);
      };
      if (changes == nullptr) {
        for (const auto& [key, row] : rows) TESSERA_RETURN_IF_ERROR(write(key));
      } else {
        for (Key key : changes->changed[t]) TESSERA_RETURN_IF_ERROR(write(key));
        for (Key key : changes->deleted[t]) {
          TESSERA_RETURN_IF_ERROR(writers[key % parts]->AddDeletedKey(key));
        }
      }
    }
    for (auto& w : writers) TESSERA_RETURN_IF_ERROR(w->Finish());
  }
  return WriteManifest(dir, m);
}

}  // namespace tessera::models::testing

#endif  // TESSERA_TESTS_MODELS_PUBLISH_TEST_UTIL_H_
