#include "serving/item_catalog.h"

#include <charconv>
#include <fstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "models/tsv_parser.h"

namespace tessera::serving {
namespace {

using models::Field;
using models::FieldType;

// `text` split at every `sep` (empty pieces kept).
std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> pieces;
  while (true) {
    const size_t at = text.find(sep);
    pieces.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return pieces;
    text.remove_prefix(at + 1);
  }
}

// One checked TSV column as a JSON value (null when empty).
nlohmann::json ColumnValue(const Field& field, std::string_view text) {
  if (text.empty()) return nullptr;
  switch (field.type) {
    case FieldType::kCategorical:
      return std::string(text);
    case FieldType::kNumeric: {
      if (text.front() == '+') text.remove_prefix(1);
      double value = 0;
      std::from_chars(text.data(), text.data() + text.size(), value);  // checked by TsvParser
      return value;
    }
    case FieldType::kSequence: {
      nlohmann::json tokens = nlohmann::json::array();
      for (std::string_view token : Split(text, ',')) {
        if (!token.empty()) tokens.push_back(std::string(token));
      }
      return tokens;
    }
  }
  return nullptr;
}

}  // namespace

StatusOr<std::string> CatalogKeyField(const models::Schema& schema) {
  const std::vector<Field>& fields = schema.fields();
  const int item = schema.FieldIndex("item_id");
  if (item >= 0 && fields[item].type == FieldType::kCategorical) return std::string("item_id");
  for (const Field& seq : fields) {
    if (seq.type != FieldType::kSequence) continue;
    for (const Field& f : fields) {
      if (f.type == FieldType::kCategorical && f.table_index == seq.table_index) return f.name;
    }
    break;
  }
  return NotFoundError(
      "serve: the schema has no item field (a categorical item_id, or a categorical field sharing "
      "the first sequence field's table)");
}

StatusOr<ItemCatalog> ItemCatalog::Load(const std::string& path, const models::Schema& schema,
                                        const std::string& key_field) {
  std::ifstream in(path);
  if (!in) return NotFoundError(absl::StrCat(path, ": cannot be read"));
  const int key = schema.FieldIndex(key_field);
  if (key < 0)
    return InvalidArgumentError(
        absl::StrCat("catalog key field '", key_field, "' is not in the schema"));
  const models::TsvParser parser(&schema);
  const std::vector<Field>& fields = schema.fields();
  ItemCatalog catalog;
  models::Example example;
  std::string line, reason;
  for (uint64_t number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const std::string where = absl::StrCat(path, ":", number);
    if (parser.Parse(line, &example, &reason) == models::LineKind::kBad) {
      return InvalidArgumentError(absl::StrCat(where, ": ", reason));
    }
    std::vector<std::string_view> columns = Split(line, '\t');
    columns.resize(fields.size() + 1);  // a short row's missing columns are empty
    nlohmann::json instance = nlohmann::json::object();
    for (size_t f = 0; f < fields.size(); ++f) {
      nlohmann::json value = ColumnValue(fields[f], columns[f + 1]);
      if (!value.is_null()) instance[fields[f].name] = std::move(value);
    }
    const std::string id(columns[key + 1]);
    if (id.empty()) return InvalidArgumentError(absl::StrCat(where, ": no ", key_field));
    if (!catalog.items_.emplace(id, std::move(instance)).second) {
      return InvalidArgumentError(absl::StrCat(where, ": ", key_field, " '", id, "' seen before"));
    }
  }
  return catalog;
}

const nlohmann::json* ItemCatalog::Find(std::string_view id) const {
  const auto it = items_.find(absl::string_view(id.data(), id.size()));
  return it == items_.end() ? nullptr : &it->second;
}

}  // namespace tessera::serving
