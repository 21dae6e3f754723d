#include "models/explanation_json.h"

#include <charconv>
#include <cmath>
#include <utility>

namespace tessera::models {

nlohmann::ordered_json JsonFloat(float x) {
  if (!std::isfinite(x)) return nullptr;
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), x);
  double d = x;
  if (ec == std::errc()) std::from_chars(buf, end, d);
  return d;
}

nlohmann::ordered_json ExplanationJsonObject(const Schema& schema, const Explanation& explanation,
                                             const HistoryTokens& tokens) {
  const std::vector<Field>& fields = schema.fields();
  nlohmann::ordered_json contributions = nlohmann::ordered_json::object();
  for (size_t f = 0; f < fields.size() && f < explanation.fields.size(); ++f) {
    contributions[fields[f].name] = JsonFloat(explanation.fields[f]);
  }
  nlohmann::ordered_json attention = nlohmann::ordered_json::object();
  for (const AttentionWeights& a : explanation.attention) {
    if (a.field < 0 || static_cast<size_t>(a.field) >= fields.size()) continue;
    const std::vector<std::string> kept = tokens(a.field);
    nlohmann::ordered_json items = nlohmann::ordered_json::array();
    for (size_t t = 0; t < a.weights.size(); ++t) {
      nlohmann::ordered_json item = nlohmann::ordered_json::object();
      item["item"] = t < kept.size() ? nlohmann::ordered_json(kept[t]) : nullptr;
      item["weight"] = JsonFloat(a.weights[t]);
      items.push_back(std::move(item));
    }
    attention[fields[a.field].name] = std::move(items);
  }
  nlohmann::ordered_json doc = nlohmann::ordered_json::object();
  doc["logit"] = JsonFloat(explanation.logit);
  doc["bias"] = JsonFloat(explanation.bias);
  doc["fields"] = std::move(contributions);
  doc["attention"] = std::move(attention);
  return doc;
}

}  // namespace tessera::models
