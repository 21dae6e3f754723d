#include "models/schema.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "models/feature_hash.h"
#include "models/strings.h"

namespace tessera::models {
namespace {

constexpr const char* kFieldKeys = "name, type, table, transform, max_len";

std::string_view TypeName(FieldType type) {
  switch (type) {
    case FieldType::kCategorical:
      return "categorical";
    case FieldType::kNumeric:
      return "numeric";
    case FieldType::kSequence:
      return "sequence";
  }
  return "?";
}

// Names and tables are written unquoted by ToYaml, so they avoid YAML's
// special characters and its null spellings.
bool ValidName(std::string_view name) {
  if (name.empty() || name == "null" || name == "Null" || name == "NULL") return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Builds the errors of one field: "<source>:<line>: field <i> (<name>): ...".
class FieldErrors {
 public:
  FieldErrors(std::string_view source, const YAML::Node& node, int index)
      : prefix_(absl::StrCat(Sv(source), ":", node.Mark().line + 1, ": field ", index)) {}
  void set_name(std::string_view name) { name_ = std::string(name); }
  Status Error(std::string_view what) const {
    if (name_.empty()) return InvalidArgumentError(absl::StrCat(prefix_, ": ", Sv(what)));
    return InvalidArgumentError(absl::StrCat(prefix_, " (", name_, "): ", Sv(what)));
  }

 private:
  std::string prefix_;
  std::string name_;
};

StatusOr<std::string> ScalarValue(const YAML::Node& value, std::string_view key, const FieldErrors& errors) {
  if (!value.IsScalar()) return errors.Error(absl::StrCat("'", Sv(key), "' must be a scalar"));
  return value.Scalar();
}

Status ParseType(std::string_view text, Field* field, const FieldErrors& errors) {
  if (text == "categorical") {
    field->type = FieldType::kCategorical;
  } else if (text == "numeric") {
    field->type = FieldType::kNumeric;
  } else if (text == "sequence") {
    field->type = FieldType::kSequence;
  } else {
    return errors.Error(
        absl::StrCat("unknown type '", Sv(text), "'; allowed: categorical, numeric, sequence"));
  }
  return OkStatus();
}

Status ParseTransform(std::string_view text, Field* field, const FieldErrors& errors) {
  if (text == "log1p") {
    field->transform = Transform::kLog1p;
  } else if (text == "none") {
    field->transform = Transform::kNone;
  } else {
    return errors.Error(absl::StrCat("unknown transform '", Sv(text), "'; allowed: log1p, none"));
  }
  return OkStatus();
}

Status ParseMaxLen(std::string_view text, Field* field, const FieldErrors& errors) {
  uint32_t value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value < 1 || value > kMaxSequenceLength) {
    return errors.Error(
        absl::StrCat("max_len '", Sv(text), "' must be an integer in 1..", kMaxSequenceLength));
  }
  field->max_len = value;
  return OkStatus();
}

// Parses one entry of `fields` (everything but the table/numeric indexes).
StatusOr<Field> ParseField(const YAML::Node& node, int index, std::string_view source) {
  FieldErrors errors(source, node, index);
  if (!node.IsMap()) return errors.Error("must be a map such as {name: x, type: categorical}");
  if (node["name"]) {
    TESSERA_ASSIGN_OR_RETURN(std::string name, ScalarValue(node["name"], "name", errors));
    errors.set_name(name);
  }
  Field field;
  std::string table, transform, max_len;
  bool has_type = false;
  absl::flat_hash_set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) return errors.Error("keys must be scalars");
    const std::string key = it->first.Scalar();
    if (!seen.insert(key).second) return errors.Error(absl::StrCat("duplicate key '", key, "'"));
    TESSERA_ASSIGN_OR_RETURN(std::string value, ScalarValue(it->second, key, errors));
    if (key == "name") {
      field.name = value;
    } else if (key == "type") {
      TESSERA_RETURN_IF_ERROR(ParseType(value, &field, errors));
      has_type = true;
    } else if (key == "table") {
      table = value;
    } else if (key == "transform") {
      transform = value;
    } else if (key == "max_len") {
      max_len = value;
    } else {
      return errors.Error(absl::StrCat("unknown key '", key, "'; allowed: ", kFieldKeys));
    }
  }
  if (!seen.contains("name")) return errors.Error("missing 'name'");
  if (!ValidName(field.name)) {
    return errors.Error(absl::StrCat("invalid name '", field.name, "'; allowed characters: [A-Za-z0-9_.-]"));
  }
  if (!has_type) return errors.Error("missing 'type'; allowed: categorical, numeric, sequence");
  const std::string_view type = TypeName(field.type);
  if (field.type == FieldType::kNumeric) {
    if (seen.contains("table")) return errors.Error("'table' is not allowed for a numeric field");
    if (seen.contains("transform")) TESSERA_RETURN_IF_ERROR(ParseTransform(transform, &field, errors));
  } else {
    if (seen.contains("transform")) {
      return errors.Error(absl::StrCat("'transform' is only for numeric fields, not ", Sv(type)));
    }
    field.table = seen.contains("table") ? table : field.name;
    if (!ValidName(field.table)) {
      return errors.Error(
          absl::StrCat("invalid table '", field.table, "'; allowed characters: [A-Za-z0-9_.-]"));
    }
  }
  if (field.type == FieldType::kSequence) {
    if (seen.contains("max_len")) TESSERA_RETURN_IF_ERROR(ParseMaxLen(max_len, &field, errors));
  } else if (seen.contains("max_len")) {
    return errors.Error(absl::StrCat("'max_len' is only for sequence fields, not ", Sv(type)));
  }
  return field;
}

}  // namespace

