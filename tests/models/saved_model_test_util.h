// Test helpers for saved models: write one by hand (row files + manifest),
// with seeded random parameters, split over any number of "servers".
#ifndef TESSERA_TESTS_MODELS_SAVED_MODEL_TEST_UTIL_H_
#define TESSERA_TESTS_MODELS_SAVED_MODEL_TEST_UTIL_H_

#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/row_file.h"
#include "models/job_config.h"
#include "models/model.h"
#include "models/saved_model.h"
#include "models/schema.h"
#include "models/table_plan.h"

namespace tessera::models::testing {

inline constexpr char kTestSchema[] =
    "fields:\n"
    "  - {name: user_id, type: categorical}\n"
    "  - {name: item_id, type: categorical, table: item}\n"
    "  - {name: price, type: numeric, transform: log1p}\n"
    "  - {name: hist, type: sequence, table: item, max_len: 3}\n";

// The parameters written: per sparse table key -> value + state, per dense
// table its values and state (planar).
struct HandModel {
  JobConfig job;
  std::map<TableId, std::map<Key, std::vector<float>>> values;
  std::map<TableId, std::map<Key, std::vector<float>>> states;
  std::map<TableId, std::vector<float>> dense_values;
  std::map<TableId, std::vector<float>> dense_states;
  std::vector<TableConfig> tables;
};

inline constexpr uint32_t kStateFloatsPerDim = 1;  // as adagrad

// Writes a saved model of `config` to `dir`: each sparse table gets `keys`
// (plus, where given, `extra_keys[t]`), rows and dense ranges dealt to
// `parts` files. Returns what was written.
inline StatusOr<HandModel> WriteHandModel(const std::string& dir, const ModelConfig& config,
                                          int parts, const std::vector<std::vector<Key>>& keys,
                                          uint64_t seed = 1) {
  HandModel hand;
  hand.job.model = config;
  hand.job.data.group_field = "user_id";
  TESSERA_ASSIGN_OR_RETURN(Schema schema, Schema::Parse(kTestSchema, "test schema"));
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, NewModel(config, schema));
  hand.tables = PlanTables(hand.job, schema, *model);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  ModelManifest manifest;
  manifest.created_unix_s = 1700000000;
  manifest.schema_yaml = schema.ToYaml();
  manifest.model = config;
  manifest.group_field = hand.job.data.group_field;
  manifest.num_servers = parts;
  for (const TableConfig& t : hand.tables) {
    SavedTable saved{t, {}};
    std::filesystem::create_directories(std::filesystem::path(dir) / t.name);
    std::vector<std::unique_ptr<RowFileWriter>> writers;
    for (int p = 0; p < parts; ++p) {
      saved.files.push_back(RowFileRelativePath(t.name, p));
      RowFileInfo info{.table_id = t.id,
                       .kind = t.kind == TableKind::kDense ? RowFileKind::kDense
                                                           : RowFileKind::kSparse,
                       .dim = t.kind == TableKind::kDense ? 0 : t.dim,
                       .state_floats = t.kind == TableKind::kDense ? kStateFloatsPerDim
                                                                   : kStateFloatsPerDim * t.dim,
                       .has_state = true,
                       .table_size = t.size};
      TESSERA_ASSIGN_OR_RETURN(auto w,
                               RowFileWriter::Create((std::filesystem::path(dir) /
                                                      saved.files.back()).string(),
                                                     info));
      writers.push_back(std::move(w));
    }
    if (t.kind == TableKind::kSparse) {
      for (Key key : keys.at(t.id)) {
        std::vector<float>& v = hand.values[t.id][key];
        std::vector<float>& s = hand.states[t.id][key];
        for (uint32_t d = 0; d < t.dim; ++d) v.push_back(normal(rng));
        for (uint32_t d = 0; d < t.dim; ++d) s.push_back(std::abs(normal(rng)));
        TESSERA_RETURN_IF_ERROR(writers[key % parts]->AddRow(key, 3, 1700000001, v, s));
      }
    } else {
      std::vector<float>& v = hand.dense_values[t.id];
      std::vector<float>& s = hand.dense_states[t.id];
      for (uint64_t i = 0; i < t.size; ++i) v.push_back(normal(rng));
      for (uint64_t i = 0; i < t.size; ++i) s.push_back(std::abs(normal(rng)));
      // Ranges of 5 elements dealt round-robin to the parts.
      for (uint64_t b = 0, r = 0; b < t.size; b += 5, ++r) {
        const uint64_t e = std::min<uint64_t>(b + 5, t.size);
        TESSERA_RETURN_IF_ERROR(writers[r % parts]->AddRange(
            b, e, static_cast<uint32_t>(r), std::span(v).subspan(b, e - b),
            std::span(s).subspan(b, e - b)));
      }
    }
    for (auto& w : writers) TESSERA_RETURN_IF_ERROR(w->Finish());
    manifest.tables.push_back(std::move(saved));
  }
  TESSERA_RETURN_IF_ERROR(WriteManifest(dir, manifest));
  return hand;
}

}  // namespace tessera::models::testing

#endif  // TESSERA_TESTS_MODELS_SAVED_MODEL_TEST_UTIL_H_
