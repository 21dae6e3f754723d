// Saved models: a trained model on disk in one self-describing format, and
// its parameters loaded back into memory for local scoring (`tessera eval`,
// serving) or for resuming training.
//
// Directory layout (<output_dir>/model/):
//   manifest.json                 written last, atomically (temp + rename):
//                                 its presence means the model is complete
//   <table>/part-<rank>.rows      one row file (common/row_file.h) per table
//                                 and server that saved it
//
// manifest.json (format_version 1):
//   {"format": "tessera-saved-model", "format_version": 1, "kind": "full",
//    "feature_hash_version": 1, "created_unix_s": 1700000000,
//    "has_optimizer_state": true,
//    "model": {"type": "deepfm", "embedding_dim": 16, "hidden": [256, 128], "seed": 1},
//    "group_field": "user_id", "num_servers": 2,
//    "schema_yaml": "fields:\n  - {name: user_id, ...}\n...",
//    "tables": [{"id": 0, "name": "user_id", "kind": "sparse", "dim": 17, "size": 0,
//                "optimizer": {"type": "adagrad", "learning_rate": 0.05, ...},
//                "initializer": {"type": "uniform", "scale": 0.01, "seed": 1000003},
//                "admission": {"min_count": 0}, "eviction": {"ttl_s": 0, "max_rows": 0},
//                "files": ["user_id/part-00000.rows", "user_id/part-00001.rows"]}, ...]}
// File paths are relative to the model directory. Readers refuse a newer
// format_version (Unimplemented) and another feature_hash_version
// (FailedPrecondition: the keys would not match). Planned for the
// continuous-training issue, and already leaving room for it: "kind":
// "delta" with a "base" version, row files flagged is_delta that carry
// changed rows and deleted keys.
//
// Sharding: a table's rows may be spread over any number of files (one per
// server that saved it); loading reads them all, so a model saved by N
// servers loads anywhere (re-sharding is the caller's choice of who keeps
// which key).
//
// Thread safety: the functions are thread-safe; a SavedModel is immutable
// after loading and may be read by many threads.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(SavedModel m, LoadSavedModel(dir, /*with_state=*/false));
//   TESSERA_ASSIGN_OR_RETURN(auto model, NewModel(m.manifest.model, m.schema));
//   TESSERA_ASSIGN_OR_RETURN(auto dense, FillBatch(m, &batch));
//   model->Predict(batch, dense, predictions);
#ifndef TESSERA_MODELS_SAVED_MODEL_H_
#define TESSERA_MODELS_SAVED_MODEL_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/status.h"
#include "common/table_config.h"
#include "common/types.h"
#include "models/batch.h"
#include "models/model.h"
#include "models/schema.h"

namespace tessera::models {

inline constexpr uint32_t kSavedModelFormatVersion = 1;
inline constexpr char kManifestFileName[] = "manifest.json";

// One table of a saved model: its configuration and its row files.
struct SavedTable {
  TableConfig config;
  std::vector<std::string> files;  // relative to the model directory
  friend bool operator==(const SavedTable&, const SavedTable&) = default;
};

struct ModelManifest {
  uint32_t format_version = kSavedModelFormatVersion;
  uint32_t feature_hash_version = 0;  // WriteManifest fills kFeatureHashVersion
  int64_t created_unix_s = 0;
  bool has_optimizer_state = true;
  std::string schema_yaml;            // Schema::ToYaml()
  ModelConfig model;
  std::string group_field;            // the job's GAUC group field ("" if none)
  int32_t num_servers = 0;            // servers that saved it (informational)
  std::vector<SavedTable> tables;     // sparse tables then dense, by id
};

// Writes <model_dir>/manifest.json atomically (creating model_dir), with
// feature_hash_version set to this build's kFeatureHashVersion.
// InvalidArgument for a table that fails ValidateTableConfig or a file path
// that is absolute or leaves the directory.
Status WriteManifest(const std::string& model_dir, const ModelManifest& manifest);

// Reads and validates <model_dir>/manifest.json. NotFound if absent (the
// model is incomplete); InvalidArgument for a malformed manifest (naming the
// key); Unimplemented for a newer format or a delta; FailedPrecondition for
// another feature-hash version.
StatusOr<ModelManifest> ReadManifest(const std::string& model_dir);

// The rows of one sparse table, in a contiguous arena.
struct SparseParams {
  TableConfig config;
  // State floats stored after each value (0 unless loaded with state).
  uint32_t state_floats = 0;
  absl::flat_hash_map<Key, uint64_t> index;  // key -> row number
  std::vector<float> arena;                  // rows x (config.dim + state_floats)
  // Per row, with state only: pushes applied and last push time.
  std::vector<uint32_t> update_counts;
  std::vector<uint32_t> last_updates;

  size_t num_rows() const { return index.size(); }
  // The value of `key` (config.dim floats), or empty if the model has no row.
  std::span<const float> Value(Key key) const;
  // Its optimizer state (state_floats), or empty.
  std::span<const float> State(Key key) const;
};

// A whole dense table.
struct DenseParams {
  TableConfig config;
  std::vector<float> values;   // config.size
  // With state only: per element state floats, stored planar (state_floats
  // arrays of config.size floats), and the saved ranges with their steps.
  uint32_t state_floats = 0;
  std::vector<float> state;
  struct Range {
    uint64_t begin, end;
    uint32_t step;
  };
  std::vector<Range> ranges;
};

struct SavedModel {
  ModelManifest manifest;
  Schema schema;
  std::vector<SparseParams> sparse;  // index = schema table index
  std::vector<DenseParams> dense;    // index = the model's dense block
};

// Loads a saved model: the manifest, then every row file of every table,
// checking each file's header (table id, kind, dim / size) against the
// manifest, that no key appears twice and that the dense ranges tile their
// tables. The tables must be the model's plan (models/table_plan.h: one
// sparse table per schema table with row_dim floats, then one dense table per
// dense block). `with_state` also keeps the optimizer state and counters
// (FailedPrecondition if the model was saved without them). Errors name the
// file: NotFound, DataLoss (corrupt or truncated), InvalidArgument.
StatusOr<SavedModel> LoadSavedModel(const std::string& model_dir, bool with_state);

// Fills batch->tables[*].values from `model` (keys.size() x row_dim each):
// a key the model has no row for gets its table's deterministic initial
// value (common/initializer.h), exactly what a server answers for a key never
// pushed. Returns one span per dense block (valid while `model` lives), the
// `dense` argument of Model::Predict. InvalidArgument if a TableBatch names a
// table the model does not have.
StatusOr<std::vector<std::span<const float>>> FillBatch(const SavedModel& model, Batch* batch);

}  // namespace tessera::models

#endif  // TESSERA_MODELS_SAVED_MODEL_H_