StatusOr<Schema> Schema::Parse(std::string_view yaml, std::string_view source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(absl::StrCat(Sv(source), ": invalid YAML: ", e.what()));
  }
  if (!root.IsMap()) {
    return InvalidArgumentError(absl::StrCat(Sv(source), ": must be a map with key 'fields'"));
  }
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string key = it->first.IsScalar() ? it->first.Scalar() : "?";
    if (key != "fields") {
      return InvalidArgumentError(
          absl::StrCat(Sv(source), ": unknown top-level key '", key, "'; allowed: fields"));
    }
  }
  const YAML::Node fields = root["fields"];
  if (!fields || !fields.IsSequence() || fields.size() == 0) {
    return InvalidArgumentError(absl::StrCat(Sv(source), ": 'fields' must be a non-empty list"));
  }
  Schema schema;
  for (size_t i = 0; i < fields.size(); ++i) {
    const int index = static_cast<int>(i);
    TESSERA_ASSIGN_OR_RETURN(Field field, ParseField(fields[i], index, source));
    FieldErrors errors(source, fields[i], index);
    errors.set_name(field.name);
    if (schema.FieldIndex(field.name) >= 0) {
      return errors.Error(
          absl::StrCat("duplicate field name (also field ", schema.FieldIndex(field.name), ")"));
    }
    if (field.type == FieldType::kNumeric) {
      field.numeric_index = schema.num_numeric_++;
    } else {
      field.table_index = schema.TableIndex(field.table);
      if (field.table_index < 0) {
        if (static_cast<int>(schema.tables_.size()) >= kMaxTables) {
          return errors.Error(absl::StrCat("too many tables (table '", field.table, "' would be number ",
                                           kMaxTables + 1, "; at most ", kMaxTables, ")"));
        }
        field.table_index = static_cast<int>(schema.tables_.size());
        schema.tables_.push_back(field.table);
      }
    }
    schema.fields_.push_back(std::move(field));
  }
  return schema;
}

StatusOr<Schema> Schema::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(absl::StrCat(path, ": cannot open schema file"));
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return DataLossError(absl::StrCat(path, ": read error"));
  return Parse(text.str(), path);
}

int Schema::FieldIndex(std::string_view name) const {
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (fields_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int Schema::TableIndex(std::string_view name) const {
  for (size_t i = 0; i < tables_.size(); ++i) {
    if (tables_[i] == name) return static_cast<int>(i);
  }
  return -1;
}

std::string Schema::ToYaml() const {
  std::string out = "fields:\n";
  for (const Field& f : fields_) {
    absl::StrAppend(&out, "  - {name: ", f.name, ", type: ", Sv(TypeName(f.type)));
    if (f.type == FieldType::kNumeric) {
      absl::StrAppend(&out, ", transform: ", f.transform == Transform::kLog1p ? "log1p" : "none");
    } else if (f.table != f.name) {
      absl::StrAppend(&out, ", table: ", f.table);
    }
    if (f.type == FieldType::kSequence) absl::StrAppend(&out, ", max_len: ", f.max_len);
    out += "}\n";
  }
  return out;
}

}  // namespace tessera::models
