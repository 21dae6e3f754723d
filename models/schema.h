// The data contract of a job: the fields of each TSV line after the label,
// and the embedding tables they use. Loaded from YAML:
//   fields:
//     - {name: user_id, type: categorical}
//     - {name: item_id, type: categorical, table: item}
//     - {name: price, type: numeric, transform: log1p}
//     - {name: hist_items, type: sequence, table: item, max_len: 50}
#ifndef TESSERA_MODELS_SCHEMA_H_
#define TESSERA_MODELS_SCHEMA_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "models/feature_hash.h"

namespace tessera::models {

enum class FieldType : uint8_t { kCategorical, kNumeric, kSequence };
enum class Transform : uint8_t { kNone, kLog1p };

inline constexpr uint32_t kMaxSequenceLength = 10000;

struct Field {
  std::string name;
  FieldType type = FieldType::kCategorical;
  std::string table;       // categorical/sequence: embedding table (default: name)
  int table_index = -1;    // index into Schema::tables(), -1 for numeric
  int numeric_index = -1;  // numeric: column in Batch::numeric
  Transform transform = Transform::kNone;
  uint32_t max_len = 50;  // sequence: most recent tokens kept

  friend bool operator==(const Field&, const Field&) = default;
};

class Schema {
 public:
  // Parses YAML text; `source` names it in errors ("schema.yaml: field 3 ...").
  // The only top-level key is `fields`; each field takes the keys name, type
  // (categorical | numeric | sequence), table (categorical and sequence),
  // transform (numeric: log1p | none, default none) and max_len (sequence,
  // 1 .. kMaxSequenceLength, default 50). Names and tables use the characters
  // [A-Za-z0-9_.-]. Unknown keys, duplicate field names and more than 255
  // tables are InvalidArgument errors naming the field (index and name).
  static StatusOr<Schema> Parse(std::string_view yaml, std::string_view source);
  // NotFound if the file cannot be read; otherwise as Parse with `path` as the source.
  static StatusOr<Schema> Load(const std::string& path);

  const std::vector<Field>& fields() const { return fields_; }
  // Distinct table names in first-use order; a table's index is its id in
  // feature hashing (so at most 255 tables).
  const std::vector<std::string>& tables() const { return tables_; }
  int num_numeric() const { return num_numeric_; }
  // -1 if absent.
  int FieldIndex(std::string_view name) const;
  int TableIndex(std::string_view name) const;
  // The YAML form (for the model manifest); Parse(ToYaml()) == *this for
  // an unsalted schema (the hasher is not part of the YAML).
  std::string ToYaml() const;

  // How this schema's tokens become keys (models/feature_hash.h): unsalted
  // unless set. Every key of a job (training, eval, serving, forget) must
  // come from the same hasher; it is not part of the YAML (the id salt never
  // is: models/job_config.h).
  const FeatureHasher& hasher() const { return hasher_; }
  void set_hasher(FeatureHasher hasher) { hasher_ = std::move(hasher); }

  friend bool operator==(const Schema&, const Schema&) = default;

 private:
  std::vector<Field> fields_;
  std::vector<std::string> tables_;
  int num_numeric_ = 0;
  FeatureHasher hasher_;
};

}  // namespace tessera::models

#endif  // TESSERA_MODELS_SCHEMA_H_
