// Converts one JSON instance of a serving request into the Example
// (models/tsv_parser.h) that the TSV line with the same values parses to, so
// serving builds its batches with the batch builder of training and `tessera
// eval` and scores exactly what they score.
//
// An instance is a JSON object of schema field name -> value:
//   categorical  a string ("" or null: missing, no key)
//   numeric      a number (null: missing = 0 before the transform); the
//                field's transform applies (models::TransformNumeric)
//   sequence     an array of strings, oldest first ("" skipped; null:
//                empty); the most recent max_len are kept
// Fields may be missing. Other types and names that are not schema fields
// are InvalidArgument errors naming the place, e.g.
// "instances[3].price: expected a number".
//
// Thread-compatible; Encode is const, so one encoder may serve many threads.
//
// Example:
//   InstanceEncoder encoder(&schema);
//   models::Example ex;
//   TESSERA_RETURN_IF_ERROR(encoder.Encode(instance, "instances[0]", &ex, nullptr));
//   builder->Add(ex);
#ifndef TESSERA_SERVING_INSTANCE_ENCODER_H_
#define TESSERA_SERVING_INSTANCE_ENCODER_H_

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "models/schema.h"
#include "models/tsv_parser.h"

namespace tessera::serving {

// Per schema field, the sequence tokens an Example kept (oldest first; empty
// for other fields): what explanations pair attention weights with.
using KeptTokens = std::vector<std::vector<std::string>>;

class InstanceEncoder {
 public:
  // `schema` is borrowed and must remain live.
  explicit InstanceEncoder(const models::Schema* schema);

  // Fills *example from `instance` (label 0). `where` names the instance in
  // errors ("instances[3]"). `tokens` may be null; else it gets the kept
  // sequence tokens. InvalidArgument for a non-object, an unknown field or a
  // value of the wrong type; *example is then unspecified.
  Status Encode(const nlohmann::json& instance, std::string_view where, models::Example* example,
                KeptTokens* tokens) const;

 private:
  const models::Schema* const schema_;
};

}  // namespace tessera::serving

#endif  // TESSERA_SERVING_INSTANCE_ENCODER_H_
