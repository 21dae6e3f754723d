#include "models/attention_pairs.h"

#include <string>

namespace tessera::models {
namespace {

StatusOr<ResolvedPair> ResolveExplicit(const AttentionPair& pair, const Schema& schema) {
  const std::string where = "model.attention." + pair.sequence;
  const int sequence = schema.FieldIndex(pair.sequence);
  if (sequence < 0 || schema.fields()[sequence].type != FieldType::kSequence) {
    return InvalidArgumentError(where + ": \"" + pair.sequence +
                                "\" is not a sequence field of the schema");
  }
  const int target = schema.FieldIndex(pair.target);
  if (target < 0 || schema.fields()[target].type != FieldType::kCategorical) {
    return InvalidArgumentError(where + ": \"" + pair.target +
                                "\" is not a categorical field of the schema");
  }
  if (schema.fields()[sequence].table_index != schema.fields()[target].table_index) {
    return InvalidArgumentError(where + ": " + pair.sequence + " uses table \"" +
                                schema.fields()[sequence].table + "\" but " + pair.target +
                                " uses \"" + schema.fields()[target].table +
                                "\"; a pair must share its table");
  }
  return ResolvedPair{.sequence = sequence, .target = target};
}

int FirstCategoricalOfTable(const Schema& schema, int table_index) {
  for (size_t f = 0; f < schema.fields().size(); ++f) {
    const Field& field = schema.fields()[f];
    if (field.type == FieldType::kCategorical && field.table_index == table_index) {
      return static_cast<int>(f);
    }
  }
  return -1;
}

}  // namespace

StatusOr<std::vector<ResolvedPair>> ResolveAttentionPairs(const ModelConfig& config,
                                                          const Schema& schema) {
  std::vector<ResolvedPair> pairs;
  if (!config.attention.empty()) {
    for (const AttentionPair& pair : config.attention) {
      TESSERA_ASSIGN_OR_RETURN(ResolvedPair resolved, ResolveExplicit(pair, schema));
      for (const ResolvedPair& seen : pairs) {
        if (seen.sequence == resolved.sequence) {
          return InvalidArgumentError("model.attention: " + pair.sequence + " is named twice");
        }
      }
      pairs.push_back(resolved);
    }
    return pairs;
  }
  for (size_t f = 0; f < schema.fields().size(); ++f) {
    const Field& field = schema.fields()[f];
    if (field.type != FieldType::kSequence) continue;
    const int target = FirstCategoricalOfTable(schema, field.table_index);
    if (target >= 0) pairs.push_back({.sequence = static_cast<int>(f), .target = target});
  }
  if (pairs.empty()) {
    return InvalidArgumentError("model.type " + config.type +
                                " needs a sequence field sharing its table with a categorical "
                                "field (e.g. hist_items and item_id in table item); the schema "
                                "has none");
  }
  return pairs;
}

}  // namespace tessera::models
