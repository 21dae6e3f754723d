// Saved models: a trained model on disk in one self-describing format, and
// its parameters loaded back into memory for local scoring (`tessera eval`,
// serving) or for resuming training.
//
// Directory layout (<output_dir>/model/, or one published version
// <publish_dir>/<version>/, models/model_versions.h):
//   manifest.json                 written last, atomically (temp + rename):
//                                 its presence means the model is complete
//   <table>/part-<rank>.rows      one row file (common/row_file.h) per table
//                                 and server that saved it
//
// manifest.json (format_version 1):
//   {"format": "tessera-saved-model", "format_version": 1, "kind": "full",
//    "version": 12, "base_version": 0,
//    "feature_hash_version": 1, "created_unix_s": 1700000000,
//    "created_unix_ms": 1700000000123, "has_optimizer_state": true,
//    "model": {"type": "deepfm", "embedding_dim": 16, "hidden": [256, 128], "seed": 1},
//    "group_field": "user_id", "num_servers": 2,
//    "schema_yaml": "fields:\n  - {name: user_id, ...}\n...",
//    "tables": [{"id": 0, "name": "user_id", "kind": "sparse", "dim": 17, "size": 0,
//                "optimizer": {"type": "adagrad", "learning_rate": 0.05, ...},
//                "initializer": {"type": "uniform", "scale": 0.01, "seed": 1000003},
//                "admission": {"min_count": 0}, "eviction": {"ttl_s": 0, "max_rows": 0},
//                "files": ["user_id/part-00000.rows", "user_id/part-00001.rows"]}, ...],
//    "training_state": {...}}
// File paths are relative to the model directory. Readers refuse a newer
// format_version (Unimplemented) and another feature_hash_version
// (FailedPrecondition: the keys would not match). Keys added after the first
// release are optional when reading (absent: the default in ModelManifest):
// "version", "kind" = "delta", "base_version", "created_unix_ms" (absent:
// created_unix_s * 1000), "training_state" and "id_salt_fingerprint"
// (written only by jobs with an id salt: FeatureHasher::fingerprint(), 16 hex
// digits; absent = unsalted keys). Scoring a model needs the salt it was
// trained with (CheckIdSalt).
//
// Versions (continuous training, models/model_versions.h): "version" > 0
// names a published version (0: a plain save). "kind": "full" is a whole
// model; "delta" holds what changed since "base_version" (the version right
// before it, full or delta; 0 < base_version < version):
//   - sparse tables: row files flagged is_delta, holding the rows changed
//     since the base (with optimizer state when has_optimizer_state) and then
//     tombstones (keys deleted or evicted). Applying: tombstones first, then
//     rows (a key evicted and re-created appears in both);
//   - dense tables: complete, ordinary (not is_delta) row files.
// A delta is read with ApplyDelta (models/model_versions.h); LoadSavedModel
// refuses it. "training_state" is an object opaque to models (the
// scheduler's data positions, ...), kept verbatim.
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

// A whole model, or the changes on top of the version before it.
enum class SnapshotKind { kFull, kDelta };

struct ModelManifest {
  uint32_t format_version = kSavedModelFormatVersion;
  uint32_t feature_hash_version = 0;  // WriteManifest fills kFeatureHashVersion
  SnapshotKind kind = SnapshotKind::kFull;
  uint64_t version = 0;               // 0: not a published version
  uint64_t base_version = 0;          // deltas only: the version it applies to
  int64_t created_unix_s = 0;
  // Milliseconds since the epoch (freshness); 0 when writing: created_unix_s
  // * 1000. ReadManifest always fills it.
  int64_t created_unix_ms = 0;
  bool has_optimizer_state = true;
  std::string schema_yaml;            // Schema::ToYaml()
  ModelConfig model;
  std::string group_field;            // the job's GAUC group field ("" if none)
  int32_t num_servers = 0;            // servers that saved it (informational)
  std::vector<SavedTable> tables;     // sparse tables then dense, by id
  // The serialized "training_state" object ("" = absent), opaque to models.
  std::string training_state_json;
  // The training job's FeatureHasher::fingerprint() ("": no id salt).
  std::string id_salt_fingerprint;
};

