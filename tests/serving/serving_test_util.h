// Test helpers for serving: a hand-written saved model (tests/models/
// saved_model_test_util.h, schema user_id, item_id, price, hist with
// max_len 3) and the JSON instance of a TSV line of that schema.
#ifndef TESSERA_TESTS_SERVING_SERVING_TEST_UTIL_H_
#define TESSERA_TESTS_SERVING_SERVING_TEST_UTIL_H_

#include <charconv>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "models/feature_hash.h"
#include "models/schema.h"
#include "tests/models/saved_model_test_util.h"

namespace tessera::serving::testing {

// A saved model of `type` that knows users u0..u29 and items i0..i29.
inline Status WriteTestModel(const std::string& dir, const std::string& type) {
  std::vector<std::vector<Key>> keys(2);
  for (int k = 0; k < 30; ++k) {
    keys[0].push_back(models::HashFeature(0, absl::StrCat("u", k)));
    keys[1].push_back(models::HashFeature(1, absl::StrCat("i", k)));
  }
  models::ModelConfig config;
  config.type = type;
  config.embedding_dim = 4;
  config.hidden = {8};
  return models::testing::WriteHandModel(dir, config, 2, keys).status();
}

inline std::vector<std::string_view> SplitAt(std::string_view text, char sep) {
  std::vector<std::string_view> pieces;
  while (true) {
    const size_t at = text.find(sep);
    pieces.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return pieces;
    text.remove_prefix(at + 1);
  }
}

// The JSON instance of a valid TSV line (label first): empty columns are
// left out, numbers become JSON numbers, sequences arrays of their tokens.
inline nlohmann::json InstanceOfLine(const models::Schema& schema, std::string_view line) {
  const std::vector<std::string_view> columns = SplitAt(line, '\t');
  nlohmann::json instance = nlohmann::json::object();
  for (size_t f = 0; f < schema.fields().size() && f + 1 < columns.size(); ++f) {
    const models::Field& field = schema.fields()[f];
    const std::string_view text = columns[f + 1];
    if (text.empty()) continue;
    switch (field.type) {
      case models::FieldType::kCategorical:
        instance[field.name] = std::string(text);
        break;
      case models::FieldType::kNumeric: {
        double value = 0;
        std::from_chars(text.data(), text.data() + text.size(), value);
        instance[field.name] = value;
        break;
      }
      case models::FieldType::kSequence: {
        nlohmann::json tokens = nlohmann::json::array();
        for (std::string_view t : SplitAt(text, ',')) tokens.push_back(std::string(t));
        instance[field.name] = tokens;
        break;
      }
    }
  }
  return instance;
}

}  // namespace tessera::serving::testing

#endif  // TESSERA_TESTS_SERVING_SERVING_TEST_UTIL_H_
