// Explanations (models/explanation.h) as JSON, the one form `tessera eval
// --explain` and `tessera serve` both write.
#ifndef TESSERA_MODELS_EXPLANATION_JSON_H_
#define TESSERA_MODELS_EXPLANATION_JSON_H_

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/explanation.h"
#include "models/schema.h"

namespace tessera::models {

// A float as a JSON number with the fewest digits that read back as the same
// float (not the float widened to a double's 17 digits); null if not finite.
nlohmann::ordered_json JsonFloat(float x);

// The history tokens of sequence field `field` the model saw (oldest first).
using HistoryTokens = std::function<std::vector<std::string>(int field)>;

// {"logit", "bias", "fields": {name: contribution, ... in schema order},
//  "attention": {sequence field: [{"item": token or null, "weight"}, ...]}}.
nlohmann::ordered_json ExplanationJsonObject(const Schema& schema, const Explanation& explanation,
                                             const HistoryTokens& tokens);

}  // namespace tessera::models

#endif  // TESSERA_MODELS_EXPLANATION_JSON_H_