// OK if the model in `model_dir` (its manifest) was trained with `hasher`'s
// salt (or both are unsalted); else FailedPrecondition saying which side has
// which salt fingerprint (never the salt).
Status CheckIdSalt(const ModelManifest& manifest, const FeatureHasher& hasher,
                   const std::string& model_dir);

// True if `a` and `b` describe the same model: schema, id salt, model
// configuration and table configurations (files, versions and times aside). A delta must
// describe the same model as its base.
bool SameModel(const ModelManifest& a, const ModelManifest& b);

// Writes <model_dir>/manifest.json atomically (creating model_dir), with
// feature_hash_version set to this build's kFeatureHashVersion.
// InvalidArgument for a table that fails ValidateTableConfig, a file path
// that is absolute or leaves the directory, training_state_json that is not
// a JSON object, or version fields that break the rules above (a delta needs
// 0 < base_version < version; a full snapshot has base_version 0).
Status WriteManifest(const std::string& model_dir, const ModelManifest& manifest);

// Reads and validates <model_dir>/manifest.json. NotFound if absent (the
// model is incomplete); InvalidArgument for a malformed manifest (naming the
// key, or breaking the version rules); Unimplemented for a newer format;
// FailedPrecondition for another feature-hash version. Deltas are read.
StatusOr<ModelManifest> ReadManifest(const std::string& model_dir);

// The rows of one sparse table, in a contiguous arena.
struct SparseParams {
  TableConfig config;
  // State floats stored after each value (0 unless loaded with state).
  uint32_t state_floats = 0;
  absl::flat_hash_map<Key, uint64_t> index;  // key -> row number
  std::vector<Key> keys;                     // row number -> key
  std::vector<float> arena;                  // rows x (config.dim + state_floats)
  // Per row, with state only (has_counters): pushes applied and last push
  // time.
  bool has_counters = false;
  std::vector<uint32_t> update_counts;
  std::vector<uint32_t> last_updates;

  size_t num_rows() const { return index.size(); }
  // The value of `key` (config.dim floats), or empty if the model has no row.
  std::span<const float> Value(Key key) const;
  // Its optimizer state (state_floats), or empty.
  std::span<const float> State(Key key) const;

  // Sets the row of `key` (adding it at the end if new). REQUIRES:
  // value.size() == config.dim; state.size() == state_floats. The counters
  // are kept only if has_counters.
  void Upsert(Key key, std::span<const float> value, std::span<const float> state,
              uint32_t update_count, uint32_t last_update);
  // Removes the row of `key` if any: the last row moves into its place
  // (arena, keys, counters and index kept in step). Returns whether it was
  // there.
  bool Erase(Key key);
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
  // The manifest of the version the parameters equal (after ApplyDelta: the
  // last delta's, tables and all).
  ModelManifest manifest;
  bool with_state = false;  // loaded with optimizer state and counters
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
// FailedPrecondition for a delta (models/model_versions.h loads those).
StatusOr<SavedModel> LoadSavedModel(const std::string& model_dir, bool with_state);

// For scoring: CheckIdSalt on the model's manifest, then the model's schema
// hashes with `hasher` (the schema a manifest holds is unsalted).
Status UseIdSalt(const FeatureHasher& hasher, const std::string& model_dir, SavedModel* model);

// Fills batch->tables[*].values from `model` (keys.size() x row_dim each):
// a key the model has no row for gets its table's deterministic initial
// value (common/initializer.h), exactly what a server answers for a key never
// pushed. Returns one span per dense block (valid while `model` lives), the
// `dense` argument of Model::Predict. InvalidArgument if a TableBatch names a
// table the model does not have.
StatusOr<std::vector<std::span<const float>>> FillBatch(const SavedModel& model, Batch* batch);

}  // namespace tessera::models

#endif  // TESSERA_MODELS_SAVED_MODEL_H_
