#include "serving/instance_encoder.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "models/feature_hash.h"

namespace tessera::serving {
namespace {

using models::Field;
using models::FieldType;

const char* TypeName(const nlohmann::json& v) { return v.type_name(); }

Status WrongType(std::string_view where, const Field& field, const char* expected,
                 const nlohmann::json& value) {
  return InvalidArgumentError(absl::StrCat(std::string(where), ".", field.name, ": expected ",
                                           expected, ", got ", TypeName(value)));
}

}  // namespace

InstanceEncoder::InstanceEncoder(const models::Schema* schema) : schema_(schema) {}

Status InstanceEncoder::Encode(const nlohmann::json& instance, std::string_view where,
                               models::Example* example, KeptTokens* tokens) const {
  if (!instance.is_object()) {
    return InvalidArgumentError(
        absl::StrCat(std::string(where), ": expected an object, got ", TypeName(instance)));
  }
  for (const auto& [name, value] : instance.items()) {
    if (schema_->FieldIndex(name) < 0) {
      return InvalidArgumentError(absl::StrCat(std::string(where), ".", name,
                                               ": unknown field (not in the model's schema)"));
    }
  }
  const std::vector<Field>& fields = schema_->fields();
  const int num_fields = static_cast<int>(fields.size());
  example->label = 0;
  example->numeric.assign(schema_->num_numeric(), 0.0f);
  example->key_offsets.resize(fields.size() + 1);
  example->keys.clear();
  if (tokens != nullptr) {
    tokens->assign(fields.size(), {});
  }
  for (int f = 0; f < num_fields; ++f) {
    const Field& field = fields[f];
    example->key_offsets[f] = static_cast<uint32_t>(example->keys.size());
    const auto it = instance.find(field.name);
    if (it == instance.end() || it->is_null()) {
      if (field.type == FieldType::kNumeric) {
        example->numeric[field.numeric_index] = models::TransformNumeric(field, 0.0);
      }
      continue;
    }
    const nlohmann::json& value = *it;
    switch (field.type) {
      case FieldType::kNumeric: {
        if (!value.is_number()) return WrongType(where, field, "a number", value);
        const double x = value.get<double>();
        if (!std::isfinite(x)) return WrongType(where, field, "a finite number", value);
        example->numeric[field.numeric_index] = models::TransformNumeric(field, x);
        break;
      }
      case FieldType::kCategorical: {
        if (!value.is_string()) return WrongType(where, field, "a string", value);
        const std::string& token = value.get_ref<const std::string&>();
        if (!token.empty()) example->keys.push_back(schema_->hasher().Hash(field.table_index, token));
        break;
      }
      case FieldType::kSequence: {
        if (!value.is_array()) return WrongType(where, field, "an array of strings", value);
        for (size_t i = 0; i < value.size(); ++i) {
          if (!value[i].is_string()) {
            return InvalidArgumentError(absl::StrCat(std::string(where), ".", field.name, "[", i,
                                                     "]: expected a string, got ",
                                                     TypeName(value[i])));
          }
        }
        // Non-empty tokens, the most recent max_len, oldest first (as TsvParser).
        std::vector<const std::string*> kept;
        for (size_t i = value.size(); i-- > 0 && kept.size() < field.max_len;) {
          const std::string& token = value[i].get_ref<const std::string&>();
          if (!token.empty()) kept.push_back(&token);
        }
        std::reverse(kept.begin(), kept.end());
        for (const std::string* token : kept) {
          example->keys.push_back(schema_->hasher().Hash(field.table_index, *token));
          if (tokens != nullptr) (*tokens)[f].push_back(*token);
        }
        break;
      }
    }
  }
  example->key_offsets[num_fields] = static_cast<uint32_t>(example->keys.size());
  return OkStatus();
}

}  // namespace tessera::serving
